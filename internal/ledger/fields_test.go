package ledger

import (
	"context"
	"testing"

	"github.com/heraldmsg/herald/internal/rkeys"
)

func TestFieldEncoding(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		recipient, field string
	}{
		{"+5511987654321", "5511987654321"},
		{"+14155550100", "14155550100"},
		{"bsuid:US.13491208655302741918", "bsuid:US.13491208655302741918"},
		{"+0123", "+0123"},                               // a leading zero would not come back
		{"+1234567890123456789", "+1234567890123456789"}, // 19 digits: past int64 for some
		{"+12a4", "+12a4"},
		{"+", "+"},
		{"", ""},
	} {
		got, ok := digitField(tt.recipient)
		if !ok {
			got = tt.recipient
		}
		if got != tt.field {
			t.Errorf("field of %q = %q, want %q", tt.recipient, got, tt.field)
		}
		if back := recipientOf(got); back != tt.recipient {
			t.Errorf("recipientOf(%q) = %q, want %q", got, back, tt.recipient)
		}
	}
}

// FuzzFieldRoundTrip: every recipient comes back from its field unchanged, and only phone
// numbers lose their "+".
func FuzzFieldRoundTrip(f *testing.F) {
	f.Add("+5511987654321")
	f.Add("bsuid:BR.1")
	f.Add("12345")
	f.Fuzz(func(t *testing.T, r string) {
		if r != "" && r[0] >= '1' && r[0] <= '9' && recipientOf(r) != r {
			return // digits only: never a recipient (recipients are E.164 or bsuid:...)
		}
		field, ok := digitField(r)
		if !ok {
			field = r
		}
		if back := recipientOf(field); back != r {
			t.Fatalf("recipient %q → field %q → %q", r, field, back)
		}
	})
}

// TestDigitFieldsInRedis checks what a new run stores: phone numbers as integers in the
// listpack (their digits), BSUIDs as text; every read and write finds them by recipient.
func TestDigitFieldsInRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	rcpts := []string{"+5511987654321", "bsuid:US.13491208655302741918"}
	entries := seedRun(t, b, "r1", AtMostOnce, rcpts, true)
	for i, want := range []string{"5511987654321", "bsuid:US.13491208655302741918"} {
		ok, err := b.rdb.HExists(ctx, rkeys.LedgerBucket("r1", entries[i].Bucket), want).Result()
		if err != nil || !ok {
			t.Fatalf("bucket has no field %q (err %v)", want, err)
		}
	}
	exerciseEntries(t, b, "r1", entries)
}

// TestRunBeforeDigitFields keeps a run created before digit fields (no "fields" in its hash,
// "+" in its bucket fields) working: claims, outcomes, events, history and listings.
func TestRunBeforeDigitFields(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	rcpts := []string{"+5511987654321", "+14155550100"}
	buckets := BucketsFor(len(rcpts))
	if err := b.l.CreateRun(ctx, Run{ID: "old", Campaign: "c", Delivery: AtMostOnce, Buckets: buckets}); err != nil {
		t.Fatal(err)
	}
	if err := b.rdb.HDel(ctx, rkeys.Run("old"), "fields").Err(); err != nil {
		t.Fatal(err)
	}
	// A fresh ledger, as after an upgrade: nothing remembered about the run.
	l := New(b.rdb, b.l.now)
	b2 := &testBundle{mr: b.mr, rdb: b.rdb, l: l}
	entries := planEntries(rcpts, buckets)
	if _, err := l.Plan(ctx, "old", 0, len(rcpts), nil, entries); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		ok, err := b.rdb.HExists(ctx, rkeys.LedgerBucket("old", e.Bucket), e.Recipient).Result()
		if err != nil || !ok {
			t.Fatalf("old run: bucket has no field %q (err %v)", e.Recipient, err)
		}
	}
	exerciseEntries(t, b2, "old", entries)
}

// exerciseEntries claims and settles entries[0] through a failed first attempt, an accept and
// a delivered event, skips nothing else, and checks every read finds the entries.
func exerciseEntries(t *testing.T, b *testBundle, runID string, entries []PlanEntry) {
	t.Helper()
	ctx := context.Background()
	pe := entries[0]
	if c := claim(t, b, runID, pe, AtMostOnce); c.Verdict != VerdictSend {
		t.Fatalf("claim verdict %s, want send", c.Verdict)
	}
	if _, err := b.l.Finish(ctx, runID, pe.Bucket, pe.Recipient, Outcome{State: Queued, Code: "HTTP_503", Mode: ReleaseRetry}); err != nil {
		t.Fatal(err)
	}
	if c := claim(t, b, runID, pe, AtMostOnce); c.Verdict != VerdictSend {
		t.Fatalf("second claim verdict %s, want send", c.Verdict)
	}
	if _, err := b.l.Finish(ctx, runID, pe.Bucket, pe.Recipient, Outcome{State: Accepted, MessageID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.l.Advance(ctx, runID, pe.Bucket, pe.Recipient, Delivered, "", "m1"); err != nil || !ok {
		t.Fatalf("Advance = %v, %v", ok, err)
	}
	wantEqual(t, "entry", Entry{State: Delivered, Row: pe.Row, Attempts: 2, MessageID: "m1"}, getEntry(t, b, runID, pe))
	hist, err := b.l.History(ctx, runID, pe.Bucket, pe.Recipient)
	if err != nil || len(hist) != 2 {
		t.Fatalf("History = %+v, %v; want two events", hist, err)
	}
	if ok, err := b.l.Skip(ctx, runID, entries[1].Bucket, entries[1].Recipient, "operator"); err != nil || !ok {
		t.Fatalf("Skip = %v, %v", ok, err)
	}
	seen := map[string]State{}
	if err := b.l.EachEntry(ctx, runID, func(r string, _ int, e Entry) error { seen[r] = e.State; return nil }); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "entries", map[string]State{pe.Recipient: Delivered, entries[1].Recipient: Skipped}, seen)
}
