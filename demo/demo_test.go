package demo_test

import (
	"context"
	"testing"
	"time"

	"github.com/heraldmsg/herald/demo"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/rs/zerolog"
)

// The demo runs end to end: both runs complete with every row accounted for, the throughput
// is the accepted rows over the wall time, the fake saw the requests, and the progress
// callback ends each run on an ended report.
func TestRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var calls, ended int
	rep, err := demo.Run(ctx, demo.Options{Recipients: 150, Rate: 200, Concurrency: 20, Timeout: 2 * time.Minute,
		Log: zerolog.Nop(), Progress: func(r report.Run, _ time.Duration) {
			calls++
			if r.Ended() {
				ended++
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Check(); err != nil {
		t.Fatalf("demo failed: %v\n%+v", err, rep)
	}
	if rep.Recipients != 150 || rep.SessionStep == nil || rep.SessionStep.Recipients != 150 {
		t.Errorf("recipients %d, session step %+v", rep.Recipients, rep.SessionStep)
	}
	if rep.Wall <= 0 || rep.WallSeconds != rep.Wall.Seconds() || rep.MsgsPerSecond <= 0 {
		t.Errorf("wall %v (%v s), %v msg/s", rep.Wall, rep.WallSeconds, rep.MsgsPerSecond)
	}
	if rep.Fake.Requests == 0 || rep.Fake.Accepted == 0 || rep.Webhooks.Delivered == 0 {
		t.Errorf("fake %+v, webhooks %+v", rep.Fake, rep.Webhooks)
	}
	if rep.Funnel == nil || len(rep.Funnel.Rules) != 3 {
		t.Errorf("funnel %+v, want the campaign's three rules", rep.Funnel)
	}
	if ended != 2 || calls < ended {
		t.Errorf("progress called %d times, %d with an ended run; want one end per run (2)", calls, ended)
	}
}

// Check passes a demo whose two runs completed with every row accounted for, and only that.
func TestReportCheck(t *testing.T) {
	t.Parallel()
	done := report.Run{Run: "r1", Status: "completed", Recipients: 10, Sum: 10}
	step := report.Run{Run: "r2", Status: "completed", Recipients: 10, Sum: 10}
	if err := (demo.Report{Run: done, SessionStep: &step}).Check(); err != nil {
		t.Errorf("complete demo: %v", err)
	}
	short := done
	short.Sum = 9
	running := step
	running.Status = "running"
	for name, r := range map[string]demo.Report{
		"a row unaccounted for": {Run: short, SessionStep: &step},
		"session step running":  {Run: done, SessionStep: &running},
		"no session step":       {Run: done},
	} {
		if err := r.Check(); err == nil {
			t.Errorf("%s: Check passed", name)
		}
	}
}

// A demo of no recipient is refused before anything starts.
func TestRunNoRecipients(t *testing.T) {
	t.Parallel()
	if _, err := demo.Run(context.Background(), demo.Options{Recipients: 0, Log: zerolog.Nop()}); err == nil {
		t.Error("a demo of 0 recipients ran")
	}
}
