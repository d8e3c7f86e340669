package webhooks

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
)

// A delivery failure is recorded under the key a send's error with the same body would be
// (reference 4.1: one shape for both): the code, else the type, the catch-all values last. A
// body with no code of its own writes ERROR_CODE_UNSPECIFIED, "" or no code beside its type,
// and all three record the type, with its class.
func TestDeliveryFailureCodeSkipsTheCatchAll(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, error, code, class string
	}{
		{"CatchAllCodeSpecificType", `{"code":"ERROR_CODE_UNSPECIFIED","type":"ERROR_TYPE_INVALID_REQUEST","details":{}}`, "ERROR_TYPE_INVALID_REQUEST", "permanent"},
		{"EmptyCodeSpecificType", `{"code":"","type":"ERROR_TYPE_INVALID_REQUEST"}`, "ERROR_TYPE_INVALID_REQUEST", "permanent"},
		{"NoCodeSpecificType", `{"type":"ERROR_TYPE_INVALID_REQUEST","details":null}`, "ERROR_TYPE_INVALID_REQUEST", "permanent"},
		{"SpecificCodeCatchAllType", `{"code":"ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID","type":"ERROR_TYPE_UNSPECIFIED"}`, "ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID", "permanent"},
		{"NumericCodeCatchAllType", `{"code":131050,"type":"ERROR_TYPE_UNSPECIFIED"}`, "131050", "permanent"},
		{"BothCatchAll", `{"code":"ERROR_CODE_UNSPECIFIED","type":"ERROR_TYPE_UNSPECIFIED"}`, "ERROR_CODE_UNSPECIFIED", "transient"},
		{"CatchAllTypeOnly", `{"type":"ERROR_TYPE_UNSPECIFIED"}`, "ERROR_TYPE_UNSPECIFIED", "transient"},
		{"EmptyError", `{}`, "DELIVERY_FAILED", "permanent"},
		{"NullError", `null`, "DELIVERY_FAILED", "permanent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{})
			const run, to = "run-fc", "+15550000001"
			id := ulidAt(testNow.Add(-time.Second), 1)
			buckets := seedAccepted(t, b, run, []string{to}, []string{id})
			body := fmt.Appendf(nil, `{"topic":"delivery_status","timestamp":"%d","recipient":{"id":%q},`+
				`"statusUpdate":{"id":%q,"status":"delivery_failed","error":%s},"callbackData":%s}`,
				testNow.Unix(), to, id, tc.error, ledger.AddressIn(run, to, 1).Callback())
			if w := post(t, b, body, testSecret); w.Code != http.StatusOK {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if e := entryState(t, b, run, to, buckets[to]); e.State != ledger.Failed || e.Code != tc.code {
				t.Errorf("entry %+v, want failed with %s", e, tc.code)
			}
			d, err := b.l.DeliveryStats(t.Context(), run)
			if err != nil || d.FailedByCode[tc.code] != 1 || d.FailedByClass[tc.class] != 1 {
				t.Errorf("statistics %+v (%v), want one %s failure of class %s", d, err, tc.code, tc.class)
			}
		})
	}
}
