package scheduler_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/scheduler"
)

// writeCampaign writes a campaign with the given schedule block next to a small audience and
// loads it.
func (b *testBundle) scheduled(tb testing.TB, id, schedule string) *campaigns.Definition {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(b.dir, "audience.csv"), []byte(audienceCSV(5)), 0o644); err != nil {
		tb.Fatal(err)
	}
	yaml := "id: " + id + "\ntemplate: {name: spring_sale, language: en}\nparameters:\n  body_1: \"{{.name}}\"\n" +
		"audience: {file: audience.csv}\n" + schedule
	path := filepath.Join(b.dir, id+".yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		tb.Fatal(err)
	}
	def, err := campaigns.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	return def
}

// expandTasks returns the ids of the expansion tasks in every state.
func (b *testBundle) expandTasks(tb testing.TB) []string {
	tb.Helper()
	var ids []string
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		b.inspector.ListPendingTasks, b.inspector.ListScheduledTasks, b.inspector.ListActiveTasks, b.inspector.ListCompletedTasks,
	} {
		tasks, err := list(campaigns.ExpandQueue)
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			tb.Fatal(err)
		}
		for _, t := range tasks {
			ids = append(ids, t.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

func (b *testBundle) startScheduler(tb testing.TB, cfg scheduler.Config, onTick ...func(campaign, result string)) *scheduler.Scheduler {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
	d := scheduler.Deps{Redis: rdb, Logger: zerolog.Nop()}
	if len(onTick) > 0 {
		d.OnTick = onTick[0]
	}
	s := scheduler.New(cfg, d)
	if err := s.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Stop()
		rdb.Close()
	})
	return s
}

// TestSchedulerMissedTicks starts a scheduler after a tick it missed, under each policy.
func TestSchedulerMissedTicks(t *testing.T) {
	t.Parallel()
	ny, _ := time.LoadLocation("America/New_York")
	tick := time.Date(2026, 11, 24, 20, 0, 0, 0, ny) // a nightly 20:00 New York tick
	for _, tc := range []struct {
		name     string
		schedule string
		last     time.Time // recorded last fire; zero: none
		now      time.Time
		want     bool
		trigger  string
	}{
		{"RunLastWithinGrace", "schedule: {cron: \"0 20 * * *\", timezone: America/New_York, missed: run-last, grace: 2h}\n",
			tick.Add(-24 * time.Hour), tick.Add(90 * time.Minute), true, "missed"},
		{"RunLastPastGrace", "schedule: {cron: \"0 20 * * *\", timezone: America/New_York, missed: run-last, grace: 2h}\n",
			tick.Add(-24 * time.Hour), tick.Add(150 * time.Minute), false, ""},
		{"SkipPolicy", "schedule: {cron: \"0 20 * * *\", timezone: America/New_York, missed: skip}\n",
			tick.Add(-24 * time.Hour), tick.Add(10 * time.Minute), false, ""},
		{"DefaultPolicySkips", "schedule: {cron: \"0 20 * * *\", timezone: America/New_York}\n",
			tick.Add(-24 * time.Hour), tick.Add(10 * time.Minute), false, ""},
		{"RestartStraddlingTickIsOnTime", "schedule: {cron: \"0 20 * * *\", timezone: America/New_York, missed: skip}\n",
			tick.Add(-24 * time.Hour), tick.Add(20 * time.Second), true, "cron"},
		{"SeveralMissedRunsOnlyTheLast", "schedule: {cron: \"0 20 * * *\", timezone: America/New_York, missed: run-last, grace: 2h}\n",
			tick.Add(-5 * 24 * time.Hour), tick.Add(time.Hour), true, "missed"},
		{"FirstSightStartsFromNow", "schedule: {cron: \"0 20 * * *\", timezone: America/New_York, missed: run-last, grace: 2h}\n",
			time.Time{}, tick.Add(time.Hour), false, ""},
		{"OneShotMissedWithinGrace", "schedule: {at: \"2026-11-24T20:00:00-05:00\", missed: run-last, grace: 2h}\n",
			tick.Add(-time.Hour), tick.Add(time.Hour), true, "missed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			def := b.scheduled(t, "nightly", tc.schedule)
			b.submit(t, def)
			ctx := context.Background()
			store := defstore.New(b.rdb, nil)
			if !tc.last.IsZero() {
				if err := store.RecordFire(ctx, def.ID, tc.last); err != nil {
					t.Fatal(err)
				}
			}
			b.startScheduler(t, scheduler.Config{Now: func() time.Time { return tc.now }})
			got := b.expandTasks(t)
			if tc.want {
				want := scheduler.TickRunID(def.ID, tick)
				if len(got) != 1 || got[0] != want {
					t.Fatalf("expansion tasks %v, want [%s]", got, want)
				}
				info, err := b.inspector.GetTaskInfo(campaigns.ExpandQueue, want)
				if err != nil {
					t.Fatal(err)
				}
				p, err := campaigns.DecodeExpand(info.Payload)
				if err != nil {
					t.Fatal(err)
				}
				if p.Trigger != tc.trigger || !p.Fire.Equal(tick) || p.Version != 1 {
					t.Fatalf("payload %+v", p)
				}
			} else if len(got) != 0 {
				t.Fatalf("expansion tasks %v, want none", got)
			}
			// Either way the tick is handled: a restart does not consider it again.
			last, ok, err := store.LastFire(ctx, def.ID)
			if err != nil || !ok {
				t.Fatalf("last fire %v %v", ok, err)
			}
			if want := tick; tc.last.IsZero() {
				if !last.Equal(tc.now) {
					t.Fatalf("first sight recorded %s, want now %s", last, tc.now)
				}
			} else if !last.Equal(want) {
				t.Fatalf("last fire %s, want %s", last, want)
			}
		})
	}
}

// TestSchedulerReplicasOneRunPerTick runs three schedulers on one Redis with a minutely
// campaign on a clock sped up 60 times (three minutes of ticks in three seconds): each tick
// enqueues exactly one expansion task, named after its fire time.
func TestSchedulerReplicasOneRunPerTick(t *testing.T) {
	t.Parallel()
	b := setup(t)
	def := b.scheduled(t, "minutely", "schedule: {cron: \"* * * * *\"}\n")
	b.submit(t, def)
	realStart := time.Now().Truncate(time.Second).Add(2 * time.Second)
	parse := scheduler.CompressedParse(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), realStart, 60, 3*time.Minute)
	var mu sync.Mutex
	results := map[string]int{}
	for range 3 {
		b.startScheduler(t, scheduler.Config{Parse: parse, Poll: 50 * time.Millisecond}, func(campaign, result string) {
			mu.Lock()
			results[campaign+" "+result]++
			mu.Unlock()
		})
	}
	var want []string
	for i := 1; i <= 3; i++ {
		want = append(want, scheduler.TickRunID(def.ID, realStart.Add(time.Duration(i)*time.Second)))
	}
	// Wait until the third tick is handled: its task exists, it is the last fire, and the
	// replicas reported three fires and a duplicate. miniredis's clock is moved on meanwhile,
	// so that the replicas' short-lived keys expire as they would on a real Redis.
	thirdTick := realStart.Add(3 * time.Second)
	var got []string
	var last int64
	var err error
	handled := func() bool {
		got = b.expandTasks(t)
		last, err = b.rdb.Get(context.Background(), rkeys.LastFire(def.ID)).Int64()
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 3 && err == nil && last == thirdTick.UnixMilli() &&
			results[def.ID+" fired"] >= 3 && results[def.ID+" duplicate"] >= 1
	}
	for deadline := thirdTick.Add(10 * time.Second); !handled() && time.Now().Before(deadline); {
		b.mr.FastForward(100 * time.Millisecond)
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("expansion tasks %v, want %v", got, want)
	}
	if err != nil || last != thirdTick.UnixMilli() {
		t.Fatalf("last fire %d (%v), want the third tick", last, err)
	}
	// What the replicas report (herald_scheduler_ticks_total): each tick fired once, and
	// the other replicas found it fired (a replica that wakes after two ticks fires only the
	// latest, so up to 6 duplicates).
	mu.Lock()
	defer mu.Unlock()
	if d := results[def.ID+" duplicate"]; results[def.ID+" fired"] != 3 || d < 1 || d > 6 {
		t.Fatalf("tick results %v, want 3 fired and 1 to 6 duplicate", results)
	}
}

// TestSchedulerFollowsSubmitAndRemove checks that a running scheduler picks up a submitted
// campaign and a new version without restart, and stops a removed one.
func TestSchedulerFollowsSubmitAndRemove(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := b.startScheduler(t, scheduler.Config{Poll: 10 * time.Millisecond})
	_ = s
	ctx := context.Background()
	store := defstore.New(b.rdb, nil)
	def := b.scheduled(t, "later", "schedule: {cron: \"0 3 * * *\"}\n")
	data, _ := os.ReadFile(def.Path)
	v, created, err := store.Submit(ctx, def.ID, def.Path, data)
	if err != nil || v != 1 || !created {
		t.Fatalf("submit: %d %v %v", v, created, err)
	}
	if v, created, err = store.Submit(ctx, def.ID, def.Path, data); err != nil || v != 1 || created {
		t.Fatalf("unchanged submit: %d %v %v", v, created, err)
	}
	def2 := b.scheduled(t, "later", "schedule: {cron: \"0 4 * * *\"}\n")
	data2, _ := os.ReadFile(def2.Path)
	if v, created, err = store.Submit(ctx, def2.ID, def2.Path, data2); err != nil || v != 2 || !created {
		t.Fatalf("changed submit: %d %v %v", v, created, err)
	}
	// Version 1 stays readable for runs that started with it.
	if old, err := store.Version(ctx, "later", 1); err != nil || string(old.YAML) != string(data) {
		t.Fatalf("version 1: %v", err)
	}
	waitUntil(t, "the scheduler to load version 2", func() bool { return s.Loaded("later") == 2 })
	if ok, err := store.Remove(ctx, "later"); err != nil || !ok {
		t.Fatalf("remove: %v %v", ok, err)
	}
	waitUntil(t, "the scheduler to drop the campaign", func() bool { return s.Loaded("later") == 0 })
	if _, err := store.Current(ctx, "later"); !errors.Is(err, defstore.ErrNotSubmitted) {
		t.Fatalf("Current after rm: %v", err)
	}
	if ok, _ := store.Remove(ctx, "later"); ok {
		t.Fatal("removed twice")
	}
	// Submitting again (unchanged) brings it back at the same version.
	if v, created, err = store.Submit(ctx, def2.ID, def2.Path, data2); err != nil || v != 2 || created {
		t.Fatalf("resubmit: %d %v %v", v, created, err)
	}
	waitUntil(t, "the scheduler to load it again", func() bool { return s.Loaded("later") == 2 })
}

// waitUntil waits up to 10 s for cond (testredis.WaitUntil).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testredis.WaitUntil(t, 10*time.Second, what, cond)
}

// TestSchedulerReloadFollowsItsClock checks that the periodic reload (which catches a change
// the change counter did not show) is timed on the scheduler's clock, not the machine's.
func TestSchedulerReloadFollowsItsClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.submit(t, b.scheduled(t, "nightly", "schedule: {cron: \"0 3 * * *\"}\n"))
	var mu sync.Mutex
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	s := b.startScheduler(t, scheduler.Config{Poll: 5 * time.Millisecond, Reload: time.Hour, Now: clock})
	if v := s.Loaded("nightly"); v != 1 {
		t.Fatalf("Loaded = %d at start; want 1", v)
	}
	// Take the campaign out of the index without moving the change counter: only the
	// periodic reload can notice.
	if err := b.rdb.SRem(context.Background(), rkeys.Definitions(), "nightly").Err(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	waitUntil(t, "the reload an hour later on the scheduler's clock", func() bool { return s.Loaded("nightly") == 0 })
}
