package conversation

import (
	"strings"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// Match returns the first rule the reply satisfies, in order, and whether one did. Rules
// must come from a parsed campaign (campaigns.Parse gives them their ids).
//
//   - button: a button reply whose payload, id or text equals one of the values, ignoring
//     case and surrounding and repeated spaces;
//   - list_row: a list choice whose row id equals one of the values (surrounding spaces
//     ignored), in every shape a list choice comes in (webhooks.RowIDs: a list reply's row
//     id, or a button reply's payload or id);
//   - keyword: typed text holding one of the keywords as whole words (MatchKeyword); the text
//     of a button or a list row is not typed text;
//   - any: every reply.
//
// An opt-out (r.OptOut: the receiver has suppressed the customer) is matched only among the
// rules with suppress: true, the campaign's own unsubscribe, whose confirmation still goes: an
// earlier rule without suppress (an any: true thanks) would send nothing to a customer who
// has just opted out, and would hide the unsubscribe rule.
func Match(rules []campaigns.ReplyRule, r Reply) (*campaigns.ReplyRule, bool) {
	for i := range rules {
		if r.OptOut && !rules[i].Suppress {
			continue
		}
		if matches(&rules[i], r) {
			return &rules[i], true
		}
	}
	return nil, false
}

func matches(rule *campaigns.ReplyRule, r Reply) bool {
	switch {
	case rule.Any:
		return true
	case rule.Button != nil:
		if r.Kind != webhooks.ReplyButton {
			return false
		}
		for _, v := range rule.Button {
			for _, got := range []string{r.ButtonPayload, r.ButtonID, r.ButtonText} {
				if got != "" && sameLabel(v, got) {
					return true
				}
			}
		}
	case rule.ListRow != nil:
		_, ok := rowOf(rule, r)
		return ok
	case rule.Keyword != nil:
		if r.Text == "" {
			return false
		}
		words := campaigns.KeywordWords(r.Text)
		for _, v := range rule.Keyword {
			if containsWords(words, campaigns.KeywordWords(v)) {
				return true
			}
		}
	}
	return false
}

// rowOf returns the row id of r's list choice that one of rule's list_row values names.
func rowOf(rule *campaigns.ReplyRule, r Reply) (string, bool) {
	for _, got := range r.rowIDs() {
		for _, v := range rule.ListRow {
			if strings.TrimSpace(v) == got {
				return got, true
			}
		}
	}
	return "", false
}

// sameLabel compares two button labels or payloads ignoring case and spacing.
func sameLabel(a, b string) bool {
	return strings.EqualFold(strings.Join(strings.Fields(a), " "), strings.Join(strings.Fields(b), " "))
}

// MatchKeyword reports whether text holds keyword as whole words: the keyword's words
// (campaigns.KeywordWords: letters, digits and marks, case-folded, Unicode NFC) appear
// consecutively among the text's. A keyword with no word matches nothing.
func MatchKeyword(keyword, text string) bool {
	return containsWords(campaigns.KeywordWords(text), campaigns.KeywordWords(keyword))
}

// containsWords reports whether want appears as a consecutive run in words.
func containsWords(words, want []string) bool {
	if len(want) == 0 {
		return false
	}
	for i := 0; i+len(want) <= len(words); i++ {
		ok := true
		for j, w := range want {
			if words[i+j] != w {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// Within reports whether a reply at at may still trigger the rules of a run started at
// runStart: until on_reply.until has passed. A reply with no time is taken as now. It is the
// upper bound only: that the reply was written after the run's message to the customer (the
// lower bound) is the join's to check (Index.Join).
func Within(o *campaigns.OnReply, runStart, at, now time.Time) bool {
	if at.IsZero() {
		at = now
	}
	return at.Before(runStart.Add(o.UntilDuration()))
}
