package scheduler_test

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/testclock"
	"github.com/heraldmsg/herald/scheduler"
)

// submitAt stores a campaign file as a new version submitted at the given time.
func (b *testBundle) submitAt(t *testing.T, def *campaigns.Definition, at time.Time) {
	t.Helper()
	data, err := os.ReadFile(def.Path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := defstore.New(b.rdb, func() time.Time { return at }).Submit(context.Background(), def.ID, def.Path, data); err != nil {
		t.Fatal(err)
	}
}

// assertVersion checks the campaign version of a run's first expansion task.
func assertVersion(t *testing.T, b *testBundle, runID string, version int) {
	t.Helper()
	if p := firstExpandTask(t, b, runID); p.Version != version {
		t.Fatalf("run %s started from version %d, want %d", runID, p.Version, version)
	}
}

// TestSchedulerEditStartsNoSecondRunToday: today's 20:00 run fired; the campaign is then edited
// to run at 20:15. Its 20:15 tick of today came before the edit: it is not a missed tick of the
// new version, whether the edit comes half an hour later (under run-last, within grace) or
// seconds after 20:15 (on time), whether a running scheduler loads it or one that starts
// after the edit. The new schedule's ticks run from the next day.
func TestSchedulerEditStartsNoSecondRunToday(t *testing.T) {
	t.Parallel()
	fired := time.Date(2026, 6, 10, 20, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, policy string
		edit         time.Time
		restart      bool // the scheduler starts after the edit
	}{
		{"RunLastWithinGrace", "missed: run-last, grace: 2h", fired.Add(30 * time.Minute), false},
		{"SkipSecondsAfterTheNewTick", "missed: skip", fired.Add(15*time.Minute + 30*time.Second), false},
		{"RunLastRestartAfterTheEdit", "missed: run-last, grace: 2h", fired.Add(30 * time.Minute), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			v1 := b.scheduled(t, "nightly", "schedule: {cron: \"0 20 * * *\", timezone: UTC, "+tc.policy+"}\n")
			b.submitAt(t, v1, fired.Add(-24*time.Hour))
			ctx := context.Background()
			store := defstore.New(b.rdb, nil)
			if err := store.RecordFire(ctx, v1.ID, fired); err != nil {
				t.Fatal(err)
			}
			clk := testclock.New(tc.edit)
			var results tickResults
			cfg := scheduler.Config{Now: clk.Now, Poll: 5 * time.Millisecond, Reload: -1}
			var s *scheduler.Scheduler
			if !tc.restart {
				s = b.startCheckedScheduler(t, cfg, &results, nil)
			}
			v2 := b.scheduled(t, "nightly", "schedule: {cron: \"15 20 * * *\", timezone: UTC, "+tc.policy+"}\n")
			b.submitAt(t, v2, tc.edit)
			clk.Set(tc.edit.Add(time.Second))
			if tc.restart {
				s = b.startCheckedScheduler(t, cfg, &results, nil)
			}
			waitUntil(t, "version 2 loaded", func() bool { return s.Loaded(v2.ID) == 2 })
			b.waitPolls(t, 3)
			if got := b.expandTasks(t); len(got) != 0 {
				t.Fatalf("expansion tasks %v after the edit, want none: today's run fired at 20:00", got)
			}
			next := time.Date(2026, 6, 11, 20, 15, 0, 0, time.UTC)
			clk.Set(next.Add(5 * time.Second))
			waitUntil(t, "the next day's 20:15 run", func() bool { return len(b.expandTasks(t)) > 0 })
			want := scheduler.TickRunID(v2.ID, next)
			if got := b.expandTasks(t); len(got) != 1 || got[0] != want {
				t.Fatalf("expansion tasks %v, want [%s]", got, want)
			}
			assertVersion(t, b, want, 2)
		})
	}
}

// TestSchedulerEditKeepsAPendingRetry: the 20:00 tick's run could not be started (its check
// refused it) when the campaign is edited seconds later. The tick waiting for its retry stays
// when the new version's schedule has it too, and runs from the new version once the check
// passes; under another schedule it is dropped, and said so, and the new schedule's ticks run.
func TestSchedulerEditKeepsAPendingRetry(t *testing.T) {
	t.Parallel()
	tick := time.Date(2026, 6, 10, 20, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, cron string
		want       time.Time // the tick that runs
	}{
		{"SameTick", "0 20 * * *", tick},
		{"OtherSchedule", "15 20 * * *", tick.Add(15 * time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			v1 := b.scheduled(t, "nightly", "schedule: {cron: \"0 20 * * *\", timezone: UTC, missed: run-last, grace: 2h}\n")
			b.submitAt(t, v1, tick.Add(-48*time.Hour))
			ctx := context.Background()
			if err := defstore.New(b.rdb, nil).RecordFire(ctx, v1.ID, tick.Add(-24*time.Hour)); err != nil {
				t.Fatal(err)
			}
			clk := testclock.New(tick.Add(10 * time.Second))
			var (
				results tickResults
				refuse  atomic.Bool
			)
			refuse.Store(true)
			s := b.startCheckedScheduler(t, scheduler.Config{Now: clk.Now, Poll: 5 * time.Millisecond, Reload: -1}, &results,
				func(context.Context, *campaigns.Definition) error {
					if refuse.Load() {
						return errors.New("templates API timed out")
					}
					return nil
				})
			if results.get("error") != 1 {
				t.Fatalf("at start: results %v, want the refused tick", results.snapshot())
			}
			v2 := b.scheduled(t, "nightly", "schedule: {cron: \""+tc.cron+"\", timezone: UTC, missed: run-last, grace: 3h}\n")
			b.submitAt(t, v2, tick.Add(20*time.Second))
			clk.Set(tick.Add(20 * time.Second))
			waitUntil(t, "version 2 loaded", func() bool { return s.Loaded(v2.ID) == 2 })
			refuse.Store(false)
			clk.Set(tick.Add(40 * time.Second)) // the retry's backoff is over
			b.waitPolls(t, 3)
			if tc.want.After(tick) {
				if got := b.expandTasks(t); len(got) != 0 || results.get("missed_skipped") != 1 {
					t.Fatalf("expansion tasks %v, results %v; want none, the 20:00 tick missed_skipped", got, results.snapshot())
				}
				clk.Set(tc.want.Add(5 * time.Second))
			}
			waitUntil(t, "the run", func() bool { return len(b.expandTasks(t)) > 0 })
			want := scheduler.TickRunID(v2.ID, tc.want)
			if got := b.expandTasks(t); len(got) != 1 || got[0] != want {
				t.Fatalf("expansion tasks %v, want [%s]", got, want)
			}
			assertVersion(t, b, want, 2)
			assertTrigger(t, b, want, "cron")
		})
	}
}
