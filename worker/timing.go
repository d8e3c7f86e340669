package worker

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/metrics"
)

// beforeSend applies a send's send hours and expiry before any rate limit or claim: a send
// past its campaign's expire_after (or whose send hours open only after it) is recorded
// skipped(expired) and its task ends; a send outside its send hours waits for their opening,
// without using an attempt. handled is true when the task must not be sent now; err is then
// the task's result.
//
// asynq may start a task scheduled for the send hours' opening up to a second early, and a
// retry or a throttle may move a send out of them, so the check runs on every attempt.
// HandleSend calls it right after decoding the payload, before any limit is reserved.
func (w *Worker) beforeSend(ctx context.Context, log zerolog.Logger, p campaigns.SendPayload) (handled bool, err error) {
	if p.SendHours == "" && p.Expires == 0 {
		return false, nil
	}
	expired, wait := campaigns.CheckTime(p, w.now())
	switch {
	case expired:
		now, err := w.skipEntry(context.WithoutCancel(ctx), p, "expired")
		if err != nil {
			return true, err
		}
		if w.countSkip(log, p, now, "expired") {
			log.Info().Msg("skipped: expired before it could be sent")
		}
		return true, nil
	case wait > 0:
		// Far waits come back a little early and look again: asynq adds up to a tenth of
		// the delay as jitter, which would otherwise land hours late.
		after := wait
		if wait > 10*time.Second {
			after = wait - wait/10
		}
		// Noted on the run, as a tier wait is, so run show says what its sends wait for.
		now := w.now()
		note := campaigns.SendHoursNote(now.Add(wait))
		if err := w.ledger.SetWaiting(context.WithoutCancel(ctx), p.Run, note, now.Add(after)); err != nil {
			log.Warn().Err(err).Msg("could not note the send-hours wait on the run")
		}
		return true, &ThrottledError{RetryAfter: after, Reason: "send window"}
	}
	return false, nil
}

// skipEntry marks a recipient skipped(reason) without a send, and returns the state this call
// moved it to ("" when none). A recipient an earlier attempt may have sent to is never
// skipped: one queued for a retry after a maybe-sent answer, or for its resend, becomes
// unknown (ledger.Skip), and an entry left submitting by an earlier attempt (its worker died
// after the claim) is settled the way a claim settles it: unknown under at-most-once (that
// attempt may have sent); under at-least-once claimed again, which records that attempt as
// maybe sent, and then unknown too; held (a HeldError) while its run is paused.
func (w *Worker) skipEntry(ctx context.Context, p campaigns.SendPayload, reason string) (ledger.State, error) {
	now, err := w.ledger.Skip(ctx, p.Address(), reason)
	if err != nil || now != "" {
		return now, err
	}
	now, verdict, err := w.skipLeftOver(ctx, p, reason)
	if err == nil && verdict == ledger.VerdictPaused {
		// Left submitting and its run paused: the claim holds it, and so does the task, which
		// would otherwise end with no task left to settle the entry.
		return "", &HeldError{RetryAfter: w.cfg.HoldDelay, Reason: "run paused"}
	}
	return now, err
}

// countSkip counts a skip that moved p's recipient to now (skipEntry's answer): a skip, or an
// unknown outcome when the recipient may hold an earlier attempt's message (logged so). It
// reports whether the recipient was skipped, for the caller's own log line.
func (w *Worker) countSkip(log zerolog.Logger, p campaigns.SendPayload, now ledger.State, reason string) bool {
	switch now {
	case ledger.Skipped:
		w.count(p, metrics.OutcomeSkipped, reason)
		return true
	case ledger.Unknown:
		w.count(p, metrics.OutcomeUnknown, reason)
		log.Warn().Str("reason", reason).Msg("not sent again, and an earlier attempt may have gone out: marked unknown")
	}
	return false
}

// skipLeftOver settles, as skipEntry does, an entry that a skip left as it was: one left
// submitting by an earlier attempt is claimed, and settled the way its claim says (unknown:
// that attempt may have sent; under at-least-once the claim records it so, and the skip then
// withdraws the retry). It
// returns the state this call moved the entry to ("" when none) and the verdict of its claim
// ("" when it made none).
func (w *Worker) skipLeftOver(ctx context.Context, p campaigns.SendPayload, reason string) (ledger.State, ledger.Verdict, error) {
	e, found, err := w.ledger.Entry(ctx, p.Address())
	if err != nil || !found {
		return "", "", err
	}
	if e.State != ledger.Submitting {
		// An opt-out recorded while the suppression list could not be written: a retry of its
		// task that ends here, before its claim, writes it as notSending would.
		return "", "", w.keepOptedOut(ctx, p, e.State, e.Code)
	}
	if e.State != ledger.Submitting {
		return "", "", nil
	}
	token := ledger.NewClaimToken()
	c, err := w.ledger.ClaimWith(ctx, p.Address(), ledger.Delivery(p.Delivery), token)
	if err != nil {
		w.unclaim(ctx, p, token, CodeClaimUnanswered)
		return "", "", err
	}
	switch c.Verdict {
	case ledger.VerdictSend:
		r, err := w.finishRetrying(p, ledger.Outcome{State: ledger.Skipped, Code: reason, Attempt: c.Attempts})
		return r.Moved(ledger.Skipped), c.Verdict, err
	case ledger.VerdictUnknown:
		return ledger.Unknown, c.Verdict, nil
	case ledger.VerdictFound:
		ok, err := w.settleFound(p, c)
		if !ok {
			return "", c.Verdict, err
		}
		return ledger.Unknown, c.Verdict, err
	}
	return "", c.Verdict, nil
}
