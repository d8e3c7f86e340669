package campaigns_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// Validate with Rows tells its progress as campaign plan's reading does: the rows read every
// 65,536, and about how many the file has, so `campaign validate --rows` can draw plan's bar
// instead of seconds of silence on a large audience. Without Rows nothing is read or told.
func TestValidateRowsProgress(t *testing.T) {
	t.Parallel()
	const n = 70_000
	var csv strings.Builder
	csv.WriteString("phone,name\n")
	for i := range n {
		fmt.Fprintf(&csv, "+1415%07d,p%d\n", 5550000+i, i)
	}
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", csv.String())
	path := writeFile(t, dir, "t.yaml", "id: spring\nsender: \"+14155550100\"\naudience: {file: a.csv}\n"+
		"template: {name: hello, language: en}\nparameters: {body_1: \"{{ .name }}\"}\n")
	type call struct{ rows, about int }
	var calls []call
	progress := func(rows, about int) { calls = append(calls, call{rows, about}) }
	r := campaigns.Validate(path, campaigns.ValidateOptions{Progress: progress})
	if !r.OK || len(calls) != 0 {
		t.Fatalf("without rows: %+v, %d progress calls; want none", r, len(calls))
	}
	r = campaigns.Validate(path, campaigns.ValidateOptions{Rows: true, Progress: progress})
	if !r.OK || r.Rows != n {
		t.Fatalf("with rows: %+v", r)
	}
	if len(calls) != 1 || calls[0].rows != 65_536 || calls[0].about < n {
		t.Fatalf("progress calls %+v; want one at 65536 rows of about %d or more", calls, n)
	}
}
