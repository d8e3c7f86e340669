package campaigns

import (
	"fmt"
	"time"
)

// Timing applies a campaign's send hours and expiry to the sends of one run: the expansion
// stamps each task with them and schedules it for its window's opening, and `campaign plan`
// counts the recipients who would wait or expire the same way, through the same Apply.
type Timing struct {
	hours    *SendHours
	text     string         // hours.String(), as every payload carries it
	fixed    *time.Location // the send hours' own zone, if they have one
	fallback *time.Location // the campaign's zone, for recipients whose zone is unknown
	tzColumn string
	expires  time.Time // zero: never
}

// NewTiming reads def's send hours, their zones and its expiry for a run created at created
// (zero: now(), for a run value without its creation time): expire_after counts from there.
// A zone that does not load is an error, not UTC: the zones are read as validation read them
// (LoadZone), so a zone database without one stops the expansion rather than sending in UTC.
func NewTiming(def *Definition, created time.Time, now func() time.Time) (*Timing, error) {
	w, err := def.SendHours()
	if err != nil {
		return nil, fmt.Errorf("send_window: %w", err)
	}
	t := &Timing{hours: w, tzColumn: def.Audience.Timezone}
	if w != nil {
		t.text = w.String()
	}
	switch {
	case w == nil:
	case w.Zone != "":
		if t.fixed, err = LoadZone(w.Zone); err != nil {
			return nil, fmt.Errorf("send_window.timezone: %w", err)
		}
	default:
		if t.fallback, err = def.ScheduleZone(); err != nil {
			return nil, fmt.Errorf("schedule.timezone (the zone of recipients whose own is unknown): %w", err)
		}
	}
	if d := def.ExpireAfterDuration(); d > 0 {
		if created.IsZero() {
			created = now()
		}
		t.expires = created.Add(d)
	}
	return t, nil
}

// Apply stamps a send's payload with its send hours, zone and expiry, and returns when it may
// go (zero: now) and, when it cannot go before it expires, the skip reason "expired".
func (t *Timing) Apply(p *SendPayload, row Row, now time.Time) (time.Time, string) {
	at := now
	if t.hours != nil {
		p.SendHours = t.text
		loc := t.fixed
		if loc == nil {
			loc = ZoneFor(row.Cols[t.tzColumn], row.Recipient, t.fallback)
			p.Zone = loc.String()
		}
		at = t.hours.NextOpen(now, loc)
	}
	if !t.expires.IsZero() {
		p.Expires = t.expires.Unix()
		if !at.Before(t.expires) {
			return time.Time{}, "expired"
		}
	}
	if at.After(now) {
		return at, ""
	}
	return time.Time{}, ""
}

// SendHoursNote is the waiting note (ledger.SetWaiting) of a run whose sends wait for their
// send hours to open at `at`, written by the expansion that schedules them and by the worker
// that holds one back; `run show` prints it after "waiting for the ".
func SendHoursNote(at time.Time) string {
	return "send hours: sends resume at " + at.UTC().Format(time.RFC3339)
}
