package yamlerr_test

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/heraldmsg/herald/internal/yamlerr"
)

// Each broken file is placed at the line an editor shows for its problem, or for the
// construct left open (an unclosed "{" or "["), whichever the decoder noticed; the decoder's
// own "line N" was one less for the parser's problems and missing on the first line.
func TestLine(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
		problem  string
	}{
		{"FenceOnTheFirstLine", "```yaml\nname: x\n", 1, "found character that cannot start any token"},
		{"UnclosedFlowMapping", "name: x\nsender: a\naudience:\n  file: a.csv\ntemplate: {name: x\nlanguage: en\n", 5, "did not find expected ',' or '}'"},
		{"UnclosedFlowSequence", "name: x\nfoo: 1\nbar: [1, 2\nbaz: 3\n", 3, "did not find expected ',' or ']'"},
		{"Tab", "a: 1\nb:\n\tc: 2\n", 3, "found character that cannot start any token"},
		{"UnterminatedQuote", "a: 1\nb: \"unterminated\nc: 2\n", 2, "found unexpected end of stream"},
		{"IndentedKey", "a: 1\n  b: 2\n", 2, "mapping values are not allowed in this context"},
		{"ListItemInAMapping", "a: 1\nb: 2\n- c\n", 3, "did not find expected key"},
		{"KeyInAList", "a:\n  - 1\n  b: 2\n", 2, "did not find expected '-' indicator"},
		{"ReservedCharacter", "a: 1\nb: @x\n", 2, "found character that cannot start any token"},
		{"ValueWithAColon", "a: 1\nb: 2\nkey: value: other\n", 3, "mapping values are not allowed in this context"},
		// A type error's lines are the nodes' own, kept as they are.
		{"KeyTwice", "a: 1\na: 2\n", 2, `mapping key "a" already defined at line 1`},
		// Not placed by the decoder: no line.
		{"UnknownAnchor", "a: 1\nc: *nope\n", 0, "unknown anchor 'nope' referenced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v any
			err := yaml.Unmarshal([]byte(tc.in), &v)
			if err == nil {
				t.Fatal("decoded")
			}
			line, problem := yamlerr.Line(err)
			if line != tc.line || problem != tc.problem {
				t.Errorf("Line(%q) = %d, %q; want %d, %q", err, line, problem, tc.line, tc.problem)
			}
		})
	}
}

// An error that is not the decoder's keeps its text and has no line.
func TestLineOfAnotherError(t *testing.T) {
	if line, problem := yamlerr.Line(errors.New("read campaign.yaml: permission denied")); line != 0 || problem != "read campaign.yaml: permission denied" {
		t.Errorf("Line = %d, %q", line, problem)
	}
}

func FuzzLine(f *testing.F) {
	f.Add("a: [1, 2\n")
	f.Add("```\n")
	f.Fuzz(func(t *testing.T, in string) {
		var v any
		err := yaml.Unmarshal([]byte(in), &v)
		if err == nil {
			return
		}
		line, _ := yamlerr.Line(err)
		if lines := 1 + lineBreaks(in); line < 0 || line > lines+1 {
			t.Fatalf("Line(%q) = %d for %d lines of input", err, line, lines)
		}
	})
}

// lineBreaks counts YAML's line breaks: "\r\n" as one, a lone "\r" or "\n", and the
// Unicode next-line, line and paragraph separators.
func lineBreaks(s string) int {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	n := 0
	for _, r := range s {
		switch r {
		case '\n', '\r', '\u0085', '\u2028', '\u2029':
			n++
		}
	}
	return n
}

// A problem met at the end of the stream, past the last line that holds anything, is placed
// on that line; one inside the file is where Line places it.
func TestIn(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
		problem  string
	}{
		{"UnclosedOnTheLastLine", "id: x\nbar: [\n", 2, "did not find expected node content (at the end of the file)"},
		{"UnclosedBeforeBlankLines", "id: x\nbar: [\n\n  \n", 2, "did not find expected node content (at the end of the file)"},
		{"CarriageReturns", "id: x\r\nbar: [\r\n", 2, "did not find expected node content (at the end of the file)"},
		{"Inside", "name: x\nfoo: 1\nbar: [1, 2\nbaz: 3\n", 3, "did not find expected ',' or ']'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v any
			err := yaml.Unmarshal([]byte(tc.in), &v)
			if err == nil {
				t.Fatal("decoded")
			}
			line, problem := yamlerr.In(err, []byte(tc.in))
			if line != tc.line || problem != tc.problem {
				t.Errorf("In(%q) = %d, %q; want %d, %q", err, line, problem, tc.line, tc.problem)
			}
		})
	}
}
