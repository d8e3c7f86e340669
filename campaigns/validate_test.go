package campaigns_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// TestValidate: the order of checks and the shape of their errors: a definition with
// problems has its other checks made all the same but its rows not read, on_reply's problems
// and notes are added, rows are read only when asked.
func TestValidate(t *testing.T) {
	t.Parallel()
	bad := filepath.Join("testdata", "broken", "bad-category.yaml")
	onReplyAsked := false
	r := campaigns.Validate(bad, campaigns.ValidateOptions{Rows: true,
		OnReply: func(*campaigns.Definition) ([]string, []string) { onReplyAsked = true; return nil, nil }})
	if r.OK || r.File != bad || len(r.Errors) != 2 || !strings.HasPrefix(r.Errors[0], bad+":5:13: template.category") || !onReplyAsked || r.Rows != 0 {
		t.Fatalf("broken definition: %+v (on_reply asked %v)", r, onReplyAsked)
	}
	// Its audience file is missing, which is a problem too, at audience.file.
	if !strings.HasPrefix(r.Errors[1], bad+":7:9: audience.file: ") {
		t.Fatalf("broken definition, audience problem: %q", r.Errors[1])
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
	// Its example rows are lines of their own, as plan prints them: not an escaped "\n".
	lines := strings.Split(r.Errors[0], "\n")
	if len(lines) != 2 || strings.Contains(r.Errors[0], `\n`) || !strings.HasPrefix(lines[1], "  ") || !strings.Contains(lines[1], "a.csv:3: row 2: invalid_phone: ") {
		t.Fatalf("invalid share, its lines: %q", r.Errors[0])
	}
	if len(r.Problems) != 1 || r.Problems[0].Field != "audience.file" || !strings.Contains(r.Problems[0].Msg, "\n  ") {
		t.Fatalf("invalid share, its problem: %+v", r.Problems)
	}
}

// TestValidateEveryProblemAtOnce: one run of Validate reports the problems of every check it
// can make. A problem of the definition does not hide the audience's header, the columns the
// templates read or the on_reply checks; a field that cannot be decoded skips only the checks
// that read it.
func TestValidateEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone,first_name\n+14155552671,ana\n")

	t.Run("HeaderCheckedDespiteWrongType", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, dir, "b1.yaml", "id: Bad_ID!\ntemplate: {name: x, language: en}\nparameters:\n  body_1: \"{{ .first_name | title \"\n"+
			"  body_99: x\naudience:\n  file: a.csv\n  phone: telefono\ndelivery: sometimes\nrate: fast\n")
		r := campaigns.Validate(path, campaigns.ValidateOptions{})
		wantPrefixes(t, r.Errors, path+":1:5: id:", path+":4:11: parameters.body_1: a {{ has no closing }}", path+":5:12: parameters.body_99:",
			path+":9:11: delivery:", path+`:10:7: rate: want a number, got "fast"`, path+":8:10: audience.phone: ")
		// In the order of the file: the header without the phone column at audience.phone,
		// line 8, which names the column; the problem still names the audience file and its
		// header line.
		if !strings.Contains(r.Errors[3], `a.csv:1: no "telefono" column`) {
			t.Fatalf("audience problem: %q", r.Errors)
		}
	})

	t.Run("ColumnsAndOnReplyCheckedDespiteWrongType", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, dir, "or.yaml", "id: or\ntemplate: {name: promo, language: en}\naudience: {file: a.csv}\nrate: fast\n"+
			"on_reply:\n  - button: \"Yes\"\n    message: {text: \"Hi {{ .nickname }}\"}\n  - list_row: size_x\n    none: true\n")
		asked := false
		r := campaigns.Validate(path, campaigns.ValidateOptions{OnReply: func(d *campaigns.Definition) ([]string, []string) {
			asked = len(d.OnReply.Rules) == 2
			return []string{path + ":8:17: on_reply[1].list_row: \"size_x\": not a row id"}, nil
		}})
		if !asked {
			t.Fatal("on_reply checks not made")
		}
		wantPrefixes(t, r.Errors, path+`:4:7: rate: want a number, got "fast"`,
			path+`:7:21: on_reply[0].message.text: reads column "nickname", which the audience a.csv does not have`,
			path+":8:17: on_reply[1].list_row:")
	})

	t.Run("BrokenPartsSkipTheirChecks", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, dir, "c.yaml", "id: Bad_ID!\ntemplate: {name: promo, language: en}\naudience: {file: [a.csv]}\non_reply: 5\n")
		r := campaigns.Validate(path, campaigns.ValidateOptions{Rows: true, OnReply: func(*campaigns.Definition) ([]string, []string) {
			t.Error("on_reply checks made of an on_reply that did not decode")
			return nil, nil
		}})
		wantPrefixes(t, r.Errors, path+":1:5: id:", path+":3:18: audience.file: want a text value, got a list",
			path+":4:11: on_reply: want a list of rules")
		if r.Rows != 0 {
			t.Fatalf("rows read of a broken definition: %+v", r)
		}
	})
}

// wantPrefixes checks that got holds one line starting with each prefix, and no other.
func wantPrefixes(tb testing.TB, got []string, prefixes ...string) {
	tb.Helper()
	if len(got) != len(prefixes) {
		tb.Fatalf("got %d problems, want %d:\n%s", len(got), len(prefixes), strings.Join(got, "\n"))
	}
	for _, p := range prefixes {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, p)
		}
		if !found {
			tb.Errorf("no problem starts with %q in:\n%s", p, strings.Join(got, "\n"))
		}
	}
}

// A template that reads a column the audience's header lacks renders it empty on every row:
// validate reports it at the template's place, naming the column and the header's columns,
// never a row's values. A JSON Lines audience has no header and is not checked.
func TestValidateTemplateColumns(t *testing.T) {
	t.Parallel()
	const secret = "SECRET-ROW-VALUE-4242"
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone,first_name,city\n+14155552671,"+secret+",Porto\n")
	writeFile(t, dir, "a.jsonl", `{"phone":"+14155552671","first_name":"`+secret+`"}`+"\n")
	const columns = `(its columns: "phone", "first_name", "city")`

	t.Run("TemplateCampaign", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, dir, "t.yaml", "id: t\ntemplate: {name: promo, language: en}\naudience: {file: a.csv}\nparameters:\n"+
			"  body_1: \"{{ .nosuchcol }}\"\n  body_2: \"{{ .first_name | default .nickname }}\"\n"+
			"  header_text: \"{{ with .city }}{{ . }}{{ end }}\"\n  raw:\n    - {name: q, value: \"{{ index . \\\"coupon code\\\" }}\"}\n")
		r := campaigns.Validate(path, campaigns.ValidateOptions{})
		wantPrefixes(t, r.Errors,
			path+`:5:11: parameters.body_1: reads column "nosuchcol", which the audience a.csv does not have `+columns,
			path+`:6:11: parameters.body_2: reads column "nickname", which the audience a.csv does not have `+columns,
			path+`:9:24: parameters.raw[0].value: reads column "coupon code", which the audience a.csv does not have `+columns)
		if strings.Contains(strings.Join(r.Errors, "\n"), secret) {
			t.Fatalf("a problem quotes a row: %q", r.Errors)
		}
	})

	t.Run("SessionCampaign", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, dir, "s.yaml", "id: s\nmessage:\n  text: \"Hi {{ .nick }}\"\nfallback_template:\n  name: promo\n  language: en\n"+
			"  parameters: {body_1: \"{{ .first_name }} {{ .zzz }}\"}\naudience: {file: a.csv}\n")
		r := campaigns.Validate(path, campaigns.ValidateOptions{})
		wantPrefixes(t, r.Errors,
			path+`:3:9: message.text: reads column "nick"`,
			path+`:7:24: fallback_template.parameters.body_1: reads column "zzz"`)
	})

	t.Run("JSONLinesNotChecked", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, dir, "j.yaml", "id: j\ntemplate: {name: promo, language: en}\naudience: {file: a.jsonl}\nparameters: {body_1: \"{{ .nosuchcol }}\"}\n")
		if r := campaigns.Validate(path, campaigns.ValidateOptions{}); !r.OK {
			t.Fatalf("JSON Lines audience: %+v", r)
		}
	})
}

// Each problem is given twice: as text (Errors, the first form of --json) and with its parts
// (Problems), in the same order: the order of the file, whatever check found it. Problems
// the on_reply checks return as text get their parts back.
func TestValidateProblems(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone,first_name\n+14155552671,ana\n")
	path := writeFile(t, dir, "p.yaml", "id: p\ntemplate: {name: promo, language: en}\naudience: {file: a.csv}\n"+
		"on_reply:\n  - list_row: size_x\n    none: true\nrate: fast\n")
	r := campaigns.Validate(path, campaigns.ValidateOptions{OnReply: func(*campaigns.Definition) ([]string, []string) {
		return []string{path + `:5:17: on_reply[0].list_row: "size_x": not a row id`, "rule r1: no place"}, nil
	}})
	want := []campaigns.FieldError{
		{File: path, Msg: "rule r1: no place"},
		{File: path, Line: 5, Column: 17, Field: "on_reply[0].list_row", Msg: `"size_x": not a row id`},
		{File: path, Line: 7, Column: 7, Field: "rate", Msg: `want a number, got "fast"`},
	}
	wantEqual(t, "problems", want, r.Problems)
	wantEqual(t, "errors", []string{"rule r1: no place", want[1].Error(), want[2].Error()}, r.Errors)

	raw, err := json.Marshal(r.Problems[1])
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "JSON", `{"file":"`+path+`","line":5,"col":17,"field":"on_reply[0].list_row","message":"\"size_x\": not a row id"}`, string(raw))

	ok := campaigns.Validate(writeFile(t, dir, "ok.yaml", "id: ok\ntemplate: {name: promo, language: en}\naudience: {file: a.csv}\n"), campaigns.ValidateOptions{})
	if !ok.OK || ok.Problems == nil || ok.Errors == nil {
		t.Fatalf("a valid file's problems and errors must be empty lists, not null: %+v", ok)
	}
}
