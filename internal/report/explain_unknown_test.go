package report_test

import (
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
)

// An unknown recipient's explanation says why Herald cannot tell whether the message arrived,
// from the last event of its history; any other recipient's says nothing of it.
func TestUnknownWhy(t *testing.T) {
	t.Parallel()
	line := func(outcome, code string) report.HistoryLine {
		return report.HistoryLine{Event: ledger.Event{Outcome: outcome, Code: code}}
	}
	cases := []struct {
		name string
		x    report.Explanation
		want string
	}{
		{"NoAnswer", report.Explanation{State: "unknown", Code: "NO_RESPONSE", Why: "no answer from Connectly"},
			"the message may have gone out (NO_RESPONSE: no answer from Connectly); a delivery webhook"},
		{"RefusedLater", report.Explanation{State: "unknown", Code: "HTTP_503", History: []report.HistoryLine{
			line("retry_maybe_sent", "HTTP_503"), line(ledger.EventRetryRefused, "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT")}},
			"Connectly refused a later one (ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT) for a reason that may have come after it"},
		{"Exhausted", report.Explanation{State: "unknown", Code: "HTTP_503", History: []report.HistoryLine{
			line("retry_maybe_sent", "HTTP_503"), line(ledger.EventRetriesExhausted, "HTTP_408")}},
			"the later ones were not taken (last: HTTP_408)"},
		{"ResendWithdrawn", report.Explanation{State: "unknown", Code: "NO_RESPONSE", History: []report.HistoryLine{
			line("unknown", "NO_RESPONSE"), line("resend", "NO_RESPONSE"), line("resend_withdrawn", "capped")}},
			"it was not sent again (capped)"},
		{"Failed", report.Explanation{State: "failed", Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"}, ""},
	}
	for _, c := range cases {
		got := c.x.UnknownWhy()
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want it to hold %q", c.name, got, c.want)
		}
	}
}
