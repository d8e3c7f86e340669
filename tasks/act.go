package tasks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/words"
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
	// Ledger is where the recipients of deleted send tasks are settled (SkipDeleted).
	Ledger *ledger.Ledger
	// Tasks is the one task writer (asynqbatch.New), which writes again the deleted task of
	// an at-least-once run's recipient that a dead worker left mid-send (SkipDeleted).
	Tasks asynqbatch.Writer
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
	// Force deletes or archives the expansion task of a run that has not read its whole
	// audience, which ActOnTasks otherwise refuses (ExpansionTaskError).
	Force bool
}

// ExpansionTaskError refuses to delete or archive, without TaskActionParams.Force, a task of
// the expansion queue that carries on the expansion of a run not expanded yet: the chain of
// such tasks is the only thing that reads the rest of the run's audience, so without it the
// rows not read would never be planned and the run would never finish. Nothing was touched.
type ExpansionTaskError struct {
	Action string
	// Runs are the runs whose expansion the action would stop.
	Runs []string
}

func (e ExpansionTaskError) Error() string {
	which, run := "run "+e.Runs[0], e.Runs[0]
	if len(e.Runs) > 1 {
		which, run = "runs "+strings.Join(e.Runs, ", "), "RUN"
	}
	what, undo := "deleted", "herald run repair "+run+" --apply then starts the expansion again"
	if e.Action == "archive" {
		what, undo = "archived", "herald run repair "+run+" --apply then retries it"
	}
	return fmt.Sprintf("refused: this carries on the expansion of %s, which has not read its whole audience; "+
		"%s, nothing would plan the rows not read yet and the run would never finish. "+
		"To stop the run: herald run cancel %s (its expansion skips the rows not read). To %s anyway: --force, and %s",
		which, "with it "+what, run, e.Action, undo)
}

// TaskStateError says an action cannot act on every task in the state it was given; its
// message names the states it can act on, in the words of `herald task`.
type TaskStateError struct{ msg string }

func (e TaskStateError) Error() string { return e.msg }

// TaskActed is what ActOnTasks did, as `herald task retry|archive|delete --json` prints it.
type TaskActed struct {
	// Action is "retry", "archive" or "delete"; Queue the queue acted on.
	Action string `json:"action"`
	Queue  string `json:"queue"`
	// Task is the one task's id; State, with --all, the state whose every task was acted on.
	Task  string `json:"task,omitempty"`
	State string `json:"state,omitempty"`
	// Target names what was acted on, as the audit log keeps it: "QUEUE/ID" or "QUEUE (STATE)".
	Target string `json:"target"`
	// Tasks is how many tasks were retried, archived or deleted (1 for one task).
	Tasks int `json:"tasks"`
	// RecipientsSkipped is how many recipients of deleted send tasks became skipped(deleted)
	// in the ledger: 0 for retry and archive.
	RecipientsSkipped int `json:"recipients_skipped"`
	// RecipientsUnknown is how many recipients of deleted send tasks were being sent by a
	// worker that died mid-request, with no task left to settle its claim, and became
	// unknown(TASK_DELETED): their message may have gone. 0 for retry and archive.
	RecipientsUnknown int `json:"recipients_unknown"`
	// RecipientsRequeued is how many such recipients were in an at-least-once run: their
	// task was written again and sends again (a possible duplicate, as at-least-once
	// accepts). 0 for retry and archive.
	RecipientsRequeued int `json:"recipients_requeued"`
	// ResendsWithdrawn is how many recipients of deleted send tasks were queued for their one
	// resend, which never made a request (held by a paused run, or waiting for a worker),
	// with no task left to send it: the resend was withdrawn, and they are unknown again with
	// the code they had. 0 for retry and archive.
	ResendsWithdrawn int `json:"resends_withdrawn"`
	// RetriesWithdrawn is how many recipients of deleted send tasks were queued for a retry
	// after an answer that may follow a message that went out (at-least-once): the retry was
	// withdrawn, and they are unknown with that answer's code. 0 for retry and archive.
	RetriesWithdrawn int `json:"retries_withdrawn"`
	// ExpansionsStopped are the runs not expanded yet whose expansion task a forced delete or
	// archive (TaskActionParams.Force) removed or archived: `herald run repair RUN --apply`
	// starts the expansion again (or retries the archived task).
	ExpansionsStopped []string `json:"expansions_stopped,omitempty"`
}

// settled is what the delete did to the recipients so far.
func (t TaskActed) settled() Settled {
	return Settled{Skipped: t.RecipientsSkipped, Unknown: t.RecipientsUnknown, Requeued: t.RecipientsRequeued, Withdrawn: t.ResendsWithdrawn,
		RetriesWithdrawn: t.RetriesWithdrawn}
}

// count adds what one call of SkipDeleted did.
func (t *TaskActed) count(n Settled) {
	t.RecipientsSkipped += n.Skipped
	t.RecipientsUnknown += n.Unknown
	t.RecipientsRequeued += n.Requeued
	t.ResendsWithdrawn += n.Withdrawn
	t.RetriesWithdrawn += n.RetriesWithdrawn
}

// Detail says what was done, as the audit log keeps it.
func (t TaskActed) Detail() string {
	d := t.detail()
	again := "starts it again"
	if t.Action == "archive" {
		again = "retries its task"
	}
	for _, run := range t.ExpansionsStopped {
		d += fmt.Sprintf("; the expansion of run %s stopped (herald run repair %s --apply %s)", run, run, again)
	}
	return d
}

// detail is Detail without the expansions stopped.
func (t TaskActed) detail() string {
	switch {
	case t.Task != "" && t.Action == "delete":
		return t.settled().String()
	case t.Task != "":
		return "done"
	case t.Action == "delete":
		return fmt.Sprintf("%s; %s", tasksCount(t.Tasks), t.settled())
	}
	return tasksCount(t.Tasks)
}

// ActOnTasks retries, archives or deletes one task, or every task of a queue in a state
// (those in bulk, page by page for delete). It refuses, touching nothing, to delete or archive
// a task of the expansion queue that carries on the expansion of a run not expanded yet, unless
// p.Force (ExpansionTaskError; forced, the runs are in ExpansionsStopped and its Detail). The
// recipients of deleted send tasks are settled in the ledger (SkipDeleted: skipped(deleted);
// for a claim a dead worker left, unknown(TASK_DELETED), or in an at-least-once run the task
// written again through p.Tasks; for a resend that never went, withdrawn), so their runs can
// still complete. It returns what it acted
// on and how many tasks and recipients, and keeps them in the audit log (p.Audit) with their
// Target and Detail. With an error the target is still set (except for a TaskStateError or an
// ExpansionTaskError, where nothing was touched), and for a delete the error
// says how many tasks were deleted and how many recipients marked before it (the counts say
// so too).
//
// No delete goes unaudited: tasks may be gone already when a delete fails (the ledger step
// comes after the delete, and --all deletes page by page), so a failed delete is kept in the
// log too, with what went wrong, which says what was deleted.
func ActOnTasks(ctx context.Context, p TaskActionParams) (TaskActed, error) {
	action := "task " + p.Action
	res := TaskActed{Action: p.Action, Queue: p.Queue}
	if p.All {
		res.State = p.State
	} else {
		res.Task = p.Task
	}
	stops, err := expansionsHeld(ctx, p)
	switch {
	case err != nil:
		return res, err
	case len(stops) > 0 && !p.Force:
		return res, ExpansionTaskError{Action: p.Action, Runs: stops}
	}
	res.ExpansionsStopped = stops
	err = actOnTasks(ctx, p, &res)
	switch {
	case errors.As(err, new(TaskStateError)):
		return res, err
	case err != nil && p.Action == "delete":
		return res, p.Audit.Failed(ctx, action, res.Target, err)
	case err != nil:
		return res, err
	}
	return res, p.Audit.Keep(ctx, action, res.Target, res.Detail())
}

// expansionsHeld returns the runs not expanded yet whose expansion tasks a delete or archive of
// the expansion queue would remove or archive (none for another action or queue): the task
// named, or every task in the state named, in any state but completed, whose run exists and has
// not read its whole audience. The first step of a run not created yet holds nothing.
func expansionsHeld(ctx context.Context, p TaskActionParams) ([]string, error) {
	if p.Queue != campaigns.ExpandQueue || (p.Action != "delete" && p.Action != "archive") {
		return nil, nil
	}
	var ts []*asynq.TaskInfo
	switch {
	case !p.All:
		t, err := p.Inspector.GetTaskInfo(p.Queue, p.Task)
		if err != nil {
			return nil, nil // the action itself says what is wrong
		}
		ts = append(ts, t)
	case TaskLists(p.Inspector)[p.State] != nil:
		list := TaskLists(p.Inspector)[p.State]
		for page := 1; ; page++ {
			got, err := list(p.Queue, asynq.PageSize(500), asynq.Page(page))
			if err != nil {
				return nil, nil
			}
			ts = append(ts, got...)
			if len(got) < 500 {
				break
			}
		}
	}
	var runs []string
	for _, t := range ts {
		if t.State == asynq.TaskStateCompleted || t.Type != campaigns.TypeExpand {
			continue
		}
		ep, err := campaigns.DecodeExpand(t.Payload)
		if err != nil || slices.Contains(runs, ep.Run) {
			continue
		}
		r, err := p.Ledger.GetRun(ctx, ep.Run)
		switch {
		case errors.Is(err, ledger.ErrRunNotFound):
		case err != nil:
			return nil, err
		case !r.Expanded:
			runs = append(runs, r.ID)
		}
	}
	return runs, nil
}

// actOnTasks is ActOnTasks without the audit log: it sets res's target and counts.
func actOnTasks(ctx context.Context, p TaskActionParams, res *TaskActed) error {
	in, q := p.Inspector, p.Queue
	if !p.All {
		id := p.Task
		res.Target = q + "/" + id
		var t *asynq.TaskInfo
		if p.Action == "delete" {
			info, err := in.GetTaskInfo(q, id)
			if err != nil {
				return err
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
			return err
		}
		res.Tasks = 1
		if t == nil {
			return nil
		}
		n, err := SkipDeleted(ctx, p.Ledger, in, p.Tasks, []*asynq.TaskInfo{t})
		res.count(n)
		if err != nil {
			return fmt.Errorf("task %s deleted, %s, then: %w", res.Target, n, err)
		}
		return nil
	}
	bulk := map[string]func(string) (int, error){
		"retry:scheduled": in.RunAllScheduledTasks, "retry:retry": in.RunAllRetryTasks, "retry:archived": in.RunAllArchivedTasks,
		"archive:pending": in.ArchiveAllPendingTasks, "archive:scheduled": in.ArchiveAllScheduledTasks, "archive:retry": in.ArchiveAllRetryTasks,
	}[p.Action+":"+p.State]
	if bulk == nil {
		if p.Action != "delete" {
			return TaskStateError{fmt.Sprintf("%s --all: --state must be one of %s", p.Action, map[string]string{
				"retry": "scheduled, retry, archived", "archive": "pending, scheduled, retry"}[p.Action])}
		}
		return deleteAll(ctx, in, p.Ledger, p.Tasks, q, p.State, res)
	}
	res.Target = q + " (" + p.State + ")"
	n, err := bulk(q)
	if err != nil {
		return err
	}
	res.Tasks = n
	return nil
}

// deleteAll deletes every task of a queue in a state, page by page, settling the recipients
// of each page's deleted send tasks (SkipDeleted) before the next page, so their runs can
// still complete and no continuation re-creates a task the operator deleted. When a delete
// or the ledger fails part way, the tasks deleted up to then still have their recipients
// marked, and the error (and res's counts) say how many of each there were.
func deleteAll(ctx context.Context, in *asynq.Inspector, l *ledger.Ledger, w asynqbatch.Writer, q, state string, res *TaskActed) error {
	list := TaskLists(in)[state]
	if list == nil || state == "active" {
		return TaskStateError{"delete --all: --state must be pending, scheduled, retry, archived or completed"}
	}
	target := q + " (" + state + ")"
	res.Target = target
	for {
		page, err := list(q, asynq.PageSize(500), asynq.Page(1))
		if err != nil {
			return fmt.Errorf("%s of %s deleted, %s, then: %w", tasksCount(res.Tasks), target, res.settled(), err)
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
		n, serr := SkipDeleted(ctx, l, in, w, deleted)
		res.Tasks += len(deleted)
		res.count(n)
		if err := errors.Join(derr, serr); err != nil {
			return fmt.Errorf("%s of %s deleted, %s, then: %w", tasksCount(res.Tasks), target, res.settled(), err)
		}
	}
	return nil
}

// tasksCount is "1 task" or "N tasks".
func tasksCount(n int) string { return words.Count(n, "task", "tasks") }
