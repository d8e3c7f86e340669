package worker

import (
	"context"
	"testing"

	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// An at-least-once recipient whose first attempt's worker died mid-request (its claim left
// behind: the message may have gone, README's "maybe sent ... sent again") is sent again, and
// that request is refused because the customer opted out, which may have come after the first
// message: as after a 5xx, the recipient may hold the message and must not be failed.
func TestAnOptOutAfterADeadWorkersClaimIsNotAFailure(t *testing.T) {
	t.Parallel()
	const runID = "spring-sale/refused-after-dead-worker"
	fake, b := withFakeOf(t, fakeconnectly.Config{}, shapesBusiness, shapesKey)
	p := bodyParams(seedRun(t, b, runID, ledger.AtLeastOnce, 1))[0]
	// The first attempt claims, makes its request, and its worker dies before any outcome.
	if c, err := b.ledger.Claim(context.Background(), p.Address(), ledger.AtLeastOnce); err != nil || c.Verdict != ledger.VerdictSend {
		t.Fatalf("first claim: %+v, %v", c, err)
	}
	fake.SetRules([]fakeconnectly.Rule{{Numbers: []string{p.To}, Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"}})
	_ = handle(t, b, p) // the redelivered task: sent again, refused
	if n := len(fake.Received()); n != 1 {
		t.Fatalf("%d requests, want the one of the second attempt", n)
	}
	if e := entryOf(t, b, p); e.State != ledger.Unknown {
		t.Errorf("%+v: an earlier attempt may have sent the message, and the recipient is not unknown", e)
	}
	if !suppressedOf(t, b, p.To) {
		t.Error("opted out and not suppressed")
	}
}
