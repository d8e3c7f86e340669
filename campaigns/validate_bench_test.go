package campaigns_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// BenchmarkValidateManyProblems is `campaign validate` of a file with one problem on each of
// N keys of one mapping: unknown parameter names (each placed at its key), and half of them
// with a value that does not decode (broken fields, whose problems hide the checks that read
// them). Both grew with the square of N (see docs/benchmarks.md).
func BenchmarkValidateManyProblems(b *testing.B) {
	for _, tc := range []struct {
		name  string
		n     int
		mixed bool
	}{{"Unknown/8k", 8000, false}, {"Unknown/64k", 64000, false}, {"Mixed/64k", 64000, true}} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			writeFile(b, dir, "a.csv", "phone,name\n+14155552671,ana\n")
			var s strings.Builder
			s.WriteString("id: big\nsender: \"+14155550100\"\naudience: {file: a.csv}\ntemplate: {name: hello, language: en}\nparameters:\n")
			for i := range tc.n {
				if tc.mixed && i%2 == 1 {
					fmt.Fprintf(&s, "  q%d: [a]\n", i)
				} else {
					fmt.Fprintf(&s, "  p%d: x\n", i)
				}
			}
			path := writeFile(b, dir, "c.yaml", s.String())
			b.ReportAllocs()
			for b.Loop() {
				if r := campaigns.Validate(path, campaigns.ValidateOptions{}); len(r.Errors) != tc.n {
					b.Fatalf("%d problems, want %d", len(r.Errors), tc.n)
				}
			}
		})
	}
}
