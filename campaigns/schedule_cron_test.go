package campaigns_test

import (
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// TestScheduleCronForms: schedule.cron is five fields in schedule.timezone. The fixed
// descriptors that equal a five-field spec (@daily is "0 0 * * *") are accepted; @every, whose
// ticks count from whenever a scheduler loads the campaign, and a zone prefix (CRON_TZ=, TZ=),
// which would tick in a zone other than schedule.timezone (the one campaign ls and send_window
// read), are refused at the field, with a message naming schedule.timezone where it applies.
func TestScheduleCronForms(t *testing.T) {
	t.Parallel()
	head := "id: nightly\ntemplate: {name: hello, language: en}\naudience: {file: a.csv}\n"
	for _, tc := range []struct {
		cron string
		want string // in the one error at schedule.cron; "" when valid
	}{
		{"0 20 * * *", ""},
		{"*/15 8-18 * * mon-fri", ""},
		{"@daily", ""},
		{"@midnight", ""},
		{"@hourly", ""},
		{"@weekly", ""},
		{"@monthly", ""},
		{"@yearly", ""},
		{"@annually", ""},
		{"@every 90m", "@every"},
		{"@every 1h", "@every"},
		{"CRON_TZ=Europe/Berlin 0 9 * * *", "schedule.timezone"},
		{"TZ=Asia/Tokyo 0 9 * * *", "schedule.timezone"},
		{"  CRON_TZ=UTC @daily", "schedule.timezone"},
		{"0 9 * *", "five fields"},
	} {
		t.Run(tc.cron, func(t *testing.T) {
			t.Parallel()
			yaml := head + "schedule:\n  timezone: Europe/Berlin\n  cron: \"" + tc.cron + "\"\n"
			_, err := campaigns.Parse("nightly.yaml", []byte(yaml))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("%q refused: %v", tc.cron, err)
				}
				return
			}
			errs, ok := err.(campaigns.Errors)
			if !ok || len(errs) != 1 {
				t.Fatalf("%q: error %v, want one at schedule.cron", tc.cron, err)
			}
			if msg := errs[0].Error(); !strings.HasPrefix(msg, "nightly.yaml:6:9: schedule.cron: ") || !strings.Contains(msg, tc.want) {
				t.Fatalf("%q: %q, want it at nightly.yaml:6:9 schedule.cron, naming %q", tc.cron, msg, tc.want)
			}
		})
	}
}
