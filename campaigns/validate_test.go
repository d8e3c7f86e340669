package campaigns_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// TestValidate: the order of checks and the shape of their errors: a broken definition stops
// at its own errors, on_reply's problems and notes are added, rows are read only when asked.
func TestValidate(t *testing.T) {
	t.Parallel()
	bad := filepath.Join("testdata", "broken", "bad-category.yaml")
	onReplyAsked := false
	r := campaigns.Validate(bad, campaigns.ValidateOptions{Rows: true,
		OnReply: func(*campaigns.Definition) ([]string, []string) { onReplyAsked = true; return nil, nil }})
	if r.OK || r.File != bad || len(r.Errors) != 1 || !strings.HasPrefix(r.Errors[0], bad+":5:13: template.category") || onReplyAsked || r.Rows != 0 {
		t.Fatalf("broken definition: %+v (on_reply asked %v)", r, onReplyAsked)
	}

	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone,name\n+14155552671,ana\n12,bad\n")
	good := writeFile(t, dir, "t.yaml", "id: spring\nsender: \"+14155550100\"\naudience: {file: a.csv, max_invalid_share: 0.5}\n"+
		"template: {name: hello, language: en}\nparameters: {body_1: \"{{ .name }}\"}\n")
	r = campaigns.Validate(good, campaigns.ValidateOptions{
		OnReply: func(*campaigns.Definition) ([]string, []string) { return nil, []string{"buttons not checked"} }})
	if !r.OK || r.RowsRead || r.Rows != 0 || len(r.Errors) != 0 || len(r.Notes) != 1 {
		t.Fatalf("header only: %+v", r)
	}
	r = campaigns.Validate(good, campaigns.ValidateOptions{Rows: true,
		OnReply: func(*campaigns.Definition) ([]string, []string) { return []string{"rule yes: no such button"}, nil }})
	if r.OK || !r.RowsRead || r.Rows != 2 || r.Skipped["invalid_phone"] != 1 || len(r.Errors) != 1 || r.Errors[0] != "rule yes: no such button" {
		t.Fatalf("with rows and an on_reply problem: %+v", r)
	}

	// Too many invalid rows is a problem of audience.file, at its place in the definition.
	strict := writeFile(t, dir, "s.yaml", "id: spring\nsender: \"+14155550100\"\naudience: {file: a.csv, max_invalid_share: 0.1}\n"+
		"template: {name: hello, language: en}\nparameters: {body_1: \"{{ .name }}\"}\n")
	r = campaigns.Validate(strict, campaigns.ValidateOptions{Rows: true})
	if r.OK || len(r.Errors) != 1 || !strings.HasPrefix(r.Errors[0], strict+":3:") || !strings.Contains(r.Errors[0], "audience.file") {
		t.Fatalf("invalid share: %+v", r)
	}
}
