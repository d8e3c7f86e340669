package worker

import (
	"context"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// An at-least-once session message the fake took and answered with a 500 is retried; by the
// retry the customer's window has closed, so Connectly refuses the session message as outside
// it and its fallback template, a different request, goes under the same claim and is refused
// for its own content: its parameters, or a code the table marks a refusal of the request
// itself (its header attachment URL unparseable). That refusal says nothing of the session
// message, which the fake took: the recipient may hold it and must not be failed ("never
// sent").
func TestARefusalOfTheFallbackAfterATakenSessionMessageIsNotAFailure(t *testing.T) {
	for _, code := range []string{"ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID", "ERROR_CODE_MESSAGE_ATTACHMENT_INVALID"} {
		t.Run(code, func(t *testing.T) {
			const business, key, runID = "biz-retry-refused", "key-0123456789abcdef", "run-retry-refused"
			fake, b := withFake(t, business, key)
			p := sessionPayload(t, seedRun(t, b, runID, ledger.AtLeastOnce, 1)[0], true)
			openWindow(t, b, business, p.To)
			if err := fake.OpenWindow(p.To, time.Time{}); err != nil {
				t.Fatal(err)
			}
			fake.SetRules([]fakeconnectly.Rule{
				{Numbers: []string{p.To}, Kind: fakeconnectly.KindSession, Status: 500, Sent: true, Times: 1},
				{Numbers: []string{p.To}, Kind: fakeconnectly.KindTemplate, Code: code},
			})
			_ = handle(t, b, p) // the 500: retried
			if e := entryOf(t, b, p); e.State != ledger.Queued {
				t.Fatalf("after the 500: %+v, want queued for a retry", e)
			}
			// The window closes before the retry (Herald's record still says open).
			fake.ClearWindows()
			if err := fake.OpenWindow(p.To, time.Now().Add(-25*time.Hour)); err != nil {
				t.Fatal(err)
			}
			_ = handle(t, b, p) // the session refused, then its fallback refused: the task ends
			var kinds []string
			for _, r := range fake.Received() {
				kinds = append(kinds, r.Kind+":"+r.ErrorCode)
			}
			if took := fake.AcceptedCount(p.To); took != 1 || len(kinds) != 3 {
				t.Fatalf("requests %v, %d taken; want the session taken (500), the session refused, the fallback refused", kinds, took)
			}
			if e := entryOf(t, b, p); e.State != ledger.Unknown {
				t.Errorf("%+v: the fake took the session message, and the recipient is not unknown (requests %v)", e, kinds)
			}
			if v, err := b.ledger.Verify(context.Background(), runID); err != nil || len(v.Mismatches) > 0 {
				t.Errorf("Verify: %+v, %v", v.Mismatches, err)
			}
		})
	}
}
