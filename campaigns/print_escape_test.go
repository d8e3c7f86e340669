package campaigns_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// noRawControl fails when s holds a control character (a newline included): text from a
// campaign file must not colour the terminal or start a line that looks like Herald's own.
func noRawControl(tb testing.TB, what, s string) {
	tb.Helper()
	if i := strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }); i >= 0 {
		tb.Errorf("%s holds a raw control character at %d: %q", what, i, s)
	}
}

// TestProblemsEscapeWhatTheFileWrote: a campaign file's keys, parameter names, audience file
// name and template name appear in its problems escaped. Before, a key holding ESC and a
// newline was printed raw in the field part, and an audience file name in the message.
func TestProblemsEscapeWhatTheFileWrote(t *testing.T) {
	t.Parallel()
	yaml := "id: t\n" +
		"\"bogus\\e[31mkey\\nforged\": 1\n" +
		"template: {name: x, language: en}\n" +
		"parameters:\n  \"body_\\e[32m\\nFAKE\": \"{{ .first_name }}\"\n" +
		"audience:\n  file: \"nope.csv: no such file\\nok  other.yaml (audience header checked)\\n\\e[2J\"\n"
	dir := t.TempDir()
	path := writeFile(t, dir, "inj.yaml", yaml)
	_, err := campaigns.Load(path)
	if err == nil {
		t.Fatal("Load: no error")
	}
	var es campaigns.Errors
	if !errors.As(err, &es) {
		t.Fatalf("Load: %v, want campaigns.Errors", err)
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != len(es) {
		t.Errorf("Load's error has %d lines for %d problems: %q", lines, len(es), err)
	}
	for _, e := range es {
		noRawControl(t, "problem", e.Error())
	}
	for _, want := range []string{`bogus\x1b[31mkey\nforged: unknown key`, `parameters.body_\x1b[32m\nFAKE: unknown parameter name`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Load's error = %q, want it to hold %q", err, want)
		}
	}
}

// TestTemplateNameIsWhatsAppsPattern: a template name is lower-case letters, digits and '_'
// (WhatsApp's rule). Before, a name holding ESC and newlines passed validation and was printed
// raw in validate's notes and send's output.
func TestTemplateNameIsWhatsAppsPattern(t *testing.T) {
	t.Parallel()
	const head = "id: t\ntemplate: {name: "
	const tail = ", language: en}\naudience:\n  file: a.csv\n"
	for _, bad := range []string{`"x\e[2J\nok  all-good.yaml"`, `Spring_Sale`, `spring-sale`, `"spring sale"`, `"` + strings.Repeat("a", 513) + `"`} {
		_, err := campaigns.Parse("c.yaml", []byte(head+bad+tail))
		if err == nil || !strings.Contains(err.Error(), "template.name: ") {
			t.Errorf("Parse(template.name %.40s) = %v, want a template.name problem", bad, err)
			continue
		}
		noRawControl(t, "Parse's error", err.Error())
	}
	for _, good := range []string{"spring_sale", "welcome_v2", "a", strings.Repeat("a", 512)} {
		if _, err := campaigns.Parse("c.yaml", []byte(head+good+tail)); err != nil {
			t.Errorf("Parse(template.name %.40s) = %v, want no error", good, err)
		}
	}
}

// TestAudienceErrorEscapesPath: the audience file's name, written in the campaign file, is
// escaped in the problem. Before, "nope.csv: no such file\nok  other.yaml ..." forged a line.
func TestAudienceErrorEscapesPath(t *testing.T) {
	t.Parallel()
	e := &campaigns.AudienceError{Path: "nope.csv: x\nok  other.yaml\x1b[2J", Err: errors.New("no such file")}
	wantEqual(t, "Detail()", `nope.csv: x\nok  other.yaml\x1b[2J: no such file`, e.Detail())
}

// TestFieldErrorEscapes: the field and control characters of the message are escaped; a
// message's own quoting (%q) is left as it is.
func TestFieldErrorEscapes(t *testing.T) {
	t.Parallel()
	e := campaigns.FieldError{File: "c.yaml", Line: 2, Column: 1, Field: "a\x1b[31m\nb", Msg: "unknown key \"a\\x1b\" \x1b[2J\nok"}
	wantEqual(t, "Error()", `c.yaml:2:1: a\x1b[31m\nb: unknown key "a\x1b" \x1b[2J\nok`, e.Error())
}

// TestCronRefusesControlCharacters: a cron string's fields are separated by spaces (or tabs).
// Before, "0\r\v\f20 * * *\n" passed (robfig/cron splits on any white space) and campaign ls
// printed its CR, VT and FF.
func TestCronRefusesControlCharacters(t *testing.T) {
	t.Parallel()
	const head = "id: t\ntemplate: {name: x, language: en}\naudience:\n  file: a.csv\nschedule:\n  cron: "
	for _, bad := range []string{`"0\r\v\f20 * * *\n"`, `"0 20 * * *\u2028"`, `"0 20\v* * *"`} {
		_, err := campaigns.Parse("c.yaml", []byte(head+bad+"\n"))
		if err == nil || !strings.Contains(err.Error(), "schedule.cron: ") {
			t.Errorf("Parse(cron %s) = %v, want a schedule.cron problem", bad, err)
		}
	}
	for _, good := range []string{`"0 20 * * *"`, `"0\t20 * * *"`, `"  0 20 * * * "`} {
		if _, err := campaigns.Parse("c.yaml", []byte(head+good+"\n")); err != nil {
			t.Errorf("Parse(cron %s) = %v, want no error", good, err)
		}
	}
}
