package ledger

import (
	"context"
	"testing"
)

// A code holding the history's separators (':' between an event's parts, ';' between events)
// is recorded without them, so a maybe-sent retry withdrawn later reads its code back whole:
// the recipient is unknown with it, counted under it once.
func TestFinishDropsHistorySeparatorsFromACode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const runID = "r-sep"
	b := setup(t)
	entries := seedRun(t, b, runID, AtLeastOnce, recipients(1), true)
	if c := claim(t, b, runID, entries[0], AtLeastOnce); c.Verdict != VerdictSend {
		t.Fatalf("verdict %s, want send", c.Verdict)
	}
	finish(t, b, runID, entries[0], Outcome{State: Queued, Code: "ERR:GATEWAY;X", Mode: ReleaseRetryMaybeSent})
	if _, _, err := b.l.Cancel(ctx, runID, "operator"); err != nil {
		t.Fatal(err)
	}
	e := getEntry(t, b, runID, entries[0])
	if e.State != Unknown || e.Code != "ERRGATEWAYX" {
		t.Fatalf("entry %+v, want unknown(ERRGATEWAYX)", e)
	}
	if c := getCounters(t, b, runID); c.Codes["unknown:ERRGATEWAYX"] != 1 || c.Codes["unknown:"] != 0 {
		t.Fatalf("codes %v, want unknown:ERRGATEWAYX once", c.Codes)
	}
}
