package conversation_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
)

// Ways one tap gets no answer or two, on advBench (adversarial_once_test.go), each counted at
// the fake Connectly. These fail until the defect each describes is fixed.

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
	// Herald records it failed, without a message id (ERROR_CODE_UNSPECIFIED), though two went.
	if e := b.entry(t, "adv-1", ana); e.State == ledger.Queued || e.State == ledger.Submitting || b.templates(t, ana) != 2 {
		t.Fatalf("entry %+v, %d templates at the fake; want it settled, two sent", e, b.templates(t, ana))
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

// The follow-up's own request answered 500 after Connectly sent it, in an at-least-once
// campaign: the follow-up run inherits the parent's policy, so the worker retries the
// answer (maybe sent) and it goes a second time. The customer tapped once.
func TestAdversarialFollowupAmbiguousSendAtLeastOnce(t *testing.T) {
	t.Parallel()
	const ana = "+15550100006"
	b := newAdvBench(t, advOpts{policy: ledger.AtLeastOnce, attempts: 3, rules: []fakeconnectly.Rule{
		{Numbers: []string{ana}, Kind: fakeconnectly.KindSession, Status: 500, Sent: true, Times: 1},
	}})
	b.startRun(t, "adv-1", 0, ana)
	b.pump(t)
	b.settle(t)
	b.tap(t, ana, fakeconnectly.ReplyButtonContext)
	b.drain(t)
	b.settle(t)
	if got := b.answers(t, ana); len(got) != 1 {
		t.Fatalf("ana tapped once; answers the fake took: %s, want one", texts(got))
	}
}

// One tap on run adv-1's message, delivered in two of the documented shapes (reference 5.4):
// the README's message {id, isButtonResponse} with the message's callbackData, and the public
// client code's top-level buttonResponse {text, id} with no message object and no
// callbackData, both stamped with the tap's second. adv-2 of the same campaign messaged the
// customer after adv-1 and before the tap. The customer tapped once.
func TestAdversarialOneTapTwoShapesAfterANewerRun(t *testing.T) {
	t.Parallel()
	const ana = "+15550100007"
	b := newAdvBench(t, advOpts{policy: ledger.AtMostOnce, attempts: 3})
	b.startRun(t, "adv-1", 0, ana)
	b.pump(t)
	b.startRun(t, "adv-2", 0, ana)
	b.pump(t)
	b.settle(t)
	if e1, e2 := b.entry(t, "adv-1", ana), b.entry(t, "adv-2", ana); e1.MessageID == "" || e2.MessageID == "" {
		t.Fatalf("entries %+v, %+v; want both sent", e1, e2)
	}
	at := time.Now().Add(time.Second).Unix()
	if err := b.fake.OpenWindow(ana, time.Time{}); err != nil {
		t.Fatal(err)
	}
	cb := ledger.AddressIn("adv-1", ana, 1).Callback()
	withMessage := fmt.Appendf(nil, `{"timestamp":"%d","sender":{"id":%q,"channelType":"whatsapp"},"recipient":{"id":"+14155550100","channelType":"whatsapp"},`+
		`"message":{"id":"wamid.tap-1","text":"Yes, show me","isButtonResponse":true},"callbackData":%s}`, at, ana, cb)
	bare := fmt.Appendf(nil, `{"timestamp":"%d","sender":{"id":%q,"channelType":"whatsapp"},"recipient":{"id":"+14155550100","channelType":"whatsapp"},`+
		`"buttonResponse":{"text":"Yes, show me","id":"YES"}}`, at, ana)
	for _, body := range [][]byte{withMessage, bare} {
		if code := b.post(t, body); code != 200 {
			t.Fatalf("webhook answered %d", code)
		}
	}
	b.drain(t)
	b.settle(t)
	if got := b.answers(t, ana); len(got) != 1 {
		t.Fatalf("ana tapped once; answers the fake took: %s, want one", texts(got))
	}
}
