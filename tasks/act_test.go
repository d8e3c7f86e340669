package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/heraldmsg/herald/tasks"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// ActOnTasks archives and deletes one task, then deletes every task left in a state; the
// recipients of deleted send tasks become skipped(deleted). A state an action does not apply
// to is a TaskStateError, and nothing is touched.
func TestActOnTasks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	const n = 8
	st := b.start(t, n)
	q := st.Run.Queue
	pending, err := b.inspector.ListPendingTasks(q)
	if err != nil || len(pending) != n {
		t.Fatalf("%d pending tasks, %v; want %d", len(pending), err, n)
	}
	act := func(action, task string, all bool, state string) (string, string, error) {
		return tasks.ActOnTasks(ctx, tasks.TaskActionParams{Inspector: b.inspector, Ledger: b.ledger,
			Action: action, Queue: q, Task: task, All: all, State: state})
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
	if err != nil || target != q+"/"+pending[1].ID || detail != "1 recipients skipped(deleted) in the ledger" {
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
	if err != nil || target != q+" (archived)" || detail != "1 tasks" {
		t.Fatalf("retry --all archived = %q, %q, %v", target, detail, err)
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

	target, _, err := tasks.ActOnTasks(ctx, tasks.TaskActionParams{Inspector: in, Ledger: b.ledger,
		Action: "delete", Queue: q, All: true, State: "pending"})
	if !errors.Is(err, errInjected) || target != q+" (pending)" {
		t.Fatalf("delete --all = %q, %v; want the target and the injected error", target, err)
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
}
