package report

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/heraldmsg/herald/internal/logx"
)

// MaskRequests masks the recipient in request bodies (all but its last 4 characters),
// wherever it appears (number or a session send's recipient, callbackData; with or without
// its '+', URL-encoded or joined to a word), and phone-like
// digits in every other text, as Herald's logs and pages do. The bodies keep their exact
// shape otherwise. `campaign plan` shows its samples, and `message send --dry-run` its
// request, through it unless told to reveal them.
func MaskRequests(bodies []json.RawMessage) []json.RawMessage {
	out := make([]json.RawMessage, len(bodies))
	for i, s := range bodies {
		var to struct {
			Number    string `json:"number"`
			Recipient struct {
				ID     string `json:"id"`
				UserID string `json:"userId"`
			} `json:"recipient"`
		}
		b := []byte(s)
		if json.Unmarshal(s, &to) == nil {
			for _, r := range []string{to.Number, to.Recipient.ID, to.Recipient.UserID} {
				if len(r) > 4 {
					b = bytes.ReplaceAll(b, []byte(r), []byte(logx.Phone(r)))
				}
				// The number without its '+' (a template may write it so, or URL-encoded as
				// %2B14155552671): masked wherever it stands, joined to a word or not.
				if d, ok := strings.CutPrefix(r, "+"); ok && len(d) > 4 {
					b = bytes.ReplaceAll(b, []byte(d), []byte(logx.Phone(d)))
				}
			}
		}
		out[i] = json.RawMessage(logx.MaskDigits(string(b)))
	}
	return out
}
