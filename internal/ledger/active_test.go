package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// activeStory is one story about the index of runs not yet ended, told on miniredis and on a
// real Redis. id names the story's runs (unique on a real Redis, which other tests share).
type activeStory struct {
	name string
	runs []string
	run  func(t *testing.T, b *testBundle, id func(string) string)
}

// listedActive reports whether run is in the index of runs not yet ended.
func listedActive(t *testing.T, b *testBundle, run string) bool {
	t.Helper()
	_, err := b.rdb.ZScore(context.Background(), rkeys.ActiveRuns(), run).Result()
	return err == nil
}

func wantListed(t *testing.T, b *testBundle, run string, want bool, when string) {
	t.Helper()
	if got := listedActive(t, b, run); got != want {
		t.Fatalf("%s: run %s listed as not ended = %v, want %v (status %s)", when, run, got, want, getRun(t, b, run).Status)
	}
}

// expandedRun creates a run of n queued recipients, expanded whole, and checks it is listed.
func expandedRun(t *testing.T, b *testBundle, run string, n int, resendAfter time.Duration) []PlanEntry {
	t.Helper()
	ctx := context.Background()
	buckets := BucketsFor(n)
	if err := b.l.CreateRun(ctx, Run{ID: run, Campaign: "spring-sale", Buckets: buckets, ResendAfter: resendAfter}); err != nil {
		t.Fatal(err)
	}
	entries := planEntries(recipients(n), buckets)
	if _, err := b.l.PlanQueued(ctx, Batch{Run: run, From: 0, To: n, Entries: entries}); err != nil {
		t.Fatal(err)
	}
	if done, err := b.l.FinishExpansion(ctx, run, n); err != nil || done {
		t.Fatalf("FinishExpansion = %v, %v; want the run still sending", done, err)
	}
	wantListed(t, b, run, true, "expanded, nothing sent")
	return entries
}

var activeStories = []activeStory{
	{"PauseAndResumeKeepItCancelEndsIt", []string{"a"}, func(t *testing.T, b *testBundle, id func(string) string) {
		ctx := context.Background()
		r := id("a")
		if err := b.l.CreateRun(ctx, Run{ID: r, Campaign: "spring-sale", Buckets: 1}); err != nil {
			t.Fatal(err)
		}
		wantListed(t, b, r, true, "created")
		if _, err := b.l.Pause(ctx, r, "operator"); err != nil {
			t.Fatal(err)
		}
		wantListed(t, b, r, true, "paused")
		if _, err := b.l.Resume(ctx, r); err != nil {
			t.Fatal(err)
		}
		wantListed(t, b, r, true, "resumed")
		if _, _, err := b.l.Cancel(ctx, r, "operator"); err != nil {
			t.Fatal(err)
		}
		wantListed(t, b, r, false, "cancelled")
		// An expansion step lists the run it read: an ended one stays out.
		if err := b.l.ListRun(ctx, getRun(t, b, r)); err != nil {
			t.Fatal(err)
		}
		wantListed(t, b, r, false, "listed again once cancelled")
	}},
	{"CompletedByItsLastOutcome", []string{"a"}, func(t *testing.T, b *testBundle, id func(string) string) {
		r := id("a")
		es := expandedRun(t, b, r, 2, 0)
		for i, pe := range es {
			c := claim(t, b, r, pe, AtMostOnce)
			res := finish(t, b, r, pe, Outcome{State: Accepted, MessageID: "m1", Attempt: c.Attempts})
			wantListed(t, b, r, i == 0, fmt.Sprintf("after outcome %d (run completed: %v)", i+1, res.RunCompleted))
		}
	}},
	{"CompletedByItsExpansion", []string{"a"}, func(t *testing.T, b *testBundle, id func(string) string) {
		ctx := context.Background()
		r := id("a")
		if err := b.l.CreateRun(ctx, Run{ID: r, Campaign: "spring-sale", Buckets: 1}); err != nil {
			t.Fatal(err)
		}
		if done, err := b.l.FinishExpansion(ctx, r, 0); err != nil || !done {
			t.Fatalf("FinishExpansion of an empty audience = %v, %v; want completed", done, err)
		}
		wantListed(t, b, r, false, "completed by its expansion")
	}},
	{"CompletedByASkip", []string{"a"}, func(t *testing.T, b *testBundle, id func(string) string) {
		r := id("a")
		es := expandedRun(t, b, r, 1, 0)
		if ok, err := b.l.Skip(context.Background(), Address{Run: r, Bucket: es[0].Bucket, Recipient: es[0].Recipient}, "deleted"); err != nil || ok != Skipped {
			t.Fatalf("Skip = %v, %v", ok, err)
		}
		wantListed(t, b, r, false, "its last entry skipped")
	}},
	{"CompletedByAClaimFindingAnEarlierOne", []string{"a"}, func(t *testing.T, b *testBundle, id func(string) string) {
		r := id("a")
		es := expandedRun(t, b, r, 1, 0)
		claim(t, b, r, es[0], AtMostOnce)
		// The worker died mid-request: the task's next attempt finds its claim.
		if c := claim(t, b, r, es[0], AtMostOnce); c.Verdict != VerdictUnknown {
			t.Fatalf("second claim %+v, want unknown", c)
		}
		wantListed(t, b, r, false, "its last entry found unknown")
	}},
	{"CompletedByADeliveryEventSettlingItsResend", []string{"a"}, func(t *testing.T, b *testBundle, id func(string) string) {
		ctx := context.Background()
		r := id("a")
		es := expandedRun(t, b, r, 1, time.Hour)
		a := Address{Run: r, Bucket: es[0].Bucket, Recipient: es[0].Recipient}
		c := claim(t, b, r, es[0], AtMostOnce)
		finish(t, b, r, es[0], Outcome{State: Unknown, Code: "NO_RESPONSE", Attempt: c.Attempts, Payload: []byte(`{"to":"x"}`)})
		wantListed(t, b, r, true, "waiting for a resend")
		v, _, err := b.l.ApplyDelivery(ctx, DeliveryEvent{Address: a, State: Delivered, MessageID: "01JABCDEFGHJKMNPQRSTVWXYZ0"})
		if err != nil || v != DeliveryApplied {
			t.Fatalf("ApplyDelivery = %s, %v", v, err)
		}
		wantListed(t, b, r, false, "its unknown recipient delivered")
	}},
	{"ListingAgainRepairsALostListing", []string{"a"}, func(t *testing.T, b *testBundle, id func(string) string) {
		ctx := context.Background()
		r := id("a")
		if err := b.l.CreateRun(ctx, Run{ID: r, Campaign: "spring-sale", Buckets: 1}); err != nil {
			t.Fatal(err)
		}
		if err := b.l.DropEnded(ctx, r); err != nil {
			t.Fatal(err)
		}
		run := getRun(t, b, r)
		if err := b.l.ListRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		wantListed(t, b, r, true, "listed again by an expansion step")
		ids, listed, err := b.l.ActiveRuns(ctx, 0, 1<<20)
		if err != nil || listed < 1 || !containsID(ids, r) {
			t.Fatalf("ActiveRuns = %v, %d, %v; want %s among them", ids, listed, err, r)
		}
		score, err := b.rdb.ZScore(ctx, rkeys.ActiveRuns(), r).Result()
		if err != nil || int64(score) != run.Created.UnixMilli() {
			t.Fatalf("score %v (%v), want the creation time %d", score, err, run.Created.UnixMilli())
		}
	}},
}

func containsID(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// TestActiveRuns tells every story of the index of runs not yet ended on miniredis.
func TestActiveRuns(t *testing.T) {
	t.Parallel()
	for _, s := range activeStories {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			s.run(t, setup(t), func(name string) string { return name })
		})
	}
}

// TestActiveRunsRealRedis tells the same stories on a real Redis, whose Lua runs the scripts.
func TestActiveRunsRealRedis(t *testing.T) {
	t.Parallel()
	for _, s := range activeStories {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			stamp := time.Now().UnixNano()
			id := func(name string) string { return fmt.Sprintf("test-active-%s-%s-%d", s.name, name, stamp) }
			ids := make([]string, len(s.runs))
			for i, r := range s.runs {
				ids[i] = id(r)
			}
			s.run(t, realRedis(t, ids...), id)
		})
	}
}

// Runs created before the index existed are listed by the backfill: the running and paused
// ones, not the ended ones, page by page; a walk that stopped goes on from its position.
func TestBackfillActiveRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	for i := range 5 {
		r := fmt.Sprintf("r%d", i)
		if err := b.l.CreateRun(ctx, Run{ID: r, Campaign: "spring-sale", Buckets: 1, Created: testNow.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.l.Pause(ctx, "r1", "operator"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.FinishExpansion(ctx, "r2", 0); err != nil {
		t.Fatal(err)
	}
	// As stored before the index: no run listed, r2 completed, r3 cancelled.
	b.rdb.HSet(ctx, rkeys.Run("r3"), "status", string(RunCancelled))
	b.rdb.Del(ctx, rkeys.ActiveRuns())
	if done, err := b.l.backfillActiveRuns(ctx, 2); err != nil || !done {
		t.Fatalf("backfill = %v, %v; want done", done, err)
	}
	ids, listed, err := b.l.ActiveRuns(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "listed runs", []string{"r0", "r1", "r4"}, ids)
	if listed != 3 {
		t.Fatalf("%d listed, want 3", listed)
	}
	if pos, _ := b.mr.Get(rkeys.ActiveRunsBackfill()); pos != "done" {
		t.Fatalf("position %q, want done", pos)
	}
	// Done is done: a run unlisted since stays out.
	b.rdb.Del(ctx, rkeys.ActiveRuns())
	if done, err := b.l.BackfillActiveRuns(ctx); err != nil || !done {
		t.Fatalf("second backfill = %v, %v", done, err)
	}
	if n, _ := b.rdb.ZCard(ctx, rkeys.ActiveRuns()).Result(); n != 0 {
		t.Fatalf("a finished backfill walked again: %d listed", n)
	}
	// A walk cut short after its first page goes on from the third run.
	b.rdb.Set(ctx, rkeys.ActiveRunsBackfill(), "2", 0)
	if done, err := b.l.backfillActiveRuns(ctx, 2); err != nil || !done {
		t.Fatalf("resumed backfill = %v, %v", done, err)
	}
	ids, _, _ = b.l.ActiveRuns(ctx, 0, 10)
	wantEqual(t, "listed by the resumed walk", []string{"r4"}, ids)
}
