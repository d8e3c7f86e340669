package conversation_test

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// Late fallbacks against earlier attempts and events out of order (adversarial_late_test.go's
// bench): no second template after a fallback reached the customer, none after the session
// message was read, and, under at-least-once, what two copies of the message lead to.

// 8a. At-least-once: the first session request is answered 500 after the fake took it (a
// copy that will fail as outside the window); by the retry Herald's record says the window
// closed, so the gate sends the fallback template instead, and that request too is answered
// 500 after the fake took it: the entry ends unknown. The template reached the customer (it is
// read); the session copy's failure then settles the entry. The customer already has the
// fallback: no second template.
func TestAdversarialLateGateFallbackAfterAnAmbiguousSession(t *testing.T) {
	t.Parallel()
	const ana = "+15550300021"
	b := newLateAdvBench(t, lateAdvOpts{policy: ledger.AtLeastOnce, attempts: 2, rules: []fakeconnectly.Rule{
		{Numbers: []string{ana}, Kind: fakeconnectly.KindSession, Status: 500, Sent: true},
		{Numbers: []string{ana}, Kind: fakeconnectly.KindTemplate, Status: 500, Sent: true, Times: 1},
	}})
	b.startSessionRun(t, "late-1", false, ana)
	b.pump(t)
	b.settle(t)
	if e := b.entry(t, "late-1", ana); e.State != ledger.Queued {
		t.Fatalf("after the 500: entry %+v, want queued for a retry", e)
	}
	b.closeHerald(t, ana)
	b.secondAttemptSlowHooks(t, ana)
	b.finish(t)
	b.expect(t, ana, 1, 1)
}

// 8c. At-least-once, two copies of the session message: the first, taken outside the window,
// fails late; the customer writes before the retry, which is then delivered (both answered
// 500 after the fake took them, so the entry ends unknown). The first copy's failure settles
// the entry and records its message id, so the second copy's events read as another
// message's, and the fallback goes: the customer gets the session message and the template.
// That is at-least-once's bargain (a message may arrive twice, none is lost): with both copies
// failing (TestAdversarialLateBothCopiesOfARetriedSessionFail) the fallback is what reaches
// them. At-most-once sends no second copy of an ambiguous request. Never more than one
// fallback.
func TestAdversarialLateOneCopyDeliveredOneFailed(t *testing.T) {
	t.Parallel()
	const ana = "+15550300023"
	b := newLateAdvBench(t, lateAdvOpts{policy: ledger.AtLeastOnce, attempts: 2, rules: []fakeconnectly.Rule{
		{Numbers: []string{ana}, Kind: fakeconnectly.KindSession, Status: 500, Sent: true},
	}})
	b.startSessionRun(t, "late-1", false, ana)
	b.pump(t)
	b.settle(t)
	if err := b.fake.OpenWindow(ana, time.Time{}); err != nil {
		t.Fatal(err)
	}
	b.secondAttemptSlowHooks(t, ana)
	b.finish(t)
	c, err := b.fake.Conversation(ana)
	if err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for _, m := range c.Messages {
		if m.Kind == fakeconnectly.KindSession && m.WindowFailure == "" {
			delivered++
		}
	}
	if delivered != 1 {
		t.Fatalf("%d session messages reached ana, want the retry's: %s", delivered, b.tally(t, ana))
	}
	b.expect(t, ana, 2, 1)
}

// The session message's read (or delivered) event comes before its failure, but while the
// worker is still waiting for Connectly's answer (the fake takes the message and its events go
// at once: reference 5.1's order is not guaranteed, and an event may beat the answer), so the
// receiver parks it; the failure comes once the send is recorded and applies at once. The
// customer read the message: no fallback. The read is replayed from the parked set on the
// receiver's next loop, after the failure wrote the fallback's task; the worker reads the
// message's entry again before sending the fallback and skips it (the receiver also makes the
// task due LateFallbackAfter later, so the read applies first; this bench makes it due at once).
func TestAdversarialLateReadParkedBeforeTheFailure(t *testing.T) {
	t.Parallel()
	const ana = "+15550300091"
	b := newLateAdvBench(t, lateAdvOpts{serial: true,
		rules: []fakeconnectly.Rule{{Numbers: []string{ana}, Kind: fakeconnectly.KindSession, Latency: 2 * time.Second, Sent: true}},
		fates: []fakeconnectly.Fate{{Numbers: []string{ana}, Sequence: []string{fakeconnectly.HookRead, fakeconnectly.HookDeliveryFailed},
			Code: fakeconnectly.CodeOutsideWindow}}})
	if err := b.fake.OpenWindow(ana, time.Time{}); err != nil {
		t.Fatal(err)
	}
	b.startSessionRun(t, "late-1", false, ana)
	infos, err := b.insp.ListPendingTasks(b.runs["late-1"].Queue)
	if err != nil || len(infos) != 1 {
		t.Fatalf("session tasks: %d, %v; want one", len(infos), err)
	}
	releaseFailures := b.sendWithTheReadParked(t, asynq.NewTask(infos[0].Type, infos[0].Payload))
	if err := b.insp.DeleteTask(b.runs["late-1"].Queue, infos[0].ID); err != nil {
		t.Fatal(err)
	}
	if e := b.entry(t, "late-1", ana); e.State != ledger.Accepted {
		t.Fatalf("entry %+v, want accepted with the read still parked", e)
	}
	if err := b.fake.SetFates(nil); err != nil {
		t.Fatal(err)
	}
	releaseFailures()
	b.finish(t)
	if e := b.entry(t, "late-1", ana); e.State != ledger.Read {
		t.Errorf("entry %+v, want read", e)
	}
	b.expect(t, ana, 1, 0)
}
