package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/tasks"
)

// ActOnTasks archives and deletes one task, then deletes every task left in a state; the
// recipients of deleted send tasks become skipped(deleted). A state an action does not apply
// to is a TaskStateError, and nothing is touched.
func TestActOnTasks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	const n = 8
	st, pending := b.startPending(t, n)
	q := st.Run.Queue
	act := func(action, task string, all bool, state string) (string, string, error) {
		res, err := tasks.ActOnTasks(ctx, tasks.TaskActionParams{Inspector: b.inspector, Ledger: b.ledger,
			Action: action, Queue: q, Task: task, All: all, State: state, Audit: audit.Record{Redis: b.rdb, Actor: "ana"}})
		return res.Target, res.Detail(), err
	}
	for _, c := range []struct{ action, state string }{{"retry", "pending"}, {"archive", "archived"}, {"delete", "active"}, {"delete", "nope"}} {
		if _, _, err := act(c.action, "", true, c.state); !errors.As(err, new(tasks.TaskStateError)) {
			t.Errorf("%s --all --state %s: %v, want a TaskStateError", c.action, c.state, err)
		}
	}

	target, detail, err := act("archive", pending[0].ID, false, "")
	if err != nil || target != q+"/"+pending[0].ID || detail != "done" {
		t.Fatalf("archive one = %q, %q, %v", target, detail, err)
	}
	target, detail, err = act("delete", pending[1].ID, false, "")
	if err != nil || target != q+"/"+pending[1].ID || detail != "1 recipient skipped(deleted) in the ledger" {
		t.Fatalf("delete one = %q, %q, %v", target, detail, err)
	}
	target, detail, err = act("delete", "", true, "pending")
	if want := fmt.Sprintf("%d tasks; %[1]d recipients skipped(deleted) in the ledger", n-2); err != nil || target != q+" (pending)" || detail != want {
		t.Fatalf("delete --all pending = %q, %q, %v", target, detail, err)
	}
	if c := b.counters(t, st.RunID); c.Codes["skipped:deleted"] != int64(n-1) {
		t.Fatalf("codes %v, want %d skipped:deleted", c.Codes, n-1)
	}
	if left, err := b.inspector.ListPendingTasks(q); err != nil || len(left) != 0 {
		t.Fatalf("%d pending tasks left, %v", len(left), err)
	}
	target, detail, err = act("retry", "", true, "archived")
	if err != nil || target != q+" (archived)" || detail != "1 task" {
		t.Fatalf("retry --all archived = %q, %q, %v", target, detail, err)
	}
	// Each action that was taken is in the audit log, newest first; the refused ones are not.
	es, err := audit.List(ctx, b.rdb, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Actor+" "+e.Action+" "+e.Target+": "+e.Detail)
	}
	want := []string{
		"ana task retry " + q + " (archived): 1 task",
		fmt.Sprintf("ana task delete %s (pending): %d tasks; %[2]d recipients skipped(deleted) in the ledger", q, n-2),
		"ana task delete " + q + "/" + pending[1].ID + ": 1 recipient skipped(deleted) in the ledger",
		"ana task archive " + q + "/" + pending[0].ID + ": done",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// errInjected is the Redis failure failDeletes injects.
var errInjected = errors.New("injected: connection reset")

// failDeletes is a go-redis hook that lets the first `after` asynq task deletes through and
// fails every one after them, as a Redis that goes away part way through `task delete --all`.
type failDeletes struct {
	after int32
	seen  atomic.Int32
}

func (h *failDeletes) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *failDeletes) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *failDeletes) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		// asynq's delete script takes the task's hash key first: asynq:{QUEUE}:t:ID.
		args := cmd.Args()
		if name := cmd.Name(); (name == "evalsha" || name == "eval") && len(args) > 3 {
			if key, _ := args[3].(string); strings.Contains(key, "}:t:") {
				if h.seen.Load() >= h.after {
					cmd.SetErr(errInjected)
					return errInjected
				}
				err := next(ctx, cmd)
				if err == nil {
					h.seen.Add(1) // counted once done: a first EVALSHA answered NOSCRIPT is retried as EVAL
				}
				return err
			}
		}
		return next(ctx, cmd)
	}
}

// A delete --all that fails part way still marks the recipients of the tasks it deleted
// skipped(deleted): left queued with no task, they would hold their run open, and a
// continuation would queue again what the operator deleted. The error says what was done.
func TestDeleteAllFailingPartWayMarksWhatItDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	const n = 8
	st := b.start(t, n)
	q := st.Run.Queue
	const deleted = 3
	rdb := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
	rdb.AddHook(&failDeletes{after: deleted})
	in := asynq.NewInspectorFromRedisClient(rdb)
	t.Cleanup(func() { in.Close(); rdb.Close() })

	res, err := tasks.ActOnTasks(ctx, tasks.TaskActionParams{Inspector: in, Ledger: b.ledger,
		Action: "delete", Queue: q, All: true, State: "pending", Audit: audit.Record{Redis: b.rdb}})
	target := res.Target
	if !errors.Is(err, errInjected) || target != q+" (pending)" {
		t.Fatalf("delete --all = %q, %v; want the target and the injected error", target, err)
	}
	if res.Tasks != deleted || res.RecipientsSkipped != deleted {
		t.Errorf("counts %+v; want %d tasks and recipients", res, deleted)
	}
	if want := fmt.Sprintf("%d tasks of %s deleted, %d recipients skipped(deleted)", deleted, target, deleted); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if c := b.counters(t, st.RunID); c.Codes["skipped:deleted"] != deleted {
		t.Fatalf("codes %v, want %d skipped:deleted", c.Codes, deleted)
	}
	if left, err := b.inspector.ListPendingTasks(q); err != nil || len(left) != n-deleted {
		t.Fatalf("%d pending tasks left, %v; want %d", len(left), err, n-deleted)
	}
	// The delete that failed part way is in the audit log, with what it did before failing.
	es, err := audit.List(ctx, b.rdb, 10)
	if err != nil || len(es) != 1 {
		t.Fatalf("audit log %+v, %v; want one entry", es, err)
	}
	if e := es[0]; e.Action != "task delete" || e.Target != target || !strings.HasPrefix(e.Detail, "failed: ") ||
		!strings.Contains(e.Detail, fmt.Sprintf("%d tasks of %s deleted", deleted, target)) {
		t.Errorf("audit entry %+v: want the failed delete and what it deleted", e)
	}
}

// A delete that fails is kept in the audit log even when the task was never found; a
// retry that fails is not, as it changed nothing.
func TestFailedDeleteIsAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.start(t, 1)
	q := st.Run.Queue
	for _, action := range []string{"delete", "retry"} {
		_, err := tasks.ActOnTasks(ctx, tasks.TaskActionParams{Inspector: b.inspector, Ledger: b.ledger,
			Action: action, Queue: q, Task: "no-such-task", Audit: audit.Record{Redis: b.rdb}})
		if err == nil {
			t.Fatalf("%s of a missing task: no error", action)
		}
	}
	es, err := audit.List(ctx, b.rdb, 10)
	if err != nil || len(es) != 1 || es[0].Action != "task delete" || es[0].Target != q+"/no-such-task" {
		t.Fatalf("audit log %+v, %v; want the failed delete only", es, err)
	}
}

// Pausing and resuming a queue is kept in the audit log with who did it and why.
func TestQueuePauseResumeAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.start(t, 1)
	q := st.Run.Queue
	rec := audit.Record{Redis: b.rdb, Actor: "ana", Reason: "provider incident"}
	if got, err := tasks.PauseQueue(ctx, b.inspector, q, rec); err != nil || got != q {
		t.Fatalf("PauseQueue: %q, %v", got, err)
	}
	if info, err := b.inspector.GetQueueInfo(q); err != nil || !info.Paused {
		t.Fatalf("queue info %+v, %v; want paused", info, err)
	}
	if _, err := tasks.ResumeQueue(ctx, b.inspector, q, rec); err != nil {
		t.Fatal(err)
	}
	if info, err := b.inspector.GetQueueInfo(q); err != nil || info.Paused {
		t.Fatalf("queue info %+v, %v; want resumed", info, err)
	}
	if _, err := tasks.ResumeQueue(ctx, b.inspector, q, rec); err == nil {
		t.Error("resume of a queue not paused: no error")
	}
	es, err := audit.List(ctx, b.rdb, 10)
	if err != nil || len(es) != 2 {
		t.Fatalf("audit log %+v, %v; want 2 entries", es, err)
	}
	if es[0].Action != "queue resume" || es[1].Action != "queue pause" || es[1].Target != q || es[1].Actor != "ana" || es[1].Reason != "provider incident" {
		t.Errorf("audit log %+v", es)
	}
}

// A queue is named in full or without "herald:"; any other name pauses nothing, is kept out
// of the audit log, and the error names Herald's queues (asynq would pause a queue of any
// name, and sending would go on).
func TestQueuePauseRefusesUnknownQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	rec := audit.Record{Redis: b.rdb, Actor: "ana"}
	for _, name := range []string{"marketing", "herald:marketing"} {
		q, err := tasks.PauseQueue(ctx, b.inspector, name, rec)
		if err != nil || q != "herald:marketing" {
			t.Fatalf("PauseQueue(%q): %q, %v; want herald:marketing", name, q, err)
		}
		if q, err := tasks.ResumeQueue(ctx, b.inspector, name, rec); err != nil || q != "herald:marketing" {
			t.Fatalf("ResumeQueue(%q): %q, %v; want herald:marketing", name, q, err)
		}
	}
	for _, name := range []string{"marketing ", "herald:herald:marketing", "Marketing", "herald:expand", "promo", ""} {
		_, err := tasks.PauseQueue(ctx, b.inspector, name, rec)
		if !errors.Is(err, tasks.ErrUnknownQueue) || !strings.Contains(err.Error(), "herald:authentication, herald:marketing, herald:utility") {
			t.Errorf("PauseQueue(%q): %v; want ErrUnknownQueue naming the queues", name, err)
		}
		if _, err := tasks.ResumeQueue(ctx, b.inspector, name, rec); !errors.Is(err, tasks.ErrUnknownQueue) {
			t.Errorf("ResumeQueue(%q): %v; want ErrUnknownQueue", name, err)
		}
	}
	if qs, err := b.inspector.Queues(); err != nil || len(qs) != 0 {
		t.Errorf("asynq knows queues %v (%v); want none: nothing was paused", qs, err)
	}
	if paused, err := b.rdb.Keys(ctx, "asynq:{*}:paused").Result(); err != nil || len(paused) != 0 {
		t.Errorf("paused keys %v (%v); want none", paused, err)
	}
	es, err := audit.List(ctx, b.rdb, 10)
	if err != nil || len(es) != 4 {
		t.Fatalf("audit log %+v, %v; want the 4 pauses and resumes of herald:marketing only", es, err)
	}
	for _, e := range es {
		if e.Target != "herald:marketing" {
			t.Errorf("audit entry %+v; want target herald:marketing", e)
		}
	}
}
