package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// campaign validate reports every problem of a file in one run, in the order of the file, and
// --json gives each problem with its parts (file, line, col, field, message) besides the text
// form it always gave (errors).
func TestCampaignValidateEveryProblem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"welcome.csv": "first_name,phone\nana,+14155552671\n",
		"b1.yaml": "id: Bad_ID!\ntemplate: {name: x, language: en}\nparameters:\n  body_1: \"{{ .first_name | title \"\n" +
			"  body_2: \"{{ .nosuchcol }}\"\naudience:\n  file: welcome.csv\ndelivery: sometimes\nrate: fast\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "b1.yaml")
	wantText := []string{
		file + `:1:5: id: "Bad_ID!" is not a slug`,
		file + ":4:11: parameters.body_1: a {{ has no closing }}",
		file + `:5:11: parameters.body_2: reads column "nosuchcol", which the audience welcome.csv does not have (its columns: "first_name", "phone")`,
		file + `:8:11: delivery: "sometimes": want at-most-once or at-least-once`,
		file + `:9:7: rate: want a number, got "fast"`,
	}
	code, out, _ := herald(t, nil, "campaign", "validate", file)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitError || len(lines) != len(wantText) {
		t.Fatalf("exit %d, %d lines, want %d:\n%s", code, len(lines), len(wantText), out)
	}
	for i, w := range wantText {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}

	code, out, _ = herald(t, nil, "campaign", "validate", "--json", file)
	var res []struct {
		File     string            `json:"file"`
		OK       bool              `json:"ok"`
		Errors   []string          `json:"errors"`
		Problems []json.RawMessage `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitError || len(res) != 1 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	r := res[0]
	if r.File != file || r.OK || len(r.Errors) != len(wantText) || len(r.Problems) != len(wantText) {
		t.Fatalf("result %+v", r)
	}
	for i, raw := range r.Problems {
		var p map[string]any
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		if len(p) != 5 || p["file"] != file || p["line"] == nil || p["col"] == nil || p["field"] == nil || p["message"] == nil {
			t.Fatalf("problem %d: %s, want the keys file, line, col, field and message", i, raw)
		}
		text := p["file"].(string) + ":" + jsonInt(p["line"]) + ":" + jsonInt(p["col"]) + ": " + p["field"].(string) + ": " + p["message"].(string)
		if text != r.Errors[i] || !strings.HasPrefix(text, wantText[i]) {
			t.Errorf("problem %d reads %q; its text is %q", i, text, r.Errors[i])
		}
	}
}

func jsonInt(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
