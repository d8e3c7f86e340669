package worker

import (
	"context"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// A follow-up goes through the send handler like any send, once; the run it follows steers
// it: paused holds it, cancelled skips it. Claimed sends reach the OnSending function.
func TestFollowupSends(t *testing.T) {
	b := setup(t, testConfig())
	ctx := context.Background()
	ps := seedRun(t, b, "run-fu", ledger.AtMostOnce, 3)
	var accepted []string
	b.worker.OnSending(func(_ context.Context, p campaigns.SendPayload) { accepted = append(accepted, p.Run+" "+p.To) })
	followup := func(p campaigns.SendPayload) campaigns.SendPayload {
		t.Helper()
		return followupOf(t, b, p, "yes", "spring_thanks")
	}
	sent := followup(ps[0])
	for range 2 {
		if err := handle(t, b, sent); err != nil {
			t.Fatal(err)
		}
	}
	wantFollowup(t, "follow-up state", ledger.Accepted, entryOf(t, b, sent).State)
	wantFollowup(t, "requests to the recipient", 1, b.sender.CallsTo(sent.To))
	wantFollowup(t, "accepted calls", 1, len(accepted))
	wantFollowup(t, "accepted", sent.Run+" "+sent.To, accepted[0])

	held := followup(ps[1])
	if err := b.rdb.HSet(ctx, rkeys.Run("run-fu"), "status", string(ledger.RunPaused), "pause_reason", "by hand").Err(); err != nil {
		t.Fatal(err)
	}
	if e := wantAs[*HeldError](t, handle(t, b, held)); e.Reason != "by hand" {
		t.Fatalf("held for %q, want the run's pause reason", e.Reason)
	}
	wantFollowup(t, "held state", ledger.Queued, entryOf(t, b, held).State)

	if err := b.rdb.HSet(ctx, rkeys.Run("run-fu"), "status", string(ledger.RunCancelled)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := handle(t, b, held); err != nil {
		t.Fatal(err)
	}
	e := entryOf(t, b, held)
	wantFollowup(t, "cancelled state", ledger.Skipped, e.State)
	wantFollowup(t, "cancelled code", "cancelled", e.Code)
	wantFollowup(t, "requests to the held recipient", 0, b.sender.CallsTo(held.To))
}

func wantFollowup[T comparable](tb testing.TB, what string, want, got T) {
	tb.Helper()
	if want != got {
		tb.Fatalf("%s: got %v, want %v", what, got, want)
	}
}
