package conversation_test

import (
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
)

// Category, the one rule for a follow-up's category, chooses its queue as a campaign's
// category does: the template's (sent in the campaign's category), or utility for a session
// message without a fallback template.
func TestFollowupCategoryChoosesTheQueue(t *testing.T) {
	t.Parallel()
	for _, category := range []string{"marketing", "utility"} {
		def, err := campaigns.Parse("c.yaml", []byte(`
id: c
template: {name: spring_promo, language: en_US, category: `+category+`}
audience: {file: audience.csv}
on_reply:
  - {name: msg, button: A, message: {text: "hi"}}
  - {name: tpl, button: B, template: {name: t_other}}
  - {name: both, button: C, message: {text: "hi"}, template: {name: t_other}}
`))
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []string{campaigns.SessionOnlyCategory, category, category} {
			rule := &def.OnReply.Rules[i]
			got := conversation.Category(def, rule)
			if got != want {
				t.Errorf("%s campaign, rule %s: category %q, want %q", category, rule.ID(), got, want)
			}
			if q := conversation.FollowupQueue(got); q != campaigns.QueueFor(want) {
				t.Errorf("%s campaign, rule %s: queue %q, want %q", category, rule.ID(), q, campaigns.QueueFor(want))
			}
		}
	}
}
