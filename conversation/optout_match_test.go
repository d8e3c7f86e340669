package conversation_test

import (
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// TestOptOutMatchesOnlySuppressRules: an opt-out tap reaches the campaign's unsubscribe rule
// (suppress: true) even when an earlier rule without suppress (any: true) matches every
// reply; the same tap not taken as an opt-out matches the earlier rule, and an opt-out with no
// suppress: true rule to match matches nothing.
func TestOptOutMatchesOnlySuppressRules(t *testing.T) {
	t.Parallel()
	d, err := campaigns.Parse("c.yaml", []byte(`id: promo
template: {name: promo, language: en_US}
audience: {file: a.csv}
on_reply:
  - name: thanks
    any: true
    message: {text: "Thanks!"}
  - name: unsubscribe
    button: Unsubscribe
    suppress: true
    message: {text: "You will get no more messages."}
`))
	if err != nil {
		t.Fatal(err)
	}
	tap := conversation.Reply{Kind: webhooks.ReplyButton, ButtonText: "Unsubscribe", ButtonPayload: "unsub"}
	optOut := tap
	optOut.OptOut = true
	for _, c := range []struct {
		r    conversation.Reply
		want string
	}{{optOut, "unsubscribe"}, {tap, "thanks"}} {
		rule, ok := conversation.Match(d.OnReply.Rules, c.r)
		if !ok || rule.ID() != c.want {
			t.Errorf("opt-out %v: matched %v (%v), want %s", c.r.OptOut, rule, ok, c.want)
		}
	}
	stop := conversation.Reply{Kind: webhooks.ReplyText, Text: "STOP", OptOut: true}
	if rule, ok := conversation.Match(d.OnReply.Rules, stop); ok {
		t.Errorf("STOP matched %s, want no rule", rule.ID())
	}
}
