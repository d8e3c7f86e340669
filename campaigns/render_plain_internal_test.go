package campaigns

import (
	"fmt"
	"strings"
	"testing"
)

// TestRenderPlainMatchesTemplate: a parameter of text and column values is written without
// running its template (renderPlain); value and errors must be what running it gives, for
// values short, long, multi-byte, empty and missing.
func TestRenderPlainMatchesTemplate(t *testing.T) {
	t.Parallel()
	plain := []string{"{{.name}}", "{{ .name }}", "Hi {{.name}}!", "{{.name}}{{.city}}", "{{- .name -}} , {{ .city }}.",
		"{{ .missing }}", "x{{.missing}}y", "Olá {{.city}}, ção"}
	rows := []map[string]string{
		{"name": "Ana", "city": "Recife"},
		{"name": "", "city": ""},
		{"name": "日本語の名前", "city": "São Paulo"},
		{"name": strings.Repeat("é", 1024), "city": "x"},
		{"name": strings.Repeat("a", 1025), "city": ""},
		{"name": strings.Repeat("日", 1100)},
		{"name": strings.Repeat("a", 8001)},
		{"name": "<b>&amp;</b> \"q\" \\"},
		{},
	}
	for _, text := range plain {
		for _, name := range []string{"body_1", "header_text", "button_0", "header_image"} {
			for _, raw := range []bool{false, true} {
				tpl, err := parseParam(name, text)
				if err != nil {
					t.Fatalf("parse %q: %v", text, err)
				}
				p := compiled{name: name, tpl: tpl, raw: raw, plain: plainParts(tpl)}
				if p.plain == nil {
					t.Fatalf("%q: not taken as plain", text)
				}
				for _, cols := range rows {
					got, gerr := p.renderPlain(cols)
					want, werr := p.render(cols)
					if got != want || fmt.Sprint(gerr) != fmt.Sprint(werr) {
						t.Errorf("%s %q raw=%v on %.40q: plain gives %.40q, %v; the template %.40q, %v", name, text, raw, cols, got, gerr, want, werr)
					}
				}
			}
		}
	}
	for _, text := range []string{"", "{{.name | upper}}", "{{ $x := .name }}{{ $x }}", "{{ if .name }}x{{ end }}", "{{ .a.b }}",
		`{{ "lit" }}`, "{{ . }}", "{{ default .name .city }}", "{{ with .name }}{{ . }}{{ end }}"} {
		tpl, err := parseParam("body_1", text)
		if err != nil {
			t.Fatalf("parse %q: %v", text, err)
		}
		if plainParts(tpl) != nil {
			t.Errorf("%q taken as plain", text)
		}
	}
}
