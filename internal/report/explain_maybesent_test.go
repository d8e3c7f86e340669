package report_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
)

// A recipient retried after a 503 (which may follow a message that went out) whose retry was
// then not sent (here the send expired) is unknown with the 503: the retry's code is
// Connectly's answer, classed as such, and the withdrawn retry's is why it was not sent, not a
// failure: no class (looked up as a provider code it would read as permanent).
func TestExplainWithdrawnRetryReasonHasNoFailureClass(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	table := defaultTable(t)
	const to = "+447700900126"
	b := newExplainBench(t, time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC), to)
	b.settle(t, to, ledger.Outcome{State: ledger.Queued, Mode: ledger.ReleaseRetryMaybeSent, Code: "HTTP_503", Attempt: 1})
	b.now = b.now.Add(time.Minute)
	if skipped, err := b.l.Skip(ctx, ledger.AddressIn("R1", to, 1), "expired"); err != nil || skipped != ledger.Unknown {
		t.Fatalf("Skip = %v, %v; want the retry withdrawn, not skipped", skipped, err)
	}
	x, err := report.Explain(ctx, b.l, b.rdb, report.ExplainParams{Run: "R1", Recipient: to, Shown: "*********0126", Table: table, Now: b.now})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range x.History {
		got = append(got, h.Outcome+" "+h.Code+" "+h.Class)
	}
	want := []string{"retry_maybe_sent HTTP_503 transient", ledger.EventRetryWithdrawn + " expired "}
	if !slices.Equal(got, want) || x.State != string(ledger.Unknown) || x.Code != "HTTP_503" || x.Class != "transient" {
		t.Errorf("state %s, code %s (%s), history %q; want unknown, HTTP_503 (transient), %q", x.State, x.Code, x.Class, got, want)
	}
	var out bytes.Buffer
	report.PrintExplanation(&out, x, b.now)
	if s := out.String(); !strings.Contains(s, "attempt 1: retry_withdrawn expired\n") {
		t.Errorf("printed:\n%s\nwant the withdrawn retry's reason without a class", s)
	}
}
