package conversation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/logx"
)

// The check of the buttons and list rows on_reply rules name, for every campaign. A tap on a
// reply button comes back carrying the button's id and text, a tap on a template's
// quick-reply button its text (or payload), and a choice from a list the row's id, so the
// button: and list_row: values of the rules are checked against what the campaign sends,
// compared as Match compares (a button by id or text, case and spacing ignored; a row by id,
// surrounding spaces ignored). A reply to a follow-up answers the run it follows
// (Followups), so the buttons and rows of the rules' own follow-up messages count too, and so
// do the quick-reply buttons of every template a run may send: the campaign's template (or a
// session campaign's fallback) in each of its languages, and the rules' follow-up templates.
// Templates are read only for values no message has.

// kindOf says how the check names one key's values and offers.
type kindOf struct {
	// templates is set when unknown already speaks of templates.
	templates bool
	// key is the match: button or list_row.
	key string
	// noun is what a message offers for it: "reply buttons", "list rows".
	noun string
	// none says the campaign's message has none of them.
	none string
	// unknown says a value is none of them.
	unknown string
}

// kinds returns how the check names buttons and rows for def.
func kinds(def *campaigns.Definition) (buttons, rows kindOf) {
	if def.IsSession() {
		return kindOf{key: "button", noun: "reply buttons", none: "the message has no reply buttons",
				unknown: "not a reply button of the session message"},
			kindOf{key: "list_row", noun: "list rows", none: "the message has no list",
				unknown: "not a row id of the session message's list"}
	}
	return kindOf{key: "button", noun: "reply buttons", none: "the campaign sends no template",
			unknown: "not a quick-reply button of a template the campaign may send", templates: true},
		kindOf{key: "list_row", noun: "list rows", none: "a template has no list",
			unknown: "not a row id of a list the campaign sends"}
}

// offer is what one message or template offers a reply to choose from: its reply buttons
// or its list rows.
type offer struct {
	// where names the message or template: "the message", "rule r2's message",
	// "template order_status (en)".
	where string
	// items are the buttons or rows written as plain text: for each, the values a reply
	// choosing it carries (a button's id and text, a row's id).
	items [][]string
	// shown describes each item for an error: `"id"/"text"`, or `"id" (text)` for a row.
	shown []string
	// dynamic are the fields whose value is a template, rendered per recipient: a reply may
	// carry what they render to, which cannot be known here.
	dynamic []string
	// unread says why a template's buttons could not be read; "" when they were.
	unread string
	// notListed says Connectly's listing of templates has no such template: it was read, and
	// the template offers nothing a reply could carry (a send of it would be refused too).
	notListed bool
	// own is set for the campaign's message, template for a template's quick-reply buttons.
	own, template bool
	// choices are a message's buttons or rows in full, fields that are templates as written:
	// what a reply choosing each carries, for the opt-out check (OptOutOnlyProblems).
	choices []choice
}

// choice is one reply button or list row of a message: its id and text.
type choice struct{ id, text string }

// has reports whether a reply choosing one of o's items may carry v, compared with same.
func (o *offer) has(v string, same func(a, b string) bool) bool {
	for _, item := range o.items {
		for _, got := range item {
			if same(v, got) {
				return true
			}
		}
	}
	return false
}

// templated reports whether a message string is a template (rendered per recipient).
func templated(s string) bool { return strings.Contains(s, "{{") }

// messageOffers returns the reply buttons and list rows of a session message (nil for a kind
// it lacks). where names the message; prefix is its fields' prefix ("message."). A raw
// message's are read in the shapes reference 3.1 gives; a field of it in another shape makes
// an offer that could not be read.
func messageOffers(where, prefix string, c connectly.SessionContent) (buttons, rows *offer) {
	buttonsField, listField := "reply_buttons", "list"
	if c.Kind() == connectly.KindRaw {
		ch := c.Raw.Choices()
		c = connectly.SessionContent{ReplyButtons: ch.Buttons, List: ch.List}
		buttonsField, listField = ch.ButtonsField, ch.ListField
		if ch.Unread != "" {
			buttons = &offer{where: where, unread: ch.Unread}
			rows = &offer{where: where, unread: ch.Unread}
		}
	}
	if rb := c.ReplyButtons; rb != nil {
		if buttons == nil {
			buttons = &offer{where: where}
		}
		for i, b := range rb.Buttons {
			buttons.choices = append(buttons.choices, choice{b.ID, b.Text})
			field := fmt.Sprintf("%s%s.buttons[%d]", prefix, buttonsField, i)
			var item []string
			for _, f := range []struct{ name, v string }{{"id", b.ID}, {"text", b.Text}} {
				switch {
				case templated(f.v):
					buttons.dynamic = append(buttons.dynamic, field+"."+f.name)
				case f.v != "":
					item = append(item, f.v)
				}
			}
			if len(item) > 0 {
				buttons.items = append(buttons.items, item)
				quoted := make([]string, len(item))
				for j, v := range item {
					quoted[j] = fmt.Sprintf("%q", v)
				}
				buttons.shown = append(buttons.shown, strings.Join(quoted, "/"))
			}
		}
	}
	if l := c.List; l != nil {
		if rows == nil {
			rows = &offer{where: where}
		}
		for i, s := range l.Sections {
			for j, r := range s.Rows {
				rows.choices = append(rows.choices, choice{r.ID, r.Text})
				if templated(r.ID) {
					rows.dynamic = append(rows.dynamic, fmt.Sprintf("%s%s.sections[%d].rows[%d].id", prefix, listField, i, j))
					continue
				}
				rows.items = append(rows.items, []string{r.ID})
				shown := fmt.Sprintf("%q", r.ID)
				if r.Text != "" && !templated(r.Text) {
					shown += " (" + r.Text + ")"
				}
				rows.shown = append(rows.shown, shown)
			}
		}
	}
	return buttons, rows
}

// ruleValue is one value a rule's match names: the i-th of the rule's key (button or
// list_row), for the value's place in the campaign file.
type ruleValue struct {
	rule  *campaigns.ReplyRule
	key   string
	i     int
	value string
}

// problem is a problem with the value, at its place in the campaign file at path, as every
// problem of campaign validate is written: file:line:col: on_reply[2].button: "Arrived": msg.
func (v ruleValue) problem(path, msg string) string {
	field, at := v.rule.Where(v.key, v.i)
	return campaigns.FieldError{File: path, Line: at.Line, Column: at.Column, Field: field, Msg: fmt.Sprintf("%q: %s", v.value, msg)}.Error()
}

// checkChoices checks the button: and list_row: values of a campaign's rules against what
// its messages (and, for buttons, its templates) offer. A value no message or template has
// is an error, unless some button or row is a template or a template's buttons could not be
// read: then a note says the value was not checked.
func checkChoices(ctx context.Context, def *campaigns.Definition, open func() (TemplateButtons, error)) (errs, notes []string) {
	rules := def.OnReply.Rules
	var buttonOffers, rowOffers []*offer
	addOffers := func(b, r *offer) {
		if b != nil {
			buttonOffers = append(buttonOffers, b)
		}
		if r != nil {
			rowOffers = append(rowOffers, r)
		}
	}
	if def.IsSession() {
		mb, mr := messageOffers("the message", "message.", *def.Message)
		for _, o := range []*offer{mb, mr} {
			if o != nil {
				o.own = true
			}
		}
		addOffers(mb, mr)
	}
	var buttons, rows []ruleValue
	for i := range rules {
		r := &rules[i]
		for j, v := range r.Button {
			buttons = append(buttons, ruleValue{r, "button", j, v})
		}
		for j, v := range r.ListRow {
			rows = append(rows, ruleValue{r, "list_row", j, v})
		}
		if r.Message.IsZero() {
			continue
		}
		// A follow-up message that does not decode is reported by CheckOnReply already.
		if c, err := MessageOf(r); err == nil {
			addOffers(messageOffers("rule "+r.ID()+"'s message", "on_reply rule "+r.ID()+": message.", c))
		}
	}
	sameRow := func(a, b string) bool { return strings.TrimSpace(a) == strings.TrimSpace(b) }

	buttonKind, rowKind := kinds(def)
	addOffers(rawParamOffers(def), nil)
	missing := unmatched(buttons, buttonOffers, sameLabel)
	if len(missing) > 0 {
		buttonOffers = append(buttonOffers, templateOffers(ctx, def, open)...)
		missing = unmatched(missing, buttonOffers, sameLabel)
	}
	e, n := judge(def.Path, buttonKind, missing, buttonOffers)
	errs, notes = append(errs, e...), append(notes, n...)
	e, n = judge(def.Path, rowKind, unmatched(rows, rowOffers, sameRow), rowOffers)
	return append(errs, e...), append(notes, n...)
}

// rawParamOffers are the values of a template's pass-through parameters (parameters.raw):
// Herald does not know the names Connectly gives quick-reply payloads (reference 2.2), which
// go through raw, and a tap on a quick-reply button carries its payload. So a button: value
// equal to one is accepted, and one written as a template may render to anything. Nil when no
// template sent has pass-through parameters.
func rawParamOffers(def *campaigns.Definition) *offer {
	o := &offer{where: "the templates' pass-through parameters"}
	add := func(prefix string, ps []campaigns.RawParam) {
		for i, rp := range ps {
			switch {
			case templated(rp.Value):
				o.dynamic = append(o.dynamic, fmt.Sprintf("%sparameters.raw[%d].value", prefix, i))
			case rp.Value != "":
				o.items = append(o.items, []string{rp.Value})
				o.shown = append(o.shown, fmt.Sprintf("%q", rp.Value))
			}
		}
	}
	if !def.IsSession() || def.HasFallback() {
		add("", def.Parameters.Raw)
	}
	for i := range def.OnReply.Rules {
		if r := &def.OnReply.Rules[i]; r.Template != nil {
			add("on_reply rule "+r.ID()+": ", r.Parameters.Raw)
		}
	}
	if len(o.items) == 0 && len(o.dynamic) == 0 {
		return nil
	}
	return o
}

// unmatched returns the values no offer has.
func unmatched(vals []ruleValue, offers []*offer, same func(a, b string) bool) []ruleValue {
	var out []ruleValue
	for _, v := range vals {
		found := false
		for _, o := range offers {
			if o.has(v.value, same) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, v)
		}
	}
	return out
}

// templateOffers reads the quick-reply buttons of the templates a run of def may send: its
// template (a session campaign's fallback) in each of its languages, and its rules'
// follow-up templates, each once. A template whose buttons cannot be read is an offer saying
// why.
func templateOffers(ctx context.Context, def *campaigns.Definition, open func() (TemplateButtons, error)) []*offer {
	type tpl struct {
		name, language string
		own            bool
	}
	var tpls []tpl
	seen := map[[2]string]bool{}
	add := func(name, language string, own bool) {
		k := [2]string{name, language}
		if name != "" && !seen[k] {
			seen[k] = true
			tpls = append(tpls, tpl{name, language, own})
		}
	}
	if !def.IsSession() || def.HasFallback() {
		// A translation's buttons are translated too: a reply carries the recipient's.
		for _, l := range append([]string{def.Template.Language}, def.Template.Languages...) {
			add(def.Template.Name, l, !def.IsSession())
		}
	}
	for i := range def.OnReply.Rules {
		if t := def.OnReply.Rules[i].Template; t != nil {
			for _, l := range append([]string{t.Language}, t.Languages...) {
				add(t.Name, l, false)
			}
		}
	}
	if len(tpls) == 0 {
		return nil
	}
	templateButtons, openErr := open()
	out := make([]*offer, 0, len(tpls))
	for _, t := range tpls {
		o := &offer{where: fmt.Sprintf("template %s (%s)", logx.Escape(t.name), logx.Escape(t.language)), template: true, own: t.own}
		out = append(out, o)
		if openErr != nil {
			o.unread = openErr.Error()
			continue
		}
		have, err := templateButtons(ctx, t.name, t.language)
		if errors.Is(err, connectly.ErrTemplateNotListed) {
			// Read, and not there: it offers no button a reply could carry.
			o.notListed = true
			continue
		}
		if errors.Is(err, connectly.ErrNoTemplatesListed) {
			o.unread = "Connectly lists no templates for this business"
			continue
		}
		if err != nil {
			o.unread = "the Connectly API is not reachable (" + err.Error() + ")"
			continue
		}
		for _, b := range have {
			o.items = append(o.items, []string{b})
			o.shown = append(o.shown, fmt.Sprintf("%q", b))
		}
	}
	return out
}

// judge turns the values of kind k no offer has into notes, when some offer could not be
// known in full (a field that is a template, a template not read), or else into errors, one
// per value at its place in the campaign file at path, that say what the offers have.
func judge(path string, k kindOf, missing []ruleValue, offers []*offer) (errs, notes []string) {
	if len(missing) == 0 {
		return nil, nil
	}
	var why []string
	for _, o := range offers {
		if len(o.dynamic) > 0 {
			why = append(why, fmt.Sprintf("%s is a template, rendered per recipient", strings.Join(o.dynamic, ", ")))
		}
		if o.unread != "" {
			why = append(why, fmt.Sprintf("the buttons of %s could not be read: %s", o.where, o.unread))
		}
	}
	if len(why) > 0 {
		for _, v := range missing {
			notes = append(notes, v.problem(path, fmt.Sprintf("not checked: none of the %s written as text has it, and %s",
				k.noun, strings.Join(why, "; "))))
		}
		return nil, notes
	}
	unknown, templates := k.unknown, false
	var have []string
	if !slices.ContainsFunc(offers, func(o *offer) bool { return o.own }) {
		have = append(have, k.none)
	}
	for _, o := range offers {
		templates = templates || o.template
		switch {
		case o.notListed:
			have = append(have, o.where+" is not listed by Connectly")
		case len(o.shown) == 0:
			have = append(have, o.where+" has none")
		default:
			have = append(have, o.where+" has "+strings.Join(o.shown, ", "))
		}
	}
	if templates && !k.templates {
		unknown += " nor a quick-reply button of a template the campaign may send"
	}
	for _, v := range missing {
		errs = append(errs, v.problem(path, fmt.Sprintf("%s (%s)", unknown, strings.Join(have, "; "))))
	}
	return errs, nil
}
