package conversation_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
)

// A follow-up location without a coordinate is refused by campaign validate, as the
// campaign-level message's is, not sent as a pin at 0,0; 0,0 written out is valid.
func TestValidateFollowUpLocationCoordinates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.csv"), []byte("phone\n+15550000001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	validate := func(message string) []string {
		t.Helper()
		path := filepath.Join(dir, "c.yaml")
		src := "id: promo\ntemplate: {name: promo, language: en_US}\naudience: {file: a.csv}\non_reply:\n" +
			"  - keyword: where\n    message: " + message + "\n"
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		r := campaigns.Validate(path, campaigns.ValidateOptions{OnReply: func(def *campaigns.Definition) ([]string, []string) {
			return conversation.CheckOnReply(context.Background(), def, nil)
		}})
		out := make([]string, len(r.Problems))
		for i, p := range r.Problems {
			out[i] = p.Field + ": " + p.Msg
		}
		return out
	}
	wantEqual := func(name string, want, got []string) {
		t.Helper()
		if len(want) != len(got) {
			t.Fatalf("%s: problems %q, want %q", name, got, want)
		}
		for i := range want {
			if want[i] != got[i] {
				t.Fatalf("%s: problems %q, want %q", name, got, want)
			}
		}
	}
	wantEqual("no latitude", []string{"on_reply[0].message.location.latitude: required"},
		validate("{location: {longitude: -9.14, name: Store}}"))
	wantEqual("no coordinates", []string{"on_reply[0].message.location.latitude: required", "on_reply[0].message.location.longitude: required"},
		validate("{location: {name: Store}}"))
	wantEqual("0,0", []string{}, validate("{location: {latitude: 0, longitude: 0}}"))
}

// A follow-up message value of the wrong type (a list for reply_buttons) is reported at its own
// key and line, in words, on one line: not at message, nor with the decoder's "line N:" and
// line breaks.
func TestValidateFollowUpWrongTypeAtItsKey(t *testing.T) {
	t.Parallel()
	r := validateFollowUps(t, "id: promo\ntemplate: {name: promo, language: en_US}\naudience: {file: a.csv}\non_reply:\n"+
		"  - name: yes\n    keyword: yes\n    message:\n      text: Pick\n      reply_buttons: [{id: a, text: A}]\n")
	if len(r.Problems) != 1 {
		t.Fatalf("problems %+v, want one", r.Problems)
	}
	p := r.Problems[0]
	if p.Field != "on_reply[0].message.reply_buttons" || p.Line != 9 || p.Msg != "cannot unmarshal a list into connectly.ReplyButtons" {
		t.Fatalf("problem %+v (%s), want on_reply[0].message.reply_buttons at line 9: cannot unmarshal a list into connectly.ReplyButtons", p, p.Msg)
	}
}

// A follow-up message of thousands of values of the wrong type is reported for the first
// few and counted for the rest: each report walks the message to place it, so a 400 KB
// file of 100,000 such values took validate 13 s.
func TestValidateFollowUpWrongTypesBounded(t *testing.T) {
	t.Parallel()
	r := validateFollowUps(t, "id: promo\ntemplate: {name: promo, language: en_US}\naudience: {file: a.csv}\non_reply:\n"+
		"  - name: yes\n    keyword: yes\n    message:\n      text: Pick\n      reply_buttons:\n        buttons: [[],\n"+
		strings.Repeat("          [],\n", 200)+"          []]\n")
	counted := 0
	for _, p := range r.Problems {
		if strings.Contains(p.Msg, "and 192 more values of the wrong type") {
			counted++
		}
	}
	if len(r.Problems) != 11 || counted != 1 {
		t.Fatalf("%d problems %+v; want 10 placed and one counting the other 192", len(r.Problems), r.Problems)
	}
}

// validateFollowUps validates the campaign file src, beside a one-row audience a.csv, with
// its follow-ups checked as campaign validate checks them.
func validateFollowUps(t *testing.T, src string) campaigns.Validation {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.csv"), []byte("phone\n+15550000001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return campaigns.Validate(path, campaigns.ValidateOptions{OnReply: func(def *campaigns.Definition) ([]string, []string) {
		return conversation.CheckOnReply(context.Background(), def, nil)
	}})
}
