package conversation_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/logx"
)

// repliesExample is the example campaign with on_reply rules.
func repliesExample(t *testing.T) *campaigns.Definition {
	t.Helper()
	def, err := campaigns.Load(filepath.Join("..", "configs", "campaigns", "spring-promo-replies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// Each rule's follow-up is rendered for a reply that matches it, addressed to its follow-up
// run, posted to a path that reads as the text output shows it; a rule that sends nothing
// shows no request.
func TestPlanFollowups(t *testing.T) {
	t.Parallel()
	def := repliesExample(t)
	plans := conversation.PlanFollowups(def, def.Sender, connectly.Wire{}, true)
	got := map[string]conversation.FollowupPlan{}
	for _, f := range plans {
		got[f.Rule] = f
	}
	if len(plans) != 5 || len(got["replied"].Requests) != 0 || got["later"].Delay != "48h" {
		t.Fatalf("follow-ups %+v", plans)
	}
	if r := got["interested"].Requests; len(r) != 1 || !strings.Contains(string(r[0].Body), `"RUN~interested"`) ||
		r[0].Path != "/v1/businesses/{businessId}/send/messages" {
		t.Fatalf("interested: %+v", got["interested"])
	}
	if r := got["later"].Requests; len(r) != 1 || !strings.Contains(string(r[0].Body), "spring_reminder") || !strings.Contains(string(r[0].Body), `"Ana"`) ||
		r[0].Path != "/v1/businesses/{businessId}/send/whatsapp_templated_messages" {
		t.Fatalf("later: %+v", r)
	}
	for _, f := range plans {
		if f.Error != "" {
			t.Errorf("rule %s: %s", f.Rule, f.Error)
		}
	}
}

// Unless revealed, the follow-ups' bodies show the sender's and the placeholder recipient's
// numbers masked to their last 4 digits, as the plan's samples do.
func TestPlanFollowupsMasked(t *testing.T) {
	t.Parallel()
	def := repliesExample(t)
	const sender = "+14155550100"
	for _, reveal := range []bool{false, true} {
		var bodies strings.Builder
		for _, f := range conversation.PlanFollowups(def, sender, connectly.Wire{}, reveal) {
			for _, r := range f.Requests {
				bodies.Write(r.Body)
			}
		}
		full := strings.Contains(bodies.String(), sender) || strings.Contains(bodies.String(), conversation.FollowupPlaceholder)
		masked := strings.Contains(bodies.String(), `"********0100"`) && strings.Contains(bodies.String(), `"********0123"`)
		if bodies.Len() == 0 || full == !reveal || masked == reveal {
			t.Errorf("reveal %v: bodies %s", reveal, bodies.String())
		}
	}
}

// The placeholder recipient of the follow-ups, masked, is not the sender masked: before, both
// read ********0100 in campaign plan's follow-up requests.
func TestFollowupPlaceholderIsNotTheSenderMasked(t *testing.T) {
	t.Parallel()
	if p, s := logx.MaskDigits(conversation.FollowupPlaceholder), logx.MaskDigits("+14155550100"); p == s {
		t.Fatalf("placeholder %s masks as the sender does: %s", conversation.FollowupPlaceholder, p)
	}
}

// The buttons rules name are checked against the template's, when they can be read; notes
// say why they were not.
func TestCheckOnReply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	def := repliesExample(t)
	buttons := func(have ...string) func() (conversation.TemplateButtons, error) {
		return func() (conversation.TemplateButtons, error) {
			return func(_ context.Context, name, language string) ([]string, error) {
				switch {
				case language != "en_US":
					t.Errorf("asked for %s (%s)", name, language)
				case name == "spring_reminder":
					// The follow-up template: a reply to it counts for the run too.
					return []string{"Remind me"}, nil
				case name != "spring_promo":
					t.Errorf("asked for %s (%s)", name, language)
				}
				return have, nil
			}, nil
		}
	}
	if errs, notes := conversation.CheckOnReply(ctx, def, buttons("Yes, show me", "Not now", "Unsubscribe")); len(errs) != 0 || len(notes) != 0 {
		t.Fatalf("all buttons present: errs %q notes %q", errs, notes)
	}
	errs, notes := conversation.CheckOnReply(ctx, def, buttons("Yes, show me"))
	// The error is at the value's place, as every problem of campaign validate.
	if len(errs) != 2 || !strings.HasPrefix(errs[0], def.Path+`:30:15: on_reply.rules[0].button: "Unsubscribe": not a quick-reply button`) ||
		!strings.HasPrefix(errs[1], def.Path+`:44:15: on_reply.rules[2].button: "Not now": not a quick-reply button`) || len(notes) != 0 {
		t.Fatalf("missing buttons: errs %q notes %q", errs, notes)
	}
	_, notes = conversation.CheckOnReply(ctx, def, func() (conversation.TemplateButtons, error) { return nil, errors.New("no key") })
	if len(notes) != 3 || !strings.HasPrefix(notes[0], def.Path+`:30:15: on_reply.rules[0].button: "Unsubscribe": not checked: `) ||
		!strings.Contains(notes[1], `on_reply.rules[1].button: "Yes, show me": not checked: `) ||
		!strings.Contains(notes[2], `on_reply.rules[2].button: "Not now": not checked: `) ||
		!strings.Contains(notes[0], "the buttons of template spring_promo (en_US) could not be read: no key") {
		t.Fatalf("cannot open: notes %q", notes)
	}
	_, notes = conversation.CheckOnReply(ctx, def, func() (conversation.TemplateButtons, error) {
		return func(context.Context, string, string) ([]string, error) { return nil, errors.New("refused") }, nil
	})
	if len(notes) != 3 || !strings.Contains(notes[0], "template spring_promo (en_US) could not be read: the Connectly API is not reachable (refused)") {
		t.Fatalf("unreachable: notes %q", notes)
	}

	// Rules naming no button need no listing; a follow-up message is still checked.
	def.OnReply.Rules = slices.DeleteFunc(def.OnReply.Rules, func(r campaigns.ReplyRule) bool { return len(r.Button) > 0 })
	opened := false
	errs, notes = conversation.CheckOnReply(ctx, def, func() (conversation.TemplateButtons, error) { opened = true; return nil, errors.New("no") })
	if opened || len(errs) != 0 || len(notes) != 0 {
		t.Fatalf("no button named: opened %v, errs %q notes %q", opened, errs, notes)
	}
}
