package worker

import (
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
)

// TestRunShowSplitsRefusedFallbacks: a fallback template sent because Connectly refused the
// session message as outside the window (Herald's record said open) is counted apart from a
// fallback the gate sent because Herald's record said closed, so `run show` tells the drift
// between the two records from the windows Herald knew closed.
func TestRunShowSplitsRefusedFallbacks(t *testing.T) {
	b, _, p := refusalBundle(t, testConfig())
	if err := handle(t, b, p); err != nil {
		t.Fatal(err)
	}
	// The gate's fallback: no window recorded for the recipient.
	gate := sessionPayload(t, seedRunNumbers(t, b, "run-gate-fallback", ledger.AtMostOnce, "+1666", 1)[0], true)
	if err := handle(t, b, gate); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		run  string
		want report.SessionCounts
	}{
		{p.Run, report.SessionCounts{Fallback: 1, FallbackRefused: 1}},
		{gate.Run, report.SessionCounts{Fallback: 1, FallbackWindowClosed: 1}},
	} {
		c := countersOf(t, b, tc.run)
		if c.Accepted(ledger.SentFallback) != 1 || c.WindowRefusedFallback != tc.want.FallbackRefused || c.WindowRefused != 0 {
			t.Errorf("%s: counters %+v, want one fallback, %d after Connectly's refusal", tc.run, c, tc.want.FallbackRefused)
		}
		rep := report.NewRun(runOf(t, b, tc.run), c, time.Now())
		if rep.Session == nil || *rep.Session != tc.want {
			t.Errorf("%s: session %+v, want %+v", tc.run, rep.Session, tc.want)
		}
	}
}
