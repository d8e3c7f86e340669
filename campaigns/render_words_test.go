package campaigns_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
)

// allowed is the list every "not allowed" and "not defined" problem ends with.
const allowed = "(allowed: and, default, eq, ge, gt, index, le, len, lower, lt, ne, not, or, slice, title, trim, upper, urlquery)"

// A template's problems read in plain words, in validation as on a row, in parameters as in
// session message fields: the action, as written, and its place in the template (line and
// column, in characters from 1), never Go's "template: 1:3:" or "at <index .name 5>: error
// calling index:". Before, `{{ call .name }}` read `parameters.body_1: template: 1:3: function
// "call" is not allowed ...`, and a row `body_2: template: 1:3: at <index .name 5>: error
// calling index: index out of range: 5`.
func TestTemplateProblemsInPlainWords(t *testing.T) {
	t.Parallel()
	params := "id: c\ntemplate: {name: t, language: en}\naudience: {file: a.csv}\nparameters:\n  body_1: "
	message := "id: c\nsender: \"+14155550100\"\naudience: {file: a.csv}\nmessage:\n  text: "
	for _, tc := range []struct {
		name, head, value, want string
	}{
		// What the sandbox refuses.
		{"ParamForbiddenFunction", params, `'{{ call .name }}'`,
			`c.yaml:5:11: parameters.body_1: {{ call .name }} at column 4 of the template: function "call" is not allowed in a parameter ` + allowed},
		{"ParamForbiddenAfterText", params, `'Hi {{ .name | html }}'`,
			`c.yaml:5:11: parameters.body_1: {{ .name | html }} at column 15 of the template: function "html" is not allowed in a parameter ` + allowed},
		{"MessageForbiddenFunction", message, `'{{ printf "%s" .x }}'`,
			`c.yaml:5:9: message.text: {{ printf "%s" .x }} at column 4 of the template: function "printf" is not allowed in a parameter ` + allowed},
		{"MessageForbiddenOnLine2", message, `"Hi\n{{ range .x }}{{ end }}"`,
			`c.yaml:5:9: message.text: {{ range .x }} at line 2, column 10 of the template: {{range}} is not allowed in a parameter: a parameter renders one value, without loops`},
		// Columns are characters, not bytes.
		{"ColumnInCharacters", message, `'héllo {{ call .x }}'`,
			`c.yaml:5:9: message.text: {{ call .x }} at column 10 of the template: function "call" is not allowed in a parameter ` + allowed},
		// What Go's parser refuses: it gives a line, named when the text has several.
		{"ParamUndefinedFunction", params, `'{{ .name | shout }}'`,
			`c.yaml:5:11: parameters.body_1: function "shout" is not defined ` + allowed},
		{"ParamUnclosedAction", params, `'Hi {{ .name'`,
			`c.yaml:5:11: parameters.body_1: a {{ has no closing }}`},
		{"MessageUndefinedFunction", message, `'{{ .x | shout }}'`,
			`c.yaml:5:9: message.text: function "shout" is not defined ` + allowed},
		{"MessageUnclosedOnLine3", message, `"Hi\nthere\n{{ .x"`,
			`c.yaml:5:9: message.text: at line 3 of the template: a {{ has no closing }}`},
		{"MessageUndefinedVariable", message, `'{{ $x }}'`,
			`c.yaml:5:9: message.text: $x is used before it is set`},
		{"MessageUnclosedQuote", message, `'{{ "abc }}'`,
			`c.yaml:5:9: message.text: a quoted text has no closing "`},
		{"MessageStrayEnd", message, `'x{{ end }}'`,
			`c.yaml:5:9: message.text: an {{ end }} closes nothing`},
		// What fails when it runs, on every row ("on every row" is said of a template that
		// reads the row; one that reads none fails on every row by itself).
		{"ParamWrongArgs", params, `'{{ upper .name .city }}'`,
			`c.yaml:5:11: parameters.body_1: {{ upper .name .city }} at column 4 of the template: upper takes 1 argument, not 2 (on every row)`},
		{"ParamNoArgs", params, `'{{ default }}'`,
			`c.yaml:5:11: parameters.body_1: {{ default }} at column 4 of the template: default takes 2 arguments, not 0 (on every row)`},
		{"ParamNumberForText", params, `'{{ .name | default 1 }}'`,
			`c.yaml:5:11: parameters.body_1: {{ .name | default 1 }} at column 20 of the template: expected text, found 1 (on every row)`},
		{"ParamFieldOfText", params, `'{{ .name.first }}'`,
			`c.yaml:5:11: parameters.body_1: {{ .name.first }} at column 9 of the template: cannot read field first of text (on every row)`},
		{"ParamCompareTextWithNumber", params, `'{{ if eq .tier 1 }}gold{{ end }}'`,
			`c.yaml:5:11: parameters.body_1: {{ if eq .tier 1 }} at column 7 of the template: cannot compare text with a number (on every row)`},
		{"ParamIndexByText", params, `'{{ index .code "x" }}'`,
			`c.yaml:5:11: parameters.body_1: {{ index .code "x" }} at column 4 of the template: an index is a number, not text (on every row)`},
		{"MessageFieldOfText", message, `'{{ .x.y }}'`,
			`c.yaml:5:9: message.text: {{ .x.y }} at column 6 of the template: cannot read field y of text (on every row)`},
		{"MessageSliceOutOfRange", message, `'{{ slice .x 0 -1 }}'`,
			`c.yaml:5:9: message.text: {{ slice .x 0 -1 }} at column 4 of the template: index -1 is out of range (on every row)`},
		{"MessageWrongArgsOnLine2", message, `"Hi\n{{ lower }}"`,
			`c.yaml:5:9: message.text: {{ lower }} at line 2, column 4 of the template: lower takes 1 argument, not 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := campaigns.Parse("c.yaml", []byte(tc.head+tc.value+"\n"))
			var es campaigns.Errors
			if !errors.As(err, &es) {
				t.Fatalf("Parse error = %v, want campaigns.Errors", err)
			}
			if len(es) != 1 || es[0].Error() != tc.want {
				t.Errorf("Parse errors =\n%v\nwant\n%s", err, tc.want)
			}
		})
	}
}

// A row whose template fails is skipped with the same plain words: the parameter or field,
// the action and its place, what is wrong.
func TestTemplateRowProblemsInPlainWords(t *testing.T) {
	t.Parallel()
	row := map[string]string{"name": "Ana", "code": "AB12"}
	for _, tc := range []struct{ name, tpl, want string }{
		{"IndexOutOfRange", "{{ index .name 5 }}",
			"cannot render parameters: body_1: {{ index .name 5 }} at column 4 of the template: index 5 is out of range"},
		{"SliceOutOfRange", "Code {{ slice .code 0 8 }}",
			"cannot render parameters: body_1: {{ slice .code 0 8 }} at column 9 of the template: index 8 is out of range"},
		{"SliceBackwards", "{{ slice .code 3 1 }}",
			"cannot render parameters: body_1: {{ slice .code 3 1 }} at column 4 of the template: the slice starts at 3, after its end at 1"},
		{"OnLine2", "{{- /* first letters */ -}}\n{{ index .name 9 }}",
			"cannot render parameters: body_1: {{ index .name 9 }} at line 2, column 4 of the template: index 9 is out of range"},
		{"WrongArgs", "{{ title .name .code }}",
			"cannot render parameters: body_1: {{ title .name .code }} at column 4 of the template: title takes 1 argument, not 2"},
		// Go's context for the place may hold ">: " itself.
		{"ContextWithGoSeparator", `{{ index . "a>: b" 1 }}`,
			`cannot render parameters: body_1: {{ index . "a>: b" 1 }} at column 4 of the template: index 1 is out of range`},
		// A long action is quoted around the place that failed.
		{"LongAction", "{{ .name | lower | title | trim | upper | lower | title | trim | index 1 }}",
			"cannot render parameters: body_1: {{ ... | upper | lower | title | trim | index 1 }} at column 66 of the template: cannot index a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := campaigns.NewRenderer(&campaigns.Definition{Parameters: campaigns.Parameters{Values: map[string]string{"body_1": tc.tpl}}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Render(row)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Render error =\n%v\nwant\n%s", err, tc.want)
			}
			if !errors.Is(err, campaigns.ErrRender) {
				t.Errorf("Render error %v does not wrap ErrRender", err)
			}
		})
	}
	for _, tc := range []struct {
		name string
		msg  connectly.SessionContent
		want string
	}{
		{"TextIndexOutOfRange", connectly.SessionContent{Text: "Hi {{ index .name 5 }}"},
			"cannot render parameters: message.text: {{ index .name 5 }} at column 7 of the template: index 5 is out of range"},
		{"TextOnLine2", connectly.SessionContent{Text: "Hi {{ .name }},\nyour code is {{ slice .code 0 8 }}"},
			"cannot render parameters: message.text: {{ slice .code 0 8 }} at line 2, column 17 of the template: index 8 is out of range"},
		{"ButtonWrongArgs", connectly.SessionContent{Text: "Pick", ReplyButtons: &connectly.ReplyButtons{Buttons: []connectly.Button{{ID: "a", Text: "{{ upper }}"}}}},
			"cannot render parameters: message.reply_buttons.buttons[0].text: {{ upper }} at column 4 of the template: upper takes 1 argument, not 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := campaigns.NewSessionRenderer(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Content(row)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Content error =\n%v\nwant\n%s", err, tc.want)
			}
			if !errors.Is(err, campaigns.ErrRender) {
				t.Errorf("Content error %v does not wrap ErrRender", err)
			}
		})
	}
}

// No problem of a template, whatever it is, keeps Go's place ("template: NAME:1:3:") or its
// words for the context ("executing", "error calling").
func TestTemplateProblemsKeepNoGoWords(t *testing.T) {
	t.Parallel()
	row := map[string]string{"name": "Ana"}
	for _, tpl := range []string{
		"{{ call .f }}", "{{ .a }", "{{ if .a }}", "{{ nil }}", "{{ len 3 }}", "{{ lt true false }}", "{{ .name 1 }}",
		"{{ index . 1 }}", "{{ slice . 1 }}", "{{ upper nil }}", "{{ upper (len .name) }}", "{{ with len .name }}{{ .b }}{{ end }}",
		"{{ .a | 1 }}", "{{ define \"x\" }}{{ end }}", "{{ index 3 1 }}", "x\n\n{{ eq .name 1 }}",
	} {
		_, err := campaigns.NewRenderer(&campaigns.Definition{Parameters: campaigns.Parameters{Values: map[string]string{"body_1": tpl}}})
		if err == nil {
			r, _ := campaigns.NewRenderer(&campaigns.Definition{Parameters: campaigns.Parameters{Values: map[string]string{"body_1": tpl}}})
			_, err = r.Render(row)
		}
		if err == nil {
			t.Errorf("template %q: no error", tpl)
			continue
		}
		for _, goWords := range []string{"template: ", "executing", "error calling", " at <", "operand", "string;", "interface {}"} {
			if strings.Contains(strings.ReplaceAll(err.Error(), "of the template: ", ""), goWords) {
				t.Errorf("template %q: %v holds Go's %q", tpl, err, goWords)
			}
		}
	}
}
