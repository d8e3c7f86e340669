package tasks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/words"
)

// Settled counts what SkipDeleted did to the recipients of deleted send tasks.
type Settled struct {
	// Skipped recipients were planned or queued: now skipped(deleted).
	Skipped int
	// Unknown recipients were submitting under a claim no task is left to settle (the
	// deleted task's worker died mid-request), in an at-most-once run (or a cancelled one):
	// now unknown(TASK_DELETED), as their message may have gone.
	Unknown int
	// Requeued recipients were the same in an at-least-once run: their send task was written
	// again under its id, and its claim sends again (the message may have gone: a possible
	// duplicate, the price at-least-once pays to send again rather than leave them unknown).
	Requeued int
	// Withdrawn recipients were queued for their one resend, which never made a request (it
	// waited: held by a paused run, or for a worker), with no task left to send it: the
	// resend is withdrawn, and they are unknown again with the code they had (history
	// resend_withdrawn RESEND_DELETED), as their first message may have gone.
	Withdrawn int
	// RetriesWithdrawn recipients were queued for a retry after an answer that may follow a
	// message that went out (at-least-once), with no task left to send it: the retry is
	// withdrawn, and they are unknown with that answer's code (history retry_withdrawn
	// deleted), never skipped, as that message may have gone.
	RetriesWithdrawn int
}

// settled is what SkipDeleted did to one recipient.
type settled int

const (
	settledNone settled = iota
	settledSkipped
	settledUnknown
	settledRequeued
	settledWithdrawn
	settledRetryWithdrawn
)

// add counts one recipient settled so.
func (s *Settled) add(how settled) {
	switch how {
	case settledSkipped:
		s.Skipped++
	case settledUnknown:
		s.Unknown++
	case settledRequeued:
		s.Requeued++
	case settledWithdrawn:
		s.Withdrawn++
	case settledRetryWithdrawn:
		s.RetriesWithdrawn++
	}
}

// String says what the counts are, as the audit log and the errors of ActOnTasks keep them.
func (s Settled) String() string {
	out := words.Count(s.Skipped, "recipient", "recipients") + " skipped(deleted) in the ledger"
	if s.Unknown > 0 {
		out += fmt.Sprintf(", %d unknown(%s): a worker died sending to them, so the message may have gone",
			s.Unknown, ledger.CodeTaskDeleted)
	}
	if s.Withdrawn > 0 {
		out += fmt.Sprintf(", %s withdrawn: never sent (held by a paused run, or waiting for a worker), so unknown again with the code they had",
			words.Count(s.Withdrawn, "resend", "resends"))
	}
	if s.RetriesWithdrawn > 0 {
		out += fmt.Sprintf(", %s withdrawn: retried after an answer that may have followed a message that went out, never sent again, so unknown with that answer's code",
			words.Count(s.RetriesWithdrawn, "retry", "retries"))
	}
	if s.Requeued > 0 {
		out += fmt.Sprintf(", %d sent again: a worker died sending to them, and their run is at-least-once, so their task was written again",
			s.Requeued)
	}
	return out
}

// SkipDeleted settles the recipients of deleted send tasks in the ledger, so their runs can
// still complete, and returns how many moved (ledger.Ledger.TaskDeleted): a planned or queued
// recipient becomes skipped(deleted). A submitting one, whose claim a worker left when it died
// mid-request, and a queued one whose resend was released (its first message may have gone),
// is left to another task of the recipient while one is left that could send or settle it (in
// tasks: its send task and its resend, in any state but completed, in any of Herald's send
// queues: a live worker may be sending it). Once none is, the queued one has its resend, which
// never made a request, withdrawn (unknown again with the code it had), and the submitting one
// becomes unknown(TASK_DELETED), unless it is a claim of an at-least-once run not cancelled:
// then the deleted task is written again, as it was, under its id, through w (the one task
// writer), and its claim sends it again, as after a dead worker's task is put back (sent again
// rather than left unknown, under at-least-once). in
// looks for those tasks. Tasks that are not send tasks are passed over; the first error is
// returned, after the other tasks were tried.
func SkipDeleted(ctx context.Context, l *ledger.Ledger, in *asynq.Inspector, w asynqbatch.Writer, tasks []*asynq.TaskInfo) (Settled, error) {
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
		how, err := settleDeleted(ctx, l, in, w, t, p)
		if err != nil {
			if first == nil {
				first = fmt.Errorf("task %s: settle its recipient: %w", t.ID, err)
			}
			continue
		}
		n.add(how)
	}
	return n, first
}

// settleDeleted settles the recipient of one deleted send task and says how.
func settleDeleted(ctx context.Context, l *ledger.Ledger, in *asynq.Inspector, w asynqbatch.Writer, t *asynq.TaskInfo, p campaigns.SendPayload) (settled, error) {
	a := p.Address()
	prior, now, err := l.TaskDeleted(ctx, a, false)
	if err != nil || now != "" || (prior != ledger.Submitting && prior != ledger.Queued) {
		return settledAs(ctx, l, a, prior, now, err)
	}
	held, err := claimHeld(ctx, l, in, t, p)
	if err != nil || held {
		return settledNone, err
	}
	if prior == ledger.Submitting {
		run, err := l.GetRun(ctx, p.Run)
		if err != nil {
			return settledNone, err
		}
		if run.Delivery == ledger.AtLeastOnce && run.Status != ledger.RunCancelled {
			return writeAgain(ctx, w, t)
		}
	}
	prior, now, err = l.TaskDeleted(ctx, a, true)
	return settledAs(ctx, l, a, prior, now, err)
}

// settledAs is how recipient a, which TaskDeleted moved from prior to now (err its error),
// was settled: a queued one made unknown had its resend withdrawn, or its retry after a
// maybe-sent answer (its history's last event says which).
func settledAs(ctx context.Context, l *ledger.Ledger, a ledger.Address, prior, now ledger.State, err error) (settled, error) {
	switch {
	case err != nil:
		return settledNone, err
	case now == ledger.Skipped:
		return settledSkipped, nil
	case now == ledger.Unknown && prior == ledger.Queued:
		h, err := l.History(ctx, a)
		if err == nil && len(h) > 0 && h[len(h)-1].Outcome == ledger.EventRetryWithdrawn {
			return settledRetryWithdrawn, nil
		}
		// Unread, the history leaves it counted as the withdrawn resend it most likely is.
		return settledWithdrawn, nil
	case now == ledger.Unknown:
		return settledUnknown, nil
	}
	return settledNone, nil
}

// writeAgain writes deleted task t again as it was (type, payload, id, queue and options),
// through the one task writer, to run at once.
func writeAgain(ctx context.Context, w asynqbatch.Writer, t *asynq.TaskInfo) (settled, error) {
	if w == nil {
		return settledNone, fmt.Errorf("no task writer to write it again")
	}
	created, err := w.Write(ctx, []asynqbatch.Task{{Type: t.Type, Payload: t.Payload, ID: t.ID, Queue: t.Queue,
		MaxRetry: t.MaxRetry, Timeout: t.Timeout, Retention: t.Retention}}, false)
	if err != nil {
		return settledNone, fmt.Errorf("write it again: %w", err)
	}
	if len(created) == 1 && created[0] {
		return settledRequeued, nil
	}
	// Its id was taken meanwhile: that task sends it.
	return settledNone, nil
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
