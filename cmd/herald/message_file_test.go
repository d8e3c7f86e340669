package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `message send --file` names every problem of its file at its place, with its field path
// and, for a misspelt key, the closest known key, as campaign validate does for a campaign's
// message:; a JSON file alike, and the checks of the message too. Nothing is sent.
func TestMessageSendFileProblems(t *testing.T) {
	t.Parallel()
	b := newSupportBench(t)
	b.open(t, "+14155552671")
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	doc := write("doc.yaml", "attachment:\n  type: document\n  url: https://example.com/invoice.pdf\n  file_name: invoice.pdf\n")
	js := write("pin.json", `{"location": {"latitude": "north", "longitude": -9.14}}`)
	long := write("long.yaml", "text: "+strings.Repeat("a", 4097)+"\n")
	for _, tc := range []struct{ file, want string }{
		{doc, doc + `:4:3: attachment.file_name: unknown key "file_name" (did you mean "filename"?)`},
		{js, js + `:1:27: location.latitude: want a number, got "north"`},
		{long, long + ":1:7: text: 4097 characters, at most 4096"},
	} {
		code, out, errOut := herald(t, b.env, "message", "send", "--to", "+14155552671", "--file", tc.file)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d %q %q, want usage error with %q", filepath.Base(tc.file), code, out, errOut, tc.want)
		}
	}
	if n := len(b.fake.Received()); n != 0 {
		t.Fatalf("fake received %d requests", n)
	}
}
