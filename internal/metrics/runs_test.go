package metrics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// runsBundle is a ledger on miniredis whose runs are created a second apart, oldest first.
type runsBundle struct {
	rdb *redis.Client
	l   *ledger.Ledger
	at  time.Time
}

func newRunsBundle(t *testing.T) *runsBundle {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return &runsBundle{rdb: rdb, l: ledger.New(rdb, nil), at: time.UnixMilli(1_767_225_600_000)}
}

func (b *runsBundle) create(t *testing.T, id string) {
	t.Helper()
	b.at = b.at.Add(time.Second)
	if err := b.l.CreateRun(context.Background(), ledger.Run{ID: id, Campaign: "spring", Buckets: 1, Created: b.at}); err != nil {
		t.Fatal(err)
	}
}

// pausedSeries gathers the collector's herald_run_paused series (run → value) and
// herald_runs_active (-1 when absent).
func pausedSeries(t *testing.T, c prometheus.Collector) (paused map[string]float64, active float64) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	paused, active = map[string]float64{}, -1
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "herald_run_paused":
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "run" {
						paused[lp.GetValue()] = m.GetGauge().GetValue()
					}
				}
			case "herald_runs_active":
				active = m.GetGauge().GetValue()
			}
		}
	}
	return paused, active
}

// A paused run stays reported however many runs came after it and ended: the collector
// reads the runs not yet ended, not the newest runs.
func TestRunCollectorReportsAnOldPausedRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newRunsBundle(t)
	for i := range 51 {
		b.create(t, fmt.Sprintf("r%02d", i))
	}
	if _, err := b.l.Pause(ctx, "r00", "operator"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 50; i++ {
		id := fmt.Sprintf("r%02d", i)
		if i%2 == 0 {
			if _, _, err := b.l.Cancel(ctx, id, "operator"); err != nil {
				t.Fatal(err)
			}
		} else if done, err := b.l.FinishExpansion(ctx, id, 0); err != nil || !done {
			t.Fatalf("FinishExpansion(%s) = %v, %v; want completed", id, done, err)
		}
	}
	paused, active := pausedSeries(t, NewRunCollector(b.l))
	wantEqual(t, "herald_run_paused", map[string]float64{"r00": 1}, paused)
	if active != 1 {
		t.Fatalf("herald_runs_active %v, want 1", active)
	}
}

// Beyond the cap the oldest runs are reported, and herald_runs_active counts them all.
func TestRunCollectorReportsTheOldestRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newRunsBundle(t)
	for _, id := range []string{"old", "mid", "new"} {
		b.create(t, id)
	}
	if _, err := b.l.Pause(ctx, "new", "operator"); err != nil {
		t.Fatal(err)
	}
	c := newRunCollector(b.l, 2)
	paused, active := pausedSeries(t, c)
	wantEqual(t, "herald_run_paused", map[string]float64{"old": 0, "mid": 0}, paused)
	if active != 3 {
		t.Fatalf("herald_runs_active %v, want 3", active)
	}
	if n := testutil.CollectAndCount(c, "herald_run_recipients"); n != 2*len(ledger.States) {
		t.Fatalf("%d herald_run_recipients series, want %d (two runs)", n, 2*len(ledger.States))
	}
}

// A run still listed though it ended (the call that ended it could not take it out) is not
// reported, does not take the place of a run to report, and is dropped from the index.
func TestRunCollectorDropsEndedRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newRunsBundle(t)
	for _, id := range []string{"ended", "gone", "running", "paused"} {
		b.create(t, id)
	}
	if _, err := b.l.Pause(ctx, "paused", "operator"); err != nil {
		t.Fatal(err)
	}
	b.rdb.HSet(ctx, rkeys.Run("ended"), "status", string(ledger.RunCompleted))
	b.rdb.Del(ctx, rkeys.Run("gone"))
	paused, active := pausedSeries(t, newRunCollector(b.l, 2))
	wantEqual(t, "herald_run_paused", map[string]float64{"running": 0, "paused": 1}, paused)
	if active != 2 {
		t.Fatalf("herald_runs_active %v, want 2", active)
	}
	ids, listed, err := b.l.ActiveRuns(ctx, 0, 10)
	if err != nil || listed != 2 {
		t.Fatalf("ActiveRuns = %v, %d, %v; want the ended runs dropped", ids, listed, err)
	}
}

// Runs created before the index of runs not yet ended are listed by the first scrape.
func TestRunCollectorListsRunsCreatedBeforeTheIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newRunsBundle(t)
	b.create(t, "before")
	if _, err := b.l.Pause(ctx, "before", "operator"); err != nil {
		t.Fatal(err)
	}
	b.rdb.Del(ctx, rkeys.ActiveRuns())
	paused, active := pausedSeries(t, NewRunCollector(b.l))
	wantEqual(t, "herald_run_paused", map[string]float64{"before": 1}, paused)
	if active != 1 {
		t.Fatalf("herald_runs_active %v, want 1", active)
	}
}

// A completed run whose follow-ups an operator paused (`herald run pause RUN` once it
// completed) is reported herald_run_paused{run="RUN"} 1 while they stay paused, with its
// follow-up runs paused by a stop-the-run answer (RUN~RULE); a completed run whose follow-ups
// go is not, nor one created before the span follow-ups may still come in.
func TestRunCollectorReportsPausedFollowupsOfACompletedRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newRunsBundle(t)
	for _, id := range []string{"too-old", "held", "going", "running"} {
		b.create(t, id)
		if id == "too-old" {
			b.at = b.at.Add(40 * 24 * time.Hour)
		}
	}
	for _, id := range []string{"too-old", "held", "going"} {
		if done, err := b.l.FinishExpansion(ctx, id, 0); err != nil || !done {
			t.Fatalf("FinishExpansion(%s) = %v, %v; want completed", id, done, err)
		}
	}
	for _, id := range []string{"too-old", "held"} {
		if ok, _, err := b.l.PauseFollowups(ctx, id, "paused by ana: wrong link"); err != nil || !ok {
			t.Fatalf("PauseFollowups(%s) = %v, %v", id, ok, err)
		}
	}
	followups := func(max int) *runCollector {
		c := newRunCollector(b.l, max)
		WithPausedFollowups(b.rdb, 37*24*time.Hour)(c)
		c.now = func() time.Time { return b.at.Add(time.Hour) }
		return c
	}
	c := followups(MaxRunSeries)
	paused, active := pausedSeries(t, c)
	wantEqual(t, "herald_run_paused", map[string]float64{"held": 1, "running": 0}, paused)
	if active != 1 {
		t.Fatalf("herald_runs_active %v, want 1 (the completed run is not active)", active)
	}
	want := `
# HELP herald_run_paused 1 when a run is paused, 0 while it runs; only the 200 oldest running or paused runs are reported (herald_runs_active counts them all), every paused follow-up run (RUN~RULE), and 1 for a completed run whose follow-ups are paused.
# TYPE herald_run_paused gauge
herald_run_paused{campaign="spring",run="held"} 1
herald_run_paused{campaign="spring",run="running"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "herald_run_paused"); err != nil {
		t.Fatal(err)
	}

	if ok, _, err := b.l.ResumeFollowups(ctx, "held"); err != nil || !ok {
		t.Fatalf("ResumeFollowups = %v, %v", ok, err)
	}
	paused, _ = pausedSeries(t, c)
	wantEqual(t, "herald_run_paused once resumed", map[string]float64{"running": 0}, paused)

	// Beyond MaxRunSeries such runs, the newest are reported.
	c = followups(1)
	for _, id := range []string{"held", "going"} {
		if ok, _, err := b.l.PauseFollowups(ctx, id, "paused by bo"); err != nil || !ok {
			t.Fatalf("PauseFollowups(%s) = %v, %v", id, ok, err)
		}
	}
	paused, _ = pausedSeries(t, c)
	wantEqual(t, "herald_run_paused capped", map[string]float64{"going": 1, "running": 0}, paused)
}

func wantEqual[T any](t *testing.T, what string, want, got T) {
	t.Helper()
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}
