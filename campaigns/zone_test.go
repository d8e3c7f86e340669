package campaigns_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// TestZoneSpellingsRefusedWhereWritten: a campaign's zones are read by the one zone reader
// (campaigns.LoadZone) in validation as in the expansion, the scheduler and the send hours.
// A spelling it refuses ("Asia/./Tokyo", which time.LoadLocation takes) is a problem of the
// field, at its place in the file, saying what to write instead; so `campaign validate`,
// `plan`, `submit` and `send` (all of which parse the file) refuse it before a run exists.
func TestZoneSpellingsRefusedWhereWritten(t *testing.T) {
	t.Parallel()
	mustZone(t, "Asia/Tokyo")
	const valid = "id: spring-sale\ntemplate: {name: spring_sale, language: en}\naudience: {file: a.csv}\n"
	tests := []struct {
		name, yaml string
		// want is the one problem, "line:col: field: message" after the file name.
		want string
	}{
		{"SendHoursDotSegment", valid + "send_window: {from: \"00:00\", to: \"23:59\", timezone: \"Asia/./Tokyo\"}\n",
			`4:53: send_window.timezone: "Asia/./Tokyo" is not an IANA zone name as written: write "Asia/Tokyo"`},
		{"SendHoursDotSegmentNewYork", valid + "send_window:\n  from: \"09:00\"\n  to: \"20:00\"\n  timezone: America/./New_York\n",
			`7:13: send_window.timezone: "America/./New_York" is not an IANA zone name as written: write "America/New_York"`},
		{"SendHoursDoubledSlash", valid + "send_window: {from: \"09:00\", to: \"20:00\", timezone: America//New_York}\n",
			`4:53: send_window.timezone: "America//New_York" is not an IANA zone name as written: write "America/New_York"`},
		{"SendHoursUnknownZone", valid + "send_window: {from: \"09:00\", to: \"20:00\", timezone: Asia/Tokio}\n",
			`4:53: send_window.timezone: "Asia/Tokio": want recipient or an IANA time zone`},
		{"ScheduleDotSegment", valid + "schedule: {cron: \"0 9 * * *\", timezone: \"Asia/./Tokyo\"}\n",
			`4:41: schedule.timezone: "Asia/./Tokyo" is not an IANA zone name as written: write "Asia/Tokyo"`},
		{"ScheduleTrailingSlash", valid + "schedule:\n  cron: \"0 9 * * *\"\n  timezone: \"Asia/Tokyo/\"\n",
			`6:13: schedule.timezone: "Asia/Tokyo/" is not an IANA zone name as written: write "Asia/Tokyo"`},
		{"ScheduleSpaces", valid + "schedule: {cron: \"0 9 * * *\", timezone: \" Asia/Tokyo\"}\n",
			`4:41: schedule.timezone: " Asia/Tokyo" is not an IANA zone name as written: write "Asia/Tokyo"`},
		{"ScheduleLocal", valid + "schedule: {cron: \"0 9 * * *\", timezone: Local}\n",
			`4:41: schedule.timezone: "Local" is the zone of whichever machine reads it`},
		{"ScheduleUnknownZone", valid + "schedule: {cron: \"0 9 * * *\", timezone: Europe/Atlantis}\n",
			`4:41: schedule.timezone: "Europe/Atlantis" is not an IANA time zone (e.g. Europe/Berlin)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := campaigns.Parse("c.yaml", []byte(tt.yaml))
			var errs campaigns.Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("Parse: %+v, %v; want one problem", d, err)
			}
			if got := errs[0].Error(); !strings.HasPrefix(got, "c.yaml:"+tt.want) {
				t.Fatalf("problem %q, want it to start with %q", got, "c.yaml:"+tt.want)
			}
		})
	}

	t.Run("CampaignValidate", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, dir, "a.csv", "phone,name\n+14155552671,ana\n")
		path := writeFile(t, dir, "c.yaml", valid+"send_window: {from: \"00:00\", to: \"23:59\", timezone: \"Asia/./Tokyo\"}\n")
		r := campaigns.Validate(path, campaigns.ValidateOptions{Rows: true})
		if r.OK || len(r.Problems) != 1 {
			t.Fatalf("validate: %+v; want the zone's problem", r)
		}
		p := r.Problems[0]
		if p.Line != 4 || p.Column != 53 || p.Field != "send_window.timezone" || !strings.Contains(p.Msg, `write "Asia/Tokyo"`) {
			t.Fatalf("problem %+v; want it at 4:53, send_window.timezone, saying what to write", p)
		}
	})

	t.Run("OwnSpellingsTaken", func(t *testing.T) {
		t.Parallel()
		for _, zone := range []string{"Asia/Tokyo", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "UTC", "EST5EDT"} {
			if _, err := campaigns.Parse("c.yaml", []byte(valid+"schedule: {cron: \"0 9 * * *\", timezone: \""+zone+"\"}\n"+
				"send_window: {from: \"09:00\", to: \"20:00\", timezone: \""+zone+"\"}\n")); err != nil {
				t.Errorf("%s: %v", zone, err)
			}
		}
	})
}

// TestLoadZoneSaysWhatToWrite: LoadZone's refusal of another spelling of a zone names the
// zone's own spelling.
func TestLoadZoneSaysWhatToWrite(t *testing.T) {
	t.Parallel()
	mustZone(t, "Asia/Tokyo")
	for name, use := range map[string]string{"Asia/./Tokyo": "Asia/Tokyo", "Asia//Tokyo": "Asia/Tokyo", "/Asia/Tokyo": "Asia/Tokyo",
		"./Asia/Tokyo": "Asia/Tokyo", "Asia/Tokyo/": "Asia/Tokyo", "Asia/Tokyo ": "Asia/Tokyo", "Asia/./Tokio": "", "Local": "",
		"../Asia/Tokyo": ""} {
		_, err := campaigns.LoadZone(name)
		var ze *campaigns.ZoneError
		if !errors.As(err, &ze) || ze.Use() != use {
			t.Errorf("LoadZone(%q): %v; want a ZoneError naming %q", name, err, use)
		}
	}
}

// TestScheduleZoneHasNoUTCFallback: a campaign zone that does not load is an error, never
// UTC in its place (the scheduler would tick in the zone as written, the send hours in UTC).
func TestScheduleZoneHasNoUTCFallback(t *testing.T) {
	t.Parallel()
	for _, zone := range []string{"Asia/./Tokyo", "Europe/Atlantis", "Local"} {
		def := &campaigns.Definition{Schedule: campaigns.Schedule{Timezone: zone}}
		if loc, err := def.ScheduleZone(); err == nil {
			t.Errorf("ScheduleZone of %q: %v, no error", zone, loc)
		}
	}
	loc, err := (&campaigns.Definition{}).ScheduleZone()
	if err != nil || loc.String() != "UTC" {
		t.Fatalf("no zone: %v %v; want UTC", loc, err)
	}
	loc, err = (&campaigns.Definition{Schedule: campaigns.Schedule{Timezone: "Asia/Tokyo"}}).ScheduleZone()
	if err != nil || loc.String() != "Asia/Tokyo" {
		t.Fatalf("Asia/Tokyo: %v %v", loc, err)
	}
}
