package conversation

import (
	"fmt"
	"slices"
	"strings"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// OptOutOnlyProblems reports the rules with suppress: true that never fire: those only an
// opt-out reaches (campaigns.OnReply.OptOutOnly: behind a rule without suppress that has any:
// true, or that matches each of their values first) when none of their values is an opt-out
// as the receiver detects one. The receiver takes a reply as an opt-out when its whole text,
// or a button's text, payload or id, or a list row's id or text, is one of the opt-out words
// (webhooks.DefaultOptOutWords and the configured words, extra), ignoring case, spacing and
// punctuation; such a reply is matched only among the rules with suppress: true (Match). So a
// keyword fires for an opt-out only when an opt-out word holds it ("stop", not "remove me"
// nor "stop please"), and a button or list row only when it is an opt-out word or names a
// button or row of the campaign's messages whose other field is one ({id: unsub, text: Stop}).
// Every other reply such a rule matches gets the earlier rule's follow-up, and the customer is
// not suppressed.
//
// It judges only what the campaign file shows whole: a button or row rule of a campaign that
// may send a template (whose quick-reply buttons' payloads Herald does not know, and whose
// taps are read as row ids too), of one whose buttons or rows are templates, and a value no
// message offers (CheckOnReply reports that), are taken as reached. A campaign Herald has
// already taken is not judged: the check is a new file's (serve.ValidateCampaign), so a stored
// version's runs go on.
func OptOutOnlyProblems(def *campaigns.Definition, extra []string) []string {
	only := def.OnReply.OptOutOnly()
	if len(only) == 0 {
		return nil
	}
	words := append(slices.Clone(webhooks.DefaultOptOutWords), extra...)
	var vocab [][]string
	for _, w := range words {
		if kw := campaigns.KeywordWords(w); len(kw) > 0 {
			vocab = append(vocab, kw)
		}
	}
	isOptOut := func(v string) bool {
		kw := campaigns.KeywordWords(v)
		return len(kw) > 0 && slices.ContainsFunc(vocab, func(w []string) bool { return slices.Equal(w, kw) })
	}
	mayBeOptOut := func(v string) bool { return templated(v) || isOptOut(v) }
	buttons, rows, whole := ownChoices(def)

	var errs []string
	for _, o := range only {
		r := o.Rule
		reached := false
		switch o.Key {
		case "keyword":
			for _, v := range r.Keyword {
				kw := campaigns.KeywordWords(v)
				if slices.ContainsFunc(vocab, func(w []string) bool { return containsWords(w, kw) }) {
					reached = true
					break
				}
			}
		case "button", "list_row":
			vals := r.Button
			// A button rule matches a tap by the button's id or text; a list_row rule a row
			// by its id, and a tap on a button by its id (webhooks.RowIDs).
			carries := func(v string, c choice, row bool) bool {
				if o.Key == "button" {
					return !row && (sameLabel(v, c.id) || sameLabel(v, c.text))
				}
				return strings.TrimSpace(v) == strings.TrimSpace(c.id)
			}
			if o.Key == "list_row" {
				vals = r.ListRow
			}
			reached = !whole
			for _, v := range vals {
				if reached {
					break
				}
				if isOptOut(v) {
					reached = true
					break
				}
				offered := false
				for _, set := range []struct {
					choices []choice
					row     bool
				}{{buttons, false}, {rows, true}} {
					for _, c := range set.choices {
						if carries(v, c, set.row) {
							offered = true
							reached = reached || mayBeOptOut(c.id) || mayBeOptOut(c.text)
						}
					}
				}
				// A value no message offers is CheckOnReply's to report.
				reached = reached || !offered
			}
		default:
			reached = true
		}
		if reached {
			continue
		}
		field, at := r.Where(o.Key, -1)
		errs = append(errs, campaigns.FieldError{File: def.Path, Line: at.Line, Column: at.Column, Field: field,
			Msg: optOutOnlyMsg(o, words)}.Error())
	}
	return errs
}

// ownChoices returns the reply buttons and list rows of the campaign's session message and
// of its rules' follow-up messages, and whether they are all a reply may choose, each known
// whole: not when the campaign may send a template (a quick-reply button's payload is not
// known), nor when a button or row is a template or a message could not be read.
func ownChoices(def *campaigns.Definition) (buttons, rows []choice, whole bool) {
	if !def.IsSession() || def.HasFallback() {
		return nil, nil, false
	}
	var offers []*offer
	add := func(b, r *offer) { offers = append(offers, b, r) }
	add(messageOffers("the message", "message.", *def.Message))
	for i := range def.OnReply.Rules {
		r := &def.OnReply.Rules[i]
		if r.Template != nil {
			return nil, nil, false
		}
		if r.Message.IsZero() {
			continue
		}
		c, err := MessageOf(r)
		if err != nil {
			return nil, nil, false
		}
		add(messageOffers("rule "+r.ID()+"'s message", "on_reply rule "+r.ID()+": message.", c))
	}
	for k, o := range offers {
		if o == nil {
			continue
		}
		if len(o.dynamic) > 0 || o.unread != "" {
			return nil, nil, false
		}
		if k%2 == 0 {
			buttons = append(buttons, o.choices...)
		} else {
			rows = append(rows, o.choices...)
		}
	}
	return buttons, rows, true
}

// optOutOnlyMsg says why rule o never fires and what to do.
func optOutOnlyMsg(o campaigns.OptOutOnlyRule, words []string) string {
	named := make([]string, len(o.Before))
	for i, e := range o.Before {
		f, _ := e.Where("", -1)
		named[i] = fmt.Sprintf("%s (%s)", e.ID(), f)
	}
	var before string
	switch {
	case o.Any:
		before = fmt.Sprintf("rule %s before it has any: true and answers every reply first", named[0])
	case len(named) == 1:
		before = fmt.Sprintf("rule %s before it matches each of its values first", named[0])
	default:
		before = fmt.Sprintf("rules %s before it match each of its values first", strings.Join(named, ", "))
	}
	const shown = 6
	quoted := make([]string, 0, shown)
	for _, w := range words[:min(len(words), shown)] {
		quoted = append(quoted, fmt.Sprintf("%q", w))
	}
	list := strings.Join(quoted, ", ")
	if len(words) > shown {
		list += fmt.Sprintf(" and %d more", len(words)-shown)
	}
	return fmt.Sprintf("never fires: %s, but for an opt-out (a reply that is only an opt-out word: %s), "+
		"and none of its values is one: a customer whose reply it matches gets rule %s's follow-up and is not suppressed; "+
		"move it above rule %s, or give it an opt-out value (such as keyword: stop)",
		before, list, o.Before[0].ID(), o.Before[0].ID())
}
