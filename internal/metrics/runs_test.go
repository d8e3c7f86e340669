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
// completed) is reported herald_run_paused{run="RUN"} 1 while they stay paused, however old the
// run (a delayed follow-up may wait long past its run's on_reply.until), beside its follow-up
// runs paused by a stop-the-run answer (RUN~RULE); a resume or a cancel of its follow-ups takes
// it out, and a completed run whose follow-ups go is not reported.
func TestRunCollectorReportsPausedFollowupsOfACompletedRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newRunsBundle(t)
	for _, id := range []string{"old", "held", "going", "running"} {
		b.create(t, id)
		if id == "old" {
			b.at = b.at.Add(400 * 24 * time.Hour)
		}
	}
	for _, id := range []string{"old", "held", "going"} {
		if done, err := b.l.FinishExpansion(ctx, id, 0); err != nil || !done {
			t.Fatalf("FinishExpansion(%s) = %v, %v; want completed", id, done, err)
		}
	}
	pause := func(id string, at time.Time) {
		t.Helper()
		l := ledger.New(b.rdb, func() time.Time { return at })
		if ok, _, err := l.PauseFollowups(ctx, id, "paused by ana: wrong link"); err != nil || !ok {
			t.Fatalf("PauseFollowups(%s) = %v, %v", id, ok, err)
		}
	}
	pause("old", b.at)
	pause("held", b.at.Add(time.Minute))
	c := NewRunCollector(b.l)
	paused, active := pausedSeries(t, c)
	wantEqual(t, "herald_run_paused", map[string]float64{"held": 1, "old": 1, "running": 0}, paused)
	if active != 1 {
		t.Fatalf("herald_runs_active %v, want 1 (the completed runs are not active)", active)
	}
	want := `
# HELP herald_run_paused 1 when a run is paused, 0 while it runs; only the 200 oldest running or paused runs are reported (herald_runs_active counts them all), every paused follow-up run (RUN~RULE), and 1 for a completed run whose follow-ups are paused.
# TYPE herald_run_paused gauge
herald_run_paused{campaign="spring",run="held"} 1
herald_run_paused{campaign="spring",run="old"} 1
herald_run_paused{campaign="spring",run="running"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "herald_run_paused"); err != nil {
		t.Fatal(err)
	}

	if ok, _, err := b.l.ResumeFollowups(ctx, "held"); err != nil || !ok {
		t.Fatalf("ResumeFollowups = %v, %v", ok, err)
	}
	paused, _ = pausedSeries(t, c)
	wantEqual(t, "herald_run_paused once resumed", map[string]float64{"old": 1, "running": 0}, paused)
	if ok, _, err := b.l.CancelFollowups(ctx, "old", "cancelled by ana"); err != nil || !ok {
		t.Fatalf("CancelFollowups = %v, %v", ok, err)
	}
	paused, _ = pausedSeries(t, c)
	wantEqual(t, "herald_run_paused once cancelled", map[string]float64{"running": 0}, paused)

	// Beyond MaxRunSeries such runs, those held longest are reported.
	pause("going", b.at.Add(2*time.Minute))
	pause("held", b.at.Add(3*time.Minute))
	paused, _ = pausedSeries(t, newRunCollector(b.l, 1))
	wantEqual(t, "herald_run_paused capped", map[string]float64{"going": 1, "running": 0}, paused)
}

// A completed run whose follow-ups were paused before their index existed is reported once
// the collector's walk of the run list has listed it, at its first scrape.
func TestRunCollectorListsFollowupsPausedBeforeTheIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newRunsBundle(t)
	b.create(t, "before")
	if done, err := b.l.FinishExpansion(ctx, "before", 0); err != nil || !done {
		t.Fatalf("FinishExpansion = %v, %v; want completed", done, err)
	}
	if ok, _, err := b.l.PauseFollowups(ctx, "before", "paused by ana"); err != nil || !ok {
		t.Fatalf("PauseFollowups = %v, %v", ok, err)
	}
	b.rdb.Del(ctx, rkeys.FollowupsHeld())
	paused, _ := pausedSeries(t, NewRunCollector(b.l))
	wantEqual(t, "herald_run_paused", map[string]float64{"before": 1}, paused)
}

func wantEqual[T any](t *testing.T, what string, want, got T) {
	t.Helper()
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}
