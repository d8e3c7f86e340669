package campaigns_test

import (
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// TestFollowupZoneColumnCarried: a delayed follow-up is sent within the send hours, in the
// recipient's zone when the send hours are: the run's sends carry the audience's time zone
// column for it. A campaign without delayed follow-ups, without send hours or with send hours
// in a fixed zone carries nothing for it.
func TestFollowupZoneColumnCarried(t *testing.T) {
	t.Parallel()
	const head = "id: promo\ntemplate: {name: promo, language: en_US}\naudience: {file: a.csv, timezone: tz}\n"
	const hours = "send_window: {from: \"09:00\", to: \"20:00\"}\n"
	const delayed = "on_reply:\n  - button: Later\n    delay: 2d\n    template: {name: reminder}\n"
	row := map[string]string{"phone": "+15550000001", "tz": "Asia/Tokyo", "name": "Ana"}
	for _, c := range []struct {
		name, yaml string
		want       map[string]string
	}{
		{"DelayedInTheRecipientsZone", head + hours + delayed, map[string]string{"tz": "Asia/Tokyo"}},
		{"WithTheColumnsRead", head + hours + strings.Replace(delayed, "template: {name: reminder}",
			"template: {name: reminder}\n    parameters: {body_1: \"{{ .name }}\"}", 1), map[string]string{"tz": "Asia/Tokyo", "name": "Ana"}},
		{"RecipientSpelledOut", head + strings.Replace(hours, "}", ", timezone: recipient}", 1) + delayed, map[string]string{"tz": "Asia/Tokyo"}},
		{"FixedZone", head + strings.Replace(hours, "}", ", timezone: Europe/Berlin}", 1) + delayed, nil},
		{"NoSendHours", head + delayed, nil},
		{"NoDelay", head + hours + strings.Replace(delayed, "    delay: 2d\n", "", 1), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d, err := campaigns.Parse("c.yaml", []byte(c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "carried", c.want, d.OnReply.PickColumns(row))
			wantEqual(t, "carries", c.want != nil, d.OnReply.Carries())
		})
	}
}
