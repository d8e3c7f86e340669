package campaigns_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// A template text that does not parse is said with its field, its place and what is wrong in
// plain words: not Go's "template: 1: ... in operand". Before, message.text: "{{ .a }" read
// `message.text: template: 1: unexpected "}" in operand`.
func TestTemplateParseProblemsInPlainWords(t *testing.T) {
	t.Parallel()
	head := "id: c\nsender: \"+14155550100\"\naudience: {file: a.csv}\nmessage:\n  text: "
	for _, tc := range []struct{ text, want string }{
		{`"{{ .a }"`, `c.yaml:5:9: message.text: unexpected "}" in {{ ... }}`},
		{`"Hi {{ .a"`, `c.yaml:5:9: message.text: a {{ has no closing }}`},
		{`"{{ .a | shout }}"`, `c.yaml:5:9: message.text: function "shout" is not defined (allowed: and, default, eq,`},
		{`"{{ if .a }}x"`, `c.yaml:5:9: message.text: the text ends before the {{ end }} of an {{ if }} or {{ with }}`},
		{`"{{ (.a }}"`, `c.yaml:5:9: message.text: a ( has no closing )`},
		// A text of several lines names the line.
		{`"Hi\n{{ .a }"`, `c.yaml:5:9: message.text: at line 2 of the template: unexpected "}" in {{ ... }}`},
	} {
		_, err := campaigns.Parse("c.yaml", []byte(head+tc.text+"\n"))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || goPlace.MatchString(err.Error()) {
			t.Errorf("text %s: %v, want %q", tc.text, err, tc.want)
		}
	}
}

// goPlace matches Go's "template: NAME:LINE:" or "template: LINE:COL:" before a message.
var goPlace = regexp.MustCompile(`template: (\S+:)?\d+:`)
