package worker

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// A follow-up's send counts in herald_sends_total under the campaign of the run it follows,
// as before, and in herald_followup_sends_total by its rule, so a dashboard tells the
// campaign's own sends from its follow-ups; the campaign's own sends are not counted there.
func TestFollowupSendsCountedByRule(t *testing.T) {
	b, m := setupBusiness(t, "biz-fu-metrics")
	ctx := context.Background()
	ps := seedRun(t, b, "run-fu-metrics", ledger.AtMostOnce, 2)
	for _, p := range ps {
		if err := handle(t, b, p); err != nil {
			t.Fatal(err)
		}
	}
	sent := followupOf(t, b, ps[0], "yes", "spring_thanks")
	if err := handle(t, b, sent); err != nil {
		t.Fatal(err)
	}
	skipped := followupOf(t, b, ps[1], "no", "spring_sorry")
	if err := b.rdb.HSet(ctx, rkeys.Run("run-fu-metrics"), "status", string(ledger.RunCancelled)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := handle(t, b, skipped); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(m.Sends.WithLabelValues(testCampaign, testSenderLabel, metrics.OutcomeAccepted, "none")); n != 3 {
		t.Errorf("herald_sends_total accepted = %v, want 3 (two sends and a follow-up)", n)
	}
	for _, c := range []struct {
		rule, outcome, class string
	}{{"yes", metrics.OutcomeAccepted, "none"}, {"no", metrics.OutcomeSkipped, ledger.SkipCancelled}} {
		if n := testutil.ToFloat64(m.FollowupSends.WithLabelValues(testCampaign, c.rule, c.outcome, c.class)); n != 1 {
			t.Errorf("herald_followup_sends_total{rule=%q,outcome=%q,class=%q} = %v, want 1", c.rule, c.outcome, c.class, n)
		}
	}
	if n := testutil.CollectAndCount(m.FollowupSends); n != 2 {
		t.Errorf("%d herald_followup_sends_total series, want 2 (the campaign's own sends are not there)", n)
	}
}
