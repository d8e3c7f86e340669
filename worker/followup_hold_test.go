package worker

import (
	"context"
	"testing"

	"github.com/heraldmsg/herald/internal/ledger"
)

// TestFollowupsOfACompletedRunPausedAndCancelled: once the run a follow-up follows has
// completed, an operator's pause of its follow-ups holds them (with the pause's reason), a
// resume lets them go, and a cancel skips them cancelled; the run stays completed throughout.
func TestFollowupsOfACompletedRunPausedAndCancelled(t *testing.T) {
	b := setup(t, testConfig())
	ctx := context.Background()
	ps := seedRun(t, b, "run-fu-done", ledger.AtMostOnce, 2)
	for _, p := range ps {
		if err := handle(t, b, p); err != nil {
			t.Fatal(err)
		}
	}
	if r := runOf(t, b, "run-fu-done"); r.Status != ledger.RunCompleted {
		t.Fatalf("parent %s, want completed", r.Status)
	}
	held, sent := followupOf(t, b, ps[0], "yes", "spring_sale"), followupOf(t, b, ps[1], "yes", "spring_sale")
	if ok, _, err := b.ledger.PauseFollowups(ctx, "run-fu-done", "paused by ana: wrong link"); err != nil || !ok {
		t.Fatalf("PauseFollowups: %v %v", ok, err)
	}
	h := wantAs[*HeldError](t, handle(t, b, held))
	if h.Reason != "follow-ups paused by ana: wrong link" {
		t.Errorf("held for %q, want the follow-ups' pause reason", h.Reason)
	}
	wantEntry(t, b, held, ledger.Entry{State: ledger.Queued})
	if ok, _, err := b.ledger.ResumeFollowups(ctx, "run-fu-done"); err != nil || !ok {
		t.Fatalf("ResumeFollowups: %v %v", ok, err)
	}
	if err := handle(t, b, held); err != nil {
		t.Fatal(err)
	}
	if e := entryOf(t, b, held); e.State != ledger.Accepted {
		t.Fatalf("follow-up after resume: %+v, want accepted", e)
	}
	if ok, _, err := b.ledger.CancelFollowups(ctx, "run-fu-done", "cancelled by ana"); err != nil || !ok {
		t.Fatalf("CancelFollowups: %v %v", ok, err)
	}
	if err := handle(t, b, sent); err != nil {
		t.Fatal(err)
	}
	wantEntry(t, b, sent, ledger.Entry{State: ledger.Skipped, Code: ledger.SkipCancelled})
	if r := runOf(t, b, "run-fu-done"); r.Status != ledger.RunCompleted {
		t.Fatalf("parent %s, want still completed", r.Status)
	}
}
