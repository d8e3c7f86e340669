package worker

import (
	"cmp"
	"context"
	"fmt"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
)

// Follow-ups (on_reply) are sends of a follow-up run (ledger.FollowupRun: "RUN~RULE"),
// created by the webhook receiver; they go through this same handler. Two things differ:
// the run they follow steers them (gateFollowup), and sends of a campaign with on_reply are
// recorded for the join of plain-text replies and for the columns follow-ups read
// (OnSending).

// OnSending installs f, called for each claimed send just before its request (cmd/herald
// installs conversation.SendRecorder: it records the sends of campaigns with on_reply in the
// index of recent sends, and stores the audience columns the payload carries for follow-ups,
// SendPayload.ReplyCols, for the recipient in the run).
// Before, not after the answer: a customer may reply within milliseconds of the message,
// before the worker has recorded the provider's answer, and the reply must find the run.
// When f fails the send makes no request: its permits and claim are given back (the claim
// under CodeSendUnrecorded) and the task tries again later, as when Redis fails on the way
// to a send. f must not block for long. Call it before Start.
func (w *Worker) OnSending(f func(ctx context.Context, p campaigns.SendPayload) error) { w.sending = f }

// CodeSendUnrecorded is the code of a claim given back because OnSending failed: the send
// was not recorded for the replies to it, so it was not made.
const CodeSendUnrecorded = ledger.CodeSendUnrecorded

// recordSending calls the OnSending function for j, if any. On its failure it gives j's
// booking and claim back and returns done with the task's result.
func (w *Worker) recordSending(ctx context.Context, j *job) (bool, error) {
	if w.sending == nil {
		return false, nil
	}
	err := w.sending(ctx, j.p)
	if err == nil {
		return false, nil
	}
	w.giveBack(ctx, j.bk, j.bk.spent())
	w.unclaim(ctx, j.p, j.token, CodeSendUnrecorded)
	return true, w.unreachable(ctx, j.log, fmt.Errorf("recording the send for replies: %w", err))
}

// notePausedFollowup lists j's run among the paused follow-up runs when j is a follow-up held
// because its own run is paused (ledger.NotePausedFollowup): a listing lost to a crash between
// a pause and its note, or to a race with a resume, comes back within one hold, so `run show`
// and `run resume` of the run it follows find it. Its failure is logged: the hold goes on.
func (w *Worker) notePausedFollowup(ctx context.Context, j *job) {
	if _, _, ok := ledger.FollowupOf(j.p.Run); !ok {
		return
	}
	if err := w.ledger.NotePausedFollowup(context.WithoutCancel(ctx), j.p.Run); err != nil {
		j.log.Warn().Err(err).Msg("could not list the paused follow-up run")
	}
}

// gateFollowup holds a follow-up while the run it follows is paused and skips it (cancelled)
// once that run is cancelled: pausing or cancelling a run steers its follow-ups too. Once the
// run has completed, an operator's pause or cancel of its follow-ups (ledger.PauseFollowups,
// ledger.CancelFollowups) does the same, the run's own status left completed. A follow-up
// queued for its one resend (it was unknown) is not skipped but stays unknown, its resend
// withdrawn (ledger.Skip with SkipCancelled): its first message may have gone.
func (w *Worker) gateFollowup(ctx context.Context, j *job) (bool, error) {
	parent, _, ok := ledger.FollowupOf(j.p.Run)
	if !ok {
		return false, nil
	}
	fs, err := w.ledger.FollowupsState(ctx, parent)
	if err != nil {
		return true, w.unreachable(ctx, j.log, err)
	}
	if held, reason := fs.Held(); held {
		return true, &HeldError{RetryAfter: w.cfg.HoldDelay, Reason: cmp.Or(reason, "run paused")}
	}
	if fs.Cancelled() {
		now, err := w.skipEntry(context.WithoutCancel(ctx), j.p, ledger.SkipCancelled)
		if err != nil {
			return true, err
		}
		w.countSkip(j.log, j.p, now, ledger.SkipCancelled)
		return true, nil
	}
	return false, nil
}
