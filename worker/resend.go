package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/tick"
)

// The one resend of unknown recipients, for runs of campaigns with unknown.resend_after.
//
// Every worker process sweeps every ResendSweepEvery: for each run that resends, it leases the
// unknown recipients whose quiet period has passed (ledger.LeaseUnknown, atomic, so two
// workers never take the same one), releases each to queued if it is still unknown with no
// delivery event and was never resent (ledger.ReleaseForResend), enqueues its resend task
// under its own id (ledger.TaskIDs.ResendTaskID), and then takes it out of the set
// (ledger.ResendEnqueued). A worker that dies between the release and the enqueue leaves the
// recipient leased; once the lease ends another sweep finds it queued for its resend and
// enqueues the same task id. The send handler needs nothing special: the entry is queued, so
// the resend task claims it like any other, and whichever of the resend and a late
// redelivery of the original task claims first sends, once.

// resendBatch is how many due recipients of a run one lease takes; resendRounds bounds the
// leases per run and sweep, so one sweep stays short whatever the backlog.
const (
	resendBatch  = 100
	resendRounds = 10
)

// SweepUnknown resends, once, the unknown recipients whose quiet period has passed, in every
// run that resends unknown recipients. It returns how many resend tasks it enqueued. Safe to
// run from any number of workers at once.
func (w *Worker) SweepUnknown(ctx context.Context) (int, error) {
	runs, err := w.ledger.ResendRuns(ctx)
	if err != nil {
		return 0, err
	}
	sent := 0
	var errs []error
	for _, runID := range runs {
		n, err := w.sweepRun(ctx, runID)
		sent += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return sent, errors.Join(errs...)
}

// sweepRun resends the due unknown recipients of one run.
func (w *Worker) sweepRun(ctx context.Context, runID string) (int, error) {
	queue, sent := "", 0
	for range resendRounds {
		members, gone, err := w.ledger.LeaseUnknown(ctx, runID, resendBatch, w.cfg.ResendLease)
		if err != nil || gone || len(members) == 0 {
			return sent, err
		}
		if queue == "" {
			run, err := w.ledger.GetRun(ctx, runID)
			if err != nil {
				return sent, err // the lease runs out and the members come back
			}
			queue = run.Queue
		}
		for _, m := range members {
			ok, err := w.resendOne(ctx, runID, queue, m)
			if err != nil {
				// Left leased: it comes due again when the lease ends. The ledger's errors name
				// the recipient masked; the text is masked again, as every error the worker logs.
				w.log.Warn().Str("error", logx.MaskDigits(err.Error())).Str(logx.KeyRun, runID).
					Msg("could not resend an unknown recipient; trying again after the lease")
				continue
			}
			if ok {
				sent++
			}
		}
		if len(members) < resendBatch {
			break
		}
	}
	return sent, nil
}

// resendOne releases one leased member and enqueues its resend task; it reports whether a
// task was enqueued (or found already there).
func (w *Worker) resendOne(ctx context.Context, runID, queue, member string) (bool, error) {
	if parent, _, ok := ledger.FollowupOf(runID); ok {
		// A follow-up of a cancelled run is not resent: its entry stays unknown (a later
		// delivery event settles it), as the cancelled run's own unknown recipients do.
		r, err := w.ledger.GetRun(ctx, parent)
		if err != nil && !errors.Is(err, ledger.ErrRunNotFound) {
			return false, fmt.Errorf("resend in run %s: %w", runID, err)
		}
		if err == nil && r.Status == ledger.RunCancelled {
			return false, w.ledger.ForgoResend(ctx, runID, member)
		}
	}
	v, payload, err := w.ledger.ReleaseForResend(ctx, runID, member)
	if err != nil || v != ledger.ResendEnqueue {
		return false, err
	}
	p, err := campaigns.DecodeSend(payload)
	if err != nil {
		return false, fmt.Errorf("resend in run %s: %w", runID, err)
	}
	if queue == "" {
		queue = campaigns.QueueFor(p.Category)
	}
	// The task may exist from an earlier sweep that died before ResendEnqueued: the writer
	// leaves it alone, as an enqueue of a taken task id would.
	ids, err := w.ledger.TaskIDs(ctx)
	if err != nil {
		return false, fmt.Errorf("resend in run %s: %w", runID, err)
	}
	o := w.cfg.ResendTask
	t := asynqbatch.Task{Type: campaigns.TypeSend, Payload: payload, ID: ids.ResendTaskID(p.Run, p.To), Queue: queue,
		MaxRetry: o.MaxRetry, Timeout: o.Timeout, Retention: o.Retention}
	if _, err := w.tasks.Write(ctx, []asynqbatch.Task{t}, false); err != nil {
		return false, fmt.Errorf("resend in run %s: enqueue: %w", runID, err)
	}
	if err := w.ledger.ResendEnqueued(ctx, runID, member); err != nil {
		// The task exists; the member comes due again, and the next sweep finds the task.
		return false, err
	}
	w.log.Info().Str(logx.KeyRun, runID).Str(logx.KeyRecipient, logx.Phone(p.To)).
		Msg("unknown recipient had no delivery event in the quiet period; sent once more")
	return true, nil
}

// sweepLoop runs SweepUnknown every ResendSweepEvery until ctx ends.
func (w *Worker) sweepLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	tick.Every(ctx, w.cfg.ResendSweepEvery, func(ctx context.Context) {
		if n, err := w.SweepUnknown(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn().Str("error", logx.MaskDigits(err.Error())).Msg("sweep of unknown recipients to resend failed; trying again")
		} else if n > 0 {
			w.log.Info().Int("resent", n).Msg("unknown recipients sent once more")
		}
	})
}

// settleFound settles an earlier attempt's claim found by this task, in a run that resends
// unknown recipients: unknown, keeping the task's payload for the resend. It reports whether
// this call settled it.
func (w *Worker) settleFound(p campaigns.SendPayload, c ledger.Claim) (bool, error) {
	r, err := w.finishRetrying(p, ledger.Outcome{State: ledger.Unknown, Code: ledger.CodeClaimFound,
		Attempt: c.Attempts, Payload: campaigns.EncodeSend(p)})
	return r.Applied, err
}
