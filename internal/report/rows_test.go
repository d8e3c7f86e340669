package report_test

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
)

// An audience of 8 rows, 2 of them skipped before reaching the ledger (an invalid number, a
// duplicate), is 6 recipients, as campaign send says ("8 rows, 6 recipients"): run ls counts
// the run's rows under ROWS, not RECIPIENTS, and run show --verify says how its 6 ledger
// entries and the 2 skipped rows make the total of 8.
func TestRunCountsSayRowsAndRecipients(t *testing.T) {
	t.Parallel()
	rep := report.Run{Run: "welcome-1", Campaign: "welcome", Status: "running", Expanded: true, Recipients: 8, Sum: 8,
		States: map[string]int64{"queued": 6, "skipped": 2}, Codes: map[string]int64{"skipped:duplicate": 1, "skipped:invalid_phone": 1},
		Created: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC),
		Verify:  &ledger.Verification{Entries: 6, States: map[ledger.State]int64{ledger.Queued: 6}, Mismatches: []ledger.Mismatch{}}}
	var ls strings.Builder
	if err := report.PrintRuns(&ls, []report.Run{rep}); err != nil {
		t.Fatal(err)
	}
	if head := strings.Fields(strings.SplitN(ls.String(), "\n", 2)[0]); len(head) < 4 || head[3] != "ROWS" {
		t.Errorf("run ls header %q: want ROWS, the audience rows it counts", head)
	}
	var show strings.Builder
	report.PrintRun(&show, rep)
	want := "verify: 6 ledger entries (the recipients) agree with the counters, which also count 2 rows skipped before the ledger (invalid or duplicate): 8 rows in all"
	if !strings.Contains(show.String(), want) {
		t.Errorf("run show --verify:\n%s\nwant %q", show.String(), want)
	}
	// A run whose every row reached the ledger reads as before.
	rep.Verify.Entries, rep.Sum = 8, 8
	show.Reset()
	report.PrintRun(&show, rep)
	if !strings.Contains(show.String(), "verify: 8 ledger entries agree with the counters\n") {
		t.Errorf("run show --verify, every row in the ledger:\n%s", show.String())
	}
}
