package report_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// The follow-ups of a completed run paused, then cancelled, by an operator show in run show
// and run ls (text and JSON), with their reason masked; the run's own status stays completed.
func TestShowRunFollowupsOfACompletedRunHeld(t *testing.T) {
	t.Parallel()
	ctx, rdb, l, run, t0 := showSetup(t)
	if err := rdb.HSet(ctx, rkeys.Run(run), "status", string(ledger.RunCompleted)).Err(); err != nil {
		t.Fatal(err)
	}
	show := func() (report.Run, string, string) {
		t.Helper()
		rep, err := report.ShowRun(context.Background(), l, rdb, report.ShowParams{Run: run, Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		var text strings.Builder
		report.PrintRun(&text, rep)
		js, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		return rep, text.String(), string(js)
	}
	ls := func() (string, string) {
		t.Helper()
		reps, err := report.RecentRuns(context.Background(), l, "", 10, t0)
		if err != nil {
			t.Fatal(err)
		}
		var text strings.Builder
		if err := report.PrintRuns(&text, reps); err != nil {
			t.Fatal(err)
		}
		js, err := json.Marshal(reps)
		if err != nil {
			t.Fatal(err)
		}
		return text.String(), string(js)
	}
	text, js := ls()
	if strings.Contains(text, "follow-ups") || strings.Contains(js, `"followups"`) {
		t.Errorf("run ls with nothing held:\n%s\n%s", text, js)
	}
	if ok, _, err := l.PauseFollowups(ctx, run, "paused by ana: call +14155550123"); err != nil || !ok {
		t.Fatalf("PauseFollowups: %v %v", ok, err)
	}
	rep, text, js := show()
	if rep.Status != string(ledger.RunCompleted) || !strings.Contains(text, "Follow-ups paused (paused by ana: call ********0123)") ||
		!strings.Contains(js, `"followups":{"state":"paused","reason":"paused by ana: call ********0123"}`) {
		t.Errorf("run show with its follow-ups paused (status %s):\n%s\n%s", rep.Status, text, js)
	}
	text, js = ls()
	if !strings.Contains(text, "completed, follow-ups paused") ||
		!strings.Contains(js, `"status":"completed"`) || !strings.Contains(js, `"followups":{"state":"paused","reason":"paused by ana: call ********0123"}`) {
		t.Errorf("run ls with its follow-ups paused:\n%s\n%s", text, js)
	}
	if ok, _, err := l.CancelFollowups(ctx, run, "cancelled by ana"); err != nil || !ok {
		t.Fatalf("CancelFollowups: %v %v", ok, err)
	}
	_, text, js = show()
	if !strings.Contains(text, "Follow-ups cancelled (cancelled by ana)") || !strings.Contains(js, `"followups":{"state":"cancelled","reason":"cancelled by ana"}`) {
		t.Errorf("run show with its follow-ups cancelled:\n%s\n%s", text, js)
	}
	text, js = ls()
	if !strings.Contains(text, "completed, follow-ups cancelled") || !strings.Contains(js, `"followups":{"state":"cancelled","reason":"cancelled by ana"}`) {
		t.Errorf("run ls with its follow-ups cancelled:\n%s\n%s", text, js)
	}
}
