package conversation_test

import (
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// A delivery event of an unknown recipient's first message that arrives after the resend
// sweep queued its one resend (ledger.ReleaseForResend: unknown -> queued, history "resend")
// but before the resend's task claims it stops the resend. The event can only be about the
// earlier request (the resend has not gone), so delivery.lua settles the entry as it settles an
// unknown one, the resend withdrawn first, and the resend's task finds it done. Before, the
// event was parked as "early" for a queued entry, the resend went, recorded its own message id,
// and the parked event, retried, was "another message" and dropped: the customer got the
// message twice although Herald held proof that the first had reached them. The resend task
// waits in the run's queue at the sender's rate, so the window was as long as the backlog.
//
// Shown here on the late fallback (RUN~_fallback) and on a plain campaign's own recipient: the
// path is the resend's, not the late fallback's.

// Late fallback: its request answered 503 after the fake took it (unknown), its events held
// until the sweep queued the resend, then let through before the resend's task runs.
func TestAdversarialLateResendEventsAfterTheRelease(t *testing.T) {
	t.Parallel()
	const ana = "+15550310031"
	b := newLateResendBench(t, lateResendOpts{rules: []fakeconnectly.Rule{
		{Numbers: []string{ana}, Kind: fakeconnectly.KindTemplate, Status: 503, Sent: true, Times: 1}}})
	b.startResendSessionRun(t, "late-1", ana)
	b.sessionFailsLate(t, "late-1", ana)
	b.fallbackGoes(t, "late-1", ana, ledger.Unknown)
	held := true
	defer func() {
		if held {
			b.release()
		}
	}()
	if n := b.sweep(t, lateResendAfter+time.Minute); n != 1 {
		t.Fatalf("resend sweep after the quiet period: %d resent, want 1", n)
	}
	held = false
	b.release()
	b.settle(t)
	e, _ := b.lateFallback(t, "late-1", ana)
	b.finish(t)
	// One template: the entry was settled by the first template's events, not left queued
	// for its resend.
	b.expectTemplates(t, ana, 1, 1)
	if t.Failed() {
		t.Logf("late fallback entry once the first template's events had come: %+v", e)
	}
}

// A plain at-most-once template campaign's recipient, the same way.
func TestAdversarialResendEventsAfterTheRelease(t *testing.T) {
	t.Parallel()
	const ana = "+15550310032"
	b := newLateResendBench(t, lateResendOpts{rules: []fakeconnectly.Rule{
		{Numbers: []string{ana}, Kind: fakeconnectly.KindTemplate, Status: 503, Sent: true, Times: 1}}})
	b.startRun(t, "adv-1", lateResendAfter, ana)
	b.hold()
	held := true
	defer func() {
		if held {
			b.release()
		}
	}()
	b.pump(t)
	if e := b.entry(t, "adv-1", ana); e.State != ledger.Unknown {
		t.Fatalf("after the 503: entry %+v, want unknown", e)
	}
	if n := b.sweep(t, lateResendAfter+time.Minute); n != 1 {
		t.Fatalf("resend sweep after the quiet period: %d resent, want 1", n)
	}
	held = false
	b.release()
	b.settle(t)
	e := b.entry(t, "adv-1", ana)
	b.finish(t)
	if e.State == ledger.Queued || e.State == ledger.Unknown || e.MessageID == "" {
		t.Errorf("entry %+v: want it settled by the first message's events, with its id", e)
	}
	if _, tp := b.taken(t, ana); tp != 1 {
		t.Errorf("the fake took %d templates, want 1 (the first one's events came before the resend went; entry then %+v): %s",
			tp, e, b.tally(t, ana))
	}
}
