package metrics

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// MaxRunSeries is how many runs herald_run_recipients and herald_run_paused report at most:
// the oldest running or paused ones (a run left paused is an old one). herald_runs_active
// counts them all.
const MaxRunSeries = 200

// MaxFollowupsExamined is how many of the newest runs created within the collector's
// follow-ups span (NewRunCollector) one scrape reads for a pause of their follow-ups: one
// pipelined HMGET each.
const MaxFollowupsExamined = 10000

// backfillBudget bounds the part of a scrape spent listing, once per deployment, the runs
// created before the index of runs not yet ended existed (ledger.BackfillActiveRuns); a walk
// cut short goes on at the next scrape.
const backfillBudget = time.Second

// runCollector reports the progress of active runs at scrape time.
type runCollector struct {
	l *ledger.Ledger
	// max is MaxRunSeries; tests lower it.
	max int
	// rdb and followupsFor say where and how far back runs are read for a pause of their
	// follow-ups (WithPausedFollowups; nil: not read); now is the clock it is counted from.
	rdb          redis.UniversalClient
	followupsFor time.Duration
	now          func() time.Time
	// backfilled is set once ledger.BackfillActiveRuns reported its walk done.
	backfilled atomic.Bool
	recipient  *prometheus.Desc
	paused     *prometheus.Desc
	active     *prometheus.Desc
}

// NewRunCollector reports, read from the ledger at scrape time: herald_run_recipients{run,
// campaign, state} and herald_run_paused{run, campaign} for the MaxRunSeries oldest runs that
// are running or paused, however many newer runs there are; herald_runs_active, the number of
// runs running or paused, reported or not; herald_run_paused for every paused follow-up run
// (RUN~RULE); and, with WithPausedFollowups, herald_run_paused{run="RUN"} 1 for each completed
// run whose follow-ups are paused. Ended runs drop out, so the label set stays small.
func NewRunCollector(l *ledger.Ledger, opts ...RunOption) prometheus.Collector {
	c := newRunCollector(l, MaxRunSeries)
	for _, o := range opts {
		o(c)
	}
	return c
}

// RunOption configures NewRunCollector.
type RunOption func(*runCollector)

// WithPausedFollowups makes the collector report herald_run_paused{run="RUN"} 1 for each
// completed run whose follow-ups an operator paused (`herald run pause RUN` once it
// completed, ledger.PauseFollowups), read from the ledger in rdb among the
// MaxFollowupsExamined newest runs created within span (as long as follow-ups may still come
// after their run started: serve passes the longest on_reply.until plus the longest delay), at
// most MaxRunSeries of them, the newest. A run whose follow-ups go again drops out.
func WithPausedFollowups(rdb redis.UniversalClient, span time.Duration) RunOption {
	return func(c *runCollector) { c.rdb, c.followupsFor = rdb, span }
}

func newRunCollector(l *ledger.Ledger, max int) *runCollector {
	n := strconv.Itoa(max)
	return &runCollector{
		l: l, max: max, now: time.Now,
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
	if !c.backfilled.Load() {
		bctx, bcancel := context.WithTimeout(ctx, backfillBudget)
		if done, _ := c.l.BackfillActiveRuns(bctx); done {
			c.backfilled.Store(true)
		}
		bcancel()
	}
	c.collectRuns(ctx, ch)
	// Follow-up runs (RUN~RULE) are not in the run list: a paused one is reported from the
	// list of paused follow-ups, whatever the status of the run it follows.
	followups, err := c.l.PausedFollowups(ctx, "")
	if err != nil {
		return
	}
	for _, r := range followups {
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, 1, r.ID, r.Campaign)
	}
	c.collectPausedFollowups(ctx, ch)
}

// collectPausedFollowups reports herald_run_paused{run="RUN"} 1 for each completed run whose
// follow-ups are paused (the run hash's followups field, ledger.FollowupsPausedHold): such a
// run is in no index but the list of every run (rkeys.Runs, by creation time), so the newest
// runs created within followupsFor are read, their status and hold in one pipeline per page.
// A running or paused run is reported by collectRuns, never here: only a completed run holds
// its follow-ups this way.
func (c *runCollector) collectPausedFollowups(ctx context.Context, ch chan<- prometheus.Metric) {
	if c.rdb == nil || c.followupsFor <= 0 {
		return
	}
	const page = 500
	from := strconv.FormatInt(c.now().Add(-c.followupsFor).UnixMilli(), 10)
	reported := 0
	for offset := 0; offset < MaxFollowupsExamined && reported < c.max; offset += page {
		ids, err := c.rdb.ZRevRangeByScore(ctx, rkeys.Runs(), &redis.ZRangeBy{Min: from, Max: "+inf",
			Offset: int64(offset), Count: int64(min(page, MaxFollowupsExamined-offset))}).Result()
		if err != nil || len(ids) == 0 {
			return
		}
		cmds := make([]*redis.SliceCmd, len(ids))
		if _, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.HMGet(ctx, rkeys.Run(id), "status", "followups", "campaign")
			}
			return nil
		}); err != nil {
			return
		}
		for i, cmd := range cmds {
			v := cmd.Val()
			if len(v) != 3 || v[0] != string(ledger.RunCompleted) || v[1] != string(ledger.FollowupsPausedHold) {
				continue
			}
			if reported == c.max {
				return
			}
			campaign, _ := v[2].(string)
			ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, 1, ids[i], campaign)
			reported++
		}
		if len(ids) < page {
			return
		}
	}
}

// collectRuns reports the oldest running or paused runs of the index of runs not yet ended,
// dropping from it the runs it finds ended.
func (c *runCollector) collectRuns(ctx context.Context, ch chan<- prometheus.Metric) {
	var ended []string
	reported, examined := 0, 0
	var listed int64
	for reported < c.max && examined < c.maxExamined() {
		ids, n, err := c.l.ActiveRuns(ctx, examined, c.max)
		if err != nil {
			return
		}
		listed = n
		for _, id := range ids {
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
			for s, n := range counters.States {
				ch <- prometheus.MustNewConstMetric(c.recipient, prometheus.GaugeValue, float64(n), r.ID, r.Campaign, string(s))
			}
			paused := 0.0
			if r.Status == ledger.RunPaused {
				paused = 1
			}
			ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused, r.ID, r.Campaign)
		}
		examined += len(ids)
		if len(ids) < c.max {
			break
		}
	}
	// Ended runs still listed go: their step that should have taken them out failed, or an
	// expansion step listed them again as they ended. The next scrape finds the index right.
	if c.l.DropEnded(ctx, ended...) == nil {
		listed -= int64(len(ended))
	}
	ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(max(listed, 0)))
}
