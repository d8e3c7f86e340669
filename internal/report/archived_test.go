package report_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/testredis"
)

// sendAddress reads a send task's recipient as the commands do (ShowParams.SendAddress).
func sendAddress(typ string, payload []byte) (ledger.Address, bool) {
	if typ != campaigns.TypeSend {
		return ledger.Address{}, false
	}
	p, err := campaigns.DecodeSend(payload)
	return p.Address(), err == nil
}

// run show says when some of a running run's send tasks are archived while their recipients
// are still queued (so the run cannot end), counting only the run's own tasks, and not a task
// archived after a permanent failure, whose recipient is failed and holds nothing; an ended
// run says nothing.
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
	rcpts := []string{"+15550000001", "+15550000002", "+15550000003", "+15550000004"}
	var planned []ledger.PlanEntry
	for i, r := range rcpts {
		planned = append(planned, ledger.PlanEntry{Recipient: r, Row: i + 1})
	}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: run, From: 0, To: len(rcpts), Entries: planned}); err != nil {
		t.Fatal(err)
	}
	// The third recipient failed for good: the worker wrote failed, and asynq archived its task.
	failed := ledger.Address{Run: run, Recipient: rcpts[2]}
	if _, err := l.Claim(ctx, failed, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, failed, ledger.Outcome{State: ledger.Failed, Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"}); err != nil {
		t.Fatal(err)
	}
	c := asynq.NewClientFromRedisClient(rdb)
	in := asynq.NewInspectorFromRedisClient(rdb)
	send := func(run, to string) *asynq.Task {
		return asynq.NewTask(campaigns.TypeSend, campaigns.EncodeSend(campaigns.SendPayload{Run: run, To: to, Template: "t", Language: "en"}))
	}
	// Two queued recipients' tasks archived, the failed one's archived, one left pending; a task
	// of the run whose payload does not decode, and tasks of runs whose ids only look alike are
	// archived too and must not count.
	tasks := map[string]*asynq.Task{
		run + "/a1": send(run, rcpts[0]), run + "/a2": send(run, rcpts[1]), run + "/failed": send(run, rcpts[2]),
		run + "/pending": send(run, rcpts[3]), run + "/garbled": asynq.NewTask(campaigns.TypeSend, []byte("{")),
		"promo-1/x": send("promo-1", rcpts[0]), "promo-[1]-b/y": send("promo-[1]-b", rcpts[0]),
	}
	for id, task := range tasks {
		if _, err := c.Enqueue(task, asynq.TaskID(id), asynq.Queue(q)); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(id, "/pending") {
			continue
		}
		if err := in.ArchiveTask(q, id); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := report.ShowRun(ctx, l, rdb, report.ShowParams{Run: run, Now: t0, SendAddress: sendAddress})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ArchivedTasks != 2 {
		t.Errorf("archived tasks %d, want 2 (the failed recipient's task holds nothing)", rep.ArchivedTasks)
	}
	var buf bytes.Buffer
	report.PrintRun(&buf, rep)
	if !strings.Contains(buf.String(), "Archived  2 send tasks whose recipients are still queued") ||
		!strings.Contains(buf.String(), "herald task ls herald:marketing --state archived") {
		t.Errorf("printed:\n%s\nwant the archived tasks and how to list them", buf.String())
	}
	// With no way to read a task's recipient, every archived task of the run is counted.
	if n, err := report.ArchivedTasks(ctx, rdb, l, q, run, nil); err != nil || n != 4 {
		t.Errorf("ArchivedTasks without SendAddress = %d, %v; want the run's 4", n, err)
	}

	if _, _, err := l.Cancel(ctx, run, "test"); err != nil {
		t.Fatal(err)
	}
	if rep, err := report.ShowRun(ctx, l, rdb, report.ShowParams{Run: run, Now: t0, SendAddress: sendAddress}); err != nil || rep.ArchivedTasks != 0 {
		t.Errorf("cancelled run: archived tasks %d (%v), want none reported", rep.ArchivedTasks, err)
	}
}

// A run with more archived tasks than one batch reads (500) counts them all, batch by batch.
func TestArchivedTasksInBatches(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	ctx := context.Background()
	l := ledger.New(rdb, nil)
	const run, q = "big-1", "herald:marketing"
	if err := l.CreateRun(ctx, ledger.Run{ID: run, Campaign: "big", Queue: q, Delivery: ledger.AtMostOnce, Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	const n = 520
	var planned []ledger.PlanEntry
	for i := range n {
		planned = append(planned, ledger.PlanEntry{Recipient: fmt.Sprintf("+1555%07d", i), Row: i + 1})
	}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: run, From: 0, To: n, Entries: planned}); err != nil {
		t.Fatal(err)
	}
	c := asynq.NewClientFromRedisClient(rdb)
	in := asynq.NewInspectorFromRedisClient(rdb)
	for i, e := range planned {
		id := fmt.Sprintf("%s/%d", run, i)
		task := asynq.NewTask(campaigns.TypeSend, campaigns.EncodeSend(campaigns.SendPayload{Run: run, To: e.Recipient, Template: "t", Language: "en"}))
		if _, err := c.Enqueue(task, asynq.TaskID(id), asynq.Queue(q)); err != nil {
			t.Fatal(err)
		}
		if err := in.ArchiveTask(q, id); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := report.ArchivedTasks(ctx, rdb, l, q, run, sendAddress); err != nil || got != n {
		t.Errorf("ArchivedTasks = %d, %v; want %d", got, err, n)
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
