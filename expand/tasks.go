package expand

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

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
}

// TaskStateError says an action cannot act on every task in the state it was given; its
// message names the states it can act on, in the words of `herald task`.
type TaskStateError struct{ msg string }

func (e TaskStateError) Error() string { return e.msg }

// ActOnTasks retries, archives or deletes one task, or every task of a queue in a state
// (those in bulk, page by page for delete). The recipients of deleted send tasks become
// skipped(deleted) in the ledger, so their runs can still complete. It returns what it acted
// on ("QUEUE/ID" or "QUEUE (STATE)") and what it did, as the audit log records them; a state
// the action does not apply to is a TaskStateError.
func ActOnTasks(ctx context.Context, p TaskActionParams) (target, detail string, err error) {
	in, q := p.Inspector, p.Queue
	if !p.All {
		id := p.Task
		var t *asynq.TaskInfo
		if p.Action == "delete" {
			info, err := in.GetTaskInfo(q, id)
			if err != nil {
				return "", "", err
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
			return "", "", err
		}
		detail := "done"
		if t != nil {
			if detail, err = skipDeletedDetail(ctx, p.Ledger, []*asynq.TaskInfo{t}); err != nil {
				return "", "", fmt.Errorf("task %s/%s deleted: %w", q, id, err)
			}
		}
		return q + "/" + id, detail, nil
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
	n, err := bulk(q)
	if err != nil {
		return "", "", err
	}
	return q + " (" + p.State + ")", fmt.Sprintf("%d tasks", n), nil
}

// deleteAll deletes every task of a queue in a state, page by page, marking the recipients
// of deleted send tasks skipped(deleted) so their runs can still complete.
func deleteAll(ctx context.Context, in *asynq.Inspector, l *ledger.Ledger, q, state string) (string, string, error) {
	list := TaskLists(in)[state]
	if list == nil || state == "active" {
		return "", "", TaskStateError{"delete --all: --state must be pending, scheduled, retry, archived or completed"}
	}
	var deleted []*asynq.TaskInfo
	for {
		page, err := list(q, asynq.PageSize(500), asynq.Page(1))
		if err != nil {
			return "", "", err
		}
		if len(page) == 0 {
			break
		}
		for _, t := range page {
			if err := in.DeleteTask(q, t.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
				return "", "", err
			}
			deleted = append(deleted, t)
		}
	}
	skipped, err := skipDeletedDetail(ctx, l, deleted)
	if err != nil {
		return "", "", fmt.Errorf("%d tasks of %s (%s) deleted: %w", len(deleted), q, state, err)
	}
	return q + " (" + state + ")", fmt.Sprintf("%d tasks; %s", len(deleted), skipped), nil
}

// skipDeletedDetail marks the recipients of deleted send tasks skipped(deleted) and says how
// many it marked. Tasks of other types, and entries already past sending, are left as they
// are; a ledger that cannot be written is an error, with the recipients marked so far.
func skipDeletedDetail(ctx context.Context, l *ledger.Ledger, ts []*asynq.TaskInfo) (string, error) {
	n, err := SkipDeleted(ctx, l, ts)
	if err != nil {
		return "", fmt.Errorf("%d recipients skipped(deleted) in the ledger, then: %w", n, err)
	}
	return fmt.Sprintf("%d recipients skipped(deleted) in the ledger", n), nil
}
