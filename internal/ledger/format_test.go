package ledger

import (
	"context"
	"strings"
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

// ulidOf returns the ULID whose packed bytes are b (16 bytes).
func ulidOf(b string) string {
	if len(b) != 16 {
		panic("ulidOf needs 16 bytes")
	}
	return unpackMessageID("\xff" + b)
}

// hardULIDs are ULIDs whose packed bytes hold what could trip the scripts' entry parser: NUL,
// '|', newline, and all zeros or all ones.
var hardULIDs = []string{
	ulidOf(strings.Repeat("\x00", 16)),
	ulidOf("|||||||||||||||\x00"),
	ulidOf("\n|\x00\xff|\r\n%.*$^()[]"),
	"7ZZZZZZZZZZZZZZZZZZZZZZZZZ",
	"01ARZ3NDEKTSV4RRFFQ69G5FAV",
}

func TestMessageIDPacking(t *testing.T) {
	t.Parallel()
	for _, id := range append(hardULIDs, "", "m-1", "01arz3ndektsv4rrffq69g5fav", "81ARZ3NDEKTSV4RRFFQ69G5FAV",
		"01ARZ3NDEKTSV4RRFFQ69G5FAVX", "01ARZ3NDEKTSV4RRFFQ69G5FAI", "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA") {
		p := packMessageID(id)
		if len(id) == 26 && strings.ToUpper(id) == id && id[0] <= '7' && !strings.ContainsAny(id, "ILOU") {
			if len(p) != 17 || p[0] != 0xff {
				t.Errorf("ULID %q packed to %q, want 17 bytes", id, p)
			}
		} else if p != id {
			t.Errorf("non-ULID %q packed to %q, want it unchanged", id, p)
		}
		if back := unpackMessageID(p); back != id {
			t.Errorf("%q → %q → %q", id, p, back)
		}
	}
}

// FuzzMessageIDRoundTrip: every text id comes back from its packed form unchanged.
func FuzzMessageIDRoundTrip(f *testing.F) {
	for _, id := range hardULIDs {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if len(id) == 17 && id[0] == 0xff {
			return // not text: never a message id from JSON
		}
		if back := unpackMessageID(packMessageID(id)); back != id {
			t.Fatalf("%q → %q", id, back)
		}
	})
}

// TestCompactEntriesInRedis checks what a new run stores: phone numbers as integers in the
// listpack (their digits), BSUIDs as text, ULIDs as 17 bytes; every read and write finds
// them by recipient and message id, whatever bytes the packed id holds.
func TestCompactEntriesInRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for i, mid := range hardULIDs {
		b := setup(t)
		rcpts := []string{"+5511987654321", "bsuid:US.13491208655302741918"}
		entries := seedRun(t, b, "r1", AtMostOnce, rcpts, true)
		for j, want := range []string{"5511987654321", "bsuid:US.13491208655302741918"} {
			ok, err := b.rdb.HExists(ctx, rkeys.LedgerBucket("r1", entries[j].Bucket), want).Result()
			if err != nil || !ok {
				t.Fatalf("bucket has no field %q (err %v)", want, err)
			}
		}
		exerciseEntries(t, b, "r1", entries, mid)
		raw, err := b.rdb.HGet(ctx, rkeys.LedgerBucket("r1", entries[0].Bucket), "5511987654321").Result()
		if err != nil || !strings.HasSuffix(raw, packMessageID(mid)) || len(packMessageID(mid)) != 17 {
			t.Fatalf("id %d: entry %q (err %v), want the 17-byte id at its end", i, raw, err)
		}
	}
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
	if err := b.rdb.HDel(ctx, rkeys.Run("old"), "format").Err(); err != nil {
		t.Fatal(err)
	}
	// A fresh ledger, as after an upgrade: nothing remembered about the run.
	l := New(b.rdb, b.l.now)
	b2 := &testBundle{mr: b.mr, rdb: b.rdb, l: l}
	entries := planEntries(rcpts, buckets)
	if _, err := l.PlanQueued(ctx, Batch{Run: "old", From: 0, To: len(rcpts), Entries: entries}); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		ok, err := b.rdb.HExists(ctx, rkeys.LedgerBucket("old", e.Bucket), e.Recipient).Result()
		if err != nil || !ok {
			t.Fatalf("old run: bucket has no field %q (err %v)", e.Recipient, err)
		}
	}
	exerciseEntries(t, b2, "old", entries, hardULIDs[1])
	raw, err := b.rdb.HGet(ctx, rkeys.LedgerBucket("old", entries[0].Bucket), entries[0].Recipient).Result()
	if err != nil || !strings.HasSuffix(raw, "|"+hardULIDs[1]) {
		t.Fatalf("old run: entry %q (err %v), want the id as text", raw, err)
	}
}

// exerciseEntries claims and settles entries[0] through a failed first attempt, an accept as
// message mid, a sent event, an event for another message, a delivered event matched strictly
// by mid, skips entries[1], and checks every read finds the entries.
func exerciseEntries(t *testing.T, b *testBundle, runID string, entries []PlanEntry, mid string) {
	t.Helper()
	ctx := context.Background()
	pe := entries[0]
	if c := claim(t, b, runID, pe, AtMostOnce); c.Verdict != VerdictSend {
		t.Fatalf("claim verdict %s, want send", c.Verdict)
	}
	if _, err := b.l.Finish(ctx, Address{Run: runID, Bucket: pe.Bucket, Recipient: pe.Recipient}, Outcome{State: Queued, Code: "HTTP_503", Mode: ReleaseRetry}); err != nil {
		t.Fatal(err)
	}
	if c := claim(t, b, runID, pe, AtMostOnce); c.Verdict != VerdictSend {
		t.Fatalf("second claim verdict %s, want send", c.Verdict)
	}
	if _, err := b.l.Finish(ctx, Address{Run: runID, Bucket: pe.Bucket, Recipient: pe.Recipient}, Outcome{State: Accepted, MessageID: mid}); err != nil {
		t.Fatal(err)
	}
	sent := DeliveryEvent{Address: Address{Run: runID, Bucket: pe.Bucket, Recipient: pe.Recipient}, State: Sent, MessageID: mid}
	if v, _, err := b.l.ApplyDelivery(ctx, sent); err != nil || v != DeliveryApplied {
		t.Fatalf("sent event = %v, %v; want %s", v, err, DeliveryApplied)
	}
	ev := DeliveryEvent{Address: Address{Run: runID, Bucket: pe.Bucket, Recipient: pe.Recipient}, State: Delivered, MessageID: "01BX5ZZKBKACTAV9WEVGEMMVRZ", Strict: true}
	if v, _, err := b.l.ApplyDelivery(ctx, ev); err != nil || v != DeliveryOtherMessage {
		t.Fatalf("event for another message: %v, %v; want %s", v, err, DeliveryOtherMessage)
	}
	ev.MessageID = mid
	if v, _, err := b.l.ApplyDelivery(ctx, ev); err != nil || v != DeliveryApplied {
		t.Fatalf("event for the message: %v, %v; want %s", v, err, DeliveryApplied)
	}
	wantEqual(t, "entry", Entry{State: Delivered, Row: pe.Row, Attempts: 2, MessageID: mid}, getEntry(t, b, runID, pe))
	hist, err := b.l.History(ctx, Address{Run: runID, Bucket: pe.Bucket, Recipient: pe.Recipient})
	if err != nil || len(hist) != 2 {
		t.Fatalf("History = %+v, %v; want two events", hist, err)
	}
	if ok, err := b.l.Skip(ctx, Address{Run: runID, Bucket: entries[1].Bucket, Recipient: entries[1].Recipient}, "operator"); err != nil || ok != Skipped {
		t.Fatalf("Skip = %v, %v", ok, err)
	}
	seen := map[string]State{}
	if err := b.l.EachEntry(ctx, runID, func(r string, _ int, e Entry) error { seen[r] = e.State; return nil }); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "entries", map[string]State{pe.Recipient: Delivered, entries[1].Recipient: Skipped}, seen)
}
