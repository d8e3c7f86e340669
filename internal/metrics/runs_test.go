package metrics

import (
	"context"
	"fmt"
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

func wantEqual[T any](t *testing.T, what string, want, got T) {
	t.Helper()
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}
