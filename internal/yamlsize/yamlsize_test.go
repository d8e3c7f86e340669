package yamlsize_test

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/heraldmsg/herald/internal/yamlsize"
)

func parse(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	return &n
}

func TestExpandedCountsAliasesAsTheyDecode(t *testing.T) {
	t.Parallel()
	n := parse(t, "a: &s hello\nb: [*s, *s, *s]\n")
	nodes, bytes := yamlsize.Expanded(n, 1000, 1000)
	// document, mapping, a, hello, b, sequence, 3 aliases each followed to its 5-byte anchor
	if nodes != 12 || bytes != len("a")+len("hello")+len("b")+3*(len("s")+len("hello")) {
		t.Errorf("Expanded = %d nodes, %d bytes", nodes, bytes)
	}
}

// A bomb stops at its limits after about as many steps, not after what it expands to.
func TestExpandedStopsAtItsLimits(t *testing.T) {
	t.Parallel()
	src := "a: &b " + strings.Repeat("x", 1000) + "\nc: &c [" + strings.Repeat("*b,", 1000) + "*b]\nd: [" + strings.Repeat("*c,", 1000) + "*c]\n"
	n := parse(t, src)
	if nodes, bytes := yamlsize.Expanded(n, 500, 1<<30); nodes != 500 || bytes > 500*1002 {
		t.Errorf("node limit: %d nodes, %d bytes, want a stop at 500 nodes", nodes, bytes)
	}
	if nodes, bytes := yamlsize.Expanded(n, 1<<30, 10000); bytes < 10000 || nodes > 30 {
		t.Errorf("byte limit: %d nodes, %d bytes, want a stop just past 10,000 bytes", nodes, bytes)
	}
}
