package campaigns_test

import (
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := campaigns.LoadZone(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func mustWindow(t *testing.T, days []string, from, to, zone string) *campaigns.SendHours {
	t.Helper()
	w, err := campaigns.NewSendHours(days, from, to, zone)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestWindowNextOpenAcrossDST walks a simulated clock over the daylight-saving changes of
// March 2026 in New York (2026-03-08 02:00 EST → 03:00 EDT) and October 2026 in Berlin
// (2026-10-25 03:00 CEST → 02:00 CET) and checks every opening is at the window's local hour.
func TestWindowNextOpenAcrossDST(t *testing.T) {
	t.Parallel()
	ny := mustZone(t, "America/New_York")
	berlin := mustZone(t, "Europe/Berlin")
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name     string
		w        *campaigns.SendHours
		loc      *time.Location
		at, want string // RFC 3339 instants
	}{
		// 09:00 in New York is 14:00Z before the change and 13:00Z after it.
		{"NYEveningBeforeChange", mustWindow(t, nil, "09:00", "20:00", ""), ny, "2026-03-07T02:00:00Z", "2026-03-07T14:00:00Z"},
		{"NYNightOfChange", mustWindow(t, nil, "09:00", "20:00", ""), ny, "2026-03-08T04:00:00Z", "2026-03-08T13:00:00Z"},
		{"NYInsideAfterChange", mustWindow(t, nil, "09:00", "20:00", ""), ny, "2026-03-08T15:00:00Z", "2026-03-08T15:00:00Z"},
		{"NYClosedAfterChange", mustWindow(t, nil, "09:00", "20:00", ""), ny, "2026-03-09T00:30:00Z", "2026-03-09T13:00:00Z"},
		// A window opening at 02:30, a wall time that does not exist on 2026-03-08 in New York:
		// it opens when the clocks jump, 03:00 EDT = 07:00Z.
		{"NYNonexistentOpening", mustWindow(t, nil, "02:30", "05:00", ""), ny, "2026-03-08T05:00:00Z", "2026-03-08T07:00:00Z"},
		{"NYNonexistentOpeningDayAfter", mustWindow(t, nil, "02:30", "05:00", ""), ny, "2026-03-08T09:30:00Z", "2026-03-09T06:30:00Z"},
		// Weekdays only: Saturday 2026-03-07 evening → Monday 09:00 EDT (after the change).
		{"NYWeekdaysOverChange", mustWindow(t, []string{"mon", "tue", "wed", "thu", "fri"}, "09:00", "17:00", ""), ny, "2026-03-06T23:00:00Z", "2026-03-09T13:00:00Z"},

		// 09:00 in Berlin is 07:00Z before the change and 08:00Z after it.
		{"BerlinBeforeChange", mustWindow(t, nil, "09:00", "20:00", ""), berlin, "2026-10-24T20:00:00Z", "2026-10-25T08:00:00Z"},
		{"BerlinDayBefore", mustWindow(t, nil, "09:00", "20:00", ""), berlin, "2026-10-24T05:00:00Z", "2026-10-24T07:00:00Z"},
		{"BerlinClosesAtLocalEight", mustWindow(t, nil, "09:00", "20:00", ""), berlin, "2026-10-25T19:30:00Z", "2026-10-26T08:00:00Z"},
		{"BerlinStillOpenAt1859Z", mustWindow(t, nil, "09:00", "20:00", ""), berlin, "2026-10-25T18:59:00Z", "2026-10-25T18:59:00Z"},
		// 02:30 happens twice in Berlin on 2026-10-25 (00:30Z CEST and 01:30Z CET): the first.
		{"BerlinAmbiguousOpening", mustWindow(t, nil, "02:30", "06:00", ""), berlin, "2026-10-24T22:00:00Z", "2026-10-25T00:30:00Z"},
		// A window spanning midnight, 22:00-06:00, the night of the change: open from 20:00Z
		// (22:00 CEST) to 05:00Z (06:00 CET), a night one hour longer.
		{"BerlinOvernightOpen", mustWindow(t, nil, "22:00", "06:00", ""), berlin, "2026-10-25T04:59:00Z", "2026-10-25T04:59:00Z"},
		{"BerlinOvernightClosed", mustWindow(t, nil, "22:00", "06:00", ""), berlin, "2026-10-25T05:00:00Z", "2026-10-25T21:00:00Z"},
		// A fixed-zone window ignores the recipient's zone only through the caller: here the
		// caller passes the window's zone.
		{"FixedZone", mustWindow(t, nil, "10:00", "11:00", "Europe/Berlin"), berlin, "2026-10-26T08:00:00Z", "2026-10-26T09:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.w.NextOpen(utc(tc.at), tc.loc)
			if want := utc(tc.want); !got.Equal(want) {
				t.Errorf("NextOpen(%s) = %s (%s), want %s (%s)", tc.at, got.UTC().Format(time.RFC3339),
					got.In(tc.loc).Format("2006-01-02 15:04 MST"), tc.want, want.In(tc.loc).Format("2006-01-02 15:04 MST"))
			}
		})
	}
}

// TestWindowSimulatedClockAcrossDST steps a simulated clock minute by minute through a week
// around each change and checks the window is open exactly when the local clock reads within
// its hours, and that NextOpen always lands on an open instant at the local opening time.
func TestWindowSimulatedClockAcrossDST(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		zone  string
		start string
	}{
		{"America/New_York", "2026-03-05T00:00:00Z"},
		{"Europe/Berlin", "2026-10-22T00:00:00Z"},
	} {
		t.Run(tc.zone, func(t *testing.T) {
			t.Parallel()
			loc := mustZone(t, tc.zone)
			w := mustWindow(t, []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, "08:30", "21:15", "")
			start, _ := time.Parse(time.RFC3339, tc.start)
			for now := start; now.Before(start.Add(7 * 24 * time.Hour)); now = now.Add(time.Minute) {
				local := now.In(loc)
				mins := local.Hour()*60 + local.Minute()
				wantOpen := mins >= 8*60+30 && mins < 21*60+15
				next := w.NextOpen(now, loc)
				if gotOpen := next.Equal(now); gotOpen != wantOpen {
					t.Fatalf("at %s (%s): open %v, want %v", now.Format(time.RFC3339), local.Format("15:04 MST"), gotOpen, wantOpen)
				}
				if !wantOpen {
					nl := next.In(loc)
					if nl.Hour() != 8 || nl.Minute() != 30 || !next.After(now) || next.Sub(now) > 24*time.Hour {
						t.Fatalf("at %s: next opening %s, want the next 08:30 local", now.Format(time.RFC3339), nl.Format(time.RFC3339))
					}
				}
			}
		})
	}
}

func TestWindowCompactForm(t *testing.T) {
	t.Parallel()
	w := mustWindow(t, []string{"mon", "fri"}, "09:05", "18:00", "America/New_York")
	s := w.String()
	if s != "0100010|0905|1800|America/New_York" {
		t.Fatalf("String() = %q", s)
	}
	back, err := campaigns.ParseSendHours(s)
	if err != nil {
		t.Fatal(err)
	}
	if back.String() != s {
		t.Fatalf("round trip %q → %q", s, back.String())
	}
	for _, bad := range []string{"", "1111111|0900|1800", "111|0900|1800|", "0000000|0900|1800|", "1111111|0900|0900|"} {
		if _, err := campaigns.ParseSendHours(bad); err == nil {
			t.Errorf("ParseWindow(%q) accepted", bad)
		}
	}
}

func TestZoneFor(t *testing.T) {
	t.Parallel()
	ny := mustZone(t, "America/New_York")
	for _, tc := range []struct{ column, recipient, want string }{
		{"Asia/Tokyo", "+14155552671", "Asia/Tokyo"},                              // the column wins
		{"Not/AZone", "+14155552671", "America/Los_Angeles"},                      // a bad column falls through to the number
		{"", "+14155552671", "America/Los_Angeles"},                               // +1 415: California
		{"", "+5511987654321", "America/Sao_Paulo"},                               // +55 11: São Paulo
		{"", "+4915112345678", "Europe/Berlin"},                                   // +49: Germany
		{"", "bsuid:DE.abc123", "Europe/Berlin"},                                  // a BSUID's country
		{"", "bsuid:XX.abc123", "America/New_York"},                               // unknown: the fallback
		{"", "", "America/New_York"},                                              // nothing known: the fallback
		{" Europe/Lisbon ", "+5511987654321", "Europe/Lisbon"},                    // trimmed
		{"", "+18005550199", "America/New_York"},                                  // toll-free +1 800: several zones, the fallback is one of them
		{"", "+61412345678", campaigns.ZoneFor("", "+61412345678", nil).String()}, // stable
	} {
		if got := campaigns.ZoneFor(tc.column, tc.recipient, ny).String(); got != tc.want {
			t.Errorf("ZoneFor(%q, %q) = %s, want %s", tc.column, tc.recipient, got, tc.want)
		}
	}
}

func TestCheckTime(t *testing.T) {
	t.Parallel()
	ny := mustZone(t, "America/New_York")
	w := mustWindow(t, nil, "09:00", "20:00", "")
	at := time.Date(2026, 3, 8, 8, 59, 30, 0, ny) // 30 s before the window opens
	p := campaigns.SendPayload{SendHours: w.String(), Zone: "America/New_York"}
	if expired, wait := campaigns.CheckTime(p, at); expired || wait != 30*time.Second {
		t.Errorf("before opening: expired %v wait %s, want false 30s", expired, wait)
	}
	if expired, wait := campaigns.CheckTime(p, at.Add(time.Minute)); expired || wait != 0 {
		t.Errorf("inside: expired %v wait %s, want false 0", expired, wait)
	}
	p.Expires = at.Add(10 * time.Second).Unix()
	if !campaigns.Expired(p, at) {
		t.Error("a send whose window opens after its expiry is not reported expired")
	}
	p = campaigns.SendPayload{Expires: at.Unix()}
	if !campaigns.Expired(p, at) || campaigns.Expired(p, at.Add(-time.Second)) {
		t.Error("expiry is not at the payload's second")
	}
	if expired, wait := campaigns.CheckTime(campaigns.SendPayload{}, at); expired || wait != 0 {
		t.Error("a payload without window or expiry is held")
	}
}
