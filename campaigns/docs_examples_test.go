package campaigns_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// yamlBlock matches a fenced YAML block of a Markdown file.
var yamlBlock = regexp.MustCompile("(?s)```ya?ml\n(.*?)```")

// The campaign examples of the README and docs/campaigns.md are campaigns Herald takes: a
// block that is a whole campaign parses as a new campaign file does, and a block that is a
// part of one (a message:, an on_reply:) parses inside the smallest campaign of its kind. A
// block of configuration is not a campaign and is left alone.
func TestDocsExamplesParse(t *testing.T) {
	t.Parallel()
	const base = "id: docs-example\naudience: {file: audience.csv}\n"
	for _, doc := range []string{"../README.md", "../docs/campaigns.md"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text, n := string(data), 0
		for _, m := range yamlBlock.FindAllStringSubmatchIndex(text, -1) {
			block := text[m[2]:m[3]]
			var file string
			switch {
			case strings.HasPrefix(block, "id:"):
				file = block
			case strings.HasPrefix(block, "message:"):
				file = base + block
			case strings.HasPrefix(block, "on_reply:"):
				file = base + "template: {name: spring_promo, language: en_US}\n" + block
			default:
				continue
			}
			n++
			where := fmt.Sprintf("%s:%d", doc, strings.Count(text[:m[2]], "\n")+1)
			if _, err := campaigns.Parse(where, []byte(file)); err != nil {
				t.Errorf("the example at %s is refused:\n%v", where, err)
			}
		}
		if n == 0 {
			t.Errorf("%s: no campaign example found", doc)
		}
	}
}
