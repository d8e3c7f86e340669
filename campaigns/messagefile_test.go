package campaigns_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// A message file (`message send --file`) is decoded as a campaign's message: is: every
// problem at its line and column with its field path, a misspelt key with the closest known
// key, the checks of the message included; a JSON file alike.
func TestParseMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file, src string
		want            []string
	}{
		{"misspelt key", "reply.yaml", "attachment:\n  type: document\n  url: https://example.com/a.pdf\n  file_name: a.pdf\n",
			[]string{`reply.yaml:4:3: attachment.file_name: unknown key "file_name" (did you mean "filename"?)`}},
		{"unknown key", "reply.yaml", "text: hi\nbuttons: []\n",
			[]string{`reply.yaml:2:1: buttons: unknown key "buttons" (known keys: attachment, list, location, multi_product, raw, reply_buttons, single_product, text)`}},
		{"misspelt key in JSON", "reply.json", `{"text": "Pick", "reply_buttons": {"buttons": [{"id": "a", "txt": "A"}]}}`,
			[]string{"reply.json:1:48: reply_buttons.buttons[0].text: required",
				`reply.json:1:60: reply_buttons.buttons[0].txt: unknown key "txt" (did you mean "text"?)`}},
		{"wrong type", "reply.json", `{"location": {"latitude": "north", "longitude": 1}}`,
			[]string{`reply.json:1:27: location.latitude: want a number, got "north"`}},
		{"too many buttons", "many.yaml", "text: Pick\nreply_buttons:\n  buttons: [{id: a, text: A}, {id: b, text: B}, {id: c, text: C}, {id: d, text: D}]\n",
			[]string{"many.yaml:3:67: reply_buttons.buttons[3]: at most 3 buttons"}},
		{"required coordinate", "pin.yaml", "location:\n  name: Store\n  longitude: -9.14\n",
			[]string{"pin.yaml:2:3: location.latitude: required"}},
		{"empty message", "m.yaml", "{}\n", []string{"m.yaml:1:1: text: required: a message needs text or one of"}},
		{"empty file", "m.yaml", "", []string{"m.yaml:1:1: file is empty"}},
		{"not a mapping", "m.json", `["hi"]`, []string{"m.json:1:1: want a mapping of message keys"}},
		{"two documents", "m.yaml", "text: a\n---\ntext: b\n", []string{"m.yaml:2:1: a second YAML document starts here"}},
		{"syntax", "m.yaml", "text: [a\n", []string{"m.yaml:"}},
	} {
		_, err := campaigns.ParseMessage(tc.file, []byte(tc.src))
		var errs campaigns.Errors
		if !errors.As(err, &errs) || len(errs) != len(tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
			continue
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(errs[i].Error(), w) {
				t.Errorf("%s: problem %d is %q, want %q", tc.name, i, errs[i].Error(), w)
			}
		}
	}
}

// A valid file gives its message, YAML or JSON, whatever the extension; the escapes JSON has
// and YAML lacks read as JSON reads them, and the places after them do not move.
func TestParseMessageJSON(t *testing.T) {
	t.Parallel()
	c, err := campaigns.ParseMessage("m.yaml", []byte("text: Which day?\nreply_buttons:\n  buttons:\n    - {id: mon, text: Monday}\n"))
	if err != nil || c.Text != "Which day?" || c.ReplyButtons == nil || c.ReplyButtons.Buttons[0].ID != "mon" {
		t.Fatalf("yaml: %+v, %v", c, err)
	}
	c, err = campaigns.ParseMessage("m.JSON", []byte("{\n\t\"text\": \"See https:\\/\\/example.com\\/a \\ud83d\\ude00 \\ud800 \\u00e9 \\\\u\"\n}\n"))
	if err != nil || c.Text != "See https://example.com/a \U0001F600 \uFFFD é \\u" {
		t.Fatalf("json: %q, %v", c.Text, err)
	}
	_, err = campaigns.ParseMessage("m.json", []byte(`{"text": "a\/b\ud83d\ude00", "location": {"latitude": "x"}}`))
	if err == nil || err.Error() != `m.json:1:55: location.latitude: want a number, got "x"` {
		t.Fatalf("places after an escape: %v", err)
	}
}

// ReadMessageFile reads a file as a campaign file is read: a missing one names its path.
func TestReadMessageFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "m.json")
	if err := os.WriteFile(p, []byte(`{"text": "hi"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := campaigns.ReadMessageFile(p); err != nil || c.Text != "hi" {
		t.Fatalf("%+v, %v", c, err)
	}
	if _, err := campaigns.ReadMessageFile(filepath.Join(dir, "none.yaml")); err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}
