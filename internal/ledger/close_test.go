package ledger

import (
	"context"
	"testing"
)

// CloseExpansion ends the expansion of a run that can read no more at the rows it accounted
// for: its total is the sum of its states, and a cancelled run whose entries are all swept
// completes, staying cancelled.
func TestCloseExpansion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	seedRun(t, b, "r1", AtMostOnce, recipients(5), true)
	if _, err := b.l.PlanQueued(ctx, Batch{Run: "r1", From: 5, To: 8, Skipped: map[string]int{"invalid": 3}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.l.Cancel(ctx, "r1", "given up"); err != nil {
		t.Fatal(err)
	}
	done, err := b.l.CloseExpansion(ctx, "r1")
	if err != nil || !done {
		t.Fatalf("CloseExpansion = %v, %v; want the run completed", done, err)
	}
	r := getRun(t, b, "r1")
	if !r.Expanded || r.Total != 8 || r.Status != RunCancelled || r.Finished.IsZero() {
		t.Fatalf("closed run: expanded %v total %d status %s finished %v; want 8 rows, cancelled, finished", r.Expanded, r.Total, r.Status, r.Finished)
	}
}
