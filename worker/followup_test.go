package worker

import (
	"context"
	"errors"
	"strings"
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
	b.worker.OnSending(func(_ context.Context, p campaigns.SendPayload) error {
		accepted = append(accepted, p.Run+" "+p.To)
		return nil
	})
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

// stoppedFollowups sends run's n recipients (all of them when sendAll, else the first only)
// and makes each sent one's follow-up of rule "yes"; the first follow-up gets a run-stopping
// answer, which pauses the follow-up run, and the provider then takes sends again.
func stoppedFollowups(t *testing.T, b *testBundle, run string, sendAll bool) []campaigns.SendPayload {
	t.Helper()
	ps := seedRun(t, b, run, ledger.AtMostOnce, 2)
	if !sendAll {
		ps = ps[:1]
	}
	var fs []campaigns.SendPayload
	for _, p := range ps {
		if err := handle(t, b, p); err != nil {
			t.Fatal(err)
		}
		fs = append(fs, followupOf(t, b, p, "yes", "fu_template"))
	}
	b.sender.SendFunc = answer(apiError(400, "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND"))
	wantAs[*HeldError](t, handle(t, b, fs[0]))
	b.sender.SendFunc = nil // the template is put right
	return fs
}

// TestStoppedFollowupResumesWithItsRun: a run-stopping answer to a follow-up pauses the
// follow-up run (RUN~RULE), which is not in the run list and whose parent has long completed.
// The pause is listed with the parent (ledger.PausedFollowups: run show, herald_run_paused),
// and resuming the parent resumes it: the held follow-ups then go.
func TestStoppedFollowupResumesWithItsRun(t *testing.T) {
	b := setup(t, testConfig())
	ctx := context.Background()
	fs := stoppedFollowups(t, b, "r1", true)
	fa, fb := fs[0], fs[1]
	wantAs[*HeldError](t, handle(t, b, fb))
	if st := runOf(t, b, "r1").Status; st != ledger.RunCompleted {
		t.Fatalf("parent run %s, want completed", st)
	}
	paused, err := b.ledger.PausedFollowups(ctx, "r1")
	if err != nil || len(paused) != 1 || paused[0].ID != fa.Run || !strings.Contains(paused[0].PauseReason, "TEMPLATE_NOT_FOUND") {
		t.Fatalf("paused follow-ups of r1: %+v (%v), want %s paused for the code", paused, err, fa.Run)
	}
	ok, err := b.ledger.Resume(ctx, "r1")
	if err != nil || !ok {
		t.Fatalf("resume of the completed parent: %v, %v; want its follow-ups resumed", ok, err)
	}
	calls := len(b.sender.Calls())
	for _, f := range []campaigns.SendPayload{fa, fb} {
		if err := handle(t, b, f); err != nil {
			t.Fatalf("follow-up after the resume: %v", err)
		}
	}
	if n := len(b.sender.Calls()) - calls; n != 2 {
		t.Fatalf("%d follow-ups sent after the resume, want 2", n)
	}
	if paused, err := b.ledger.PausedFollowups(ctx, ""); err != nil || len(paused) != 0 {
		t.Fatalf("paused follow-ups after the resume: %+v (%v), want none", paused, err)
	}
}

// TestCancelledRunCancelsItsPausedFollowups: cancelling a run (here paused) also cancels its
// paused follow-up runs, whose follow-ups the worker skips anyway: none stays listed as
// paused (run show, herald_run_paused) for a run that is over.
func TestCancelledRunCancelsItsPausedFollowups(t *testing.T) {
	b := setup(t, testConfig())
	ctx := context.Background()
	f := stoppedFollowups(t, b, "r2", false)[0]
	if ok, _, err := b.ledger.Cancel(ctx, "r2", "cancelled by test"); err != nil || !ok {
		t.Fatalf("cancel r2: %v, %v", ok, err)
	}
	if st := runOf(t, b, f.Run).Status; st != ledger.RunCancelled {
		t.Fatalf("follow-up run %s after its run's cancel, want cancelled", st)
	}
	if paused, err := b.ledger.PausedFollowups(ctx, ""); err != nil || len(paused) != 0 {
		t.Fatalf("paused follow-ups after the cancel: %+v (%v), want none", paused, err)
	}
}

// TestHeldFollowupListsItsRunAgain: a follow-up run paused but no longer listed (a crash
// between a burst's pause and its listing, a race with a resume) is listed again by the
// worker as it holds the run's next follow-up, so the resume of the run it follows finds it.
func TestHeldFollowupListsItsRunAgain(t *testing.T) {
	b := setup(t, testConfig())
	ctx := context.Background()
	fs := stoppedFollowups(t, b, "r3", true)
	fa, fb := fs[0], fs[1]
	if err := b.rdb.ZRem(ctx, rkeys.FollowupsPaused(), fa.Run).Err(); err != nil {
		t.Fatal(err)
	}
	if paused, err := b.ledger.PausedFollowups(ctx, "r3"); err != nil || len(paused) != 0 {
		t.Fatalf("paused follow-ups after the listing was lost: %+v (%v), want none", paused, err)
	}
	wantAs[*HeldError](t, handle(t, b, fb))
	if paused, err := b.ledger.PausedFollowups(ctx, "r3"); err != nil || len(paused) != 1 || paused[0].ID != fa.Run {
		t.Fatalf("paused follow-ups after a held follow-up: %+v (%v), want %s", paused, err, fa.Run)
	}
	if ok, err := b.ledger.Resume(ctx, "r3"); err != nil || !ok {
		t.Fatalf("resume r3: %v, %v; want its follow-ups resumed", ok, err)
	}
	if err := handle(t, b, fb); err != nil {
		t.Fatalf("follow-up after the resume: %v", err)
	}
}

// A send that OnSending could not record for replies makes no request: its claim goes back
// unused (no attempt spent), the task waits as for Redis unreachable, and its next run, with
// the record made, sends it once.
func TestUnrecordedSendWaits(t *testing.T) {
	b := setup(t, testConfig())
	ps := seedRun(t, b, "run-rec", ledger.AtMostOnce, 1)
	fail := true
	b.worker.OnSending(func(context.Context, campaigns.SendPayload) error {
		if fail {
			return errors.New("i/o timeout")
		}
		return nil
	})
	wantAs[*ThrottledError](t, handle(t, b, ps[0]))
	e := entryOf(t, b, ps[0])
	wantFollowup(t, "state after a failed record", ledger.Queued, e.State)
	wantFollowup(t, "code after a failed record", CodeSendUnrecorded, e.Code)
	wantFollowup(t, "attempts after a failed record", 0, e.Attempts)
	wantFollowup(t, "requests after a failed record", 0, b.sender.CallsTo(ps[0].To))
	fail = false
	if err := handle(t, b, ps[0]); err != nil {
		t.Fatal(err)
	}
	wantFollowup(t, "state", ledger.Accepted, entryOf(t, b, ps[0]).State)
	wantFollowup(t, "requests", 1, b.sender.CallsTo(ps[0].To))
}
