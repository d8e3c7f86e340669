package connectly_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/connectly"
)

// ReadSessionFile decodes YAML or JSON by the file's extension; a missing, oversized or
// malformed file, or one with an unknown key, is a SessionFileError.
func TestReadSessionFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := connectly.ReadSessionFile(write("m.yaml", "text: Which day?\n"))
	if err != nil || c.Text != "Which day?" {
		t.Fatalf("yaml: %+v, %v", c, err)
	}
	c, err = connectly.ReadSessionFile(write("m.JSON", `{"text": "hi"}`))
	if err != nil || c.Text != "hi" {
		t.Fatalf("json: %+v, %v", c, err)
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "none.yaml"), "no such file"},
		{write("big.yaml", "text: "+strings.Repeat("a", connectly.MaxSessionFile)), "larger than 1048576 bytes"},
		{write("unknown.yaml", "text: hi\nbuttons: []\n"), "field buttons not found"},
		{write("unknown.json", `{"text": "hi", "buttons": []}`), `unknown field "buttons"`},
	} {
		_, err := connectly.ReadSessionFile(tc.path)
		if !errors.As(err, new(connectly.SessionFileError)) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a SessionFileError with %q", filepath.Base(tc.path), err, tc.want)
		}
	}
}
