package scheduler_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/scheduler"
)

// ticks returns a schedule's ticks in [from, to) as NextFire gives them, one after the other.
func ticks(def *campaigns.Definition, from, to time.Time) []time.Time {
	var out []time.Time
	for t := scheduler.NextFire(def, from.Add(-time.Nanosecond)); !t.IsZero() && t.Before(to); t = scheduler.NextFire(def, t) {
		out = append(out, t.UTC())
		if len(out) > 1000 {
			break
		}
	}
	return out
}

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func utcs(ss ...string) []time.Time {
	out := make([]time.Time, len(ss))
	for i, s := range ss {
		out[i] = utc(s)
	}
	return out
}

// TestNextFireAcrossDaylightSaving: a schedule of set times keeps its zone's wall clock across
// a change of offset. A time a fall-back change repeats fires once, at its first occurrence; a
// time a spring-forward change skips fires when the clocks jump, so the day keeps its tick. A
// schedule whose minute or hour is a wildcard runs by the real clock, as in cron.
func TestNextFireAcrossDaylightSaving(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, cron, zone string
		from, to         string // UTC
		want             []time.Time
	}{
		{"FallBackFiresOnce", "30 1 * * *", "America/New_York", "2026-10-31 00:00", "2026-11-03 00:00",
			// 01:30 EDT on the 31st and the 1st (01:30 EST on the 1st is the same wall-clock time), then EST.
			utcs("2026-10-31 05:30", "2026-11-01 05:30", "2026-11-02 06:30")},
		{"FallBackTwoTimesInTheRepeatedHour", "0,30 1 * * *", "America/New_York", "2026-11-01 00:00", "2026-11-02 00:00",
			utcs("2026-11-01 05:00", "2026-11-01 05:30")},
		{"SpringForwardFiresAtTheJump", "30 2 * * *", "America/New_York", "2026-03-07 00:00", "2026-03-10 00:00",
			// 02:30 EST on the 7th; the 8th has no 02:30: 03:00 EDT, when the clocks jump; 02:30 EDT on the 9th.
			utcs("2026-03-07 07:30", "2026-03-08 07:00", "2026-03-09 06:30")},
		{"SpringForwardOncePerDay", "0,30 2,3 * * *", "America/New_York", "2026-03-08 00:00", "2026-03-09 00:00",
			// 02:00 and 02:30 do not exist and fall on the jump, which is 03:00 itself: one tick.
			utcs("2026-03-08 07:00", "2026-03-08 07:30")},
		{"SpringForwardOtherDaysUntouched", "30 2 9 3 *", "America/New_York", "2026-03-01 00:00", "2026-03-10 00:00",
			utcs("2026-03-09 06:30")},
		{"MidnightSkipped", "0 0 * * *", "America/Sao_Paulo", "2018-11-03 00:00", "2018-11-06 00:00",
			// Sao Paulo went from 00:00 to 01:00 on 2018-11-04: that day's midnight fires at 01:00 -02.
			utcs("2018-11-03 03:00", "2018-11-04 03:00", "2018-11-05 02:00")},
		{"HalfHourChangeForward", "15 2 * * *", "Australia/Lord_Howe", "2026-10-02 00:00", "2026-10-05 00:00",
			// 02:00 to 02:30 on 2026-10-04: 02:15 fires at 02:30 +11.
			utcs("2026-10-02 15:45", "2026-10-03 15:30", "2026-10-04 15:15")},
		{"HalfHourChangeBack", "45 1 * * *", "Australia/Lord_Howe", "2026-04-03 00:00", "2026-04-06 00:00",
			// 02:00 back to 01:30 on 2026-04-05: 01:45 +11 only.
			utcs("2026-04-03 14:45", "2026-04-04 14:45", "2026-04-05 15:15")},
		{"HalfHourChangeForwardNoonKept", "0 12 * * *", "Australia/Lord_Howe", "2026-10-02 12:00", "2026-10-06 00:00",
			// 12:00 +10:30, then 12:00 +11 from the 4th (the clocks went from 02:00 to 02:30): every day.
			utcs("2026-10-03 01:30", "2026-10-04 01:00", "2026-10-05 01:00")},
		{"HalfHourChangeForwardEarlierTimeOnce", "30 1 * * *", "Australia/Lord_Howe", "2026-10-02 00:00", "2026-10-05 00:00",
			// 01:30 comes before the change: once each day, never again at 02:30.
			utcs("2026-10-02 15:00", "2026-10-03 15:00", "2026-10-04 14:30")},
		{"HalfHourChangeBackMidnightKept", "0 0 * * *", "Australia/Lord_Howe", "2026-04-04 00:00", "2026-04-07 00:00",
			// 00:00 +11, then 00:00 +10:30 from the 6th (the clocks went from 02:00 back to 01:30 on the 5th).
			utcs("2026-04-04 13:00", "2026-04-05 13:30", "2026-04-06 13:30")},
		{"HalfHourChangeBackByTheClock", "0 */2 * * *", "Australia/Lord_Howe", "2026-04-04 12:00", "2026-04-04 18:00",
			// 00:00 +11; 02:00 +11 is never shown (02:00 becomes 01:30), 02:00 +10:30 is; 04:00 +10:30.
			utcs("2026-04-04 13:00", "2026-04-04 15:30", "2026-04-04 17:30")},
		{"HourlyRunsByTheClockInFallBack", "30 * * * *", "America/New_York", "2026-11-01 04:00", "2026-11-01 08:00",
			utcs("2026-11-01 04:30", "2026-11-01 05:30", "2026-11-01 06:30", "2026-11-01 07:30")},
		{"EveryHalfHourRunsByTheClockInSpringForward", "*/30 * * * *", "America/New_York", "2026-03-08 06:00", "2026-03-08 08:00",
			utcs("2026-03-08 06:00", "2026-03-08 06:30", "2026-03-08 07:00", "2026-03-08 07:30")},
		{"EveryHalfHourOfOneHourRunsByTheClock", "*/30 1 * * *", "America/New_York", "2026-11-01 00:00", "2026-11-02 00:00",
			utcs("2026-11-01 05:00", "2026-11-01 05:30", "2026-11-01 06:00", "2026-11-01 06:30")},
		{"NoZoneIsUTC", "30 1 * * *", "", "2026-11-01 00:00", "2026-11-03 00:00",
			utcs("2026-11-01 01:30", "2026-11-02 01:30")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			def := &campaigns.Definition{Schedule: campaigns.Schedule{Cron: tc.cron, Timezone: tc.zone}}
			if got := ticks(def, utc(tc.from), utc(tc.to)); !slices.EqualFunc(got, tc.want, time.Time.Equal) {
				t.Fatalf("%q in %q: ticks %v, want %v", tc.cron, tc.zone, got, tc.want)
			}
		})
	}
}

// TestSchedulerFallBackTickFiresOnceAfterRestart: "30 1 * * *" in New York on 2026-11-01, when
// 01:00-02:00 happens twice. A scheduler fired 01:30 EDT (05:30Z) and recorded it; one that
// starts at 01:30 EST (06:30Z) must not fire the same wall-clock tick again, and the next tick
// campaign ls shows is the next day's.
func TestSchedulerFallBackTickFiresOnceAfterRestart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	def := b.scheduled(t, "nightly", "schedule: {cron: \"30 1 * * *\", timezone: America/New_York}\n")
	b.submit(t, def)
	first := time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC) // 01:30 EDT
	if next := scheduler.NextFire(def, first); next.Sub(first) < 23*time.Hour {
		t.Errorf("after the 01:30 EDT tick the next tick is %s (%s local), %s later; want the next day's",
			next, next.In(mustScheduleZone(t, def)), next.Sub(first))
	}
	store := defstore.New(b.rdb, nil)
	if err := store.RecordFire(context.Background(), def.ID, first); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 1, 6, 30, 20, 0, time.UTC) // 01:30:20 EST, the same wall-clock tick
	b.startScheduler(t, scheduler.Config{Now: func() time.Time { return now }})
	if got := b.expandTasks(t); len(got) != 0 {
		t.Fatalf("the 01:30 tick of 2026-11-01 fired a second run: %v", got)
	}
}

// TestSchedulerFallBackNightReplicas runs two replicas through the fall-back night of
// 2026-11-01 in New York on a clock sped up 3600 times (a virtual hour a real second): the
// nightly 01:30 tick makes one run, at 01:30 EDT, and none at 01:30 EST. A campaign ticking at
// 07:00 UTC, after both, tells when the night is over.
func TestSchedulerFallBackNightReplicas(t *testing.T) {
	t.Parallel()
	b := setup(t)
	nightly := b.scheduled(t, "nightly", "schedule: {cron: \"30 1 * * *\", timezone: America/New_York}\n")
	b.submit(t, nightly)
	after := b.scheduled(t, "after", "schedule: {cron: \"0 7 * * *\"}\n")
	b.submit(t, after)
	virtualStart := time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC) // 01:00 EDT
	realStart := time.Now().Truncate(time.Second).Add(2 * time.Second)
	parse := scheduler.CompressedParse(virtualStart, realStart, 3600, 3*time.Hour)
	var mu sync.Mutex
	results := map[string]int{}
	for range 2 {
		b.startScheduler(t, scheduler.Config{Parse: parse, Poll: 50 * time.Millisecond}, func(campaign, result string) {
			mu.Lock()
			results[campaign+" "+result]++
			mu.Unlock()
		})
	}
	// 05:30Z is half a real second after realStart, 06:30Z (01:30 EST) one and a half: a
	// second run would have another id. 07:00Z is two seconds after.
	waitUntil(t, "both replicas to handle the 07:00 UTC tick", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return results["after fired"]+results["after duplicate"] == 2
	})
	var got []string
	for _, id := range b.expandTasks(t) {
		if id != scheduler.TickRunID(after.ID, realStart.Add(2*time.Second)) {
			got = append(got, id)
		}
	}
	if want := scheduler.TickRunID(nightly.ID, realStart.Add(time.Second/2)); len(got) != 1 || got[0] != want {
		t.Fatalf("nightly runs %v, want [%s]: one run for 01:30 on the night it happens twice", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if results["nightly fired"] != 1 || results["nightly duplicate"] != 1 {
		t.Fatalf("tick results %v, want the nightly tick fired once and found fired once", results)
	}
}

// TestSchedulerSpringForwardTickFires: "30 2 * * *" in New York; 2026-03-08 has no 02:30. The
// tick of that day fires when the clocks jump to 03:00 EDT (07:00Z), on time for a scheduler
// that finds it then.
func TestSchedulerSpringForwardTickFires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	def := b.scheduled(t, "nightly", "schedule: {cron: \"30 2 * * *\", timezone: America/New_York}\n")
	b.submit(t, def)
	prev := time.Date(2026, 3, 7, 7, 30, 0, 0, time.UTC) // 02:30 EST on the 7th
	jump := time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC)  // 03:00 EDT on the 8th
	if next := scheduler.NextFire(def, prev); !next.Equal(jump) {
		t.Fatalf("after the 7th's tick the next is %s (%s local), want %s: the 8th's tick when the clocks jump",
			next, next.In(mustScheduleZone(t, def)), jump)
	}
	if err := defstore.New(b.rdb, nil).RecordFire(context.Background(), def.ID, prev); err != nil {
		t.Fatal(err)
	}
	now := jump.Add(20 * time.Second)
	b.startScheduler(t, scheduler.Config{Now: func() time.Time { return now }})
	if got, want := b.expandTasks(t), scheduler.TickRunID(def.ID, jump); len(got) != 1 || got[0] != want {
		t.Fatalf("expansion tasks %v, want [%s]", got, want)
	}
}

// mustScheduleZone is the campaign's zone, for messages.
func mustScheduleZone(t *testing.T, def *campaigns.Definition) *time.Location {
	t.Helper()
	loc, err := def.ScheduleZone()
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
