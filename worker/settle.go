package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/logx"
)

// adaptiveTrigger reports whether an answer says the sender goes too fast, so its rate backs
// off: a throttle whose key is one of AdaptiveCodes. The key is the classified one: a 429 is
// HTTP_429 unless its body names a throttle code (then that code: 130429 backs the rate off,
// the pair limit's 131056 does not), whatever catch-all code it carries (Connectly's error
// body always has one, ERROR_CODE_UNSPECIFIED when nothing is more specific).
func (w *Worker) adaptiveTrigger(d connectly.Decision) bool {
	return w.cfg.Limits.Adapts() && d.Class == connectly.ClassThrottle && w.adapt[d.Key]
}

// waitFor answers a send the limits refused for now: a throttle, which uses no attempt and
// brings the task back when a permit (or room in the daily tier) should be free. A tier wait
// is noted on the run, so `herald run show` says what it waits for.
func (w *Worker) waitFor(ctx context.Context, log zerolog.Logger, p campaigns.SendPayload, r limits.Reservation) error {
	if r.Reason != limits.ReasonTier {
		if w.metrics != nil {
			w.metrics.LimitWaits.WithLabelValues(limits.ReasonRate).Inc()
		}
		return &ThrottledError{RetryAfter: r.Wait, Reason: "rate limit"}
	}
	after := min(r.Wait, w.cfg.TierRecheck)
	now := w.now()
	note := fmt.Sprintf("daily tier: %d unique recipients in %s used; room again at %s", w.cfg.Limits.DailyTier,
		w.cfg.Limits.TierPeriod, now.Add(r.Wait).UTC().Format(time.RFC3339))
	if err := w.ledger.SetWaiting(context.WithoutCancel(ctx), p.Run, note, now.Add(after)); err != nil {
		log.Warn().Err(err).Msg("could not note the tier wait on the run")
	}
	if w.metrics != nil {
		w.metrics.LimitWaits.WithLabelValues(limits.ReasonTier).Inc()
	}
	log.Debug().Dur("retry_in", after).Msg("waiting for the daily tier")
	return &ThrottledError{RetryAfter: after, Reason: "daily tier"}
}

// skipCapped settles a send the frequency cap refused: the recipient had enough messages of
// this category within the cap's period, so the entry becomes skipped(capped); or unknown
// when an earlier attempt may have gone out (a retry after a maybe-sent answer: the ledger
// withdraws the retry, FinishResult.Withdrawn; a resend: it withdraws the resend, unknown as
// before and not counted again, FinishResult.ResendWithdrawn).
func (w *Worker) skipCapped(ctx context.Context, log zerolog.Logger, p campaigns.SendPayload, c ledger.Claim) error {
	var now ledger.State
	if c.Verdict == ledger.VerdictSend {
		r, err := w.finishRetrying(p, ledger.Outcome{State: ledger.Skipped, Code: limits.ReasonCapped, Attempt: c.Attempts})
		if err != nil {
			return err
		}
		now = r.Moved(ledger.Skipped)
	} else {
		var err error
		if now, err = w.skipEntry(context.WithoutCancel(ctx), p, limits.ReasonCapped); err != nil {
			return err
		}
	}
	if w.countSkip(log, p, now, limits.ReasonCapped) {
		log.Info().Msg("skipped: frequency cap reached")
	}
	return nil
}

// holdFor holds the sends a Retry-After covers (Config.RetryAfterHolds) for after: until then
// their reservations are refused with the wait, so none of them makes a request Connectly
// asked not to get. The refused send itself comes back after the wait whatever this does.
func (w *Worker) holdFor(ctx context.Context, log zerolog.Logger, p campaigns.SendPayload, after time.Duration) {
	scope := w.cfg.RetryAfterHolds
	key, left, err := w.limits.Hold(ctx, scope, senderOf(p), after)
	switch {
	case err != nil:
		log.Warn().Err(err).Str("holds", string(scope)).Msg("could not hold sends for Connectly's Retry-After; only this send waits")
	case key != "":
		log.Warn().Str("holds", string(scope)).Str("sender", logx.Phone(senderOf(p))).Dur("wait", left).
			Msg("Connectly asked to wait (Retry-After): sends held")
	}
}

// release gives a claim back without a send (the request never went out).
func (w *Worker) release(p campaigns.SendPayload, attempt int, mode ledger.ReleaseMode, code string) error {
	o := ledger.Outcome{State: ledger.Queued, Code: code, Mode: mode, Attempt: attempt}
	r, err := w.finishRetrying(p, o)
	if err == nil && r.Applied {
		w.count(p, outcomeLabel(o), "pacing")
	}
	return err
}

// requeue gives a claim back without a send, as release does, but counts no outcome: the
// same task goes on to send (a paced send that came to its slot late after its claim and
// waits in place for a fresh one), so nothing was refused or throttled.
func (w *Worker) requeue(p campaigns.SendPayload, attempt int, code string) error {
	_, err := w.finishRetrying(p, ledger.Outcome{State: ledger.Queued, Code: code, Mode: ledger.ReleaseRequeue, Attempt: attempt})
	return err
}

// settleRetries are the waits between attempts to record an outcome: doubling from 50 ms to
// 1 s, about 10.5 s in all. A Sentinel failover takes about 2 s to promote a replica
// (measured: 1.6-2.4 s after the master was killed, docs/benchmarks.md); an outcome given up
// sooner leaves the claim behind, and a send that never went out then reads as unknown.
var settleRetries = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second, time.Second, time.Second,
	time.Second, time.Second, time.Second, time.Second, time.Second}

// finishRetrying records an outcome, retrying a failing Redis call through settleRetries: an
// outcome that is not recorded leaves the claim behind, which later reads as "maybe sent". It
// runs on its own context so a shutdown does not cut it short.
func (w *Worker) finishRetrying(p campaigns.SendPayload, o ledger.Outcome) (ledger.FinishResult, error) {
	var r ledger.FinishResult
	err := w.retrying(time.Time{}, func(ctx context.Context) error {
		var err error
		r, err = w.ledger.Finish(ctx, p.Address(), o)
		return err
	})
	return r, err
}

// retrying calls f until it succeeds, waiting settleRetries between calls, each call on its
// own context of at most 5 s (a shutdown does not cut it short). With a deadline set, no wait
// goes past it: the call that would come after the deadline is not made. The deadline is a
// context's (the task's), so it is read on the process's clock, as the context itself is.
func (w *Worker) retrying(deadline time.Time, f func(ctx context.Context) error) error {
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := f(ctx)
		cancel()
		if err == nil || try == len(settleRetries) {
			return err
		}
		if !deadline.IsZero() && time.Now().Add(settleRetries[try]).After(deadline) {
			return err
		}
		_ = w.sleep(context.Background(), settleRetries[try])
	}
}

// CodeClaimUnanswered is the code of a claim given back because its answer never came.
const CodeClaimUnanswered = ledger.CodeClaimUnanswered

// unclaim gives back a claim whose answer never came (the claim call returned an error: the
// connection reset, a failover, a read timeout): the script may have run in Redis all the
// same, and a claim left behind would make the next attempt settle the recipient unknown
// although no request went out. The claim goes back by its token (ledger.Outcome.Token), so
// only while the entry still holds it, submitting with no request made; a claim that did not
// run, or ran and found something else (an earlier attempt's claim, a paused run), is left as
// it is. Its attempt is given back and nothing is counted (ledger.ReleaseRequeue). The give
// back is retried as an outcome is (settleRetries), but not past the task's deadline.
//
// A worker that dies (or gives up) between the lost answer and the give-back leaves the claim
// behind: the next attempt finds it and, under at-most-once, settles the recipient unknown
// (CLAIM_FOUND), as for any claim a dead worker leaves; nothing then tells it from a claim
// whose request went out.
//
// code is CodeClaimUnanswered for a lost answer; a claim that said send while the
// suppression list could not be read in its round trip goes back the same way, under
// CodeSuppressionUnread, and one whose send could not be recorded for replies under
// CodeSendUnrecorded.
func (w *Worker) unclaim(ctx context.Context, p campaigns.SendPayload, token, code string) {
	deadline, _ := ctx.Deadline()
	o := ledger.Outcome{State: ledger.Queued, Mode: ledger.ReleaseRequeue, Code: code, Token: token}
	var r ledger.FinishResult
	err := w.retrying(deadline, func(ctx context.Context) error {
		var err error
		r, err = w.ledger.Finish(ctx, p.Address(), o)
		return err
	})
	log := w.log.With().Str(logx.KeyRun, p.Run).Str(logx.KeyRecipient, logx.Phone(p.To)).Logger()
	switch {
	case err != nil:
		log.Error().Err(err).Str(logx.KeyCode, code).Msg("a claim could not be given back; the recipient may read as unknown")
	case r.Applied && code == CodeSuppressionUnread:
		log.Warn().Msg("the suppression list could not be read; the claim was given back unused")
	case r.Applied && code == CodeSendUnrecorded:
		log.Warn().Msg("the send could not be recorded for replies; the claim was given back unused")
	case r.Applied:
		log.Warn().Msg("the claim's answer was lost; the claim was given back unused")
	}
}

// suppressRetrying puts p.To on the suppression list for code (for what the code opted out
// of, ledger.ScopeOf), retrying a failing Redis call as an outcome is (settleRetries).
// Suppressing again is harmless: an entry only widens.
func (w *Worker) suppressRetrying(p campaigns.SendPayload, code string) error {
	return w.retrying(time.Time{}, func(ctx context.Context) error {
		return w.ledger.Suppress(ctx, p.To, code)
	})
}

// keepSuppressed puts p.To on the suppression list for code unless it is there already for as
// much (its entry is kept): a task found its entry ended by an opt-out (keepOptedOut), whose
// suppression may not have been written (the list could not be reached then, see settle).
func (w *Worker) keepSuppressed(ctx context.Context, p campaigns.SendPayload, code string) error {
	ss, err := w.ledger.Suppressions(ctx, []string{p.To})
	if err != nil || ss[0].Covers(ledger.ScopeOf(code)) {
		return err
	}
	if err := w.suppressRetrying(p, code); err != nil {
		return err
	}
	w.log.Info().Str(logx.KeyRun, p.Run).Str(logx.KeyRecipient, logx.Phone(p.To)).Str("scope", string(ledger.ScopeOf(code))).
		Msg("opted out earlier: added to the suppression list now")
	return nil
}

// optOutCode reports whether a recorded code is one of an answer that says the person opted
// out (connectly.Rule.OptOut).
func (w *Worker) optOutCode(code string) bool {
	r, ok := w.table.Lookup(code)
	return ok && r.OptOut && r.Class == connectly.ClassPermanent
}

// keepOptedOut writes the suppression an ended entry (state, code) may still be owed, as
// keepSuppressed: a failure with an opt-out code, or an entry an opt-out refusal settled
// unknown after a maybe-sent answer (ledger.EventRetryRefused: the entry holds the earlier
// answer's code, so only its history names the opt-out), also once a delivery event settled
// it since. The history is read for such entries only (not failed, not skipped).
func (w *Worker) keepOptedOut(ctx context.Context, p campaigns.SendPayload, state ledger.State, code string) error {
	switch state {
	case ledger.Failed:
		if w.optOutCode(code) {
			return w.keepSuppressed(ctx, p, code)
		}
		return nil
	case ledger.Skipped, ledger.Queued, ledger.Planned, ledger.Submitting:
		return nil
	}
	hist, err := w.ledger.History(ctx, p.Address())
	if err != nil {
		return err
	}
	for _, ev := range hist {
		if ev.Outcome == ledger.EventRetryRefused && w.optOutCode(ev.Code) {
			return w.keepSuppressed(ctx, p, ev.Code)
		}
	}
	return nil
}

// settle records the outcome of a send, as read by Table.Decide, and returns the task's
// result: accepted; refused (failed, or the run paused; a WindowBound message refused as
// outside the customer service window sends its fallback instead, when it has one); not
// taken (a throttle waits without
// using an attempt, anything else retries); maybe sent (unknown under at-most-once, retried
// under at-least-once). A request not taken or refused (a throttle, a stop-the-run code, a
// permanent refusal, a transient 4xx, a request never written) reached no one, so the room it
// took in the daily tier and the frequency cap goes back: first, or, for a window-closed
// refusal, once no fallback template takes the room over.
func (w *Worker) settle(ctx context.Context, j *job, out outcome) error {
	log, p, attempt, res, d, sendErr := j.log, j.p, j.claim.Attempts, out.res, out.d, out.err
	if d.Outcome == connectly.OutcomeNotTaken || d.Class == connectly.ClassStopRun {
		w.giveBack(ctx, j.bk, limits.Turned)
	}
	classLabel := "none"
	// recorded is the state the last outcome given to finish moved the entry to, as the
	// ledger recorded it ("" when it applied nothing): a failure may be recorded unknown.
	var recorded ledger.State
	finish := func(o ledger.Outcome) error {
		o.Attempt, o.WindowRefused = attempt, j.refused
		r, err := w.finishRetrying(p, o)
		if err != nil {
			return err
		}
		recorded = r.Moved(o.State)
		if r.Applied {
			// Counted as what the ledger recorded (a failure it settled unknown, as unknown).
			counted := o
			counted.State = recorded
			w.count(p, outcomeLabel(counted), settledLabel(j, d, counted, classLabel))
		}
		if r.PausedFor != "" {
			log.Error().Str("reason", r.PausedFor).Msg("run paused: burst of one permanent code")
		}
		if r.RunCompleted {
			w.log.Info().Str(logx.KeyRun, p.Run).Str(logx.KeyCampaign, p.Campaign).Msg("run completed")
		}
		return nil
	}
	if d.Outcome == connectly.OutcomeAccepted {
		log.Debug().Int(logx.KeyAttempt, attempt).Str("message_id", res.ID).Msg("accepted")
		return finish(ledger.Outcome{State: ledger.Accepted, MessageID: res.ID, Code: sentAs(j)})
	}
	class, rule, code := d.Class, d.Rule, d.Key
	classLabel = class.String()
	log = log.With().Str(logx.KeyCode, code).Str(logx.KeyClass, class.String()).Int(logx.KeyAttempt, attempt).Logger()

	switch class {
	case connectly.ClassThrottle:
		if err := finish(ledger.Outcome{State: ledger.Queued, Code: code, Mode: ledger.ReleaseThrottle}); err != nil {
			return err
		}
		after, told := w.cfg.ThrottleDelay, rule.Wait > 0
		var ae *connectly.Error
		if errors.As(sendErr, &ae) && ae.RetryAfterSeconds > 0 {
			after, told = time.Duration(ae.RetryAfterSeconds)*time.Second, true
		}
		if rule.Wait > 0 {
			after = max(after, rule.Wait)
		}
		if told {
			// Connectly said how long (a Retry-After, or a code that means "nothing goes
			// for a while"): the sends the hold covers wait with this one.
			w.holdFor(ctx, log, p, after)
		}
		if rule.PairBackoff {
			if wait, err := w.limits.PairThrottled(ctx, senderOf(p), p.To); err != nil {
				log.Warn().Err(err).Msg("could not record the pair-limit refusal; waiting the throttle delay")
			} else {
				after = max(after, wait)
			}
		}
		if w.adaptiveTrigger(d) {
			sender := senderOf(p)
			ctl := w.limits.Control(sender)
			t, err := w.limits.Limiter().Throttled(ctx, ctl, w.now())
			switch {
			case err != nil:
				log.Warn().Err(err).Msg("could not record the throttle for the sender's adaptive rate")
			case t.Decreased:
				log.Warn().Str("sender", logx.Phone(sender)).Float64("rate", ctl.Rate*t.Factor).
					Float64("throttled_share", t.Share).Msg("throttled by the provider: sender rate lowered")
			}
		}
		log.Debug().Msg("throttled by Connectly")
		return &ThrottledError{RetryAfter: after, Reason: code}

	case connectly.ClassStopRun:
		if err := finish(ledger.Outcome{State: ledger.Queued, Code: code, Mode: ledger.ReleaseHold}); err != nil {
			return err
		}
		reason := code + ": " + rule.Why
		paused, err := w.ledger.Pause(ctx, p.Run, reason)
		if err != nil {
			return err
		}
		if paused {
			log.Error().Str("reason", reason).Msg("run paused")
		}
		return &HeldError{RetryAfter: w.cfg.HoldDelay, Reason: reason}

	case connectly.ClassPermanent:
		if d.WindowClosed() && j.bound != nil {
			if fb, bar := j.bound.Fallback(); fb != nil {
				if bar.Code == "" {
					log.Info().Msg("refused: the customer service window is closed; sending the fallback template")
					j.refused = code
					return w.sendRefusedFallback(ctx, j, fb)
				}
				// The fallback cannot go to this recipient: the refusal settles as one without
				// a fallback, under the code that says why none went.
				log.Info().Str("recorded_code", bar.Code).
					Msg("refused: the customer service window is closed, and " + bar.Why)
				code = bar.Code
			}
		}
		// Refused: nothing reached the person, so the tier and the cap do not count them.
		w.giveBack(ctx, j.bk, limits.Turned)
		// An opt-out is suppressed before the failure is recorded: once recorded, a retry of
		// the task finds the entry done and would not come back here. If the list cannot be
		// written even so, the failure is still recorded (left submitting, the entry would
		// turn unknown) and the task retries: its claim finds the entry failed with an opt-out
		// code and writes the suppression then (notSending). A worker that dies in between
		// leaves the number suppressed and the entry submitting (unknown to the next attempt
		// under at-most-once).
		var suppressErr error
		if rule.OptOut {
			if suppressErr = w.suppressRetrying(p, code); suppressErr == nil {
				log.Info().Str("scope", string(ledger.ScopeOf(code))).Msg("opted out: added to the suppression list")
			}
		}
		// Under at-least-once, after an earlier attempt that may have gone out, the ledger fails
		// the recipient only on a refusal of the request itself (its number, its content),
		// which that attempt would have got too; any other refusal may have come after it, and
		// the recipient, who may hold the message, is unknown (ledger.EventRetryRefused). A
		// session task's attempts need not be the same request (the session message or its
		// fallback template, as the window says at each), so none of its refusals is: the
		// task's kind decides, not the message this attempt sent.
		if err := finish(ledger.Outcome{State: ledger.Failed, Code: code, Permanent: true,
			RequestFault:  d.RequestFault && j.p.Kind != campaigns.KindSession,
			OutsideWindow: d.WindowClosed() && j.bound != nil}); err != nil {
			return err
		}
		if suppressErr != nil {
			// The retry finds the entry ended and writes the suppression then (keepOptedOut).
			log.Error().Err(suppressErr).Msg("opted out, but the suppression list could not be written; the task retries to write it")
			return fmt.Errorf("%s: %w", code, suppressErr)
		}
		if recorded == ledger.Unknown {
			log.Warn().Msg("refused for good, but an earlier attempt may have gone out: marked unknown")
			return endTask(code, sendErr)
		}
		if d.WindowClosed() {
			log.Info().Msg("failed permanently: the customer service window is closed")
		} else {
			log.Info().Msg("failed permanently")
		}
		return endTask(code, sendErr)

	default: // transient: not taken, or maybe sent
		if d.Outcome == connectly.OutcomeMaybeSent && ledger.Delivery(p.Delivery) != ledger.AtLeastOnce {
			log.Warn().Msg("the message may have gone out (a 5xx, or no answer after the request was written); marked unknown (at-most-once)")
			// The payload is kept only when the run resends unknown recipients.
			return finish(ledger.Outcome{State: ledger.Unknown, Code: code, Payload: campaigns.EncodeSend(p)})
		}
		if attempt >= w.cfg.MaxAttempts {
			if d.Outcome == connectly.OutcomeMaybeSent {
				// At-least-once, out of attempts after one that may have gone out: the person may
				// hold the message (and answer it), so it is unknown, never failed; a delivery
				// event settles it as for any unknown recipient.
				if err := finish(ledger.Outcome{State: ledger.Unknown, Code: code}); err != nil {
					return err
				}
				log.Warn().Msg("attempts used up; the last may have gone out: marked unknown")
				return endTask(fmt.Sprintf("%s after %d attempts", code, attempt), sendErr)
			}
			if err := finish(ledger.Outcome{State: ledger.Failed, Code: code}); err != nil {
				return err
			}
			if recorded == ledger.Unknown {
				// At-least-once, an earlier attempt of which may have gone out (a retry after a
				// maybe-sent answer): this answer says nothing of that one, so the ledger keeps
				// the recipient unknown with that answer's code, never failed; a delivery event
				// settles it.
				log.Warn().Msg("attempts used up; an earlier attempt may have gone out: marked unknown")
			} else {
				log.Warn().Msg("failed: attempts used up")
			}
			return endTask(fmt.Sprintf("%s after %d attempts", code, attempt), sendErr)
		}
		// A retry after an answer that may follow a message that went out (at-least-once here:
		// at-most-once ended above) is marked so in the ledger: should it not be sent after all
		// (the run cancelled, the task deleted, a skip before it goes), the recipient is
		// unknown, never skipped, as they may hold the message.
		mode := ledger.ReleaseRetry
		if d.Outcome == connectly.OutcomeMaybeSent {
			mode = ledger.ReleaseRetryMaybeSent
		}
		if err := finish(ledger.Outcome{State: ledger.Queued, Code: code, Mode: mode}); err != nil {
			return err
		}
		log.Debug().Msg("transient failure; will retry")
		return fmt.Errorf("%s (attempt %d of %d): %w", code, attempt, w.cfg.MaxAttempts, sendErr)
	}
}
