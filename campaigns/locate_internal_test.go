package campaigns

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// TestPlacingProblemsIsLinear: each problem is placed at its field in the file; placing a
// problem at each of N keys of one mapping (N unknown parameter names) reads each key once,
// not the whole mapping for each problem, which made validation quadratic (22.6 s for 64,000
// such keys, a file within the 1 MiB limit). The work is counted in keys read, not timed: the
// top-level mapping (4 keys) is scanned for each problem, the parameters indexed once.
func TestPlacingProblemsIsLinear(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1000, 16000} {
		var b strings.Builder
		b.WriteString("id: big\ntemplate: {name: hello, language: en}\naudience: {file: a.csv}\nparameters:\n")
		for i := range n {
			fmt.Fprintf(&b, "  p%d: x\n", i)
		}
		doc, errs := oneDocument("c.yaml", []byte(b.String()), "")
		if doc == nil || len(errs) > 0 {
			t.Fatalf("document: %v", errs)
		}
		var d Definition
		newDecoder("c.yaml").decode(doc, reflect.ValueOf(&d).Elem(), "")
		loc := &locator{}
		problems := sortErrors(d.validate("c.yaml", doc, loc))
		if len(problems) != n {
			t.Fatalf("%d keys: %d problems, want every one", n, len(problems))
		}
		for i, p := range problems {
			if p.Line != 5+i || p.Column != 6+len(fmt.Sprint(i)) || p.Field != fmt.Sprintf("parameters.p%d", i) {
				t.Fatalf("problem %d: %+v; want it at line %d, its value", i, p, 5+i)
			}
		}
		if loc.reads > 6*n {
			t.Errorf("%d problems placed reading %d keys (%.1f a problem); want a bounded number a problem", n, loc.reads, float64(loc.reads)/float64(n))
		}
	}
}

// TestCoverIsCoversByScan: brokenFields.cover, which answers in time linear in the field's
// length, says what a scan of every broken field with within says, for fields inside, around
// and beside broken ones.
func TestCoverIsCoversByScan(t *testing.T) {
	t.Parallel()
	scan := func(b brokenFields, field string) bool {
		if field == "" {
			return false
		}
		for f := range b {
			if f == field || within(f, field) || within(field, f) {
				return true
			}
		}
		return false
	}
	parts := []string{"a", "b", "on_reply", "rules[1]", "rules[10]", "[0]", "x.y", "delay", "rules"}
	r := rand.New(rand.NewPCG(1, 2))
	path := func() string {
		var s strings.Builder
		for i := range 1 + r.IntN(4) {
			p := parts[r.IntN(len(parts))]
			if i > 0 && !strings.HasPrefix(p, "[") {
				s.WriteByte('.')
			}
			s.WriteString(p)
		}
		return s.String()
	}
	for range 300 {
		b := brokenFields{}
		for range r.IntN(5) {
			b[path()] = true
		}
		c := b.cover()
		for range 50 {
			f := path()
			if got, want := c.covers(f), scan(b, f); got != want {
				t.Fatalf("broken %v, field %q: cover says %v, the scan %v", b, f, got, want)
			}
		}
		if c.covers("") || b.covers("") {
			t.Fatalf("broken %v covers the empty field", b)
		}
	}
}
