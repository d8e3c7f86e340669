package webhooks

import (
	"strings"

	"github.com/heraldmsg/herald/internal/ledger"
)

// ForeignCallback reports whether the callbackData cb of an inbound message names another
// customer than the one who sent it, from (reference 5.4: the customer is the webhook's sender
// on inbound events). Such a callbackData is not trusted: the receiver counts the reply as one
// without it, and the reply handler (conversation.ForeignCallback) joins it as one without it.
// This is the one place that decides it.
//
// Only a positive contradiction counts: the callbackData's recipient is a phone number and the
// sender's phone is given and another (compared by digits), or it is a BSUID and the sender's
// BSUID is given and another. A sender known by one id only is never contradicted by the other
// kind: a customer who hides their number writes with their BSUID alone (reference 6) and may
// answer a message Herald sent to their phone, and a phone-only sender may answer one sent to
// their BSUID. A recipient of neither form contradicts nothing, and a nil cb is not foreign.
func ForeignCallback(from Customer, cb *ledger.Address) bool {
	if cb == nil {
		return false
	}
	if id, ok := strings.CutPrefix(cb.Recipient, "bsuid:"); ok {
		bsuid := strings.TrimSpace(from.BSUID)
		return bsuid != "" && bsuid != strings.TrimSpace(id)
	}
	to, ok := phoneDigits(cb.Recipient)
	if !ok {
		return false
	}
	phone, ok := phoneDigits(from.Phone)
	return ok && phone != to
}

// phoneDigits returns the digits of a phone number written with an optional "+" and spaces,
// dashes, dots or brackets between them; ok is false for anything else, or no digits.
func phoneDigits(s string) (string, bool) {
	var b strings.Builder
	for _, c := range strings.TrimSpace(s) {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == '+' && b.Len() == 0, c == ' ', c == '-', c == '.', c == '(', c == ')':
		default:
			return "", false
		}
	}
	return b.String(), b.Len() > 0
}
