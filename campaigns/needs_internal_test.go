package campaigns

import (
	"fmt"
	"strings"
	"testing"
	"text/template/parse"
)

// columnNeeds follows a variable set from one declared after it, within a bound of passes.
func TestColumnNeedsChains(t *testing.T) {
	t.Parallel()
	tree := func(text string) *parse.Tree {
		tpl, err := parseParam("f", text)
		if err != nil {
			t.Fatal(err)
		}
		return tpl.Tree
	}
	// Forward and short backward chains are followed.
	needs := columnNeeds(tree("{{$a := 0}}{{$b := 0}}{{slice $b 0 7}}{{$b = $a}}{{$a = .desc}}"))
	if needs["desc"] != 7 {
		t.Fatalf("needs = %v", needs)
	}
	// A variable of one template is not another's.
	needs = columnNeeds(tree("{{$a := .desc}}"), tree("{{$a := 0}}{{slice $a 0 9}}"))
	if len(needs) != 0 {
		t.Fatalf("needs across templates = %v", needs)
	}
	// A backward chain of 25 assignments in each of 8 templates is scanned at most
	// maxNeedPasses times a template.
	var trees []*parse.Tree
	nodes := 0
	for r := range 8 {
		var b strings.Builder
		for j := r * 25; j <= r*25+25; j++ {
			fmt.Fprintf(&b, "{{$v%d := .c%d}}", j, j)
		}
		for j := r*25 + 25; j > r*25; j-- {
			fmt.Fprintf(&b, "{{$v%d = $v%d}}{{slice $v%d 0 3}}", j, j-1, j)
		}
		tpl, err := parseParam("f", b.String())
		if err != nil {
			t.Fatal(err)
		}
		trees = append(trees, tpl.Tree)
		nodes += templateNodes(tpl)
	}
	_, work := scanNeeds(trees...)
	if limit := maxNeedPasses * nodes * 64; work > limit {
		t.Errorf("scanNeeds did %d steps for %d nodes, want at most %d", work, nodes, limit)
	}
}
