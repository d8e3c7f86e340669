package webhooks

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
)

// A delivery failure whose code stops the run (Meta paused the template for low quality,
// 132015) pauses the run, as the same answer to a send does: the run's other messages would
// fail the same way. A failure of another class leaves the run running. Found by its
// callbackData, or by campaign name and customer when the echo is missing.
func TestDeliveryFailureThatStopsTheRunPausesIt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, error string
		callback    bool
		paused      bool
	}{
		{"TemplatePausedByCallback", `{"code":132015,"type":"ERROR_TYPE_UNSPECIFIED"}`, true, true},
		{"TemplatePausedByCampaign", `{"code":"132015","type":"ERROR_TYPE_UNSPECIFIED"}`, false, true},
		{"Undeliverable", `{"code":131026,"type":"ERROR_TYPE_UNSPECIFIED"}`, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{})
			const run, to = "spring-20260301T120000Z", "+15550000001"
			ids := []string{ulidAt(testNow.Add(-time.Second), 1), ulidAt(testNow.Add(-time.Second), 2)}
			seedAccepted(t, b, run, []string{to, "+15550000002"}, ids)
			tail := `,"metadata":{"campaignName":"spring"}`
			if tc.callback {
				tail = `,"callbackData":` + string(ledger.AddressIn(run, to, ledger.BucketsFor(2)).Callback())
			}
			body := fmt.Appendf(nil, `{"topic":"delivery_status","timestamp":"%d","recipient":{"id":%q},`+
				`"statusUpdate":{"id":%q,"status":"delivery_failed","error":%s}%s}`, testNow.Unix(), to, ids[0], tc.error, tail)
			for range 2 { // a copy of the event pauses nothing more
				if w := post(t, b, body, testSecret); w.Code != http.StatusOK {
					t.Fatalf("%d %s", w.Code, w.Body)
				}
			}
			r, err := b.l.GetRun(t.Context(), run)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Status == ledger.RunPaused; got != tc.paused {
				t.Fatalf("run %s (%q), want paused %v", r.Status, r.PauseReason, tc.paused)
			}
			if tc.paused && !strings.Contains(r.PauseReason, "delivery failed: 132015") {
				t.Errorf("pause reason %q, want the code", r.PauseReason)
			}
		})
	}
}
