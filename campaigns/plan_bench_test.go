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
func BenchmarkPlan100k(b *testing.B) {
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
	yaml := "id: bench\ntemplate: {name: t, language: en}\nparameters:\n  body_1: \"{{ .name }}\"\naudience: {file: a.csv}\n"
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
		rep, err := campaigns.Plan(d, "", campaigns.PlanOptions{})
		if err != nil || rep.Recipients != rows {
			b.Fatalf("plan: %v, %d recipients", err, rep.Recipients)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
