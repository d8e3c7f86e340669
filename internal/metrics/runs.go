package metrics

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldmsg/herald/internal/ledger"
)

// MaxRunSeries is how many runs herald_run_recipients and herald_run_paused report at most:
// the oldest running or paused ones (a run left paused is an old one). herald_runs_active
// counts them all.
const MaxRunSeries = 200

// backfillBudget bounds the part of a scrape spent listing, once per deployment, the runs
// created before the index of runs not yet ended existed (ledger.BackfillActiveRuns), then the
// completed runs whose follow-ups were paused before their index existed
// (ledger.BackfillHeldFollowups); a walk cut short goes on at the next scrape.
const backfillBudget = time.Second

// runCollector reports the progress of active runs at scrape time.
type runCollector struct {
	l *ledger.Ledger
	// max is MaxRunSeries; tests lower it.
	max int
	// backfilled and heldBackfilled are set once ledger.BackfillActiveRuns and
	// ledger.BackfillHeldFollowups reported their walk done.
	backfilled     atomic.Bool
	heldBackfilled atomic.Bool
	recipient      *prometheus.Desc
	paused         *prometheus.Desc
	active         *prometheus.Desc
}

// NewRunCollector reports, read from the ledger at scrape time: herald_run_recipients{run,
// campaign, state} and herald_run_paused{run, campaign} for the MaxRunSeries oldest runs that
// are running or paused, however many newer runs there are; herald_runs_active, the number of
// runs running or paused, reported or not; herald_run_paused for every paused follow-up run
// (RUN~RULE); and herald_run_paused{run="RUN"} 1 for each completed run whose follow-ups an
// operator paused (`herald run pause RUN` once it completed, ledger.PauseFollowups), however
// old, read from their index (ledger.HeldFollowups), at most MaxRunSeries of them, those held
// longest. Ended runs, and completed runs whose follow-ups go again, drop out, so the label
// set stays small.
func NewRunCollector(l *ledger.Ledger) prometheus.Collector {
	return newRunCollector(l, MaxRunSeries)
}

func newRunCollector(l *ledger.Ledger, max int) *runCollector {
	n := strconv.Itoa(max)
	return &runCollector{
		l: l, max: max,
		recipient: prometheus.NewDesc("herald_run_recipients",
			"Recipients of a running or paused run per ledger state; only the "+n+" oldest such runs are reported (herald_runs_active counts them all).",
			[]string{"run", "campaign", "state"}, nil),
		paused: prometheus.NewDesc("herald_run_paused",
			"1 when a run is paused, 0 while it runs; only the "+n+" oldest running or paused runs are reported (herald_runs_active counts them all), "+
				"every paused follow-up run (RUN~RULE), and 1 for a completed run whose follow-ups are paused.",
			[]string{"run", "campaign"}, nil),
		active: prometheus.NewDesc("herald_runs_active",
			"Runs running or paused, including those left out of herald_run_recipients and herald_run_paused beyond the "+n+" oldest.",
			nil, nil),
	}
}

func (c *runCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.recipient
	ch <- c.paused
	ch <- c.active
}

// maxExamined bounds how many listed runs one scrape reads, in case many ended runs are still
// listed (each scrape drops those it finds).
func (c *runCollector) maxExamined() int { return 5 * c.max }

func (c *runCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	c.backfill(ctx)
	reported := c.collectRuns(ctx, ch)
	// Follow-up runs (RUN~RULE) are not in the run list: a paused one is reported from the
	// list of paused follow-ups, whatever the status of the run it follows.
	if followups, err := c.l.PausedFollowups(ctx, ""); err == nil {
		for _, r := range followups {
			ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, 1, r.ID, r.Campaign)
		}
	}
	// A completed run whose follow-ups are paused is in neither list: it is reported from the
	// index of held follow-ups. Only a completed run holds its follow-ups this way, so none of
	// these is reported by collectRuns too, but a run that completed and was paused while this
	// scrape read it (a series twice fails the whole scrape). A read cut short by an error
	// reports what it read.
	held, _ := c.l.HeldFollowups(ctx, c.max)
	for _, h := range held {
		if !reported[h.ID] {
			ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, 1, h.ID, h.Campaign)
		}
	}
}

// backfill carries on, within backfillBudget, the walks of the run list that list the runs
// stored before an index existed: the runs not yet ended, then the completed runs whose
// follow-ups are paused. Each walk is done once per deployment; a process that saw it done
// does not ask again.
func (c *runCollector) backfill(ctx context.Context) {
	if c.backfilled.Load() && c.heldBackfilled.Load() {
		return
	}
	bctx, bcancel := context.WithTimeout(ctx, backfillBudget)
	defer bcancel()
	if !c.backfilled.Load() {
		done, _ := c.l.BackfillActiveRuns(bctx)
		if !done {
			return
		}
		c.backfilled.Store(true)
	}
	if done, _ := c.l.BackfillHeldFollowups(bctx); done {
		c.heldBackfilled.Store(true)
	}
}

// collectRuns reports the oldest running or paused runs of the index of runs not yet ended,
// dropping from it the runs it finds ended; it returns the runs it reported.
func (c *runCollector) collectRuns(ctx context.Context, ch chan<- prometheus.Metric) map[string]bool {
	var ended []string
	ids := map[string]bool{}
	reported, examined := 0, 0
	var listed int64
	for reported < c.max && examined < c.maxExamined() {
		page, n, err := c.l.ActiveRuns(ctx, examined, c.max)
		if err != nil {
			return ids
		}
		listed = n
		for _, id := range page {
			r, err := c.l.GetRun(ctx, id)
			switch {
			case err != nil && !errors.Is(err, ledger.ErrRunNotFound):
				continue
			case err != nil || !r.Status.Active():
				ended = append(ended, id)
				continue
			}
			if reported == c.max {
				continue
			}
			counters, err := c.l.Counters(ctx, id)
			if err != nil {
				continue
			}
			reported++
			ids[r.ID] = true
			for s, n := range counters.States {
				ch <- prometheus.MustNewConstMetric(c.recipient, prometheus.GaugeValue, float64(n), r.ID, r.Campaign, string(s))
			}
			paused := 0.0
			if r.Status == ledger.RunPaused {
				paused = 1
			}
			ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused, r.ID, r.Campaign)
		}
		examined += len(page)
		if len(page) < c.max {
			break
		}
	}
	// Ended runs still listed go: their step that should have taken them out failed, or an
	// expansion step listed them again as they ended. The next scrape finds the index right.
	if c.l.DropEnded(ctx, ended...) == nil {
		listed -= int64(len(ended))
	}
	ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(max(listed, 0)))
	return ids
}
