package worker

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/metrics"
)

// herald_sends_total's sender label is the number masked but for its last 4 digits, as in
// logs and the CLI; two configured senders whose masked forms are equal keep series of their
// own (metrics.SenderLabels).
func TestSendsSenderLabelMasked(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.BusinessID = "biz-mask"
	// +15560001111 masks as testSender does.
	cfg.Limits.SenderRates = map[string]float64{testSender: 1e6, "+15560001111": 1e6}
	b := setup(t, cfg)
	m := metrics.New()
	b.worker.metrics = m
	for _, p := range seedRun(t, b, "run-mask", ledger.AtMostOnce, 1) {
		if err := handle(t, b, p); err != nil {
			t.Fatal(err)
		}
	}
	want := `
# HELP herald_sends_total Send attempts settled by workers, by campaign, sender (masked but for the last 4 digits), outcome (accepted, failed, unknown, retried, throttled, held, skipped) and error class.
# TYPE herald_sends_total counter
herald_sends_total{campaign="` + testCampaign + `",class="none",outcome="accepted",sender="********1111#1"} 1
`
	if err := testutil.CollectAndCompare(m.Sends, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
