package ledger

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// The cases of a recipient retried after an answer that may follow a message that went out
// whose attempts then run out on an answer that says nothing went (EventRetriesExhausted) join
// the table of script cases, so they play on miniredis and, with HERALD_TEST_REDIS, on real
// Redis (TestScriptCases).
func init() {
	scriptCases = append(scriptCases, exhaustedCases...)
}

const (
	// codeRefused is a permanent refusal of the request itself (an invalid number).
	codeRefused = "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"
	// codeOptedOut is a permanent refusal that may come after an earlier request went out.
	codeOptedOut = "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"
)

// How lastAttempt's answer ends the claim.
const (
	notPermanent = iota
	// refusedLater: a permanent refusal that may have come after an earlier attempt.
	refusedLater
	// requestFault: a permanent refusal of the request itself (Outcome.RequestFault).
	requestFault
)

// lastAttempt claims recipient i again and fails its claim with code, a permanent refusal
// (refusedLater, requestFault) or not, as the worker does when the attempts are used up or
// Connectly refuses; it returns what Finish did.
func (e *scriptEnv) lastAttempt(ctx context.Context, i int, code string, how int) (FinishResult, error) {
	c, err := e.b.l.Claim(ctx, e.addr(i), AtLeastOnce)
	if err = first(err, want("claim", VerdictSend, c.Verdict)); err != nil {
		return FinishResult{}, fmt.Errorf("recipient %d: %w", i, err)
	}
	return e.b.l.Finish(ctx, e.addr(i), Outcome{State: Failed, Code: code, Permanent: how != notPermanent,
		RequestFault: how == requestFault, Attempt: c.Attempts})
}

// resendClaims releases the first n recipients for their resend (releasedResends) and claims
// each again, as its resend task does.
func (e *scriptEnv) resendClaims(ctx context.Context, n int) ([]Claim, error) {
	if err := e.releasedResends(ctx, n); err != nil {
		return nil, err
	}
	cs := make([]Claim, n)
	for i := range cs {
		c, err := e.b.l.Claim(ctx, e.addr(i), AtMostOnce)
		if err = first(err, want("claim", VerdictSend, c.Verdict)); err != nil {
			return nil, fmt.Errorf("recipient %d: %w", i, err)
		}
		cs[i] = c
	}
	return cs, nil
}

// recent is the run's recent outcomes list (the burst detector's), newest first.
func (e *scriptEnv) recent(ctx context.Context) (string, error) {
	l, err := e.b.rdb.LRange(ctx, rkeys.Recent(e.run), 0, -1).Result()
	if err == redis.Nil {
		err = nil
	}
	return strings.Join(l, ","), err
}

var exhaustedCases = []scriptCase{
	{name: "RetriesExhaustedAfterAMaybeSentAnswerEndUnknown", delivery: AtLeastOnce, resend: true, scripts: []string{"claimCmd", "finishCmd", "expandedCmd", "deliveryCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// Recipient 0's first request may have gone (a 503); its second is not taken (a 408)
		// and the attempts are used up: unknown with the 503, counted once under it and never
		// as failed, not tracked for a resend, its history the 503's retry and the 408 that
		// ended the retries. Recipient 1, whose requests were never taken, fails as always. A
		// delivery event settles recipient 0 as any unknown one, and does not move 1.
		e.b.l.SetBurst(10, 0.5)
		if _, err := e.b.l.FinishExpansion(ctx, e.run, len(e.es)); err != nil {
			return err
		}
		if err := first(e.maybeSent(ctx, 0), e.notTaken(ctx, 1), e.accept(ctx, 2, "m2")); err != nil {
			return err
		}
		r0, err1 := e.lastAttempt(ctx, 0, codeNotTaken, notPermanent)
		en0, err2 := e.entry(ctx, 0)
		h0, err3 := e.outcomes(ctx, 0)
		r1, err4 := e.lastAttempt(ctx, 1, codeNotTaken, notPermanent)
		en1, err5 := e.entry(ctx, 1)
		h1, err6 := e.outcomes(ctx, 1)
		c, err7 := e.b.l.Counters(ctx, e.run)
		waiting, err8 := e.b.rdb.ZCard(ctx, rkeys.Unknown(e.run)).Result()
		recent, err9 := e.recent(ctx)
		run, err10 := e.b.l.GetRun(ctx, e.run)
		if err := first(err1, err2, err3, err4, err5, err6, err7, err8, err9, err10,
			want("applied", true, r0.Applied), want("exhausted", true, r0.Exhausted), want("withdrawn", false, r0.Withdrawn),
			want("moved", Unknown, r0.Moved(Failed)), want("no pause", "", r0.PausedFor),
			want("state", Unknown, en0.State), want("code", codeMaybeSent, en0.Code), want("attempts", 2, en0.Attempts),
			want("message id", "", en0.MessageID),
			want("history", string(ReleaseRetryMaybeSent)+" "+codeMaybeSent+", "+EventRetriesExhausted+" "+codeNotTaken, h0),
			want("not taken: applied", true, r1.Applied), want("not taken: exhausted", false, r1.Exhausted),
			want("not taken: moved", Failed, r1.Moved(Failed)), want("not taken: state", Failed, en1.State),
			want("not taken: code", codeNotTaken, en1.Code), want("not taken: history", "retry "+codeNotTaken+", failed "+codeNotTaken, h1),
			want("unknown", int64(1), c.States[Unknown]), want("failed", int64(1), c.States[Failed]),
			want("unknown codes", int64(1), c.Codes["unknown:"+codeMaybeSent]), want("no unknown code of the 408", int64(0), c.Codes["unknown:"+codeNotTaken]),
			want("failed codes: recipient 1's only", int64(1), c.Codes["failed:"+codeNotTaken]),
			want("no failed code of the 503", int64(0), c.Codes["failed:"+codeMaybeSent]),
			want("retried", int64(1), c.Codes["retried:"+codeMaybeSent]), want("retries", int64(2), c.Retries), want("attempts", int64(5), c.Attempts),
			want("resend waiting", int64(0), c.ResendWaiting), want("in the resend set", int64(0), waiting),
			// Newest first: recipient 1's failure, recipient 0's unknown (its 503), 2's accept.
			want("recent outcomes", codeNotTaken+","+codeMaybeSent+",ok", recent),
			want("status", RunCompleted, run.Status), e.verify(ctx, e.run)); err != nil {
			return err
		}
		v0, _, err1 := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: e.addr(0), State: Delivered})
		v1, _, err2 := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: e.addr(1), State: Delivered})
		after0, err3 := e.entry(ctx, 0)
		after1, err4 := e.entry(ctx, 1)
		settled, err5 := e.b.l.Counters(ctx, e.run)
		return first(err1, err2, err3, err4, err5, want("delivery of 0", DeliveryApplied, v0), want("0 settled", Delivered, after0.State),
			want("settled codes", int64(1), settled.Codes["settled:delivered"]), want("delivery of 1", DeliveryStale, v1),
			want("1 stays failed", Failed, after1.State), e.verify(ctx, e.run))
	}},
	{name: "RetriesExhaustedAfterTwoMaybeSentAnswersTakeTheLast", delivery: AtLeastOnce, scripts: []string{"claimCmd", "finishCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// A 503, then a lost answer after the request was written, then a refused connection
		// (not sent) as the last attempt: unknown with the last maybe-sent answer's code,
		// counted under it alone.
		if err := first(e.maybeSent(ctx, 0), e.retryAfter(ctx, 0, ReleaseRetryMaybeSent, "NO_RESPONSE")); err != nil {
			return err
		}
		r, err1 := e.lastAttempt(ctx, 0, "NOT_SENT", notPermanent)
		en, err2 := e.entry(ctx, 0)
		h, err3 := e.outcomes(ctx, 0)
		c, err4 := e.b.l.Counters(ctx, e.run)
		story := "retry_maybe_sent " + codeMaybeSent + ", retry_maybe_sent NO_RESPONSE, " + EventRetriesExhausted + " NOT_SENT"
		return first(err1, err2, err3, err4, want("exhausted", true, r.Exhausted), want("state", Unknown, en.State),
			want("code", "NO_RESPONSE", en.Code), want("attempts", 3, en.Attempts), want("history", story, h),
			want("unknown codes", int64(1), c.Codes["unknown:NO_RESPONSE"]), want("no unknown 503", int64(0), c.Codes["unknown:"+codeMaybeSent]),
			want("no failure", int64(0), c.Codes["failed:NOT_SENT"]), want("failed", int64(0), c.States[Failed]), e.verify(ctx, e.run))
	}},
	{name: "ARefusalOfTheRequestItselfAfterAMaybeSentAnswerStillFails", delivery: AtLeastOnce, scripts: []string{"claimCmd", "finishCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// The retry after a 503 is refused for good as an invalid number: the earlier request,
		// the same, would have got that answer too, so nothing went, and the recipient is
		// failed as before; the refusal counts towards a burst.
		e.b.l.SetBurst(10, 0.5)
		if err := e.maybeSent(ctx, 0); err != nil {
			return err
		}
		r, err1 := e.lastAttempt(ctx, 0, codeRefused, requestFault)
		en, err2 := e.entry(ctx, 0)
		h, err3 := e.outcomes(ctx, 0)
		c, err4 := e.b.l.Counters(ctx, e.run)
		recent, err5 := e.recent(ctx)
		return first(err1, err2, err3, err4, err5, want("applied", true, r.Applied), want("exhausted", false, r.Exhausted),
			want("refused", false, r.RetryRefused),
			want("moved", Failed, r.Moved(Failed)), want("state", Failed, en.State), want("code", codeRefused, en.Code),
			want("history", string(ReleaseRetryMaybeSent)+" "+codeMaybeSent+", failed "+codeRefused, h),
			want("failed codes", int64(1), c.Codes["failed:"+codeRefused]), want("no unknown code", int64(0), c.Codes["unknown:"+codeMaybeSent]),
			want("unknown", int64(0), c.States[Unknown]), want("recent outcomes", codeRefused, recent), e.verify(ctx, e.run))
	}},
	{name: "AnEarlierClaimFoundAtLeastOnceIsAMaybeSentRetry", delivery: AtLeastOnce, scripts: []string{"claimCmd", "finishCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// Recipients 0 and 1 are claimed, and their workers die mid-request. At-least-once
		// sends them again; the history says the earlier attempt may have sent (CLAIM_FOUND),
		// so a skip at send time (a frequency cap) leaves 0 unknown, not skipped, and an
		// opt-out leaves 1 unknown, not failed, both with CLAIM_FOUND. The claim run again by
		// its own token writes nothing twice.
		for i := range 2 {
			if c, err := e.b.l.Claim(ctx, e.addr(i), AtLeastOnce); err != nil || c.Verdict != VerdictSend {
				return fmt.Errorf("recipient %d: first claim %+v, %v", i, c, err)
			}
		}
		c0, err1 := e.b.l.ClaimWith(ctx, e.addr(0), AtLeastOnce, "tok0")
		again, err2 := e.b.l.ClaimWith(ctx, e.addr(0), AtLeastOnce, "tok0")
		h, err3 := e.outcomes(ctx, 0)
		r0, err4 := e.b.l.Finish(ctx, e.addr(0), Outcome{State: Skipped, Code: "capped", Attempt: c0.Attempts, Token: "tok0"})
		r1, err5 := e.lastAttempt(ctx, 1, codeOptedOut, refusedLater)
		en0, err6 := e.entry(ctx, 0)
		en1, err7 := e.entry(ctx, 1)
		h0, err8 := e.outcomes(ctx, 0)
		h1, err9 := e.outcomes(ctx, 1)
		c, err10 := e.b.l.Counters(ctx, e.run)
		return first(err1, err2, err3, err4, err5, err6, err7, err8, err9, err10,
			want("claim", VerdictSend, c0.Verdict), want("attempts", 2, c0.Attempts), want("again", VerdictSend, again.Verdict),
			want("history after the claims", "retry_maybe_sent "+CodeClaimFound, h),
			want("0 withdrawn", true, r0.Withdrawn), want("0 state", Unknown, en0.State), want("0 code", CodeClaimFound, en0.Code),
			want("0 history", "retry_maybe_sent "+CodeClaimFound+", "+EventRetryWithdrawn+" capped", h0),
			want("1 refused", true, r1.RetryRefused), want("1 state", Unknown, en1.State), want("1 code", CodeClaimFound, en1.Code),
			want("1 history", "retry_maybe_sent "+CodeClaimFound+", "+EventRetryRefused+" "+codeOptedOut, h1),
			want("resent", int64(2), c.Resent), want("unknown", int64(2), c.States[Unknown]),
			want("unknown codes", int64(2), c.Codes["unknown:"+CodeClaimFound]), e.verify(ctx, e.run))
	}},
	{name: "AResendThatDoesNotGoIsNeverSkippedOrFailed", resend: true, scripts: []string{"claimCmd", "finishCmd", "resendLeaseCmd", "resendReleaseCmd", "resendDoneCmd", "expandedCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// Three unknown recipients (their first answer lost) are released for their one
		// resend. Its claim then ends: 0 skipped at send time (capped), 1 refused with an
		// opt-out, 2 out of attempts on a 408. The first message of each may have gone, so
		// they end unknown with the code they had (NO_RESPONSE), counted once as when they
		// first became unknown, never skipped or failed: 0's resend withdrawn (no longer
		// counted resent), 1's and 2's made.
		cs, err := e.resendClaims(ctx, 3)
		if err != nil {
			return err
		}
		r0, err1 := e.b.l.Finish(ctx, e.addr(0), Outcome{State: Skipped, Code: "capped", Attempt: cs[0].Attempts})
		r1, err2 := e.b.l.Finish(ctx, e.addr(1), Outcome{State: Failed, Code: codeOptedOut, Permanent: true, Attempt: cs[1].Attempts})
		r2, err3 := e.b.l.Finish(ctx, e.addr(2), Outcome{State: Failed, Code: codeNotTaken, Attempt: cs[2].Attempts})
		h1, err5 := e.outcomes(ctx, 1)
		h2, err6 := e.outcomes(ctx, 2)
		c, err8 := e.b.l.Counters(ctx, e.run)
		run, err9 := e.b.l.GetRun(ctx, e.run)
		return first(err1, err2, err3, err5, err6, err8, err9,
			want("0 withdrawn", true, r0.ResendWithdrawn), want("0 counted", State(""), r0.Moved(Skipped)), e.withdrawnFor(ctx, 0, "capped"),
			want("1 refused", true, r1.RetryRefused), want("1 moved", Unknown, r1.Moved(Failed)),
			want("1 history", "unknown NO_RESPONSE, resend NO_RESPONSE, "+EventRetryRefused+" "+codeOptedOut, h1),
			want("2 exhausted", true, r2.Exhausted), want("2 moved", Unknown, r2.Moved(Failed)),
			want("2 history", "unknown NO_RESPONSE, resend NO_RESPONSE, "+EventRetriesExhausted+" "+codeNotTaken, h2),
			want("unknown", int64(3), c.States[Unknown]), want("failed", int64(0), c.States[Failed]), want("skipped", int64(0), c.States[Skipped]),
			want("unknown codes: each once", int64(3), c.Codes["unknown:NO_RESPONSE"]),
			want("no failure", int64(0), c.Codes["failed:"+codeOptedOut]+c.Codes["failed:"+codeNotTaken]),
			want("resent", int64(2), c.ResentUnknown), want("resend waiting", int64(0), c.ResendWaiting),
			want("status", RunCompleted, run.Status), e.verify(ctx, e.run))
	}},
	{name: "AResendRefusedAsAnInvalidNumberFails", resend: true, scripts: []string{"claimCmd", "finishCmd", "resendLeaseCmd", "resendReleaseCmd", "resendDoneCmd", "expandedCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// The resend is refused as an invalid number, a refusal of the request itself that
		// the first request got too: nothing went, and the recipient fails.
		cs, err := e.resendClaims(ctx, 1)
		if err != nil {
			return err
		}
		r, err1 := e.b.l.Finish(ctx, e.addr(0), Outcome{State: Failed, Code: codeRefused, Permanent: true, RequestFault: true, Attempt: cs[0].Attempts})
		en, err2 := e.entry(ctx, 0)
		c, err3 := e.b.l.Counters(ctx, e.run)
		return first(err1, err2, err3, want("moved", Failed, r.Moved(Failed)), want("state", Failed, en.State), want("code", codeRefused, en.Code),
			want("failed codes", int64(1), c.Codes["failed:"+codeRefused]), want("resent", int64(1), c.ResentUnknown), e.verify(ctx, e.run))
	}},
	{name: "ARefusalThatMayHaveComeLaterAfterAMaybeSentAnswerEndsUnknown", delivery: AtLeastOnce, resend: true, scripts: []string{"claimCmd", "finishCmd", "deliveryCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// Recipient 0's first request may have gone (a 503); its retry is refused for good
		// because the customer opted out, which may have come after that first message: the
		// recipient is unknown with the 503, counted once under it, never failed, not tracked
		// for a resend; the opt-out is in its history and counts towards a burst under its own
		// code. A burst of it pauses the run as any permanent code does. Recipient 1, refused
		// the same way with no maybe-sent answer before, fails as always. A delivery event
		// settles recipient 0.
		e.b.l.SetBurst(2, 0.5)
		if err := first(e.maybeSent(ctx, 0)); err != nil {
			return err
		}
		r0, err1 := e.lastAttempt(ctx, 0, codeOptedOut, refusedLater)
		en0, err2 := e.entry(ctx, 0)
		h0, err3 := e.outcomes(ctx, 0)
		r1, err4 := e.lastAttempt(ctx, 1, codeOptedOut, refusedLater)
		en1, err5 := e.entry(ctx, 1)
		c, err6 := e.b.l.Counters(ctx, e.run)
		waiting, err7 := e.b.rdb.ZCard(ctx, rkeys.Unknown(e.run)).Result()
		recent, err8 := e.recent(ctx)
		if err := first(err1, err2, err3, err4, err5, err6, err7, err8,
			want("applied", true, r0.Applied), want("refused", true, r0.RetryRefused), want("exhausted", false, r0.Exhausted),
			want("moved", Unknown, r0.Moved(Failed)), want("state", Unknown, en0.State), want("code", codeMaybeSent, en0.Code),
			want("attempts", 2, en0.Attempts),
			want("history", string(ReleaseRetryMaybeSent)+" "+codeMaybeSent+", "+EventRetryRefused+" "+codeOptedOut, h0),
			want("1: refused", false, r1.RetryRefused), want("1: moved", Failed, r1.Moved(Failed)), want("1: state", Failed, en1.State),
			want("1: code", codeOptedOut, en1.Code),
			want("unknown", int64(1), c.States[Unknown]), want("failed", int64(1), c.States[Failed]),
			want("unknown codes", int64(1), c.Codes["unknown:"+codeMaybeSent]), want("failed codes", int64(1), c.Codes["failed:"+codeOptedOut]),
			want("no unknown code of the refusal", int64(0), c.Codes["unknown:"+codeOptedOut]),
			want("resend waiting", int64(0), c.ResendWaiting), want("in the resend set", int64(0), waiting),
			want("recent outcomes", codeOptedOut+","+codeOptedOut, recent),
			want("paused by the burst", true, r1.PausedFor != ""), e.verify(ctx, e.run)); err != nil {
			return err
		}
		v0, _, err1 := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: e.addr(0), State: Delivered})
		after0, err2 := e.entry(ctx, 0)
		return first(err1, err2, want("delivery of 0", DeliveryApplied, v0), want("0 settled", Delivered, after0.State), e.verify(ctx, e.run))
	}},
}
