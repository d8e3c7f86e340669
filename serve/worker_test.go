package serve_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/serve"
)

// runPaused gathers RunCollector's herald_run_paused series: run → value.
func runPaused(t *testing.T, rdb redis.UniversalClient) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(serve.RunCollector(rdb))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "herald_run_paused" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "run" {
					got[lp.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return got
}

// A completed run created 40 days ago whose delayed follow-up is still to be sent can have its
// follow-ups paused (PauseRun): herald_run_paused reports it while they stay paused, however
// long after on_reply.until and the longest delay, and no longer once resumed or cancelled.
func TestRunCollectorReportsOldRunWithPausedFollowups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	c := config.Default()
	id := oldCompletedRun(t, c, rdb, 40*24*time.Hour, ledger.Queued)
	rec := audit.Record{Redis: rdb, Actor: "ana"}
	pause := func() {
		t.Helper()
		if res, err := serve.PauseRun(ctx, c, rdb, id, rec); err != nil || !res.Changed || !res.Followups {
			t.Fatalf("PauseRun = %+v, %v; want its follow-ups paused", res, err)
		}
	}
	pause()
	if got := runPaused(t, rdb); got[id] != 1 {
		t.Fatalf("herald_run_paused = %v, want %s 1", got, id)
	}
	if res, err := serve.ResumeRun(ctx, c, rdb, id, rec); err != nil || !res.Changed {
		t.Fatalf("ResumeRun = %+v, %v", res, err)
	}
	if got := runPaused(t, rdb); hasKey(got, id) {
		t.Fatalf("herald_run_paused once resumed = %v, want no %s", got, id)
	}
	pause()
	if res, err := serve.CancelRun(ctx, c, rdb, id, rec); err != nil || !res.Changed || !res.Followups {
		t.Fatalf("CancelRun = %+v, %v; want its follow-ups cancelled", res, err)
	}
	if got := runPaused(t, rdb); hasKey(got, id) {
		t.Fatalf("herald_run_paused once cancelled = %v, want no %s", got, id)
	}
}

func hasKey(m map[string]float64, k string) bool {
	_, ok := m[k]
	return ok
}
