package campaigns_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// BenchmarkPlan100k plans a generated 100,000-row audience; rows/s is reported.
//
//	go test -run '^$' -bench BenchmarkPlan100k -benchmem ./campaigns
func BenchmarkPlan100k(b *testing.B) { benchPlan(b, "", false) }

// BenchmarkPlan100kFollowup is BenchmarkPlan100k with an on_reply rule whose follow-up reads
// a column: Plan renders it for every row.
func BenchmarkPlan100kFollowup(b *testing.B) { benchPlan(b, followupRule, true) }

// BenchmarkPlan100kFollowupUnchecked is the same campaign read as a run's start reads it:
// without the per-row follow-up check.
func BenchmarkPlan100kFollowupUnchecked(b *testing.B) { benchPlan(b, followupRule, false) }

// followupRule is the on_reply rule of the follow-up benchmarks.
const followupRule = "on_reply:\n  - keyword: coupon\n    message: {text: \"Hi {{ .name }}, your code is {{ .name | default \\\"none\\\" }}\"}\n"

func benchPlan(b *testing.B, extra string, checkFollowups bool) {
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, "a.csv"))
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintln(f, "name,phone")
	const rows = 100000
	for i := 0; i < rows; i++ {
		fmt.Fprintf(f, "n%d,+5511%09d\n", i, 900000000+i)
	}
	f.Close()
	yaml := "id: bench\ntemplate: {name: t, language: en}\nparameters:\n  body_1: \"{{ .name }}\"\naudience: {file: a.csv}\n" + extra
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		b.Fatal(err)
	}
	d, err := campaigns.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := campaigns.Plan(d, "", campaigns.PlanOptions{CheckFollowups: checkFollowups})
		if err != nil || rep.Recipients != rows {
			b.Fatalf("plan: %v, %d recipients", err, rep.Recipients)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
