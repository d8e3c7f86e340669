package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// What campaign validate and campaign plan say about a campaign's on_reply rules: validate
// checks each rule's follow-up message and the buttons rules name; plan shows the requests
// each rule's follow-up would make.

// TemplateButtons returns the texts of the quick-reply buttons of a template translation
// (connectly.Client.TemplateButtons).
type TemplateButtons func(ctx context.Context, name, language string) ([]string, error)

// CheckOnReply checks a campaign's on_reply rules beyond their syntax: each follow-up
// message as a session message (campaigns.CheckMessage), and the buttons and list rows rules
// name against what the campaign may send (choices.go): the reply buttons (id or text) and
// list rows (id) of its session message and of the rules' follow-up messages, then, for a
// button none of them has, the quick-reply buttons of its template (or fallback template) in
// each of its languages and of the rules' follow-up templates, read with what open returns
// only then. A value that a button or row written as a template might render to, or that a
// template not read (open fails, the API is not reachable) might have, is noted as not
// checked rather than reported.
func CheckOnReply(ctx context.Context, def *campaigns.Definition, open func() (TemplateButtons, error)) (errs, notes []string) {
	rules := def.OnReply.Rules
	for i := range rules {
		if rules[i].Message.IsZero() {
			continue
		}
		// At the message's place, as every problem of campaign validate.
		field, at := rules[i].Where("message", -1)
		problem := func(f, msg string) string {
			return campaigns.FieldError{File: def.Path, Line: at.Line, Column: at.Column, Field: f, Msg: msg}.Error()
		}
		content, err := MessageOf(&rules[i])
		var unknown *campaigns.UnknownKeysError
		var wrongType *yaml.TypeError
		switch {
		case errors.As(err, &unknown):
			// Campaign validation reports each unknown key at its own place.
			continue
		case errors.As(err, &wrongType):
			// A value of the wrong type (a list for reply_buttons), at its own key and line.
			for k, e := range wrongType.Errors {
				if k == maxTypeProblems {
					// Each is placed by a walk of the message: a file of 100,000 of them
					// would cost as many walks.
					errs = append(errs, problem(field+".message", fmt.Sprintf("and %d more values of the wrong type", len(wrongType.Errors)-k)))
					break
				}
				errs = append(errs, typeProblem(def.Path, field, rules[i].Message.Node, e))
			}
			continue
		case err != nil:
			errs = append(errs, problem(field, err.Error()))
			continue
		}
		for _, p := range campaigns.CheckMessage(content) {
			errs = append(errs, problem(field+"."+p.Field, p.Msg))
		}
	}
	e, n := checkChoices(ctx, def, open)
	return append(errs, e...), append(notes, n...)
}

// maxTypeProblems is how many of a follow-up message's values of the wrong type are
// reported one by one.
const maxTypeProblems = 10

// typeProblem places one of the YAML decoder's type errors of a follow-up message ("line 18:
// cannot unmarshal !!seq into connectly.ReplyButtons") at the message's key whose value holds
// that line (on_reply[0].message.reply_buttons), at the first value written on it, with the
// YAML tags said in words.
func typeProblem(path, field string, msg *yaml.Node, e string) string {
	line := 0
	if rest, ok := strings.CutPrefix(e, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if v, err := strconv.Atoi(n); err == nil {
				line, e = v, after
			}
		}
	}
	for _, w := range [][2]string{{"!!seq", "a list"}, {"!!map", "a mapping"}, {"!!str", "a text"}, {"!!int", "a number"},
		{"!!float", "a number"}, {"!!bool", "a boolean"}, {"!!null", "null"}} {
		e = strings.ReplaceAll(e, w[0], w[1])
	}
	e = strings.ReplaceAll(e, "\n", " ")
	fe := campaigns.FieldError{File: path, Field: field, Msg: e}
	if msg != nil {
		fe.Line, fe.Column = msg.Line, msg.Column
	}
	if msg != nil && msg.Kind == yaml.MappingNode && line > 0 {
		for k := 0; k+1 < len(msg.Content); k += 2 {
			if at := nodeAt(msg.Content[k+1], line); at != nil {
				fe.Field, fe.Line, fe.Column = field+"."+msg.Content[k].Value, at.Line, at.Column
				break
			}
		}
	}
	return fe.Error()
}

// nodeAt returns the first node under n (n included) written on line, nil when none is.
func nodeAt(n *yaml.Node, line int) *yaml.Node {
	if n.Line == line {
		return n
	}
	for _, c := range n.Content {
		if at := nodeAt(c, line); at != nil {
			return at
		}
	}
	return nil
}

// FollowupPlan is one on_reply rule's follow-up as `campaign plan` shows it.
type FollowupPlan struct {
	Rule  string `json:"rule"`
	Delay string `json:"delay,omitempty"`
	// Requests are the session message's request and the template's (the fallback when the
	// window has closed, or the only one), rendered for a reply that matches the rule, to a
	// placeholder number; none for a rule that sends nothing.
	Requests []FollowupRequest `json:"requests,omitempty"`
	Error    string            `json:"error,omitempty"`
}

// FollowupRequest is one request of a follow-up: where it is posted (the business id written
// "{businessId}", as the text output shows it; see PlanPath), and its body.
type FollowupRequest struct {
	Path string          `json:"path"`
	Body json.RawMessage `json:"body"`
}

// FollowupPlaceholder is the number follow-up requests are shown for: a fictional one (555-01XX)
// whose last 4 digits are not those of the examples' sender (+14155550100), so that, masked,
// the recipient of a follow-up does not read as the sender.
const FollowupPlaceholder = "+15555550123"

// PlanPath is a request path as a plan shows it: the one path makes for a business id written
// "{businessId}", with the braces path escapes (url.PathEscape: %7B, %7D) written as they are,
// so that the JSON output reads as the text does.
func PlanPath(path func(businessID string) string) string {
	return strings.NewReplacer("%7B", "{", "%7D", "}").Replace(path("{businessId}"))
}

// sampleReply is a reply that matches rule: a tap of its first button, a choice of its first
// list row, its first keyword typed, or "hello". Its fields (ReplyColumns) are
// rule.SampleReplyFields(), which campaign plan renders the follow-up with for every row.
func sampleReply(rule *campaigns.ReplyRule) Reply {
	r := Reply{Kind: webhooks.ReplyText, Text: "hello"}
	switch {
	case len(rule.Button) > 0:
		r = Reply{Kind: webhooks.ReplyButton, ButtonText: rule.Button[0]}
	case len(rule.ListRow) > 0:
		r = Reply{Kind: webhooks.ReplyList, ListRowID: rule.ListRow[0]}
	case len(rule.Keyword) > 0:
		r.Text = rule.Keyword[0]
	}
	return r
}

// PlanFollowups renders each on_reply rule's follow-up for a reply that matches it
// (sampleReply) and the audience's first row that would be sent to
// (campaigns.Definition.FirstRowReplyColumns), as sender would send it to
// FollowupPlaceholder in a run "RUN" of def, encoded by w. (campaigns.Plan renders each
// follow-up with every row: PlanReport.FollowupProblems.) The bodies'
// numbers (the sender's, the placeholder recipient's) are masked to their last 4 digits
// unless reveal, as the plan's samples are (report.MaskRequests).
func PlanFollowups(def *campaigns.Definition, sender string, w connectly.Wire, reveal bool) []FollowupPlan {
	var out []FollowupPlan
	for i := range def.OnReply.Rules {
		rule := &def.OnReply.Rules[i]
		fp := FollowupPlan{Rule: rule.ID(), Delay: rule.Delay}
		if rule.None {
			out = append(out, fp)
			continue
		}
		r := sampleReply(rule)
		run := ledger.Run{ID: "RUN", Campaign: def.ID, Sender: sender}
		addr := ledger.FollowupAddress("RUN", rule.ID(), FollowupPlaceholder, 1)
		p, err := Payload(FollowupOf{Run: run, Def: def, Rule: rule, Addr: addr, Reply: r, Audience: def.FirstRowReplyColumns()})
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
				fp.Requests = append(fp.Requests, FollowupRequest{Path: PlanPath(connectly.SessionPath), Body: body})
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
				fp.Requests = append(fp.Requests, FollowupRequest{Path: PlanPath(connectly.SendPath), Body: body})
			}
		}
		if !reveal {
			for i, r := range fp.Requests {
				fp.Requests[i].Body = report.MaskRequests([]json.RawMessage{r.Body})[0]
			}
		}
		out = append(out, fp)
	}
	return out
}
