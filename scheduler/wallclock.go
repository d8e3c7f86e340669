package scheduler

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// wallClock keeps a cron schedule of set times of day to its zone's wall clock across a change
// of UTC offset (daylight saving), as cron (Vixie cron, cronie) does. robfig/cron counts the
// hours of the real clock instead: a time repeated by a fall-back change matches twice (01:30
// EDT and 01:30 EST, two ticks an hour apart, two runs since run ids are UTC), and a time that
// a spring-forward change skips does not match at all (no run that day). wallClock fires:
//
//   - a repeated wall-clock time once, at its first occurrence: a match whose date and time
//     the zone already showed earlier, just before the clocks went back, is not a tick;
//   - the times of day a spring-forward change skips once, at the moment the clocks jump
//     (02:30 on a day that goes from 02:00 to 03:00 fires at 03:00), so the day still has its
//     tick; a tick at 03:00 itself is the same instant, one tick.
//
// Both follow from the zone's rules alone, so every replica and every restart (NextFire,
// catch-up after a restart, cron's own wake-ups) agrees on the ticks and their run ids.
type wallClock struct {
	spec *cron.SpecSchedule
}

// followWallClock returns sched kept to the wall clock when it is a cron spec of set times in a
// named zone. A spec whose minute or hour field is a wildcard ("*", "*/15", "@hourly") runs
// hourly or more often and keeps the real clock, as in cron: through a fall-back change it
// fires on through the repeated hour, and the times a spring-forward change skips do not fire.
func followWallClock(spec string, sched cron.Schedule) cron.Schedule {
	s, ok := sched.(*cron.SpecSchedule)
	if !ok || s.Location == time.Local || byTheClock(spec) {
		return sched
	}
	return wallClock{spec: s}
}

// byTheClock says whether a cron spec's minute or hour field is a wildcard, which is how cron
// tells a job that runs every so often from one that runs at set times.
func byTheClock(spec string) bool {
	fields := strings.Fields(spec)
	if len(fields) > 0 && (strings.HasPrefix(fields[0], "CRON_TZ=") || strings.HasPrefix(fields[0], "TZ=")) {
		fields = fields[1:]
	}
	if len(fields) == 0 {
		return true
	}
	if strings.HasPrefix(fields[0], "@") {
		return fields[0] == "@hourly" || fields[0] == "@every"
	}
	if len(fields) < 2 {
		return true
	}
	wild := func(f string) bool { return strings.HasPrefix(f, "*") || strings.HasPrefix(f, "?") }
	return wild(fields[0]) || wild(fields[1])
}

// Next returns the first tick after t, in t's location.
func (w wallClock) Next(t time.Time) time.Time {
	loc := w.spec.Location
	n := w.spec.Next(t)
	for !n.IsZero() && repeated(n.In(loc)) {
		n = w.spec.Next(n)
	}
	limit := n
	if limit.IsZero() {
		limit = t.AddDate(5, 0, 0) // as far as robfig/cron looks
	}
	// A spring-forward change between t and n whose skipped times include a match fires when
	// the clocks jump.
	for cur := t.In(loc); ; {
		_, end := cur.ZoneBounds()
		if end.IsZero() || !end.Before(limit) {
			break
		}
		_, before := cur.Zone()
		_, after := end.Zone()
		if after > before && w.matchesBetween(end, time.Duration(after-before)*time.Second, before) {
			return end.In(t.Location())
		}
		cur = end
	}
	return n
}

// matchesBetween says whether the spec matches a wall-clock time of the span that a
// spring-forward change at jump skips: the gap long, read at the offset before the change.
func (w wallClock) matchesBetween(jump time.Time, gap time.Duration, offset int) bool {
	skipped := *w.spec
	skipped.Location = time.FixedZone("", offset)
	m := skipped.Next(jump.Add(-time.Nanosecond))
	return !m.IsZero() && m.Before(jump.Add(gap))
}

// repeated says whether t (in its zone) is the second occurrence of its wall-clock time: it lies
// within the first hour (or however far the clocks went back) after a fall-back change.
func repeated(t time.Time) bool {
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, now := t.Zone()
	_, before := start.Add(-time.Nanosecond).Zone()
	back := time.Duration(before-now) * time.Second
	return back > 0 && t.Sub(start) < back
}
