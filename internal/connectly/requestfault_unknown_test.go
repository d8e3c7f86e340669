package connectly_test

import (
	"testing"

	"github.com/heraldmsg/herald/internal/connectly"
)

// A code the table does not know reads the safe way, not as a refusal of the request itself
// (Rule.RequestFault), whatever broad type comes with it: Connectly sends
// ERROR_TYPE_INVALID_REQUEST with its opt-out and window codes as with its content codes (the
// fake answers every code it has no entry for with it), so the type says nothing of whether
// the refusal may have come after an earlier attempt.
func TestAnUnknownCodeWithTheInvalidRequestTypeIsNoRequestFault(t *testing.T) {
	t.Parallel()
	tbl := defaultTable(t)
	for _, code := range []string{"ERROR_CODE_SOMETHING_NEW", "ERROR_CODE_CUSTOMER_BLOCKED_BUSINESS"} {
		d := tbl.Decide(apiErr(400, "ERROR_TYPE_INVALID_REQUEST", code))
		if d.Class != connectly.ClassPermanent {
			t.Fatalf("%s: class %s, want permanent", code, d.Class)
		}
		if d.RequestFault {
			t.Errorf("%s with ERROR_TYPE_INVALID_REQUEST: a request fault (key %s), want the safe reading", code, d.Key)
		}
	}
}
