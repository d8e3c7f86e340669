package campaigns

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// SendHours are a campaign's send hours (key send_window): the weekdays and local hours in
// which a recipient may receive a message. Hours whose From is after their To span midnight;
// they belong to the day they open on (days: [fri] with 22:00-06:00 opens Friday night and
// closes Saturday morning).
type SendHours struct {
	// days is indexed by time.Weekday.
	days [7]bool
	// from and to are minutes after local midnight.
	from, to int
	// Zone is the send hours' fixed zone, or "" for the recipient's own zone.
	Zone string
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// SendHours returns the campaign's send hours, or nil when it has none. The definition must
// have been validated (Load and Parse do that).
func (d *Definition) SendHours() (*SendHours, error) {
	w := d.SendHoursSpec
	if w.From == "" && w.To == "" {
		return nil, nil
	}
	zone := w.Timezone
	if zone == "recipient" {
		zone = ""
	}
	return NewSendHours(w.Days, w.From, w.To, zone)
}

// NewSendHours builds send hours from days (mon..sun; none means every day), local times "HH:MM",
// and an IANA zone ("" for the recipient's zone).
func NewSendHours(days []string, from, to, zone string) (*SendHours, error) {
	w := &SendHours{Zone: zone}
	if len(days) == 0 {
		w.days = [7]bool{true, true, true, true, true, true, true}
	}
	for _, d := range days {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return nil, fmt.Errorf("send window: day %q: want mon..sun", d)
		}
		w.days[wd] = true
	}
	var err error
	if w.from, err = minutes(from); err != nil {
		return nil, err
	}
	if w.to, err = minutes(to); err != nil {
		return nil, err
	}
	if w.from == w.to {
		return nil, fmt.Errorf("send window: from equals to")
	}
	if zone != "" {
		if _, err := LoadZone(zone); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func minutes(hhmm string) (int, error) {
	if !hhmmRE.MatchString(hhmm) {
		return 0, fmt.Errorf("send window: %q: want HH:MM", hhmm)
	}
	h, _ := strconv.Atoi(hhmm[:2])
	m, _ := strconv.Atoi(hhmm[3:])
	return h*60 + m, nil
}

// String is the send hours' compact form, as carried in send payloads: "DAYS|HHMM|HHMM|ZONE"
// with DAYS seven 0/1 flags from Sunday, e.g. "0111110|0900|2000|America/New_York".
func (w *SendHours) String() string {
	var b strings.Builder
	for _, on := range w.days {
		if on {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	fmt.Fprintf(&b, "|%02d%02d|%02d%02d|", w.from/60, w.from%60, w.to/60, w.to%60)
	b.WriteString(w.Zone)
	return b.String()
}

// hoursCache holds parsed compact send hours: a worker sees the same few strings all day.
var hoursCache sync.Map

// ParseSendHours parses the compact form made by String.
func ParseSendHours(s string) (*SendHours, error) {
	if v, ok := hoursCache.Load(s); ok {
		return v.(*SendHours), nil
	}
	parts := strings.SplitN(s, "|", 4)
	if len(parts) != 4 || len(parts[0]) != 7 || len(parts[1]) != 4 || len(parts[2]) != 4 {
		return nil, fmt.Errorf("send window %q: malformed", s)
	}
	var days []string
	names := []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	for i, c := range parts[0] {
		if c == '1' {
			days = append(days, names[i])
		}
	}
	if len(days) == 0 {
		return nil, fmt.Errorf("send window %q: no days", s)
	}
	w, err := NewSendHours(days, parts[1][:2]+":"+parts[1][2:], parts[2][:2]+":"+parts[2][2:], parts[3])
	if err != nil {
		return nil, err
	}
	hoursCache.Store(s, w)
	return w, nil
}

// NextOpen returns t when the send hours are open at t in loc, else the next instant they
// open. Wall-clock times are taken in loc on each calendar day, so the send hours keep their
// local times across daylight-saving changes. A local time that does not exist that day
// (skipped by a spring-forward change) opens them when the clock jumps past it; a local time that
// occurs twice (fall-back) means its first occurrence.
func (w *SendHours) NextOpen(t time.Time, loc *time.Location) time.Time {
	lt := t.In(loc)
	y, m, d := lt.Date()
	// Start a day early: send hours that span midnight may have opened yesterday.
	for off := -1; off <= 8; off++ {
		noon := time.Date(y, m, d+off, 12, 0, 0, 0, loc)
		if !w.days[noon.Weekday()] {
			continue
		}
		dy, dm, dd := noon.Date()
		start := wallTime(dy, dm, dd, w.from, loc)
		endDay := dd
		if w.to < w.from {
			endDay++
		}
		end := wallTime(dy, dm, endDay, w.to, loc)
		if !end.After(start) || !t.Before(end) {
			continue // empty that day (inside a clock change), or already closed
		}
		if t.Before(start) {
			return start
		}
		return t
	}
	return time.Time{} // unreachable: valid send hours open at least once a week
}

// Open reports whether the send hours are open at t in loc.
func (w *SendHours) Open(t time.Time, loc *time.Location) bool { return w.NextOpen(t, loc).Equal(t) }

// wallTime returns the instant at which loc's clocks show the given date and minute of day.
func wallTime(y int, mo time.Month, d, minute int, loc *time.Location) time.Time {
	h, mi := minute/60, minute%60
	t := time.Date(y, mo, d, h, mi, 0, 0, loc)
	want := time.Date(y, mo, d, h, mi, 0, 0, time.UTC)
	got := asUTC(t)
	switch {
	case got.After(want):
		// The wall time falls in a gap and time.Date moved past it: the send hours open when
		// the clocks jump, the start of t's zone period.
		start, _ := t.ZoneBounds()
		return start
	case got.Before(want):
		_, end := t.ZoneBounds()
		return end
	}
	// The same wall time may also have occurred in the previous zone period (clocks set
	// back): take the first occurrence.
	start, _ := t.ZoneBounds()
	if !start.IsZero() {
		_, off := start.Add(-time.Nanosecond).Zone()
		c := want.Add(-time.Duration(off) * time.Second)
		if c.Before(start) && asUTC(c.In(loc)).Equal(want) {
			return c
		}
	}
	return t
}

// asUTC returns t's wall clock read as UTC, to compare wall clocks across zones.
func asUTC(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// zoneCache maps IANA names to loaded locations: time.LoadLocation reads the zone database on
// every call. zoneCached counts its entries, which maxCachedZones bounds.
var (
	zoneCache  sync.Map
	zoneCached atomic.Int64
)

// maxCachedZones bounds the zone cache: above the zone database's few thousand names, so
// every real zone stays cached.
const maxCachedZones = 4096

// LoadZone is the one reader of a time zone Herald is given: a campaign's schedule.timezone
// and send_window.timezone (validation, ScheduleZone, the send hours) and an audience's time
// zone column. (The scheduler's cron reads schedule.timezone itself: a spelling validation
// took, which time.LoadLocation reads as LoadZone does.) It is time.LoadLocation with a
// process-wide cache, and it takes only a zone's own IANA spelling: time.LoadLocation also
// accepts endless others of one zone ("America/./New_York", "America//New_York"), and an
// audience's time zone column, which is untrusted, could make each load and keep a zone table
// of its own (about 4.6 KB a row). Nor does it take "Local", the zone of whichever machine
// reads it. A spelling it refuses is a *ZoneError, which can name the spelling to write
// instead.
func LoadZone(name string) (*time.Location, error) {
	if v, ok := zoneCache.Load(name); ok {
		return v.(*time.Location), nil
	}
	if !cleanZoneName(name) {
		return nil, &ZoneError{Name: name}
	}
	if name == "Local" {
		return nil, &ZoneError{Name: name, Local: true}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", name, err)
	}
	if zoneCached.Load() < maxCachedZones {
		if _, loaded := zoneCache.LoadOrStore(name, loc); !loaded {
			zoneCached.Add(1)
		}
	}
	return loc, nil
}

// ZoneError is LoadZone's refusal of a zone's spelling.
type ZoneError struct {
	// Name is the spelling given.
	Name string
	// Local says Name is "Local", the zone of the machine that reads it.
	Local bool
}

func (e *ZoneError) Error() string { return fmt.Sprintf("time zone %q: %s", e.Name, e.Problem()) }

// Use returns the zone's own spelling when Name is another spelling of a zone LoadZone takes
// ("Asia/Tokyo" for "Asia/./Tokyo"); "" when there is none. It is worked out when asked, not
// by LoadZone: a row's zone column is read without it.
func (e *ZoneError) Use() string {
	if e.Local {
		return ""
	}
	return zoneSpelling(e.Name)
}

// Problem says what is wrong with the spelling and what to write instead.
func (e *ZoneError) Problem() string {
	if e.Local {
		return "the zone of whichever machine reads it, not an IANA zone name: name the zone (e.g. Europe/Berlin, or UTC)"
	}
	if use := e.Use(); use != "" {
		return fmt.Sprintf("not an IANA zone name as written: write %q", use)
	}
	return "not an IANA zone name (e.g. Europe/Berlin)"
}

// cleanZoneName reports whether name is written as a zone name is: no surrounding space, no
// "." or ".." parts, no doubled, leading or trailing slash.
func cleanZoneName(name string) bool {
	return name != "" && name != "." && name != ".." && strings.TrimSpace(name) == name && path.Clean(name) == name &&
		!strings.HasPrefix(name, "/") && !strings.HasPrefix(name, "../")
}

// zoneSpelling returns the own spelling of the zone another spelling names, when LoadZone
// takes it: name without surrounding space, "." parts and doubled, leading or trailing
// slashes. "" when there is none.
func zoneSpelling(name string) string {
	clean := strings.TrimLeft(path.Clean(strings.TrimSpace(name)), "/")
	if clean == name || !cleanZoneName(clean) {
		return ""
	}
	if _, err := LoadZone(clean); err != nil {
		return ""
	}
	return clean
}

// zoneProblem says what is wrong with a zone a campaign file names, with what to write
// instead; "" when LoadZone takes it. other, when set, is the field's other value ("recipient"),
// offered when name is not another spelling of a zone.
func zoneProblem(name, other string) string {
	_, err := LoadZone(name)
	if err == nil {
		return ""
	}
	var ze *ZoneError
	if errors.As(err, &ze) && (ze.Local || ze.Use() != "") {
		return fmt.Sprintf("%q is %s", name, ze.Problem())
	}
	if other != "" {
		return fmt.Sprintf("%q: want %s or an IANA time zone", name, other)
	}
	return fmt.Sprintf("%q is not an IANA time zone (e.g. Europe/Berlin)", name)
}

// ZoneFor returns a recipient's time zone for send hours: the audience's time zone column
// when it names an IANA zone; else the zone of the phone number's prefix (libphonenumber's
// prefix-to-zone table, which knows e.g. that +1 415 is America/Los_Angeles; a BSUID uses its
// country's calling code); when that names several zones, the fallback if it is one of them,
// else the first; else the fallback (the campaign's schedule zone, or UTC).
func ZoneFor(column, recipient string, fallback *time.Location) *time.Location {
	if fallback == nil {
		fallback = time.UTC
	}
	if column = strings.TrimSpace(column); column != "" {
		if loc, err := LoadZone(column); err == nil {
			return loc
		}
	}
	prefix := ""
	switch {
	case strings.HasPrefix(recipient, "+"):
		prefix = recipient
	case strings.HasPrefix(recipient, "bsuid:") && len(recipient) >= 8:
		if cc := phonenumbers.GetCountryCodeForRegion(recipient[6:8]); cc > 0 {
			prefix = strconv.Itoa(cc)
		}
	}
	if prefix == "" {
		return fallback
	}
	zones, err := phonenumbers.GetTimezonesForPrefix(prefix)
	if err != nil || len(zones) == 0 || zones[0] == phonenumbers.UNKNOWN_TIMEZONE {
		return fallback
	}
	if len(zones) > 1 {
		for _, z := range zones {
			if z == fallback.String() {
				return fallback
			}
		}
	}
	loc, err := LoadZone(zones[0])
	if err != nil {
		return fallback
	}
	return loc
}

// ScheduleZone is the campaign's zone, schedule.timezone (UTC when unset): its cron ticks in
// it, and a recipient's send hours fall back to it. It is read through LoadZone, as
// validation reads it; an error (a zone the machine's zone database lacks) is returned, never
// read as UTC.
func (d *Definition) ScheduleZone() (*time.Location, error) {
	if d.Schedule.Timezone == "" {
		return time.UTC, nil
	}
	return LoadZone(d.Schedule.Timezone)
}

// ExpireAfterDuration is the campaign's expire_after (0 when unset).
func (d *Definition) ExpireAfterDuration() time.Duration {
	v, _ := ParseDuration(d.ExpireAfter)
	return v
}

// CheckTime says whether a send may go at now: expired when the payload's expiry has passed,
// or when the recipient's send hours open again only after it (skip it as expired); else wait
// is how long until they open (0: send now). asynq may start a task scheduled for their
// opening up to a second early, and a retry may land outside them, so the worker checks
// before every send.
func CheckTime(p SendPayload, now time.Time) (expired bool, wait time.Duration) {
	if p.Expires > 0 && now.Unix() >= p.Expires {
		return true, 0
	}
	if p.SendHours == "" {
		return false, 0
	}
	w, err := ParseSendHours(p.SendHours)
	if err != nil {
		return false, 0 // a payload from a newer version; do not hold the send on it
	}
	loc := time.UTC
	if w.Zone != "" {
		if l, err := LoadZone(w.Zone); err == nil { // ParseSendHours loaded it
			loc = l
		}
	} else if p.Zone != "" {
		if l, err := LoadZone(p.Zone); err == nil {
			loc = l
		}
	}
	next := w.NextOpen(now, loc)
	if p.Expires > 0 && next.Unix() >= p.Expires {
		return true, 0
	}
	return false, next.Sub(now)
}

// Expired reports whether a send is past its campaign's expire_after at now (or cannot be
// sent before it because its send hours open too late).
func Expired(p SendPayload, now time.Time) bool {
	expired, _ := CheckTime(p, now)
	return expired
}
