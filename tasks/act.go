package tasks

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/ledger"
)

// TaskLists lists a queue's tasks in each state, by the state's name: pending, active,
// scheduled, retry, archived, completed.
func TaskLists(in *asynq.Inspector) map[string]func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error) {
	return map[string]func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		"pending": in.ListPendingTasks, "active": in.ListActiveTasks, "scheduled": in.ListScheduledTasks,
		"retry": in.ListRetryTasks, "archived": in.ListArchivedTasks, "completed": in.ListCompletedTasks,
	}
}

// TaskActionParams say what ActOnTasks does: which action, on one task of a queue or on
// every task of it in a state.
type TaskActionParams struct {
	Inspector *asynq.Inspector
	// Ledger is where the recipients of deleted send tasks become skipped(deleted).
	Ledger *ledger.Ledger
	// Action is "retry", "archive" or "delete".
	Action string
	Queue  string
	// Task is the one task's id; with All, none.
	Task string
	// All acts on every task of the queue in State.
	All   bool
	State string
	// Audit is who acts and why: the action is kept in its log as "task ACTION".
	Audit audit.Record
}

// TaskStateError says an action cannot act on every task in the state it was given; its
// message names the states it can act on, in the words of `herald task`.
type TaskStateError struct{ msg string }

func (e TaskStateError) Error() string { return e.msg }

// ActOnTasks retries, archives or deletes one task, or every task of a queue in a state
// (those in bulk, page by page for delete). The recipients of deleted send tasks become
// skipped(deleted) in the ledger, so their runs can still complete. It returns what it acted
// on ("QUEUE/ID" or "QUEUE (STATE)") and what it did, as it keeps them in the audit log
// (p.Audit). With an error the target is still set (except for a TaskStateError: a state the
// action does not apply to, where nothing was touched), and for a delete the error says how
// many tasks were deleted and how many recipients marked before it.
//
// No delete goes unaudited: tasks may be gone already when a delete fails (the ledger step
// comes after the delete, and --all deletes page by page), so a failed delete is kept in the
// log too, with what went wrong, which says what was deleted.
func ActOnTasks(ctx context.Context, p TaskActionParams) (target, detail string, err error) {
	action := "task " + p.Action
	target, detail, err = actOnTasks(ctx, p)
	switch {
	case errors.As(err, new(TaskStateError)):
		return target, detail, err
	case err != nil && p.Action == "delete":
		return target, detail, p.Audit.Failed(ctx, action, target, err)
	case err != nil:
		return target, detail, err
	}
	return target, detail, p.Audit.Keep(ctx, action, target, detail)
}

// actOnTasks is ActOnTasks without the audit log.
func actOnTasks(ctx context.Context, p TaskActionParams) (target, detail string, err error) {
	in, q := p.Inspector, p.Queue
	if !p.All {
		id := p.Task
		target := q + "/" + id
		var t *asynq.TaskInfo
		if p.Action == "delete" {
			info, err := in.GetTaskInfo(q, id)
			if err != nil {
				return target, "", err
			}
			t = info
		}
		var err error
		switch p.Action {
		case "retry":
			err = in.RunTask(q, id)
		case "archive":
			err = in.ArchiveTask(q, id)
		case "delete":
			err = in.DeleteTask(q, id)
		}
		if err != nil {
			return target, "", err
		}
		if t == nil {
			return target, "done", nil
		}
		n, err := SkipDeleted(ctx, p.Ledger, []*asynq.TaskInfo{t})
		if err != nil {
			return target, "", fmt.Errorf("task %s deleted, %d recipients skipped(deleted) in the ledger, then: %w", target, n, err)
		}
		return target, fmt.Sprintf("%d recipients skipped(deleted) in the ledger", n), nil
	}
	bulk := map[string]func(string) (int, error){
		"retry:scheduled": in.RunAllScheduledTasks, "retry:retry": in.RunAllRetryTasks, "retry:archived": in.RunAllArchivedTasks,
		"archive:pending": in.ArchiveAllPendingTasks, "archive:scheduled": in.ArchiveAllScheduledTasks, "archive:retry": in.ArchiveAllRetryTasks,
	}[p.Action+":"+p.State]
	if bulk == nil {
		if p.Action != "delete" {
			return "", "", TaskStateError{fmt.Sprintf("%s --all: --state must be one of %s", p.Action, map[string]string{
				"retry": "scheduled, retry, archived", "archive": "pending, scheduled, retry"}[p.Action])}
		}
		return deleteAll(ctx, in, p.Ledger, q, p.State)
	}
	target = q + " (" + p.State + ")"
	n, err := bulk(q)
	if err != nil {
		return target, "", err
	}
	return target, fmt.Sprintf("%d tasks", n), nil
}

// deleteAll deletes every task of a queue in a state, page by page, marking the recipients
// of each page's deleted send tasks skipped(deleted) before the next page, so their runs can
// still complete and no continuation re-creates a task the operator deleted. When a delete
// or the ledger fails part way, the tasks deleted up to then still have their recipients
// marked, and the error says how many of each there were.
func deleteAll(ctx context.Context, in *asynq.Inspector, l *ledger.Ledger, q, state string) (string, string, error) {
	list := TaskLists(in)[state]
	if list == nil || state == "active" {
		return "", "", TaskStateError{"delete --all: --state must be pending, scheduled, retry, archived or completed"}
	}
	target := q + " (" + state + ")"
	tasks, skipped := 0, 0
	for {
		page, err := list(q, asynq.PageSize(500), asynq.Page(1))
		if err != nil {
			return target, "", fmt.Errorf("%d tasks of %s deleted, %d recipients skipped(deleted) in the ledger, then: %w", tasks, target, skipped, err)
		}
		if len(page) == 0 {
			break
		}
		var deleted []*asynq.TaskInfo
		var derr error
		for _, t := range page {
			if err := in.DeleteTask(q, t.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
				derr = err
				break
			}
			deleted = append(deleted, t)
		}
		n, serr := SkipDeleted(ctx, l, deleted)
		tasks, skipped = tasks+len(deleted), skipped+n
		if err := errors.Join(derr, serr); err != nil {
			return target, "", fmt.Errorf("%d tasks of %s deleted, %d recipients skipped(deleted) in the ledger, then: %w", tasks, target, skipped, err)
		}
	}
	return target, fmt.Sprintf("%d tasks; %d recipients skipped(deleted) in the ledger", tasks, skipped), nil
}
