package conversation_test

import (
	"context"
	"testing"
	"time"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
)

// One tap, one answer, while the message it answers waits for another attempt after an answer
// that left its fate unknown, on advBench (adversarial_once_test.go), each counted at the fake
// Connectly (conversation.MayBeOut; the worker records an at-least-once recipient whose last
// attempt may have gone out unknown, not failed).

// An at-least-once campaign whose template request Connectly answers 500 after sending it
// (reference 4.4: "500, 502, 503, 504 ... duplicate risk"): the worker records the entry
// queued for a retry (maybe sent), the customer already has the message and taps "Yes, show
// me" before the retry runs. The tap carries the message's callbackData: the customer has
// the message. The retry then sends the template again and is accepted. The customer tapped
// once and must get one answer.
func TestAdversarialTapWhileAmbiguousSendWaitsForRetry(t *testing.T) {
	t.Parallel()
	const ana = "+15550100002"
	b := newAdvBench(t, advOpts{policy: ledger.AtLeastOnce, attempts: 3, rules: []fakeconnectly.Rule{
		{Numbers: []string{ana}, Kind: fakeconnectly.KindTemplate, Status: 500, Sent: true, Times: 1},
	}})
	b.startRun(t, "adv-1", 0, ana)
	b.pump(t)
	b.settle(t)
	if e := b.entry(t, "adv-1", ana); e.State != ledger.Queued || b.templates(t, ana) != 1 {
		t.Fatalf("after the 500: entry %+v, %d templates at the fake; want queued for a retry, one sent", e, b.templates(t, ana))
	}
	b.tap(t, ana, fakeconnectly.ReplyButtonContext)
	b.drain(t)
	b.settle(t)
	if e := b.entry(t, "adv-1", ana); e.State == ledger.Queued || e.State == ledger.Submitting {
		t.Fatalf("the retry did not settle: %+v", e)
	}
	if got := b.answers(t, ana); len(got) != 1 {
		t.Fatalf("ana tapped once (on a message she had: its callbackData came back); answers the fake took: %s, want one", texts(got))
	}
}

// The same, when every attempt is answered 500 after the message went out: the entry ends
// failed with no message id (attempts used up) although the customer has the message, taps
// it, and even taps again later. Each tap names the message by its callbackData.
func TestAdversarialTapAfterAmbiguousAttemptsUsedUp(t *testing.T) {
	t.Parallel()
	const ana = "+15550100003"
	b := newAdvBench(t, advOpts{policy: ledger.AtLeastOnce, attempts: 2, rules: []fakeconnectly.Rule{
		{Numbers: []string{ana}, Kind: fakeconnectly.KindTemplate, Status: 500, Sent: true},
	}})
	b.startRun(t, "adv-1", 0, ana)
	b.drain(t)
	b.settle(t)
	// Two went, and the last answer left it open whether it did: unknown, never failed, so the
	// delivery events of what went settle it (delivered or read, with its message id).
	if e := b.entry(t, "adv-1", ana); !conversation.Reached(e) || e.MessageID == "" || b.templates(t, ana) != 2 {
		t.Fatalf("entry %+v, %d templates at the fake; want it settled by its delivery events, two sent", e, b.templates(t, ana))
	}
	b.tap(t, ana, fakeconnectly.ReplyButtonContext)
	b.pump(t)
	b.tap(t, ana, fakeconnectly.ReplyButtonLegacy)
	b.pump(t)
	if got := b.answers(t, ana); len(got) != 1 {
		t.Fatalf("ana tapped a message she had (its callbackData came back), twice; answers the fake took: %s, want one", texts(got))
	}
}

// The typed form of the first case: the customer answers the template by typing "how much"
// (no callbackData; the join reads the index of recent sends) while the entry waits for its
// retry after a 500 that sent it. No other run messaged them, so the run whose message they
// have is the only one their words can answer; the retry is then accepted.
func TestAdversarialTypedReplyWhileAmbiguousSendWaitsForRetry(t *testing.T) {
	t.Parallel()
	const ana = "+15550100004"
	b := newAdvBench(t, advOpts{policy: ledger.AtLeastOnce, attempts: 3, rules: []fakeconnectly.Rule{
		{Numbers: []string{ana}, Kind: fakeconnectly.KindTemplate, Status: 500, Sent: true, Times: 1},
	}})
	b.startRun(t, "adv-1", 0, ana)
	b.pump(t)
	b.settle(t)
	if e := b.entry(t, "adv-1", ana); e.State != ledger.Queued {
		t.Fatalf("after the 500: entry %+v, want queued for a retry", e)
	}
	b.inbound(t, ana, fakeconnectly.Reply{Text: "how much is it?", Shape: fakeconnectly.ReplyText})
	b.drain(t)
	b.settle(t)
	if got := b.answers(t, ana); len(got) != 1 {
		t.Fatalf("ana asked once; answers the fake took: %s, want one", texts(got))
	}
}

// At-most-once with unknown.resend_after: the template request is answered 500 after it
// went (unknown), the quiet period passes and the resend is queued; the customer taps the
// message they have before the resend runs.
func TestAdversarialTapWhileResendOfUnknownIsQueued(t *testing.T) {
	t.Parallel()
	const ana = "+15550100005"
	// Connectly sends no delivery event for it (reference 5.3: a call "may" be retried; none is
	// promised), so nothing settles the entry before its resend.
	b := newAdvBench(t, advOpts{policy: ledger.AtMostOnce, attempts: 3, dropStatuses: true, rules: []fakeconnectly.Rule{
		{Numbers: []string{ana}, Kind: fakeconnectly.KindTemplate, Status: 500, Sent: true, Times: 1},
	}})
	b.startRun(t, "adv-1", time.Millisecond, ana)
	b.pump(t)
	b.settle(t)
	if e := b.entry(t, "adv-1", ana); e.State != ledger.Unknown {
		t.Fatalf("after the 500: entry %+v, want unknown", e)
	}
	testredis.WaitUntil(t, 10*time.Second, "the resend queued", func() bool {
		n, err := b.w.SweepUnknown(context.Background())
		return err == nil && n == 1
	})
	if e := b.entry(t, "adv-1", ana); e.State != ledger.Queued {
		t.Fatalf("after the resend sweep: entry %+v, want queued", e)
	}
	b.tap(t, ana, fakeconnectly.ReplyButtonContext)
	b.drain(t)
	b.settle(t)
	if got := b.answers(t, ana); len(got) != 1 {
		t.Fatalf("ana tapped once (on a message she had); answers the fake took: %s, want one", texts(got))
	}
}
