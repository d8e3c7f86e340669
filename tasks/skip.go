package tasks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
)

// Settled counts what SkipDeleted did to the recipients of deleted send tasks.
type Settled struct {
	// Skipped recipients were planned or queued: now skipped(deleted).
	Skipped int
	// Unknown recipients were submitting under a claim no task is left to settle (the
	// deleted task's worker died mid-request): now unknown(TASK_DELETED), as their message
	// may have gone.
	Unknown int
}

// add counts one recipient that moved to state.
func (s *Settled) add(state ledger.State) {
	switch state {
	case ledger.Skipped:
		s.Skipped++
	case ledger.Unknown:
		s.Unknown++
	}
}

// String says what the counts are, as the audit log and the errors of ActOnTasks keep them.
func (s Settled) String() string {
	out := fmt.Sprintf("%d recipients skipped(deleted) in the ledger", s.Skipped)
	if s.Unknown > 0 {
		out += fmt.Sprintf(", %d unknown(%s): a worker died sending to them, so the message may have gone",
			s.Unknown, ledger.CodeTaskDeleted)
	}
	return out
}

// SkipDeleted settles the recipients of deleted send tasks in the ledger, so their runs can
// still complete, and returns how many moved (ledger.Ledger.TaskDeleted): a planned or queued
// recipient becomes skipped(deleted); a submitting one, whose claim a worker left when it
// died mid-request, and a queued one whose resend was released (its first message may have
// gone), becomes unknown(TASK_DELETED) once no task of the recipient is left that could
// send or settle it (in tasks: its send task and its resend, in any state but
// completed, in any of Herald's send queues), and is left to that task otherwise (a live
// worker may be sending it). in looks for those tasks. Tasks that are not send tasks are
// passed over; the first error is returned, after the other tasks were tried.
func SkipDeleted(ctx context.Context, l *ledger.Ledger, in *asynq.Inspector, tasks []*asynq.TaskInfo) (Settled, error) {
	var n Settled
	var first error
	for _, t := range tasks {
		if t.Type != campaigns.TypeSend {
			continue
		}
		p, err := campaigns.DecodeSend(t.Payload)
		if err != nil {
			continue
		}
		now, err := settleDeleted(ctx, l, in, t, p)
		if err != nil {
			if first == nil {
				first = fmt.Errorf("task %s: settle its recipient: %w", t.ID, err)
			}
			continue
		}
		n.add(now)
	}
	return n, first
}

// settleDeleted settles the recipient of one deleted send task and returns the state it moved
// to ("" when it did not move).
func settleDeleted(ctx context.Context, l *ledger.Ledger, in *asynq.Inspector, t *asynq.TaskInfo, p campaigns.SendPayload) (ledger.State, error) {
	a := p.Address()
	prior, now, err := l.TaskDeleted(ctx, a, false)
	if err != nil || now != "" || (prior != ledger.Submitting && prior != ledger.Queued) {
		return now, err
	}
	held, err := claimHeld(ctx, l, in, t, p)
	if err != nil || held {
		return "", err
	}
	_, now, err = l.TaskDeleted(ctx, a, true)
	return now, err
}

// claimHeld reports whether a task of p's recipient other than the deleted one is left that
// may still settle its claim (TaskLeft), looking in the deleted task's queue first.
func claimHeld(ctx context.Context, l *ledger.Ledger, in *asynq.Inspector, deleted *asynq.TaskInfo, p campaigns.SendPayload) (bool, error) {
	ids, err := l.TaskIDs(ctx)
	if err != nil {
		return false, err
	}
	return TaskLeft(ctx, in, ids, p.Run, p.To, deleted)
}

// TaskLeft reports whether a task of recipient to in run is left that may still send it or
// settle its claim: its send task or its resend (ledger.TaskIDs.ResendTaskID), in any of
// Herald's send queues, in any state but completed (an active one is a worker sending it now;
// a pending, scheduled or retry one claims it when it runs, and settles a dead worker's claim
// as the delivery policy says; an archived one does when an operator retries it, and holds the
// run open until then, as an archived task does). Task except, when not nil, is passed over
// (a task being deleted), and its queue looked in first (a TaskInfo with only a queue names
// the queue to look in first, and passes no task over).
func TaskLeft(ctx context.Context, in *asynq.Inspector, ids ledger.TaskIDs, run, to string, except *asynq.TaskInfo) (bool, error) {
	own := []string{ids.TaskID(run, to), ids.ResendTaskID(run, to)}
	var queues []string
	if except != nil {
		queues = append(queues, except.Queue)
	}
	for _, q := range slices.Sorted(maps.Keys(campaigns.Queues)) {
		if except == nil || q != except.Queue {
			queues = append(queues, q)
		}
	}
	for _, q := range queues {
		for _, id := range own {
			if except != nil && q == except.Queue && id == except.ID {
				continue
			}
			info, err := in.GetTaskInfo(q, id)
			switch {
			case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
				continue
			case err != nil:
				return false, fmt.Errorf("look for another task of its recipient: %w", err)
			}
			if info.State != asynq.TaskStateCompleted {
				return true, nil
			}
		}
	}
	return false, nil
}
