package campaigns_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
)

// TestDurationFieldsTakeDays: every duration of a campaign file takes a whole number of days
// as on_reply.until always did, and the values read back are the ones validated.
func TestDurationFieldsTakeDays(t *testing.T) {
	t.Parallel()
	d, err := campaigns.Parse("c.yaml", []byte(onReplyHead+`expire_after: 2d
schedule: {cron: "0 9 * * *", missed: run-last, grace: 1d}
unknown: {resend_after: 1d}
on_reply:
  until: 7d
  rules:
    - keyword: later
      template: {name: promo_followup}
      delay: 90m
    - any: true
      template: {name: promo_followup}
      delay: 7d
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	wantEqual(t, "expire_after", 2*24*time.Hour, d.ExpireAfterDuration())
	wantEqual(t, "schedule.grace", 24*time.Hour, d.Schedule.GraceDuration())
	wantEqual(t, "unknown.resend_after", 24*time.Hour, d.ResendAfter())
	wantEqual(t, "on_reply.until", 7*24*time.Hour, d.OnReply.UntilDuration())
	wantEqual(t, "on_reply[0].delay", 90*time.Minute, d.OnReply.Rules[0].DelayDuration())
	wantEqual(t, "on_reply[1].delay", 7*24*time.Hour, d.OnReply.Rules[1].DelayDuration())
}

// TestDurationErrors: a duration refused says where, which field and why, a limit in the unit
// the user wrote.
func TestDurationErrors(t *testing.T) {
	t.Parallel()
	rule := "on_reply:\n  - any: true\n    template: {name: t}\n    delay: "
	for _, tc := range []struct{ name, yaml, want string }{
		{"DelayOverInDays", rule + "8d\n", `c.yaml:7:12: on_reply[0].delay: "8d": at most 7d`},
		{"DelayOverInHours", rule + "200h\n", `c.yaml:7:12: on_reply[0].delay: "200h": at most 168h`},
		{"DelayNotADuration", rule + "1.5d\n", `c.yaml:7:12: on_reply[0].delay: "1.5d" is not a duration (e.g. 10m, 2h, 7d)`},
		{"DelayNegative", rule + "-5m\n", `c.yaml:7:12: on_reply[0].delay: "-5m" is not a duration`},
		{"SessionDelayInDays", "on_reply:\n  - any: true\n    message: {text: hi}\n    delay: 1d\n",
			`c.yaml:7:12: on_reply[0].delay: "1d": a session message this long after the reply always finds the customer's 24-hour window closed`},
		{"UntilOverInHours", "on_reply:\n  until: 800h\n  rules: [{any: true, none: true}]\n", `c.yaml:5:10: on_reply.until: "800h": at most 720h`},
		{"UntilOverInDays", "on_reply:\n  until: 31d\n  rules: [{any: true, none: true}]\n", `c.yaml:5:10: on_reply.until: "31d": at most 30d`},
		{"UntilNotADuration", "on_reply:\n  until: -7d\n  rules: [{any: true, none: true}]\n", `c.yaml:5:10: on_reply.until: "-7d" is not a positive duration (e.g. 72h, 7d)`},
		{"ExpireAfter", "expire_after: 2 days\n", `c.yaml:4:15: expire_after: "2 days" is not a positive duration (e.g. 6h, 90m, 2d)`},
		{"ExpireAfterZero", "expire_after: 0d\n", `c.yaml:4:15: expire_after: "0d" is not a positive duration`},
		{"Grace", "schedule: {cron: \"0 9 * * *\", grace: 1w}\n", `schedule.grace: "1w" is not a positive duration (e.g. 1h, 1d)`},
		{"ResendAfter", "unknown: {resend_after: 1x}\n", `unknown.resend_after: "1x" is not a duration (e.g. 30m, 2h, 1d)`},
		{"ResendAfterTooShort", "unknown: {resend_after: 0d}\n", `unknown.resend_after: "0d": want at least 1m`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := campaigns.Parse("c.yaml", []byte(onReplyHead+tc.yaml))
			var es campaigns.Errors
			if !errors.As(err, &es) {
				t.Fatalf("Parse: %v, want campaigns.Errors", err)
			}
			if !slices.ContainsFunc(es, func(e campaigns.FieldError) bool { return strings.Contains(e.Error(), tc.want) }) {
				t.Errorf("no error contains %q; got:\n%v", tc.want, err)
			}
		})
	}
}
