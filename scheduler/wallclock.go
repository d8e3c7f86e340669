package scheduler

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// wallClock computes the ticks of a cron spec in a named zone from the zone's wall clock: for
// each calendar day of the zone that the spec's day, month and weekday fields match, and each
// hour and minute its fields match, the instant (or instants) at which the zone's clocks show
// that date and time. robfig/cron's own Next walks the real clock forward and adjusts it hour by
// hour, which goes wrong around changes of UTC offset: a repeated time matches twice, a skipped
// time not at all, and in a zone whose change is not a whole hour (Australia/Lord_Howe moves by
// 30 minutes) it skips or doubles whole days' ticks.
//
// A spec of set times of day (setTimes) keeps the wall clock across a change, as cron (Vixie
// cron, cronie) does:
//
//   - a repeated wall-clock time fires once, at its first occurrence;
//   - the times of day a spring-forward change skips fire once, at the moment the clocks jump
//     (02:30 on a day that goes from 02:00 to 03:00 fires at 03:00), so the day still has its
//     tick; a tick at 03:00 itself is the same instant, one tick.
//
// A spec that runs every so often (its minute or hour field a wildcard) keeps the real clock, as
// in cron: it fires at every occurrence of a matching time, so on through a repeated hour, and
// the times a spring-forward change skips do not fire.
//
// Both follow from the zone's rules alone, so every replica and every restart (NextFire,
// catch-up after a restart, cron's own wake-ups) agrees on the ticks and their run ids.
type wallClock struct {
	spec     *cron.SpecSchedule
	setTimes bool
}

// followWallClock returns sched computed on its zone's wall clock (wallClock) when it is a cron
// spec of whole minutes in a named zone; other schedules (@every, a spec in the machine's local
// zone) are returned as they are. A spec whose minute or hour field is a wildcard ("*", "*/15",
// "@hourly") runs by the real clock, any other at set times.
func followWallClock(spec string, sched cron.Schedule) cron.Schedule {
	s, ok := sched.(*cron.SpecSchedule)
	if !ok || s.Location == time.Local || s.Second != 1 {
		return sched
	}
	return wallClock{spec: s, setTimes: !byTheClock(spec)}
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

// searchYears is how far ahead Next looks for a tick before it gives up (a spec that never
// matches, such as February 30th), as robfig/cron does.
const searchYears = 5

// maxOffset bounds the UTC offset of any zone (historical local mean times included): the
// instants whose wall clock shows a given date lie within a day and maxOffset either side.
const maxOffset = 16 * time.Hour

// starBit marks a field written as a wildcard (robfig/cron's bit 63).
const starBit = 1 << 63

func has(bits uint64, v int) bool { return bits&(1<<uint(v)) != 0 }

// Next returns the first tick after t, in t's location; zero when there is none within
// searchYears.
func (w wallClock) Next(t time.Time) time.Time {
	loc := w.spec.Location
	y, m, d := t.In(loc).Date()
	// A day's ticks may fall on the next day's date (a skipped time fires when the clocks
	// jump, after midnight in a zone that skips a whole day), so the search starts a day early.
	day := time.Date(y, m, d-1, 0, 0, 0, 0, time.UTC)
	limit := day.AddDate(searchYears, 0, 2)
	for day.Before(limit) {
		if !has(w.spec.Month, int(day.Month())) {
			day = time.Date(day.Year(), day.Month()+1, 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if n := w.firstOn(day, t); !n.IsZero() {
			// Ticks are in order of their dates but for a change of offset around midnight:
			// a time repeated just after midnight can come after the next day's first.
			if next := day.AddDate(0, 0, 1); w.dayMatches(next) {
				if n2 := w.firstOn(next, t); !n2.IsZero() && n2.Before(n) {
					n = n2
				}
			}
			return n.In(t.Location())
		}
		day = day.AddDate(0, 0, 1)
	}
	return time.Time{}
}

// dayMatches says whether the spec's month, day-of-month and weekday fields match a date (a
// civil date at 00:00 UTC). As in cron, a day matches either of day-of-month and weekday when
// both are restricted, else both.
func (w wallClock) dayMatches(day time.Time) bool {
	s := w.spec
	if !has(s.Month, int(day.Month())) {
		return false
	}
	dom, dow := has(s.Dom, day.Day()), has(s.Dow, int(day.Weekday()))
	if s.Dom&starBit != 0 || s.Dow&starBit != 0 {
		return dom && dow
	}
	return dom || dow
}

// period is a span of time over which a zone keeps one UTC offset: [start, end), a zero start or
// end unbounded.
type period struct {
	start, end time.Time
	off        time.Duration
}

// wallFrom and wallTo are the wall-clock times (read as UTC) the period shows.
func (p period) wallFrom() time.Time {
	if p.start.IsZero() {
		return time.Time{}
	}
	return p.start.Add(p.off)
}

func (p period) wallTo(or time.Time) time.Time {
	if p.end.IsZero() {
		return or
	}
	return p.end.Add(p.off)
}

// periodsAround returns the periods of loc over every instant whose wall clock can show the date
// day (a civil date at 00:00 UTC), in order.
func periodsAround(day time.Time, loc *time.Location) []period {
	var out []period
	for at := day.Add(-maxOffset); ; {
		l := at.In(loc)
		_, off := l.Zone()
		start, end := l.ZoneBounds()
		out = append(out, period{start: start.UTC(), end: end.UTC(), off: time.Duration(off) * time.Second})
		if end.IsZero() || !end.Before(day.Add(24*time.Hour+maxOffset)) {
			return out
		}
		at = end
	}
}

// firstOn returns the first tick after t among the times of one date (a civil date at 00:00
// UTC), zero when there is none. Within one period of the zone the date's times come in order,
// so each period contributes its first matching time after t; across a change of offset the
// earliest of them is the tick.
func (w wallClock) firstOn(day, t time.Time) time.Time {
	if !w.dayMatches(day) {
		return time.Time{}
	}
	dayEnd := day.Add(24 * time.Hour)
	var first time.Time
	keep := func(at time.Time) {
		if at.After(t) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	// shown is how far the wall clock has gone in the periods before: a set time shown again
	// after the clocks went back is not a tick.
	var shown time.Time
	for i, p := range periodsAround(day, w.spec.Location) {
		if i > 0 && w.setTimes {
			prev := shown
			if from := p.wallFrom(); from.After(prev) {
				// The clocks jumped forward: the wall times from prev up to from were
				// skipped, and one of them that matches fires at the jump.
				if _, ok := w.firstMatch(day, maxTime(prev, day), minTime(from, dayEnd)); ok {
					keep(p.start)
				}
			}
		}
		lo := maxTime(day, p.wallFrom())
		if w.setTimes && !shown.IsZero() {
			lo = maxTime(lo, shown)
		}
		// A time of the period after t: wall - off > t.
		lo = maxTime(lo, t.Add(p.off).Truncate(time.Minute).Add(time.Minute))
		if wall, ok := w.firstMatch(day, lo, minTime(p.wallTo(dayEnd), dayEnd)); ok {
			keep(wall.Add(-p.off))
		}
		if to := p.wallTo(time.Time{}); !to.IsZero() && to.After(shown) {
			shown = to
		}
	}
	return first
}

// firstMatch returns the first wall-clock time of the date day in [lo, hi) (read as UTC) that
// the spec's hour and minute fields match.
func (w wallClock) firstMatch(day, lo, hi time.Time) (time.Time, bool) {
	lo = lo.UTC()
	if lo.Before(day) {
		lo = day
	}
	if lo.Truncate(time.Minute).Before(lo) {
		lo = lo.Truncate(time.Minute).Add(time.Minute)
	}
	if !lo.Before(hi) || !lo.Before(day.Add(24*time.Hour)) {
		return time.Time{}, false
	}
	h0, m0 := lo.Hour(), lo.Minute()
	for h := h0; h < 24; h++ {
		if !has(w.spec.Hour, h) {
			continue
		}
		mi := 0
		if h == h0 {
			mi = m0
		}
		for ; mi < 60; mi++ {
			if !has(w.spec.Minute, mi) {
				continue
			}
			wall := day.Add(time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute)
			if !wall.Before(hi) {
				return time.Time{}, false
			}
			return wall, true
		}
	}
	return time.Time{}, false
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
