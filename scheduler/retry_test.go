package scheduler_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/testclock"
	"github.com/heraldmsg/herald/scheduler"
)

// flakyEnqueuer fails its first `fails` enqueues (all of them when fails is negative) as a
// Redis blip or a Sentinel failover would, and counts the attempts.
type flakyEnqueuer struct {
	c        *asynq.Client
	fails    int64
	attempts atomic.Int64
}

func (f *flakyEnqueuer) EnqueueContext(ctx context.Context, t *asynq.Task, o ...asynq.Option) (*asynq.TaskInfo, error) {
	if n := f.attempts.Add(1); f.fails < 0 || n <= f.fails {
		return nil, errors.New("dial tcp: connection refused")
	}
	return f.c.EnqueueContext(ctx, t, o...)
}

// tickResults collects what a scheduler's OnTick is told.
type tickResults struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *tickResults) record(campaign, result string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[result]++
}

// snapshot is a copy of the counts, to print while the scheduler may still record.
func (r *tickResults) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.n)
}

func (r *tickResults) get(result string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[result]
}

// startFlaky starts a scheduler whose expansion tasks are enqueued through enq, with the
// campaign check check (none when nil).
func (b *testBundle) startFlaky(t *testing.T, cfg scheduler.Config, enq *flakyEnqueuer, results *tickResults,
	check ...func(context.Context, *campaigns.Definition) error) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
	client := asynq.NewClientFromRedisClient(rdb)
	enq.c = client
	runs := expand.NewRuns(expand.Config{}, expand.Deps{Redis: rdb, Logger: zerolog.Nop(), Enqueuer: enq})
	d := scheduler.Deps{Redis: rdb, Logger: zerolog.Nop(), Runs: runs, OnTick: results.record}
	if len(check) > 0 {
		d.Check = check[0]
	}
	s := scheduler.New(cfg, d)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		client.Close()
		rdb.Close()
	})
}

// nightlyRunLast submits a campaign that runs at 01:00 (missed: run-last, grace 2h) on a
// clock where one virtual hour is a real second: its 01:00 tick comes one second after
// realStart, which parse's schedules count from.
func nightlyRunLast(t *testing.T) (b *testBundle, def *campaigns.Definition, realStart time.Time, parse func(string) (cron.Schedule, error)) {
	t.Helper()
	b = setup(t)
	def = b.scheduled(t, "nightly", "schedule: {cron: \"0 1 * * *\", missed: run-last, grace: 2h}\n")
	b.submit(t, def)
	realStart = time.Now().Truncate(time.Second).Add(time.Second)
	parse = scheduler.CompressedParse(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), realStart, 3600, 90*time.Minute)
	return b, def, realStart, parse
}

// TestSchedulerRetriesTickThatFailedToStart: a nightly tick whose enqueue fails once (Redis away
// for a moment) is tried again and makes its run, with the cron tick's trigger; the tick is
// then recorded as handled.
func TestSchedulerRetriesTickThatFailedToStart(t *testing.T) {
	t.Parallel()
	b, def, realStart, parse := nightlyRunLast(t)
	enq := &flakyEnqueuer{fails: 1}
	var results tickResults
	b.startFlaky(t, scheduler.Config{Parse: parse, Poll: 50 * time.Millisecond, Reload: 200 * time.Millisecond}, enq, &results)
	tick := realStart.Add(time.Second)
	want := scheduler.TickRunID(def.ID, tick)
	waitUntil(t, "the tick's run after its failed enqueue", func() bool { return len(b.expandTasks(t)) > 0 })
	if got := b.expandTasks(t); len(got) != 1 || got[0] != want {
		t.Fatalf("expansion tasks %v, want [%s]", got, want)
	}
	assertTrigger(t, b, want, "cron")
	if n := enq.attempts.Load(); n != 2 {
		t.Fatalf("%d enqueues, want a failed one and its retry", n)
	}
	// The tick is reported after its run's task is written: wait for the report.
	waitUntil(t, "the tick reported fired", func() bool { return results.get("fired") > 0 })
	if results.get("error") != 1 || results.get("fired") != 1 {
		t.Fatalf("tick results %v, want one error and one fired", results.snapshot())
	}
	waitUntil(t, "the tick to be recorded", func() bool {
		last, ok, err := defstore.New(b.rdb, nil).LastFire(context.Background(), def.ID)
		return err == nil && ok && last.Equal(tick)
	})
}

// TestSchedulerRetriedTickReplicas: two replicas whose first enqueue both fail retry the same
// tick; its run id is the tick's, so there is one run: one replica fires it, the other finds it
// fired.
func TestSchedulerRetriedTickReplicas(t *testing.T) {
	t.Parallel()
	b := setup(t)
	def := b.scheduled(t, "nightly", "schedule: {cron: \"0 1 * * *\"}\n")
	b.submit(t, def)
	realStart := time.Now().Truncate(time.Second).Add(time.Second)
	parse := scheduler.CompressedParse(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), realStart, 3600, 90*time.Minute)
	var results tickResults
	enqs := []*flakyEnqueuer{{fails: 1}, {fails: 1}}
	for _, enq := range enqs {
		b.startFlaky(t, scheduler.Config{Parse: parse, Poll: 50 * time.Millisecond}, enq, &results)
	}
	waitUntil(t, "both replicas to retry the tick", func() bool { return results.get("fired")+results.get("duplicate") == 2 })
	if got, want := b.expandTasks(t), scheduler.TickRunID(def.ID, realStart.Add(time.Second)); len(got) != 1 || got[0] != want {
		t.Fatalf("expansion tasks %v, want [%s]", got, want)
	}
	if results.get("fired") != 1 || results.get("duplicate") != 1 || results.get("error") != 2 {
		t.Fatalf("tick results %v, want 2 errors, 1 fired and 1 duplicate", results.snapshot())
	}
}

// TestSchedulerRetryWindow drives the retries of a tick found on time at start (20:00 New
// York, the scheduler starting 10 seconds later) whose run cannot be started, on the
// scheduler's clock: it is tried again after a backoff while it is on time, or under
// missed: run-last within grace (then as a missed run); after that it is given up as missed
// and recorded; a later tick that comes while it waits replaces it.
func TestSchedulerRetryWindow(t *testing.T) {
	t.Parallel()
	ny, _ := time.LoadLocation("America/New_York")
	tick := time.Date(2026, 11, 24, 20, 0, 0, 0, ny)
	for _, tc := range []struct {
		name     string
		schedule string
		fails    int64
		retryAt  time.Time // where the clock is moved after the first attempt
		want     time.Time // the tick that makes a run; zero: none
		trigger  string
		result   string // what the retry reports
	}{
		{"OnTime", "schedule: {cron: \"0 20 * * *\", timezone: America/New_York}\n",
			1, tick.Add(15 * time.Second), tick, "cron", "fired"},
		{"RunLastWithinGrace", "schedule: {cron: \"0 20 * * *\", timezone: America/New_York, missed: run-last, grace: 2h}\n",
			1, tick.Add(90 * time.Minute), tick, "missed", "missed_run"},
		{"SkipPastOnTime", "schedule: {cron: \"0 20 * * *\", timezone: America/New_York}\n",
			-1, tick.Add(2 * time.Minute), time.Time{}, "", "missed_skipped"},
		{"RunLastPastGrace", "schedule: {cron: \"0 20 * * *\", timezone: America/New_York, missed: run-last, grace: 2h}\n",
			-1, tick.Add(150 * time.Minute), time.Time{}, "", "missed_skipped"},
		{"NextTickReplacesIt", "schedule: {cron: \"0 20 * * *\", timezone: America/New_York}\n",
			1, tick.Add(24*time.Hour + 10*time.Second), tick.Add(24 * time.Hour), "cron", "missed_skipped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			def := b.scheduled(t, "nightly", tc.schedule)
			b.submit(t, def)
			ctx := context.Background()
			store := defstore.New(b.rdb, nil)
			if err := store.RecordFire(ctx, def.ID, tick.Add(-24*time.Hour)); err != nil {
				t.Fatal(err)
			}
			clk := testclock.New(tick.Add(10 * time.Second))
			enq := &flakyEnqueuer{fails: tc.fails}
			var results tickResults
			b.startFlaky(t, scheduler.Config{Now: clk.Now, Poll: 5 * time.Millisecond, Reload: -1}, enq, &results)
			if n := enq.attempts.Load(); n != 1 || results.get("error") != 1 {
				t.Fatalf("at start: %d enqueues, results %v; want the one that failed", n, results.snapshot())
			}
			// Within the backoff the tick waits: the poll loop runs but does not try it.
			clk.Set(tick.Add(10*time.Second + 500*time.Millisecond))
			b.waitPolls(t, 3)
			if n := enq.attempts.Load(); n != 1 {
				t.Fatalf("%d enqueues within the backoff, want 1", n)
			}
			clk.Set(tc.retryAt)
			waitUntil(t, "the retry to report "+tc.result, func() bool {
				return results.get(tc.result) == 1 && (tc.want.IsZero() || results.get("fired") == 1)
			})
			got := b.expandTasks(t)
			if tc.want.IsZero() {
				if len(got) != 0 {
					t.Fatalf("expansion tasks %v, want none", got)
				}
			} else {
				want := scheduler.TickRunID(def.ID, tc.want)
				if len(got) != 1 || got[0] != want {
					t.Fatalf("expansion tasks %v, want [%s]", got, want)
				}
				assertTrigger(t, b, want, tc.trigger)
			}
			// Either way the tick is handled, and never tried again.
			recorded := tick
			if !tc.want.IsZero() {
				recorded = tc.want
			}
			waitUntil(t, "the tick to be recorded", func() bool {
				last, ok, err := store.LastFire(ctx, def.ID)
				return err == nil && ok && last.Equal(recorded)
			})
			attempts := enq.attempts.Load()
			clk.Set(tc.retryAt.Add(time.Hour))
			b.waitPolls(t, 3)
			if n := enq.attempts.Load(); n != attempts {
				t.Fatalf("%d enqueues after the tick was handled, want %d", n, attempts)
			}
		})
	}
}

// waitPolls waits until the scheduler's poll loop has gone round at least n-1 more times:
// with Reload off and nothing to retry, each round sends Redis one command (the GET of the
// change counter), and the first one counted may have begun before the call.
func (b *testBundle) waitPolls(t *testing.T, n int) {
	t.Helper()
	from := b.mr.CommandCount()
	waitUntil(t, "the poll loop to go round", func() bool { return b.mr.CommandCount() >= from+n })
}

// firstExpandTask reads the payload of a run's first expansion task.
func firstExpandTask(t *testing.T, b *testBundle, runID string) campaigns.ExpandPayload {
	t.Helper()
	info, err := b.inspector.GetTaskInfo(campaigns.ExpandQueue, runID)
	if err != nil {
		t.Fatal(err)
	}
	p, err := campaigns.DecodeExpand(info.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// assertTrigger checks the trigger of a run's first expansion task.
func assertTrigger(t *testing.T, b *testBundle, runID, trigger string) {
	t.Helper()
	if p := firstExpandTask(t, b, runID); p.Trigger != trigger {
		t.Fatalf("run %s started by %q, want %q", runID, p.Trigger, trigger)
	}
}

// TestSchedulerTickChecksTheCampaign: each tick checks its campaign (Deps.Check: the on_reply
// rules against the templates as the provider has them now) before it starts a run. A refused
// tick starts nothing and is tried again as one whose run could not be started; once the check
// passes within its retry window, the tick makes its one run.
func TestSchedulerTickChecksTheCampaign(t *testing.T) {
	t.Parallel()
	b, def, realStart, parse := nightlyRunLast(t)
	var (
		results tickResults
		refuse  atomic.Bool
		checked atomic.Int64
	)
	refuse.Store(true)
	b.startFlaky(t, scheduler.Config{Parse: parse, Poll: 50 * time.Millisecond}, &flakyEnqueuer{}, &results,
		func(_ context.Context, d *campaigns.Definition) error {
			checked.Add(1)
			if d.ID != def.ID || d.Template.Name != "spring_sale" {
				t.Errorf("checked campaign %s with template %q, want %s's stored version", d.ID, d.Template.Name, def.ID)
			}
			if refuse.Load() {
				return errors.New("on_reply has 1 problem")
			}
			return nil
		})
	waitUntil(t, "the tick refused twice", func() bool { return results.get("error") >= 2 })
	if got := b.expandTasks(t); len(got) != 0 {
		t.Fatalf("expansion tasks %v of a refused tick, want none", got)
	}
	refuse.Store(false)
	want := scheduler.TickRunID(def.ID, realStart.Add(time.Second))
	waitUntil(t, "the tick's run once the check passes", func() bool { return len(b.expandTasks(t)) > 0 })
	if got := b.expandTasks(t); len(got) != 1 || got[0] != want {
		t.Fatalf("expansion tasks %v, want [%s]", got, want)
	}
	waitUntil(t, "the tick reported fired", func() bool { return results.get("fired") > 0 })
	if results.get("fired") != 1 || checked.Load() < 3 {
		t.Fatalf("tick results %v after %d checks, want one fired after the refusals", results.snapshot(), checked.Load())
	}
}

// TestSchedulerRemoveWhileRetrying: a tick whose run could not be started (its check refused:
// the provider timed out) is waiting for its retry when the campaign is removed. The next turn
// of the poll loop finds the retry due and the check passing, and sees the removal first: the
// tick makes no run, and no fire record comes back for a later submit to catch up from. The
// loop's own turns are an hour apart; the test runs one itself.
func TestSchedulerRemoveWhileRetrying(t *testing.T) {
	t.Parallel()
	b := setup(t)
	def := b.scheduled(t, "nightly", "schedule: {cron: \"0 20 * * *\", timezone: UTC, missed: run-last, grace: 2h}\n")
	b.submit(t, def)
	tick := time.Date(2026, 6, 10, 20, 0, 0, 0, time.UTC)
	ctx := context.Background()
	store := defstore.New(b.rdb, nil)
	if err := store.RecordFire(ctx, def.ID, tick.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	clk := testclock.New(tick.Add(10 * time.Second))
	var (
		results tickResults
		refuse  atomic.Bool
	)
	refuse.Store(true)
	s := b.startCheckedScheduler(t, scheduler.Config{Now: clk.Now, Poll: time.Hour, Reload: -1}, &results,
		func(context.Context, *campaigns.Definition) error {
			if refuse.Load() {
				return errors.New("templates API timed out")
			}
			return nil
		})
	if results.get("error") != 1 {
		t.Fatalf("at start: results %v, want the refused tick", results.snapshot())
	}
	if ok, err := store.Remove(ctx, def.ID); !ok || err != nil {
		t.Fatalf("remove: %v %v", ok, err)
	}
	refuse.Store(false)
	clk.Set(tick.Add(15 * time.Second)) // the retry's backoff is over
	s.Round(ctx)
	if v := s.Loaded(def.ID); v != 0 {
		t.Fatalf("version %d still loaded after rm", v)
	}
	if got := b.expandTasks(t); len(got) != 0 {
		t.Fatalf("expansion tasks %v after rm, want none", got)
	}
	if last, ok, err := store.LastFire(ctx, def.ID); ok || err != nil {
		t.Fatalf("last fire %s (%v) after rm, want none", last, err)
	}
	if n := results.get("fired") + results.get("missed_run"); n != 0 {
		t.Fatalf("tick results %v after rm, want no run", results.snapshot())
	}
}

// startCheckedScheduler starts a scheduler with the campaign check check and returns it.
func (b *testBundle) startCheckedScheduler(t *testing.T, cfg scheduler.Config, results *tickResults,
	check func(context.Context, *campaigns.Definition) error) *scheduler.Scheduler {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
	s := scheduler.New(cfg, scheduler.Deps{Redis: rdb, Logger: zerolog.Nop(), OnTick: results.record, Check: check})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		rdb.Close()
	})
	return s
}
