package worker

import (
	"errors"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// gatewayFailedPrecondition is grpc-gateway's default body for FAILED_PRECONDITION (400,
// {"code": 9}), the form ERROR_TYPE_FAILED_PRECONDITION takes behind it (reference 1, 3.1).
var gatewayFailedPrecondition = &connectly.Error{StatusCode: 400, ErrorBody: connectly.ErrorBody{Code: "9", Message: "cannot send now"}}

// TestGatewayFailedPreconditionFallsBack: a session message refused with the gateway's
// FAILED_PRECONDITION is refused as outside the window: its fallback template goes under the
// same claim, once; without a fallback the entry fails with GRPC_FAILED_PRECONDITION after
// one request and is never retried. (It used to fail with no fallback tried.)
func TestGatewayFailedPreconditionFallsBack(t *testing.T) {
	for _, fallback := range []bool{true, false} {
		b, c, p := refusing(t, setup(t, testConfig()))
		c.SessionFunc = func(connectly.SessionMessage) (connectly.SendResult, error) {
			return connectly.SendResult{}, gatewayFailedPrecondition
		}
		if !fallback {
			p = sessionPayload(t, p, false)
		}
		err := handle(t, b, p)
		e := entryOf(t, b, p)
		if fallback {
			if err != nil || e.State != ledger.Accepted || e.Code != ledger.SentFallback || b.sender.CallsTo(p.To) != 1 {
				t.Errorf("with a fallback: err %v, entry %+v, %d template requests; want accepted(%s) after one template",
					err, e, b.sender.CallsTo(p.To), ledger.SentFallback)
			}
		} else if !errors.Is(err, asynq.SkipRetry) || e.State != ledger.Failed || e.Code != "GRPC_FAILED_PRECONDITION" || b.sender.CallsTo(p.To) != 0 {
			t.Errorf("without a fallback: err %v, entry %+v, %d template requests; want failed(GRPC_FAILED_PRECONDITION), no template",
				err, e, b.sender.CallsTo(p.To))
		}
		if c.Sessions() != 1 {
			t.Errorf("fallback %v: %d session requests, want 1", fallback, c.Sessions())
		}
	}
}
