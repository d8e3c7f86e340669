package conversation_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/ledger"
)

// misspeltMessage is a follow-up message whose reply_buttons is misspelt: decoded without
// checking its keys, it is plain text.
const misspeltMessage = `{text: "Choose", reply_button: {buttons: [{id: x, text: "X"}]}}`

func messageNode(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

// The runtime decode refuses a key a session message does not declare, as validation does,
// rather than render the message without it.
func TestMessageOfRefusesUnknownKeys(t *testing.T) {
	t.Parallel()
	rule := &campaigns.ReplyRule{Any: true, Message: campaigns.ReplyMessage{Node: messageNode(t, misspeltMessage)}}
	_, err := conversation.MessageOf(rule)
	var unknown *campaigns.UnknownKeysError
	if !errors.As(err, &unknown) || !strings.Contains(err.Error(), `message.reply_button: unknown key "reply_button" (did you mean "reply_buttons"?)`) {
		t.Fatalf("MessageOf: %v", err)
	}
	def := &campaigns.Definition{ID: "promo", OnReply: campaigns.OnReply{Rules: []campaigns.ReplyRule{*rule}}}
	if p, err := conversation.Payload(conversation.FollowupOf{Def: def, Rule: rule}); err == nil {
		t.Fatalf("Payload rendered %+v", p)
	}
	rule.Message.Node = messageNode(t, `{text: "Choose", reply_buttons: {buttons: [{id: x, text: "X"}]}}`)
	if c, err := conversation.MessageOf(rule); err != nil || c.ReplyButtons == nil {
		t.Fatalf("MessageOf the message spelt right: %+v %v", c, err)
	}
}

// A stored campaign whose rule has an unknown key (validation refuses one now) sends nothing
// for it: the follow-up is written skipped, with no task.
func TestFollowupWithUnknownMessageKeyIsSkipped(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	rule, ok := b.def.OnReply.Rule("interested")
	if !ok {
		t.Fatal("no rule interested")
	}
	rule.Message.Node = messageNode(t, misspeltMessage)
	ana := b.rcpts[0]
	out, err := b.fu.Reply(ctx, b.tap(ana, "Yes, show me"))
	if err != nil || out.Rule != "interested" || out.Verdict != ledger.FollowupSkipped {
		t.Fatalf("tap: %+v %v", out, err)
	}
	if n := len(b.tasks.tasks[b.taskID(ledger.FollowupRun(b.run.ID, "interested"), ana)]); n != 0 {
		t.Fatalf("%d tasks for a follow-up whose message has an unknown key", n)
	}
}

// campaign validate reports an unknown key of a follow-up message once, at its place, with the
// on_reply checks on.
func TestValidateReportsUnknownMessageKeyOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.csv"), []byte("phone\n+15550000001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.yaml")
	src := "id: promo\ntemplate: {name: promo, language: en_US}\naudience: {file: a.csv}\non_reply:\n" +
		"  - keyword: choose\n    message: " + misspeltMessage + "\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	r := campaigns.Validate(path, campaigns.ValidateOptions{OnReply: func(def *campaigns.Definition) ([]string, []string) {
		return conversation.CheckOnReply(context.Background(), def, nil)
	}})
	want := path + `:6:31: on_reply[0].message.reply_button: unknown key "reply_button" (did you mean "reply_buttons"?)`
	if r.OK || len(r.Errors) != 1 || r.Errors[0] != want {
		t.Fatalf("validate: %q, want only %q", r.Errors, want)
	}
}
