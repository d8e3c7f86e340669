package metrics

import (
	"strings"
	"testing"
)

// The request latency covers every request a worker makes to Connectly, session messages as
// well as templates (worker.send times them all): its help must not say templates only.
func TestRequestDurationHelpNamesSessionMessages(t *testing.T) {
	t.Parallel()
	m := New()
	m.RequestDuration.WithLabelValues("ok").Observe(0.1)
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "herald_connectly_request_duration_seconds" {
			continue
		}
		if help := mf.GetHelp(); !strings.Contains(help, "session messages") || strings.Contains(help, "template send requests") {
			t.Fatalf("help %q: want it to name session messages beside templates", help)
		}
		return
	}
	t.Fatal("no herald_connectly_request_duration_seconds in the scrape")
}
