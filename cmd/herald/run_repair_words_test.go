package main

import (
	"strings"
	"testing"

	"github.com/heraldmsg/herald/serve"
)

// The recipients a repair left alone are counted with the verb and the pronouns agreeing:
// "1 recipient has ... its send", "2 recipients have ... theirs".
func TestPrintRepairCountsLeftAlone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		inFlight, moved int
		want            []string
	}{
		{1, 1, []string{
			"1 recipient has no task left but a worker may still be running its send: left alone; repair again later\n",
			"1 recipient changed while the repair looked at it, or its task id was taken: left alone\n",
		}},
		{2, 3, []string{
			"2 recipients have no task left but a worker may still be running theirs: left alone; repair again later\n",
			"3 recipients changed while the repair looked at them, or their task id was taken: left alone\n",
		}},
	} {
		var b strings.Builder
		if err := printRepair(&b, serve.Repair{Run: "r1", Status: "running", InFlight: tc.inFlight, Moved: tc.moved}); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("printRepair:\n%s\nwant %q", b.String(), w)
			}
		}
	}
}
