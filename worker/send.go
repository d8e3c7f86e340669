package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/report"
)

// job is one send task on its way through the handler.
type job struct {
	p campaigns.SendPayload
	// msg is what the task sends (set by use); bound is msg when it is WindowBound.
	msg   Message
	bound WindowBound
	in    limits.Intention
	log   zerolog.Logger
	// claim and bk are set by reserveAndClaim.
	claim ledger.Claim
	bk    booking
	// token is the token of the task's claims (ledger.ClaimWith): a claim whose answer was
	// lost is given back by it.
	token string
	// suppressed: the claim said send, and its round trip found the recipient on the
	// suppression list for the message j sends (claimed).
	suppressed bool
	// refused is the code with which Connectly refused j's session message as outside the
	// customer service window, its fallback then sent under the same claim
	// (sendRefusedFallback): the outcome's history records it.
	refused string
}

// outcome is a request's answer, classified once.
type outcome struct {
	res connectly.SendResult
	err error
	d   connectly.Decision
}

// HandleSend is the handler of campaigns.TypeSend tasks: decode → gate (send hours,
// expiry, a paused run) → reserve the limits and claim the recipient → send → classify the
// answer once → settle. Each step that ends the task returns done and the task's result.
func (w *Worker) HandleSend(ctx context.Context, t *asynq.Task) error {
	j, err := w.decode(ctx, t)
	if err != nil {
		return err
	}
	if done, err := w.gate(ctx, j); done {
		return err
	}
	if done, err := w.reserveAndClaim(ctx, j); done {
		return err
	}
	if done, err := w.recordSending(ctx, j); done {
		return err
	}
	return w.settle(context.WithoutCancel(ctx), j, w.send(ctx, j))
}

// decode reads the task's payload into a job.
func (w *Worker) decode(ctx context.Context, t *asynq.Task) (*job, error) {
	p, err := campaigns.DecodeSend(t.Payload())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	j := &job{p: p, token: ledger.NewClaimToken()}
	category := categoryOf(ctx, p)
	msg, err := w.messageOf(&j.p, category)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	j.use(msg)
	// A message that is not WindowBound reads its recipient's service window in its
	// reservation, for its SentAs and the daily tier; a WindowBound one reads it before
	// (gateWindow). The reservation judges the window as of the latest its request can leave:
	// its slot, booked at most Limits.MaxWait ahead and afresh up to twice when the send comes
	// to it late (report.SendAhead with no place kept: the place is kept before the booking),
	// so a window that closes while the send waits for its slot is not counted open.
	j.in = limits.Intention{Sender: p.Sender, Run: p.Run, Recipient: p.To, Category: category, RunRate: p.Rate,
		ReadWindow: j.bound == nil, WindowMargin: w.windows.Margin() + report.SendAhead(0, w.cfg.Limits.MaxWait),
		WindowPolicy: w.windows.Policy()}
	j.log = w.log.With().Str(logx.KeyRun, p.Run).Str(logx.KeyRecipient, logx.Phone(p.To)).Logger()
	return j, nil
}

// gate applies what may end a send before any limit is reserved: its send hours and
// expiry (beforeSend), a WindowBound message's customer service window (gateWindow), and,
// while its sender's sends wait for their slots, a paused run (such
// a task would otherwise hold a place and book permits only to be held; a send that is not
// waiting learns it from its claim).
func (w *Worker) gate(ctx context.Context, j *job) (bool, error) {
	if handled, err := w.beforeSend(ctx, j.log, j.p); handled {
		return true, err
	}
	if handled, err := w.gateFollowup(ctx, j); handled {
		return true, err
	}
	if handled, err := w.gateLateFallback(ctx, j); handled {
		return true, err
	}
	if handled, err := w.gateWindow(ctx, j); handled {
		return true, err
	}
	if !w.pacing(j.p.Sender).Load() {
		return false, nil
	}
	ps, err := w.ledger.PauseState(ctx, j.p.Run)
	if err != nil {
		// Not known to be running: the task tries again later, as for any Redis failure.
		return true, w.unreachable(ctx, j.log, err)
	}
	if ps.Paused() {
		w.notePausedFollowup(ctx, j)
		return true, &HeldError{RetryAfter: w.cfg.HoldDelay, Reason: cmp.Or(ps.Reason, string(ps.Status))}
	}
	if ps.Status == ledger.RunCancelled || ps.Status == ledger.RunCompleted {
		return true, w.claimEnded(ctx, j)
	}
	return false, nil
}

// claimEnded ends a task of a run that has ended (cancelled, or completed: a leftover copy)
// without a rate slot: its claim, made at once, writes the entry skipped(cancelled) or finds
// it done. Booked first, as a send, each such task would wait for its slot, and the tasks of
// a cancelled run would drain at the sender's rate, holding up the runs queued behind them.
func (w *Worker) claimEnded(ctx context.Context, j *job) error {
	c, code, err := w.claim(ctx, j)
	j.claim = c
	if err != nil {
		w.unclaim(ctx, j.p, j.token, code)
		return w.unreachable(ctx, j.log, err)
	}
	if c.Verdict == ledger.VerdictSend {
		// A cancel is final and a completed run's entries are all terminal, so this does not
		// happen; should it, the claim goes back unused and the task comes again.
		w.unclaim(ctx, j.p, j.token, CodeClaimUnanswered)
		return w.unreachable(ctx, j.log, errors.New("the run read as ended, but its claim says send"))
	}
	return w.notSending(ctx, j)
}

// waitErrorCode is the code of a claim given back because a wait for the limits failed:
// SHUTDOWN when the task's context ended (the worker stops), else PACE_ERROR (Redis did not
// answer).
func waitErrorCode(ctx context.Context) string {
	if ctx.Err() != nil {
		return ledger.CodeShutdown
	}
	return ledger.CodePaceError
}

// reserveAndClaim reserves the send's limits and claims its recipient, and waits for the
// slot. It returns done when the task ends here (not claimed, nothing to send, the recipient
// on the suppression list, a limit refused it, too late for its slot to keep the pair
// interval) with the task's result; otherwise the request may leave now.
func (w *Worker) reserveAndClaim(ctx context.Context, j *job) (bool, error) {
	log := j.log
	c, b, err := w.paceAndClaim(ctx, j)
	j.claim, j.bk = c, b
	if errors.Is(err, errTooLate) {
		return true, w.lateForPair(j, c)
	}
	if err != nil {
		if c.Verdict == ledger.VerdictSend {
			// Claimed but the permit is unknown: give the claim back and try again later.
			if rerr := w.release(j.p, c.Attempts, ledger.ReleaseThrottle, waitErrorCode(ctx)); rerr != nil {
				log.Error().Err(rerr).Msg("could not give the claim back; the recipient may read as unknown")
			}
		}
		return true, w.unreachable(ctx, log, err)
	}
	if c.Verdict == ledger.VerdictSend && j.suppressed {
		// The person opted out of this message (after the send was planned, or expansion left
		// the check to the send): no request, whatever the limits.
		w.giveBack(ctx, b, b.spent())
		return true, w.skipSuppressed(j)
	}
	if b.Reason == limits.ReasonCapped && (c.Verdict == ledger.VerdictSend || c.Verdict == ledger.VerdictNotClaimed) {
		return true, w.skipCapped(ctx, log, j.p, c)
	}
	if c.Verdict == ledger.VerdictNotClaimed {
		return true, w.waitFor(ctx, log, j.p, b.Reservation)
	}
	if c.Verdict != ledger.VerdictSend {
		// Reserved but nothing will be sent (paused, done, cancelled): the permits go back, so
		// held tasks do not eat the rate limits and the person's pair slot stays free.
		w.giveBack(ctx, b, b.spent())
		return true, w.notSending(ctx, j)
	}
	if b.OK {
		if w.metrics != nil && !b.waited && b.Wait > 0 {
			w.metrics.PaceWait.Observe(b.Wait.Seconds())
		}
		b, err = w.onTime(ctx, b)
		if errors.Is(err, errTooLate) {
			return true, w.lateForPair(j, c)
		}
		if err != nil {
			if rerr := w.release(j.p, c.Attempts, ledger.ReleaseThrottle, waitErrorCode(ctx)); rerr != nil {
				return true, rerr
			}
			return true, w.unreachable(ctx, log, err)
		}
		j.bk = b
	}
	if !b.OK {
		code := ledger.CodeRateLimit
		if b.Reason == limits.ReasonTier {
			code = ledger.CodeDailyTier
		}
		if err := w.release(j.p, c.Attempts, ledger.ReleaseThrottle, code); err != nil {
			return true, err
		}
		return true, w.waitFor(ctx, log, j.p, b.Reservation)
	}
	return false, nil
}

// unreachable is the task's result when Redis failed on the way to a send: a shutdown ends
// the task; anything else is not the recipient's, so the task waits and tries again without
// spending asynq's retry budget (which would archive it, the entry still queued).
func (w *Worker) unreachable(ctx context.Context, log zerolog.Logger, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return err
	}
	log.Warn().Err(err).Msg("limits or ledger unreachable; the send will try again")
	return &ThrottledError{RetryAfter: w.cfg.ThrottleDelay, Reason: "limits or ledger unreachable"}
}

// notSending ends a task whose claim said there is nothing to send now.
func (w *Worker) notSending(ctx context.Context, j *job) error {
	c, log := j.claim, j.log
	switch c.Verdict {
	case ledger.VerdictPaused:
		w.notePausedFollowup(ctx, j)
		return &HeldError{RetryAfter: w.cfg.HoldDelay, Reason: c.Detail}
	case ledger.VerdictUnknown, ledger.VerdictFound:
		if c.Verdict == ledger.VerdictFound {
			// The run resends unknown recipients: settling it here keeps the payload for that.
			if _, err := w.settleFound(j.p, c); err != nil {
				return err
			}
		}
		w.count(j.p, metrics.OutcomeUnknown, "claim_found")
		log.Warn().Int(logx.KeyAttempt, c.Attempts).Msg("earlier attempt may have been sent; marked unknown (at-most-once)")
		return nil
	case ledger.VerdictCancelled:
		w.count(j.p, metrics.OutcomeSkipped, "cancelled")
		return nil
	case ledger.VerdictWithdrawn:
		// Retried after an answer that may follow a message that went out, in a run cancelled
		// since: unknown, as the ledger now says.
		w.count(j.p, metrics.OutcomeUnknown, ledger.SkipCancelled)
		log.Warn().Str("code", c.Detail).Msg("run cancelled before the retry, and an earlier attempt may have gone out: marked unknown")
		return nil
	case ledger.VerdictDone:
		if err := w.keepOptedOut(ctx, j.p, c.State, c.Detail); err != nil {
			return err
		}
		log.Debug().Str("state", string(c.State)).Msg("nothing to send")
		return nil
	default:
		log.Warn().Str("verdict", string(c.Verdict)).Msg("task has no run or ledger entry; dropped")
		return nil
	}
}

// send makes the request and classifies its answer, once (connectly.Table.Decide). The
// request runs to completion even when the worker shuts down: cutting it off would leave its
// outcome unknown.
func (w *Worker) send(ctx context.Context, j *job) outcome {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.RequestTimeout)
	began := time.Now()
	res, err := j.msg.Send(sctx, w.client)
	cancel()
	decide := w.table.Decide
	if j.bound == nil {
		// A template: no window governs it, so no window-closed type decides its answer.
		decide = w.table.DecideTemplate
	}
	d := decide(err)
	if w.metrics != nil {
		class := "ok"
		if err != nil {
			class = d.Class.String()
		}
		w.metrics.RequestDuration.WithLabelValues(class).Observe(time.Since(began).Seconds())
	}
	return outcome{res: res, err: err, d: d}
}

// categoryOf is the template category of a send: from the payload, else from its queue
// ("herald:marketing"), else marketing.
func categoryOf(ctx context.Context, p campaigns.SendPayload) string {
	if p.Category != "" {
		return p.Category
	}
	if q, ok := asynq.GetQueueName(ctx); ok {
		if c, found := strings.CutPrefix(q, campaigns.QueueFor("")); found && c != "" {
			return c
		}
	}
	return "marketing"
}
