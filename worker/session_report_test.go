package worker

import (
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// TestRunShowCountsConnectlyWindowRefusals: a session run without a fallback whose every
// recipient Connectly refused as outside the window (Herald's record said open) reports its
// session counts, the refusals counted in window_refused, where `run show --json` used to
// leave session out as if it were a template run.
func TestRunShowCountsConnectlyWindowRefusals(t *testing.T) {
	b := setup(t, testConfig())
	b.worker.client = &sessionClient{fakeSender: b.sender, SessionFunc: func(connectly.SessionMessage) (connectly.SendResult, error) {
		return connectly.SendResult{}, windowClosedAnswer
	}}
	ps := seedRun(t, b, "run-all-refused", ledger.AtMostOnce, 2)
	for i := range ps {
		ps[i] = sessionPayload(t, ps[i], false)
		if _, err := servicewindow.New(b.rdb, nil).Touch(t.Context(), b.worker.cfg.Limits.BusinessID, []string{ps[i].To}, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := handle(t, b, ps[i]); !errors.Is(err, asynq.SkipRetry) {
			t.Fatalf("handle: %v, want a permanent failure", err)
		}
	}
	c := countersOf(t, b, "run-all-refused")
	if c.WindowRefused != 2 || c.States[ledger.Failed] != 2 {
		t.Fatalf("counters %+v, want 2 failed, both counted window_refused", c)
	}
	rep := report.NewRun(runOf(t, b, "run-all-refused"), c, time.Now())
	if rep.Status != string(ledger.RunCompleted) || rep.Session == nil || *rep.Session != (report.SessionCounts{WindowRefused: 2}) {
		t.Fatalf("run %s, session %+v; want completed with window_refused 2", rep.Status, rep.Session)
	}
	// Template runs' failures are not counted.
	tp := seedRunNumbers(t, b, "run-template-failed", ledger.AtMostOnce, "+1666", 1)[0]
	b.sender.SendFunc = answer(apiError(400, "131047"))
	if err := handle(t, b, tp); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("template: %v, want a permanent failure", err)
	}
	if c := countersOf(t, b, "run-template-failed"); c.WindowRefused != 0 {
		t.Fatalf("template run counters %+v, want no window refusal", c)
	}
}
