package campaigns_test

import (
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldmsg/herald/campaigns"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, and must return either a
// definition or Errors, never both and never neither. Seeds: testdata/broken, the inline
// cases below and testdata/fuzz/FuzzParse (hostile templates, extra documents, aliases).
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"valid", "broken"} {
		paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("id: x\ntemplate: {name: t, language: en}\naudience: {file: a.csv}\nparameters: {body_1: '{{.a | default \"b\"}}'}\n"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("id: !!binary aGVsbG8=\n"))
	f.Add([]byte("? [a]\n: b\n"))
	f.Add([]byte("\xef\xbb\xbfid: x\n"))
	// Values of the wrong type, decoded field by field (decode.go).
	f.Add([]byte("id: x\nrate: fast\ntags: [a, [b]]\non_reply: [{button: {a: b}, delay: [1]}]\naudience: {file: [a]}\n"))
	f.Add([]byte("x: &x [a, {b: c}]\nid: x\ntemplate: *x\nmessage: *x\nparameters: {raw: *x}\non_reply: {rules: *x}\n"))
	f.Add([]byte("id: x\nid: y\ntemplate: {name: t, name: u, language: en}\naudience: {file: a.csv}\nparameters: {body_1: a, body_1: b}\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := campaigns.Parse("fuzz.yaml", data)
		if err == nil {
			if d == nil {
				t.Fatal("nil definition and nil error")
			}
			// A definition that parses is valid and has its defaults.
			// A session campaign (message:) may have no template: it has no fallback then.
			if d.ID == "" || (!d.IsSession() && (d.Template.Name == "" || d.Template.Language == "")) || d.Audience.File == "" {
				t.Fatalf("accepted an incomplete definition: %+v", d)
			}
			if d.Template.Category == "" || d.Audience.Phone == "" || d.Delivery == "" {
				t.Fatalf("defaults not applied: %+v", d)
			}
			r, err := campaigns.NewRenderer(d)
			if err != nil {
				t.Fatalf("accepted parameters that do not compile: %v", err)
			}
			// Accepted templates run in the sandbox: a row ends in values or ErrRender.
			if _, err := r.Render(map[string]string{}); err != nil && !errors.Is(err, campaigns.ErrRender) {
				t.Fatalf("render error does not wrap ErrRender: %v", err)
			}
			return
		}
		if d != nil {
			t.Fatalf("definition returned with an error: %v", err)
		}
		var errs campaigns.Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error %T is not a non-empty campaigns.Errors: %v", err, err)
		}
		for _, e := range errs {
			if !strings.HasPrefix(e.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %q", e)
			}
		}
	})
}

// FuzzAudience writes arbitrary bytes as an audience file: reading it must never panic, and
// every row must either have a recipient in E.164 or a reason to skip it.
func FuzzAudience(f *testing.F) {
	f.Add([]byte("phone,name\n+12015550123,ana\n,empty\njunk,x\n"), "")
	f.Add([]byte("\xef\xbb\xbfphone\r\n(201) 555-0123\r\n"), "US")
	f.Add([]byte("phone,note\n+5511961234567,\"a, b\nc\"\n"), "BR")
	f.Add([]byte("phone,name\n+12015550123,an\"a\n"), "")
	f.Add([]byte("name,phone\nana\n"), "GB")
	f.Add([]byte("phone\n\"+44 7400 123456\"\n07400123456\n"), "GB")
	f.Add([]byte(""), "")
	f.Add([]byte("phone"), "ZZ")
	// The probes of a hostile campaign (see TestUntrustedAudience).
	for _, b := range untrustedSeeds(f, "*.csv") {
		f.Add(b, "US")
	}

	// Inputs run one at a time in each fuzzing process, so they can share one file.
	path := filepath.Join(f.TempDir(), "audience.csv")
	f.Fuzz(func(t *testing.T, data []byte, region string) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		d := &campaigns.Definition{Path: filepath.Join(filepath.Dir(path), "c.yaml"), Audience: campaigns.Audience{File: path, Phone: "phone", DefaultRegion: region}}
		lines, err := campaigns.CountLines(d)
		if err != nil {
			t.Fatalf("CountLines: %v", err)
		}
		ar, err := campaigns.OpenAudience(d)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			checkQuotesNothing(t, err)
			return
		}
		defer ar.Close()
		for n := 1; ; n++ {
			row, err := ar.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				if !strings.Contains(err.Error(), path) {
					t.Fatalf("error does not name the file: %v", err)
				}
				checkQuotesNothing(t, err)
				return
			}
			checkQuotesNothing(t, row.Err)
			if row.N != n {
				t.Fatalf("row %d numbered %d", n, row.N)
			}
			if n >= lines {
				t.Fatalf("row %d beyond CountLines %d (header included)", n, lines)
			}
			switch {
			case row.Recipient != "" && row.SkipReason == "" && row.Err == nil:
				if !strings.HasPrefix(row.Recipient, "+") || strings.Trim(row.Recipient[1:], "0123456789") != "" {
					t.Fatalf("recipient %q is not E.164", row.Recipient)
				}
			case row.Recipient == "" && row.SkipReason != "" && row.Err != nil:
				if row.SkipReason != "missing_phone" && row.SkipReason != "invalid_phone" {
					t.Fatalf("unknown skip reason %q", row.SkipReason)
				}
			default:
				t.Fatalf("row %d has recipient %q, skip reason %q and error %v", n, row.Recipient, row.SkipReason, row.Err)
			}
		}
	})
}

// FuzzAudienceJSONL feeds arbitrary bytes as a JSON Lines audience with a BSUID column: it
// must never panic, number rows from 1, and give every row a recipient or a skip reason.
func FuzzAudienceJSONL(f *testing.F) {
	f.Add([]byte(`{"phone": "+12015550123", "n": 1}` + "\n" + `{"bsuid": "US.123"}` + "\n"))
	f.Add([]byte("\n\n{}\nnot json\n[1,2]\n{\"phone\": [\"+1\"]}\n"))
	f.Add([]byte(`{"phone": null, "bsuid": "us.bad"}`))
	f.Add([]byte("\xef\xbb\xbf" + `{"phone": "0201 555 0123"}`))
	for _, b := range untrustedSeeds(f, "*.jsonl") {
		f.Add(b)
	}
	path := filepath.Join(f.TempDir(), "audience.jsonl")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		d := &campaigns.Definition{Path: filepath.Join(filepath.Dir(path), "c.yaml"), Audience: campaigns.Audience{File: path, Phone: "phone", BSUID: "bsuid", DefaultRegion: "US"}}
		ar, err := campaigns.OpenAudience(d)
		if err != nil {
			// Only what the whole file is can fail to open: UTF-16 or 32, NUL bytes.
			if !errors.Is(err, campaigns.ErrEncoding) {
				t.Fatalf("OpenAudience: %v", err)
			}
			checkQuotesNothing(t, err)
			return
		}
		defer ar.Close()
		for n := 1; ; n++ {
			row, err := ar.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				if !strings.Contains(err.Error(), path) {
					t.Fatalf("error does not name the file: %v", err)
				}
				checkQuotesNothing(t, err)
				return
			}
			checkQuotesNothing(t, row.Err)
			if row.N != n {
				t.Fatalf("row %d numbered %d", n, row.N)
			}
			if (row.Recipient == "") == (row.SkipReason == "") {
				t.Fatalf("row %d has recipient %q and skip reason %q", n, row.Recipient, row.SkipReason)
			}
			if strings.HasPrefix(row.Recipient, "bsuid:") && !strings.Contains(row.Recipient, ".") {
				t.Fatalf("row %d: BSUID %q without country", n, row.Recipient)
			}
		}
	})
}

// untrustedSeeds returns the stored probes under testdata/untrusted matching pattern.
func untrustedSeeds(f *testing.F, pattern string) [][]byte {
	paths, err := filepath.Glob(filepath.Join("testdata", "untrusted", pattern))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no probes %s under testdata/untrusted: %v", pattern, err)
	}
	out := make([][]byte, 0, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// checkQuotesNothing fails when an audience error could hold the file's bytes: every byte is
// printable ASCII (the fuzzer's file name included), so at most sanitised column names
// appear, and it is short.
func checkQuotesNothing(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if len(msg) > 1024 {
		t.Fatalf("error of %d bytes: %.200q...", len(msg), msg)
	}
	for i := 0; i < len(msg); i++ {
		if msg[i] < 0x20 || msg[i] > 0x7e {
			t.Fatalf("error holds byte %#x: %q", msg[i], msg)
		}
	}
}

// FuzzRender renders arbitrary column values through every kind of parameter: it must never
// panic, and a successful render must obey WhatsApp's rules.
func FuzzRender(f *testing.F) {
	f.Add("Ana", "SPRING25", "https://cdn.example.com/a.png")
	f.Add("", "", "")
	f.Add("a\nb", "c\td", "http://x")
	f.Add("a     b", "   ", "https://")
	f.Add(strings.Repeat("é", 61), "x\ry", "https://cdn.example.com/%zz")
	f.Add("\xff\xfe", "{{.a}}", "https://user@host/p?q#f")

	r, err := campaigns.NewRenderer(&campaigns.Definition{Parameters: campaigns.Parameters{Values: map[string]string{
		"header_text":  "{{.a | title}}",
		"header_image": "{{.c}}",
		"body_1":       "{{.a}}",
		"body_2":       `{{.b | trim | default "friend"}}`,
		"body_3":       "{{.a | upper}} {{.b | lower}}",
		"button_1_url": "{{.b | urlquery}}",
	}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		params, err := r.Render(map[string]string{"a": a, "b": b, "c": c})
		if err != nil {
			if !errors.Is(err, campaigns.ErrRender) {
				t.Fatalf("error does not wrap ErrRender: %v", err)
			}
			return
		}
		if len(params) != 6 {
			t.Fatalf("%d parameters, want 6", len(params))
		}
		for _, p := range params {
			if p.Value == "" {
				t.Fatalf("%s is empty", p.Name)
			}
			switch {
			case strings.HasPrefix(p.Name, "body_"):
				if strings.ContainsAny(p.Value, "\r\n\t") || strings.Contains(p.Value, "     ") {
					t.Fatalf("%s = %q breaks the body rules", p.Name, p.Value)
				}
			case p.Name == "header_text":
				if utf8.RuneCountInString(p.Value) > 60 {
					t.Fatalf("header_text = %q is over 60 characters", p.Value)
				}
			case p.Name == "header_image":
				u, err := url.Parse(p.Value)
				if err != nil || u.Scheme != "https" || u.Host == "" {
					t.Fatalf("header_image = %q is not an absolute https URL", p.Value)
				}
			}
		}
	})
}

// FuzzTemplate compiles arbitrary text as a body and a raw parameter and renders it on a row:
// it must never panic, a template that compiles must end in values or ErrRender, and a value
// must be within its limit. Seeds in testdata/fuzz/FuzzTemplate are the hostile templates
// (loops, recursive and doubling defines, call, printf widths, growing helper chains).
func FuzzTemplate(f *testing.F) {
	f.Add("{{ .a | default \"there\" | title }}", "ana")
	f.Add("{{ if eq .a \"x\" }}{{ .a | upper }}{{ else }}{{ slice .a 1 }}{{ end }}", "xy")
	f.Add("{{ $v := .a }}{{ with $v }}{{ . | urlquery }}{{ end }}", "a b%c")
	f.Fuzz(func(t *testing.T, tpl, v string) {
		r, err := campaigns.NewRenderer(&campaigns.Definition{Parameters: campaigns.Parameters{
			Values: map[string]string{"body_1": tpl},
			Raw:    []campaigns.RawParam{{Name: "quick_reply_1", Value: tpl}},
		}})
		if err != nil {
			if r != nil {
				t.Fatal("renderer returned with an error")
			}
			return
		}
		params, err := r.Render(map[string]string{"a": v, "v": v})
		if err != nil {
			if !errors.Is(err, campaigns.ErrRender) {
				t.Fatalf("error does not wrap ErrRender: %v", err)
			}
			if len(err.Error()) > 4096 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		for _, p := range params {
			if n := utf8.RuneCountInString(p.Value); n > campaigns.MaxBodyText {
				t.Fatalf("%s is %d characters", p.Name, n)
			}
		}
	})
}
