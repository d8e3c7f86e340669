package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// What campaign validate and campaign plan say about a campaign's on_reply rules: validate
// checks each rule's follow-up message and the buttons rules name; plan shows the requests
// each rule's follow-up would make.

// checkOnReply checks a campaign's on_reply rules beyond their syntax: each follow-up
// message as a session message (campaigns.CheckMessage), and the buttons rules name against
// the template's quick-reply buttons from the provider's get/templates, when it is reachable
// (notes say when it is not).
func checkOnReply(c config.Config, def *campaigns.Definition) (errs, notes []string) {
	rules := def.OnReply.Rules
	named := false
	for i := range rules {
		named = named || len(rules[i].Button) > 0
		if rules[i].Message.IsZero() {
			continue
		}
		content, err := conversation.MessageOf(&rules[i])
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: on_reply rule %s: message: %v", def.Path, rules[i].ID(), err))
			continue
		}
		for _, p := range campaigns.CheckMessage(content) {
			errs = append(errs, fmt.Sprintf("%s: on_reply rule %s: message.%s: %s", def.Path, rules[i].ID(), p.Field, p.Msg))
		}
	}
	if !named || def.Template.Name == "" {
		return errs, notes
	}
	if err := c.RequireConnectly(); err != nil || c.APIKey == "" {
		return errs, append(notes, "on_reply buttons not checked against the template: no Connectly business id or API key configured")
	}
	cc := clientConfig(c)
	cc.Timeout, cc.MaxConns = 10*time.Second, 1
	client, err := connectly.NewClient(cc)
	if err != nil {
		return errs, append(notes, "on_reply buttons not checked against the template: "+err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	buttons, err := client.TemplateButtons(ctx, def.Template.Name, def.Template.Language)
	if err != nil {
		return errs, append(notes, "on_reply buttons not checked against the template: the Connectly API is not reachable ("+err.Error()+")")
	}
	if err := conversation.CheckButtons(rules, buttons); err != nil {
		errs = append(errs, fmt.Sprintf("%s: %v", def.Path, err))
	}
	return errs, notes
}

// followupPlan is one on_reply rule's follow-up as campaign plan shows it.
type followupPlan struct {
	Rule  string `json:"rule"`
	Delay string `json:"delay,omitempty"`
	// Requests are the session message's request and the template's (the fallback when the
	// window has closed, or the only one), rendered for a reply that matches the rule, to a
	// placeholder number; none for a rule that sends nothing.
	Requests []followupRequest `json:"requests,omitempty"`
	Error    string            `json:"error,omitempty"`
}

// followupRequest is one request of a follow-up: where it is posted, and its body.
type followupRequest struct {
	Path string          `json:"path"`
	Body json.RawMessage `json:"body"`
}

// followupPlaceholder is the number follow-up requests are shown for (a fictional one).
const followupPlaceholder = "+15555550100"

// planFollowups renders each on_reply rule's follow-up for a reply that matches it.
func planFollowups(def *campaigns.Definition, sender string, w connectly.Wire) []followupPlan {
	var out []followupPlan
	for i := range def.OnReply.Rules {
		rule := &def.OnReply.Rules[i]
		fp := followupPlan{Rule: rule.ID(), Delay: rule.Delay}
		if rule.None {
			out = append(out, fp)
			continue
		}
		r := conversation.Reply{Kind: webhooks.ReplyText, Text: "hello"}
		switch {
		case len(rule.Button) > 0:
			r = conversation.Reply{Kind: webhooks.ReplyButton, ButtonText: rule.Button[0]}
		case len(rule.ListRow) > 0:
			r = conversation.Reply{Kind: webhooks.ReplyList, ListRowID: rule.ListRow[0]}
		case len(rule.Keyword) > 0:
			r.Text = rule.Keyword[0]
		}
		run := ledger.Run{ID: "RUN", Campaign: def.ID, Sender: sender}
		addr := ledger.FollowupAddress("RUN", rule.ID(), followupPlaceholder, 1)
		p, err := conversation.Payload(run, def, rule, addr, 0, r, def.FirstRowReplyColumns())
		if err != nil {
			fp.Error = err.Error()
			out = append(out, fp)
			continue
		}
		if p.Kind == campaigns.KindSession {
			content, err := campaigns.DecodeSession(p.Session)
			if err == nil {
				var body []byte
				body, err = w.EncodeSession(connectly.SessionMessage{To: p.To, Sender: sender, CallbackData: p.Callback(),
					CampaignName: def.ID, Content: content})
				fp.Requests = append(fp.Requests, followupRequest{Path: connectly.SessionPath("{businessId}"), Body: body})
			}
			if err != nil {
				fp.Error = err.Error()
			}
		}
		if p.Template != "" {
			body, err := w.EncodeTemplate(connectly.TemplateMessage{Number: p.To, TemplateName: p.Template,
				Language: p.Language, Parameters: p.Params, Sender: sender, CallbackData: p.Callback(), CampaignName: def.ID})
			if err != nil {
				fp.Error = err.Error()
			} else {
				fp.Requests = append(fp.Requests, followupRequest{Path: connectly.SendPath("{businessId}"), Body: body})
			}
		}
		out = append(out, fp)
	}
	return out
}
