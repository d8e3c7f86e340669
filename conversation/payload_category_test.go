package conversation_test

import (
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// TestFollowupCategory: a follow-up's category, which chooses its queue and the frequency cap
// that counts it, is its template's when it has one (a follow-up template is sent in the
// campaign's category), and for a session message with no fallback template
// campaigns.SessionOnlyCategory, as for a session campaign. Before, a session answer took the
// marketing campaign's category, so limits.frequency_caps.marketing refused the answer to the
// customer's own tap (and, where the cap had room, the answer used up room meant for
// marketing templates).
func TestFollowupCategory(t *testing.T) {
	t.Parallel()
	const yaml = `
id: promo
template: {name: spring_promo, language: en_US}
audience: {file: audience.csv}
on_reply:
  rules:
    - name: answer
      button: "Yes, show me"
      message: {text: "Here it is"}
    - name: answer_or_template
      button: "Tell me more"
      message: {text: "More"}
      template: {name: spring_more}
    - name: later
      button: "Not now"
      delay: 48h
      template: {name: spring_reminder}
    - name: unsubscribe
      button: "Unsubscribe"
      suppress: true
      message: {text: "Done: no more offers."}
`
	def, err := campaigns.Parse("promo.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"answer": campaigns.SessionOnlyCategory, "answer_or_template": "marketing", "later": "marketing",
		"unsubscribe": campaigns.SessionOnlyCategory}
	for i := range def.OnReply.Rules {
		rule := &def.OnReply.Rules[i]
		p, err := conversation.Payload(conversation.FollowupOf{Run: ledger.Run{ID: "promo-1~" + rule.ID(), Campaign: "promo"},
			Def: def, Rule: rule, Addr: ledger.Address{Run: "promo-1~" + rule.ID(), Recipient: "+15550000001"},
			Reply: conversation.Reply{Kind: webhooks.ReplyButton, From: webhooks.Customer{Phone: "+15550000001"}}})
		if err != nil {
			t.Fatalf("%s: %v", rule.ID(), err)
		}
		if p.Category != want[rule.ID()] {
			t.Errorf("rule %s: category %q, want %q", rule.ID(), p.Category, want[rule.ID()])
		}
		// Only the suppress rule's follow-up confirms an opt-out, and goes to a suppressed person.
		if p.ConfirmsOptOut != rule.Suppress {
			t.Errorf("rule %s: ConfirmsOptOut %v, want %v", rule.ID(), p.ConfirmsOptOut, rule.Suppress)
		}
	}
}
