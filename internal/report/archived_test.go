package report_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/testredis"
)

// run show says when some of a running run's send tasks are archived (their recipients stay
// queued, so the run cannot end), counting only the run's own tasks; an ended run says nothing.
func TestShowRunCountsArchivedTasks(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := ledger.New(rdb, func() time.Time { return t0 })
	const run, q = "promo-[1]", "herald:marketing"
	if err := l.CreateRun(ctx, ledger.Run{ID: run, Campaign: "promo", Queue: q, Delivery: ledger.AtMostOnce, Buckets: 1, Created: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: run, From: 0, To: 3, Entries: []ledger.PlanEntry{
		{Recipient: "+15550000001", Row: 1}, {Recipient: "+15550000002", Row: 2}, {Recipient: "+15550000003", Row: 3}}}); err != nil {
		t.Fatal(err)
	}
	c := asynq.NewClientFromRedisClient(rdb)
	in := asynq.NewInspectorFromRedisClient(rdb)
	// Two of the run's tasks archived, one left pending; tasks of runs whose ids only look
	// alike are archived too and must not count.
	for _, id := range []string{run + "/a1", run + "/a2", run + "/pending", "promo-1/x", "promo-[1]-b/y"} {
		if _, err := c.Enqueue(asynq.NewTask("send", nil), asynq.TaskID(id), asynq.Queue(q)); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(id, "/pending") {
			continue
		}
		if err := in.ArchiveTask(q, id); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := report.ShowRun(ctx, l, rdb, report.ShowParams{Run: run, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ArchivedTasks != 2 {
		t.Errorf("archived tasks %d, want 2", rep.ArchivedTasks)
	}
	var buf bytes.Buffer
	report.PrintRun(&buf, rep)
	if !strings.Contains(buf.String(), "Archived  2 send tasks") || !strings.Contains(buf.String(), "herald task ls herald:marketing --state archived") {
		t.Errorf("printed:\n%s\nwant the archived tasks and how to list them", buf.String())
	}

	if _, _, err := l.Cancel(ctx, run, "test"); err != nil {
		t.Fatal(err)
	}
	if rep, err := report.ShowRun(ctx, l, rdb, report.ShowParams{Run: run, Now: t0}); err != nil || rep.ArchivedTasks != 0 {
		t.Errorf("cancelled run: archived tasks %d (%v), want none reported", rep.ArchivedTasks, err)
	}
}

// recipient explain's history prints a skip, which made no attempt, without "attempt 0".
func TestExplanationHistorySkipNamesNoAttempt(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	x := report.Explanation{Run: "R1", Recipient: "*******0001", InLedger: true, State: "skipped", History: []report.HistoryLine{
		{Event: ledger.Event{Outcome: "retry", Attempt: 1, Code: "HTTP_503", At: at}, Class: "transient"},
		{Event: ledger.Event{Outcome: "skipped", Code: "window_closed", At: at.Add(time.Minute)}},
	}}
	var buf bytes.Buffer
	report.PrintExplanation(&buf, x, at)
	out := buf.String()
	if strings.Contains(out, "attempt 0") || !strings.Contains(out, "2026-03-01T12:01:00Z skipped window_closed") ||
		!strings.Contains(out, "2026-03-01T12:00:00Z attempt 1: retry HTTP_503 (transient)") {
		t.Errorf("printed:\n%s", out)
	}
}
