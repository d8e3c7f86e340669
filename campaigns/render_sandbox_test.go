package campaigns_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
)

// secret stands for audience data that must never appear in an error.
const secret = "S3CRET-VALUE"

func TestRenderSandboxRefuses(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		tpl     string
		wantErr string
	}{
		{name: "RangeLoop", tpl: "{{ range 100000000 }}x{{ end }}", wantErr: "{{ range 100000000 }} at column 10 of the template: {{range}} is not allowed"},
		{name: "RangeLoopWritingNothing", tpl: "{{ range 100000000 }}{{ end }}", wantErr: "{{range}} is not allowed"},
		{name: "RangeOverRow", tpl: "{{ range $k, $v := . }}{{ $v }}{{ end }}", wantErr: "{{range}} is not allowed"},
		{name: "RangeInsideIf", tpl: "{{ if .a }}{{ range 9 }}{{ break }}{{ end }}{{ end }}", wantErr: "{{ range 9 }} at column 21 of the template: {{range}} is not allowed"},
		{name: "RecursiveDefine", tpl: `{{ define "x" }}{{ template "x" . }}{{ end }}{{ template "x" . }}`, wantErr: "{{template}} are not allowed"},
		{name: "MutualRecursion", tpl: `{{ define "a" }}{{ template "b" }}{{ end }}{{ define "b" }}{{ template "a" }}{{ end }}x`, wantErr: "{{template}} are not allowed"},
		// Not recursive, yet each level doubles the work: 2^n runs for n defines.
		{name: "DoublingDefines", tpl: `{{ define "a" }}x{{ end }}{{ define "b" }}{{ template "a" }}{{ template "a" }}{{ end }}{{ template "b" }}`, wantErr: "{{template}} are not allowed"},
		{name: "RedefineSelf", tpl: `{{ define "body_1" }}{{ template "body_1" }}{{ end }}`, wantErr: "{{template}} are not allowed"},
		{name: "Block", tpl: `{{ block "b" . }}{{ .a }}{{ end }}`, wantErr: "{{template}} are not allowed"},
		{name: "Call", tpl: "{{ call .a }}", wantErr: `function "call" is not allowed`},
		{name: "CallAsArgument", tpl: "{{ upper (call .a) }}", wantErr: `function "call" is not allowed`},
		{name: "PrintfWidth", tpl: `{{ printf "%0100000000d" 1 }}`, wantErr: `function "printf" is not allowed`},
		{name: "Print", tpl: "{{ print .a .a }}", wantErr: `function "print" is not allowed`},
		{name: "Println", tpl: "{{ println .a }}", wantErr: `function "println" is not allowed`},
		{name: "HTML", tpl: "{{ html .a }}", wantErr: `function "html" is not allowed`},
		{name: "JS", tpl: "{{ .a | js }}", wantErr: `function "js" is not allowed`},
		{name: "SourceTooLong", tpl: strings.Repeat("x", campaigns.MaxTemplateBytes+1), wantErr: fmt.Sprintf("template is %d bytes, limit %d", campaigns.MaxTemplateBytes+1, campaigns.MaxTemplateBytes)},
		{name: "TooManyNodes", tpl: strings.Repeat("{{.a}}", 600), wantErr: "template is too complex"},
		{name: "Unparsable", tpl: "{{ .a", wantErr: "a {{ has no closing }}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := campaigns.NewRenderer(&campaigns.Definition{Parameters: campaigns.Parameters{Values: map[string]string{"body_1": tt.tpl}}})
			wantErrContains(t, err, "parameters.body_1: ", tt.wantErr)
			_, err = campaigns.NewRenderer(&campaigns.Definition{Parameters: campaigns.Parameters{Raw: []campaigns.RawParam{{Name: "quick_reply_1", Value: tt.tpl}}}})
			wantErrContains(t, err, "parameters.raw[0]: ", tt.wantErr)
		})
	}
}

func TestRenderSandboxAllows(t *testing.T) {
	t.Parallel()

	cols := map[string]string{"a": "ana", "tier": "gold", "first name": "bo", "code": "SPRING25"}
	tests := []struct {
		name, tpl, want string
	}{
		{name: "IfElse", tpl: `{{ if eq .tier "gold" }}VIP{{ else }}friend{{ end }}`, want: "VIP"},
		{name: "ElseIf", tpl: `{{ if not .missing }}none{{ else if .a }}a{{ end }}`, want: "none"},
		{name: "With", tpl: `{{ with .a }}{{ . | title }}{{ else }}there{{ end }}`, want: "Ana"},
		{name: "Variables", tpl: `{{ $n := .a }}{{ $n = upper $n }}{{ $n }} {{ $.tier }}`, want: "ANA gold"},
		{name: "IndexOddColumnName", tpl: `{{ index . "first name" }}`, want: "bo"},
		{name: "Slice", tpl: `{{ slice .code 0 6 }}`, want: "SPRING"},
		{name: "LenAndLogic", tpl: `{{ if and (gt (len .code) 3) (or .a .b) }}long{{ end }}`, want: "long"},
		{name: "Comment", tpl: `{{/* greeting */}}hi {{ .a }}`, want: "hi ana"},
		{name: "Trimmed", tpl: "{{- .a -}}", want: "ana"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := newRenderer(t, map[string]string{"body_1": tt.tpl}).Render(cols)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			wantEqual(t, "parameters", []connectly.Parameter{{Name: "body_1", Value: tt.want}}, got)
		})
	}
}

// TestRenderValueLimits checks each kind of parameter at its limit and one character over,
// with characters of 1 to 4 bytes, and that the error never quotes the value.
func TestRenderValueLimits(t *testing.T) {
	t.Parallel()

	tests := []struct {
		param string
		raw   bool
		limit int
		what  string
		pre   string // prefix making the value valid for its kind
	}{
		{param: "header_text", limit: campaigns.MaxHeaderText, what: "header text"},
		{param: "body_1", limit: campaigns.MaxBodyText, what: "body text"},
		{param: "body_15", limit: campaigns.MaxBodyText, what: "body text"},
		{param: "button_1_url", limit: campaigns.MaxURL, what: "button URL"},
		{param: "header_image", limit: campaigns.MaxURL, what: "media URL", pre: "https://cdn.example.com/"},
		{param: "header_document", limit: campaigns.MaxURL, what: "media URL", pre: "https://cdn.example.com/"},
		{param: "quick_reply_1", raw: true, limit: campaigns.MaxRawValue, what: "raw value"},
	}
	for _, tt := range tests {
		for _, char := range []string{"a", "é", "€", "😀"} {
			t.Run(tt.param+"/"+char, func(t *testing.T) {
				t.Parallel()
				d := &campaigns.Definition{}
				if tt.raw {
					d.Parameters.Raw = []campaigns.RawParam{{Name: tt.param, Value: "{{ .v }}"}}
				} else {
					d.Parameters.Values = map[string]string{tt.param: "{{ .v }}"}
				}
				r, err := campaigns.NewRenderer(d)
				if err != nil {
					t.Fatal(err)
				}
				fill := func(n int) string {
					return tt.pre + secret + strings.Repeat(char, n-len(tt.pre)-len(secret))
				}
				if _, err := r.Render(map[string]string{"v": fill(tt.limit)}); err != nil {
					t.Fatalf("value of %d characters refused: %v", tt.limit, err)
				}
				for _, over := range []int{tt.limit + 1, 4*tt.limit + 1, 100 * tt.limit} {
					_, err := r.Render(map[string]string{"v": fill(over)})
					wantErrIs(t, err, campaigns.ErrRender)
					wantErrContains(t, err, tt.param+": "+tt.what+" is ")
					if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), char+char) {
						t.Fatalf("error quotes the value: %.200s", err)
					}
				}
			})
		}
	}
}

// TestRenderErrorsDoNotQuoteValues renders values that break each rule: the error names the
// parameter and the rule, never the value.
func TestRenderErrorsDoNotQuoteValues(t *testing.T) {
	t.Parallel()

	for param, value := range map[string]string{
		"header_image": "http://" + secret,
		"header_video": secret,
		"body_1":       secret + "\n",
		"body_2":       secret + "      x",
		"header_text":  strings.Repeat(secret, 10),
	} {
		_, err := newRenderer(t, map[string]string{param: "{{ .v }}"}).Render(map[string]string{"v": value})
		wantErrContains(t, err, param+": ")
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error quotes the value: %v", param, err)
		}
	}
	// A helper's input cap names the helper and sizes only.
	_, err := newRenderer(t, map[string]string{"body_1": "{{ .v | upper }}"}).Render(map[string]string{"v": strings.Repeat(secret, 2000)})
	wantErrContains(t, err, "body_1: ", "upper: input is 24000 bytes, limit 16384")
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error quotes the value: %v", err)
	}
}

// allocated runs f n times and returns the bytes it allocated per run (the heap's
// TotalAlloc delta): a measure of the work done that does not depend on the machine's speed.
// Callers must not run in parallel with other tests.
func allocated(n int, f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(n)
}

// hostileTemplates are parameters that make text/template do unbounded work outside the
// sandbox: before it, the first took 26 s, 1.2 GB and printed 200 MB for two rows.
var hostileTemplates = map[string]string{
	"RangeLoop":      "{{ range 100000000 }}x{{ end }}",
	"RangeSilent":    "{{ range 100000000 }}{{ end }}",
	"NestedRange":    "{{ range 1000 }}{{ range 1000 }}{{ range 1000 }}{{ end }}{{ end }}{{ end }}",
	"PrintfWidth":    `{{ printf "%0100000000d" 1 }}`,
	"DoublingDefine": `{{ define "a" }}{{ .v }}{{ .v }}{{ end }}{{ define "b" }}{{ template "a" . }}{{ template "a" . }}{{ end }}{{ template "b" . }}`,
}

// amplifiers stay inside the sandbox but try to make a value grow: each must end in a
// bounded error.
var amplifiers = map[string]struct {
	tpl, v  string
	wantErr string
}{
	// 100 copies of a 16 KiB column: 1.6 MiB of output without the cap.
	"ManyCopies": {tpl: strings.Repeat("{{.v}}", 100), v: strings.Repeat("a", 16<<10), wantErr: "body text is longer than 1024 characters"},
	// urlquery turns each "%" into "%25": every pass makes the value longer.
	"URLQueryChain": {tpl: "{{ .v" + strings.Repeat(" | urlquery", 40) + " }}", v: strings.Repeat("%", 1000), wantErr: "urlquery: input is 17000 bytes, limit 16384"},
	"WithChain":     {tpl: "{{ with .v }}" + strings.Repeat("{{ with urlquery . }}", 40) + "{{ . }}" + strings.Repeat("{{ end }}", 41), v: strings.Repeat("%", 1000), wantErr: "urlquery: input is 17000 bytes"},
	"WholeRow":      {tpl: strings.Repeat("{{ . }}", 100), v: strings.Repeat("b", 16<<10), wantErr: "body text is longer than 1024 characters"},
}

// TestRenderBounds checks that hostile parameters end in a bounded error, and measures the
// memory they take (not their time, which depends on the machine).
func TestRenderBounds(t *testing.T) { //nolint:paralleltest // measures the heap
	dir := t.TempDir()
	csv := "phone,v\n+12015550123,x\n+12015550124,y\n"
	if err := os.WriteFile(filepath.Join(dir, "a.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tpl := range hostileTemplates {
		t.Run(name, func(t *testing.T) {
			yaml := "id: probe\ntemplate: {name: t, language: en}\naudience: {file: a.csv}\nparameters:\n  body_1: '" + tpl + "'\n"
			var perr, rerr error
			bytes := allocated(5, func() {
				_, perr = campaigns.Parse(filepath.Join(dir, "c.yaml"), []byte(yaml))
				_, rerr = campaigns.NewRenderer(&campaigns.Definition{Parameters: campaigns.Parameters{Values: map[string]string{"body_1": tpl}}})
			})
			wantErrContains(t, perr, "c.yaml:5:11: parameters.body_1: ")
			wantErrContains(t, perr, "allowed in a parameter")
			wantErrContains(t, rerr, "parameters.body_1: ")
			wantErrContains(t, rerr, "allowed in a parameter")
			if bytes > 1<<20 {
				t.Errorf("validating and compiling allocated %d bytes, want under 1 MiB", bytes)
			}
			// plan stops at the template, before reading a row.
			d := &campaigns.Definition{ID: "probe", Path: filepath.Join(dir, "c.yaml"), Audience: campaigns.Audience{File: "a.csv", Phone: "phone"},
				Parameters: campaigns.Parameters{Values: map[string]string{"body_1": tpl}}}
			rep, err := campaigns.Plan(d, "", campaigns.PlanOptions{})
			wantErrContains(t, err, "parameters.body_1: ")
			wantErrContains(t, err, "allowed in a parameter")
			if rep.Rows != 0 {
				t.Errorf("plan read %d rows", rep.Rows)
			}
		})
	}
	for name, a := range amplifiers {
		t.Run(name, func(t *testing.T) {
			r := newRenderer(t, map[string]string{"body_1": a.tpl})
			row := map[string]string{"v": a.v}
			var err error
			bytes := allocated(20, func() { _, err = r.Render(row) })
			wantErrIs(t, err, campaigns.ErrRender)
			wantErrContains(t, err, a.wantErr)
			// The cap is 4 KiB of output and 48 KiB a helper; allow a generous margin.
			if bytes > 512<<10 {
				t.Errorf("one render allocated %d bytes, want under 512 KiB", bytes)
			}
			t.Logf("%s: %d bytes a render", name, bytes)
		})
	}
}

// BenchmarkRenderHostile renders the worst parameters the sandbox lets through; -benchmem
// shows what one row costs.
//
//	go test -run '^$' -bench BenchmarkRenderHostile -benchmem ./campaigns
func BenchmarkRenderHostile(b *testing.B) {
	for name, a := range amplifiers {
		b.Run(name, func(b *testing.B) {
			r := newRenderer(b, map[string]string{"body_1": a.tpl})
			row := map[string]string{"v": a.v}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Render(row); !errors.Is(err, campaigns.ErrRender) {
					b.Fatalf("Render: %v", err)
				}
			}
		})
	}
}

// heavyHelpers is a parameter inside every limit of its own (1.9 KB, 241 parts, helper
// inputs of 16,000 bytes) whose helpers process 1.9 MB a row: 15 of them took 34.5 s of CPU
// for 300 rows before the helpers' work was bounded per render.
var heavyHelpers = "{{ slice (.x" + strings.Repeat(" | upper | lower", 60) + ") 0 5 }}"

// TestRenderWorkBound renders rows through helpers that each stay under their input limit:
// the helpers of one render stop, with an error naming the bound, once they have processed
// 128 KiB together, and a render costs that much, not 15 times 1.9 MB.
func TestRenderWorkBound(t *testing.T) { //nolint:paralleltest // measures the heap
	row := map[string]string{"x": strings.Repeat(secret, 16000/len(secret)+1)[:16000], "name": "ana maria",
		"note": strings.Repeat("Note ", 200)}
	params := map[string]string{}
	for i := 1; i <= 15; i++ {
		params[fmt.Sprintf("body_%d", i)] = heavyHelpers
	}
	r := newRenderer(t, params)
	var err error
	bytes := allocated(5, func() { _, err = r.Render(row) })
	wantErrIs(t, err, campaigns.ErrRender)
	wantErrContains(t, err, "body_1: ", "helpers may process at most 131072 bytes for one row, this row needs more")
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error quotes the value: %v", err)
	}
	if bytes > 1<<20 {
		t.Errorf("one render allocated %d bytes, want under 1 MiB", bytes)
	}
	t.Logf("%d bytes a render", bytes)

	// A session message's fields share one bound too.
	sr, err := campaigns.NewSessionRenderer(connectly.SessionContent{Text: heavyHelpers})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sr.Content(row)
	wantErrIs(t, err, campaigns.ErrRender)
	wantErrContains(t, err, "message.text: ", "helpers may process at most 131072 bytes for one row, this row needs more")

	// Real templates are far inside the bound: each render starts a fresh count.
	for i := 1; i <= 15; i++ {
		params[fmt.Sprintf("body_%d", i)] = `{{ .name | trim | title | default "there" }}: {{ slice (.note | trim | lower) 0 4 }}`
	}
	r = newRenderer(t, params)
	for range 3 {
		got, err := r.Render(row)
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		wantEqual(t, "body_15", "Ana Maria: note", got[14].Value)
	}
}
