package expand_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/ledger"
)

// The audience changed after the parent finished: one picked recipient's row is gone and
// another picked recipient has a second row. The retry counts recipients, not rows: the
// duplicate row (skipped(duplicate) in the child) does not stand in for the recipient that
// left, so Picked - Recipients says one is no longer in the audience file.
func TestRetryRunCountsRecipientsNotRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	csv, valid := audience(10) // row 7 repeats row 4's recipient
	def := b.lenient(t, csv)
	r := b.runs(expand.Config{})
	st, err := r.StartRun(ctx, expand.StartParams{Def: def})
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]bool{valid[1]: true, valid[2]: true, valid[4]: true, valid[5]: true}
	b.finishAll(t, st.Run.Queue, func(to string) string {
		if failed[to] {
			return "ERROR_CODE_UNSPECIFIED"
		}
		return ""
	})
	if run := b.getRun(t, st.RunID); run.Status != ledger.RunCompleted {
		t.Fatalf("parent is %s, want completed", run.Status)
	}
	// valid[2]'s row leaves the audience; valid[4] gets a second row.
	var rows strings.Builder
	rows.WriteString("phone,name\n")
	for i, v := range valid {
		if i != 2 {
			rows.WriteString(v + ",someone\n")
		}
	}
	rows.WriteString(valid[4] + ",again\n")
	if err := os.WriteFile(def.AudiencePath(), []byte(rows.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := r.RetryRun(ctx, expand.RetryParams{Parent: st.RunID, Codes: []string{"ERROR_CODE_UNSPECIFIED"}})
	if err != nil {
		t.Fatalf("RetryRun: %v", err)
	}
	if res.Continues || res.Picked != 4 || res.Stats.Planned != 3 || res.Stats.Rows != 4 || res.Recipients != 3 {
		t.Fatalf("retried %+v; want 4 picked, 4 rows of 3 recipients still in the audience, 3 planned", res)
	}
	if c := b.counters(t, res.Child.ID); c.Codes["skipped:duplicate"] != 1 || c.States[ledger.Queued] != 3 {
		t.Fatalf("child counters %+v; want 3 queued, 1 skipped:duplicate", c)
	}
}
