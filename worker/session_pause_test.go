package worker

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// sessionPayloads turns ps into session sends with no fallback template.
func sessionPayloads(t *testing.T, ps []campaigns.SendPayload) {
	t.Helper()
	content, err := json.Marshal(connectly.SessionContent{Text: "Your order shipped"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range ps {
		ps[i].Kind, ps[i].Session, ps[i].Template = campaigns.KindSession, content, ""
	}
}

// TestPausedSessionRunHoldsAClosedWindow: a session send with no fallback whose recipient's
// window is closed is held while its run is paused, as every task of a paused run is (neither
// sent nor failed): the entry stays queued and the run paused, never skipped(window_closed)
// nor completed while paused. Once resumed, the same task skips it window_closed.
func TestPausedSessionRunHoldsAClosedWindow(t *testing.T) {
	b := setup(t, testConfig())
	ctx := context.Background()
	ps := seedRun(t, b, "run-session-paused", ledger.AtMostOnce, 2)
	sessionPayloads(t, ps)
	if ok, err := b.ledger.Pause(ctx, "run-session-paused", "checking the copy"); err != nil || !ok {
		t.Fatalf("Pause: %v %v", ok, err)
	}
	for _, p := range ps {
		held := wantAs[*HeldError](t, handle(t, b, p))
		if held.Reason != "checking the copy" {
			t.Errorf("held for %q, want the pause reason", held.Reason)
		}
		wantEntry(t, b, p, ledger.Entry{State: ledger.Queued})
	}
	if r := runOf(t, b, "run-session-paused"); r.Status != ledger.RunPaused {
		t.Fatalf("run %s while paused, want paused", r.Status)
	}
	if len(b.sender.Calls()) != 0 {
		t.Fatalf("%d requests while paused", len(b.sender.Calls()))
	}
	if _, err := b.ledger.Resume(ctx, "run-session-paused"); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := handle(t, b, p); err != nil {
			t.Fatal(err)
		}
		wantEntry(t, b, p, ledger.Entry{State: ledger.Skipped, Code: CodeWindowClosed})
	}
	if r := runOf(t, b, "run-session-paused"); r.Status != ledger.RunCompleted {
		t.Fatalf("run %s after its last skip, want completed", r.Status)
	}
}

// TestCancelledSessionRunSkipsAClosedWindowCancelled: a session send of a cancelled run whose
// entry the cancel has not swept yet is skipped(cancelled), as its claim would, not
// skipped(window_closed).
func TestCancelledSessionRunSkipsAClosedWindowCancelled(t *testing.T) {
	b := setup(t, testConfig())
	ps := seedRun(t, b, "run-session-cancelled", ledger.AtMostOnce, 1)
	sessionPayloads(t, ps)
	// The run reads cancelled; its sweep has not reached the entry yet.
	b.mr.HSet(rkeys.Run("run-session-cancelled"), "status", string(ledger.RunCancelled))
	if err := handle(t, b, ps[0]); err != nil {
		t.Fatal(err)
	}
	wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Skipped, Code: ledger.SkipCancelled})
}

// TestPausedFollowupRunHoldsAClosedWindow: a session follow-up (on_reply) whose own follow-up
// run is paused (a run-stopping answer paused it) is held when the customer's window is
// closed, not skipped(window_closed).
func TestPausedFollowupRunHoldsAClosedWindow(t *testing.T) {
	b := setup(t, testConfig())
	ctx := context.Background()
	ps := seedRun(t, b, "run-session-fu", ledger.AtMostOnce, 1)
	fp := followupOf(t, b, ps[0], "yes", "")
	fps := []campaigns.SendPayload{fp}
	sessionPayloads(t, fps)
	fp = fps[0]
	if ok, err := b.ledger.Pause(ctx, fp.Run, "template paused"); err != nil || !ok {
		t.Fatalf("Pause: %v %v", ok, err)
	}
	wantAs[*HeldError](t, handle(t, b, fp))
	wantEntry(t, b, fp, ledger.Entry{State: ledger.Queued})
	if r := runOf(t, b, fp.Run); r.Status != ledger.RunPaused {
		t.Fatalf("follow-up run %s, want paused", r.Status)
	}
}
