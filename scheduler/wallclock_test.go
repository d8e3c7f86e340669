package scheduler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/heraldmsg/herald/campaigns"
)

// minute is one minute of the real clock and what a zone's wall clock shows then.
type minute struct {
	at   time.Time
	wall time.Time // the wall clock read as UTC
	// first says the wall clock shows this time for the first time (not again after the
	// clocks went back).
	first bool
	// skipped are the wall-clock times (read as UTC) the clocks jumped over just before at.
	skipped []time.Time
}

// walk returns the minutes of [from, to) in loc.
func walk(loc *time.Location, from, to time.Time) []minute {
	var out []minute
	var shown time.Time
	for at := from; at.Before(to); at = at.Add(time.Minute) {
		l := at.In(loc)
		wall := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), 0, 0, time.UTC)
		m := minute{at: at, wall: wall, first: wall.After(shown) || shown.IsZero()}
		if len(out) > 0 {
			for w := out[len(out)-1].wall.Add(time.Minute); w.Before(wall); w = w.Add(time.Minute) {
				m.skipped = append(m.skipped, w)
			}
		}
		if wall.After(shown) {
			shown = wall
		}
		out = append(out, m)
	}
	return out
}

// matches says whether a cron spec matches a wall-clock time (read as UTC), as cron reads its
// fields: the day matches either of day-of-month and weekday when both are restricted.
func matches(s *cron.SpecSchedule, w time.Time) bool {
	bit := func(set uint64, v int) bool { return set&(1<<uint(v)) != 0 }
	const star = 1 << 63
	dom, dow := bit(s.Dom, w.Day()), bit(s.Dow, int(w.Weekday()))
	day := dom || dow
	if s.Dom&star != 0 || s.Dow&star != 0 {
		day = dom && dow
	}
	return day && bit(s.Month, int(w.Month())) && bit(s.Hour, w.Hour()) && bit(s.Minute, w.Minute())
}

// reference returns the ticks of a spec among minutes, minute by minute: a spec of set times
// fires at a time's first showing and, when the clocks jump over matching times, at the jump;
// one that runs by the clock at every minute whose wall clock it matches.
func reference(s *cron.SpecSchedule, minutes []minute, setTimes bool, from time.Time) []time.Time {
	var out []time.Time
	for _, m := range minutes {
		hit := matches(s, m.wall) && (m.first || !setTimes)
		for _, w := range m.skipped {
			hit = hit || (setTimes && matches(s, w))
		}
		if hit && !m.at.Before(from) {
			out = append(out, m.at)
		}
	}
	return out
}

// TestNextFireAgainstTheWallClockMinuteByMinute compares the ticks of schedules with a
// reference that reads the zone's wall clock minute by minute, over the 40 hours around every
// change of offset of 2018 and 2026 and two days without one, in zones whose changes are
// unusual: at midnight (Sao Paulo, Havana, Santiago, Cairo, Asuncion), by 30 minutes
// (Lord_Howe), by two hours (Troll), at a 45-minute offset (Chatham), at odd hours.
func TestNextFireAgainstTheWallClockMinuteByMinute(t *testing.T) {
	t.Parallel()
	zones := []string{"America/New_York", "Europe/London", "America/Sao_Paulo", "America/Havana", "America/Santiago",
		"Australia/Lord_Howe", "Pacific/Chatham", "America/Asuncion", "Asia/Beirut", "Antarctica/Troll", "Africa/Cairo",
		"Asia/Tehran"}
	specs := []struct {
		cron     string
		setTimes bool
	}{
		{"0 0 * * *", true}, {"30 0 * * *", true}, {"30 1 * * *", true}, {"45 1 * * *", true},
		{"0 2 * * *", true}, {"30 2 * * *", true}, {"0 3 * * *", true}, {"0 12 * * *", true}, {"59 23 * * *", true},
		{"15 0,1,2,3 * * *", true}, {"0 0-3 * * 0", true}, {"0 0 1,4,5 * *", true}, {"0,30 0-3 * * *", true},
		{"30 * * * *", false}, {"*/20 * * * *", false}, {"0 */2 * * *", false}, {"*/30 1 * * *", false},
	}
	compared := 0
	for _, zone := range zones {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		for _, year := range []int{2018, 2026} {
			calm := time.Date(year, 1, 10, 0, 0, 0, 0, time.UTC)
			windows := [][2]time.Time{{calm, calm.Add(48 * time.Hour)}}
			for at := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC); ; {
				_, end := at.In(loc).ZoneBounds()
				if end.IsZero() || end.Year() > year {
					break
				}
				windows = append(windows, [2]time.Time{end.Add(-20 * time.Hour), end.Add(20 * time.Hour)})
				at = end
			}
			for _, win := range windows {
				minutes := walk(loc, win[0].Add(-6*time.Hour), win[1])
				for _, sp := range specs {
					raw, err := cron.ParseStandard("CRON_TZ=" + zone + " " + sp.cron)
					if err != nil {
						t.Fatal(err)
					}
					want := reference(raw.(*cron.SpecSchedule), minutes, sp.setTimes, win[0])
					got := ticks(&campaigns.Definition{Schedule: campaigns.Schedule{Cron: sp.cron, Timezone: zone}}, win[0], win[1])
					if d := diff(got, want); d != "" {
						t.Errorf("%q in %s, %s to %s: %s", sp.cron, zone, win[0].Format(time.RFC3339), win[1].Format(time.RFC3339), d)
					}
					compared++
				}
			}
		}
	}
	if compared < 1000 {
		t.Fatalf("only %d comparisons", compared)
	}
}

// diff describes the first differences between two lists of ticks ("" when equal).
func diff(got, want []time.Time) string {
	var b strings.Builder
	for g, w, n := 0, 0, 0; (g < len(got) || w < len(want)) && n < 3; n++ {
		switch {
		case g < len(got) && w < len(want) && got[g].Equal(want[w]):
			g++
			w++
			n--
		case w >= len(want) || (g < len(got) && got[g].Before(want[w])):
			b.WriteString("extra tick " + got[g].Format(time.RFC3339) + "; ")
			g++
		default:
			b.WriteString("missing tick " + want[w].Format(time.RFC3339) + "; ")
			w++
		}
	}
	return b.String()
}
