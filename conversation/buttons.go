package conversation

import (
	"errors"
	"fmt"
	"strings"

	"github.com/heraldmsg/herald/campaigns"
)

// ErrUnknownButton is wrapped by CheckButtons when a rule names a button the template does
// not have.
var ErrUnknownButton = errors.New("not a quick-reply button of the template")

// CheckButtons checks that every button a rule names is one of buttons: the template's
// quick-reply buttons (their texts, from get/templates), plus any payloads the campaign sets
// on them. Labels compare as Match compares them (case and spacing ignored). It returns an
// error wrapping ErrUnknownButton that names every rule and button not found, or nil.
func CheckButtons(rules []campaigns.ReplyRule, buttons []string) error {
	var problems []string
	for i := range rules {
		for _, v := range rules[i].Button {
			found := false
			for _, b := range buttons {
				if sameLabel(v, b) {
					found = true
					break
				}
			}
			if !found {
				problems = append(problems, fmt.Sprintf("rule %s: button %q", rules[i].ID(), v))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	have := "it has none"
	if len(buttons) > 0 {
		quoted := make([]string, len(buttons))
		for i, b := range buttons {
			quoted[i] = fmt.Sprintf("%q", b)
		}
		have = "it has " + strings.Join(quoted, ", ")
	}
	return fmt.Errorf("on_reply: %s: %w (%s)", strings.Join(problems, "; "), ErrUnknownButton, have)
}
