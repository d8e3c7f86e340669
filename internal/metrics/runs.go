package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldmsg/herald/internal/ledger"
)

// runCollector reports the progress of active runs at scrape time.
type runCollector struct {
	l         *ledger.Ledger
	recipient *prometheus.Desc
	paused    *prometheus.Desc
}

// NewRunCollector reports herald_run_recipients{run, campaign, state} and herald_run_paused
// for runs that are running or paused (among the 50 most recent), and herald_run_paused for
// every paused follow-up run (RUN~RULE), read from the ledger at scrape time. Finished runs
// drop out, so the label set stays small.
func NewRunCollector(l *ledger.Ledger) prometheus.Collector {
	return &runCollector{
		l: l,
		recipient: prometheus.NewDesc("herald_run_recipients",
			"Recipients of an active run per ledger state.", []string{"run", "campaign", "state"}, nil),
		paused: prometheus.NewDesc("herald_run_paused",
			"1 when an active run is paused.", []string{"run", "campaign"}, nil),
	}
}

func (c *runCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.recipient
	ch <- c.paused
}

func (c *runCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	ids, err := c.l.RecentRuns(ctx, "", 50)
	if err != nil {
		return
	}
	for _, id := range ids {
		r, err := c.l.GetRun(ctx, id)
		if err != nil || (r.Status != ledger.RunRunning && r.Status != ledger.RunPaused) {
			continue
		}
		counters, err := c.l.Counters(ctx, id)
		if err != nil {
			continue
		}
		for s, n := range counters.States {
			ch <- prometheus.MustNewConstMetric(c.recipient, prometheus.GaugeValue, float64(n), r.ID, r.Campaign, string(s))
		}
		paused := 0.0
		if r.Status == ledger.RunPaused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused, r.ID, r.Campaign)
	}
	// Follow-up runs (RUN~RULE) are not in the run list: a paused one is reported from the
	// list of paused follow-ups, whatever the status of the run it follows.
	followups, err := c.l.PausedFollowups(ctx, "")
	if err != nil {
		return
	}
	for _, r := range followups {
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, 1, r.ID, r.Campaign)
	}
}
