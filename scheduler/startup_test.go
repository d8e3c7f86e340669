package scheduler_test

import (
	"context"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/testclock"
	"github.com/heraldmsg/herald/scheduler"
)

// TestSchedulerTickDuringStartFires: a scheduler starting loads its campaigns one after the
// other, and a catch-up can be slow (its check waits on the provider). A tick of a campaign
// loaded early that falls meanwhile, before cron runs, is fired once cron runs, on time.
func TestSchedulerTickDuringStartFires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	early := b.scheduled(t, "a-nightly", "schedule: {cron: \"0 20 * * *\", timezone: UTC}\n")
	b.submit(t, early)
	slow := b.scheduled(t, "b-caught-up", "schedule: {cron: \"59 19 * * *\", timezone: UTC}\n")
	b.submit(t, slow)
	tick := time.Date(2026, 6, 10, 20, 0, 0, 0, time.UTC)
	store := defstore.New(b.rdb, nil)
	ctx := context.Background()
	for _, last := range []struct {
		id string
		at time.Time
	}{{early.ID, tick.Add(-24 * time.Hour)}, {slow.ID, tick.Add(-24*time.Hour - time.Minute)}} {
		if err := store.RecordFire(ctx, last.id, last.at); err != nil {
			t.Fatal(err)
		}
	}
	clk := testclock.New(tick.Add(-20 * time.Second))
	var results tickResults
	// b-caught-up's 19:59 tick is caught up at start; its check takes the clock past
	// a-nightly's 20:00 tick, loaded (with nothing to catch up) just before.
	b.startCheckedScheduler(t, scheduler.Config{Now: clk.Now, Poll: 5 * time.Millisecond, Reload: -1}, &results,
		func(_ context.Context, def *campaigns.Definition) error {
			if def.ID == slow.ID {
				clk.Set(tick.Add(10 * time.Second))
			}
			return nil
		})
	want := []string{scheduler.TickRunID(early.ID, tick), scheduler.TickRunID(slow.ID, tick.Add(-time.Minute))}
	waitUntil(t, "a-nightly's 20:00 run", func() bool { return len(b.expandTasks(t)) == 2 })
	if got := b.expandTasks(t); got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("expansion tasks %v, want %v", got, want)
	}
	assertTrigger(t, b, want[0], "cron")
	// Each tick is reported after its run's task is written: wait for both reports.
	waitUntil(t, "both ticks reported fired", func() bool { return results.get("fired") >= 2 })
	if results.get("fired") != 2 || results.get("missed_skipped") != 0 {
		t.Fatalf("tick results %v, want 2 fired", results.snapshot())
	}
}

// TestSchedulerPollFiresDueTicks: the poll loop fires a due tick that no cron wake-up
// handled, and a tick that a later one replaced before it could fire is said so
// (missed_skipped) rather than dropped silently. A tick found later than it may run is
// skipped by the campaign's policy.
func TestSchedulerPollFiresDueTicks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	def := b.scheduled(t, "hourly", "schedule: {cron: \"0 * * * *\", timezone: UTC}\n")
	b.submit(t, def)
	ten := time.Date(2026, 6, 10, 10, 0, 0, 0, time.UTC)
	store := defstore.New(b.rdb, nil)
	ctx := context.Background()
	if err := store.RecordFire(ctx, def.ID, ten); err != nil {
		t.Fatal(err)
	}
	clk := testclock.New(ten.Add(30 * time.Minute))
	var results tickResults
	b.startCheckedScheduler(t, scheduler.Config{Now: clk.Now, Poll: 5 * time.Millisecond, Reload: -1}, &results, nil)
	if got := b.expandTasks(t); len(got) != 0 {
		t.Fatalf("expansion tasks %v at start, want none", got)
	}
	// The process stalls (a suspended machine) past 11:00 and 12:00: 12:00 runs, 11:00 is
	// replaced by it.
	twelve := ten.Add(2 * time.Hour)
	clk.Set(twelve.Add(20 * time.Second))
	waitUntil(t, "the 12:00 run", func() bool { return results.get("fired") == 1 })
	if got, want := b.expandTasks(t), scheduler.TickRunID(def.ID, twelve); len(got) != 1 || got[0] != want {
		t.Fatalf("expansion tasks %v, want [%s]", got, want)
	}
	if results.get("missed_skipped") != 1 {
		t.Fatalf("tick results %v, want the 11:00 tick missed_skipped", results.snapshot())
	}
	// Found five minutes late, 13:00 is skipped (missed: skip), and recorded.
	thirteen := twelve.Add(time.Hour)
	clk.Set(thirteen.Add(5 * time.Minute))
	waitUntil(t, "the 13:00 tick skipped", func() bool { return results.get("missed_skipped") == 2 })
	waitUntil(t, "the 13:00 tick recorded", func() bool {
		last, ok, err := store.LastFire(ctx, def.ID)
		return err == nil && ok && last.Equal(thirteen)
	})
	if got := b.expandTasks(t); len(got) != 1 || results.get("fired") != 1 {
		t.Fatalf("expansion tasks %v, results %v after the late tick, want the 12:00 run only", got, results.snapshot())
	}
}
