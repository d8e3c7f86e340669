package conversation_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/conversation"
)

// Every problem CheckOnReply finds is at its place in the campaign file, as campaign validate
// writes every problem (file:line:col: on_reply[2].button: ...): a button or list row no
// message has, a value not checked, and a follow-up message Connectly would refuse.
func TestCheckOnReplyProblemsHavePositions(t *testing.T) {
	t.Parallel()
	def := sessionDef(t, buttonsMessage, "", `
  - {button: arrived-ok, tag: ok, none: true}
  - button: [problem, Arrived]
    tag: x
    none: true
  - list_row: size_m
    message:
      text: "Pick"
      reply_buttons:
        buttons: [{id: a, text: A}, {id: b, text: B}, {id: c, text: C}, {id: d, text: D}]
`)
	errs, notes := conversation.CheckOnReply(context.Background(), def, func() (conversation.TemplateButtons, error) {
		return nil, errors.New("not asked")
	})
	want := []string{
		`orders.yaml:19:7: on_reply[2].message.reply_buttons.buttons[3]: at most 3 buttons`,
		`orders.yaml:14:23: on_reply[1].button: "Arrived": not a reply button of the session message`,
		`orders.yaml:17:15: on_reply[2].list_row: "size_m": not a row id of the session message's list`,
	}
	if len(errs) != len(want) || len(notes) != 0 {
		t.Fatalf("errors %q notes %q; want %d errors", errs, notes, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i], w) {
			t.Errorf("error %d = %q, want it to start %q", i, errs[i], w)
		}
	}
}
