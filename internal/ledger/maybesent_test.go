package ledger

import (
	"context"
	"fmt"
	"strings"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// The cases of a retry after an answer that may follow a message that went out
// (ReleaseRetryMaybeSent) join the table of script cases here, so they play on miniredis and,
// with HERALD_TEST_REDIS, on real Redis (TestScriptCases).
func init() {
	scriptCases = append(scriptCases, maybeSentCases...)
}

// The codes of the answers the cases retry after: one that may follow a message that went out
// (a 503), and one that says the request was not taken (a 408).
const (
	codeMaybeSent = "HTTP_503"
	codeNotTaken  = "HTTP_408"
)

// retryAfter claims recipient i of an at-least-once run and releases the claim for a retry
// with code, under mode (ReleaseRetryMaybeSent after a maybe-sent answer, ReleaseRetry
// otherwise), or a throttle (ReleaseThrottle).
func (e *scriptEnv) retryAfter(ctx context.Context, i int, mode ReleaseMode, code string) error {
	c, err := e.b.l.Claim(ctx, e.addr(i), AtLeastOnce)
	if err = first(err, want("claim", VerdictSend, c.Verdict)); err != nil {
		return fmt.Errorf("recipient %d: %w", i, err)
	}
	r, err := e.b.l.Finish(ctx, e.addr(i), Outcome{State: Queued, Mode: mode, Code: code, Attempt: c.Attempts})
	if err = first(err, want("release applied", true, r.Applied)); err != nil {
		return fmt.Errorf("recipient %d: %w", i, err)
	}
	return nil
}

// maybeSent releases recipient i for a retry after a 503 that may have gone out.
func (e *scriptEnv) maybeSent(ctx context.Context, i int) error {
	return e.retryAfter(ctx, i, ReleaseRetryMaybeSent, codeMaybeSent)
}

// notTaken releases recipient i for a retry after a 408, which says nothing went out.
func (e *scriptEnv) notTaken(ctx context.Context, i int) error {
	return e.retryAfter(ctx, i, ReleaseRetry, codeNotTaken)
}

// outcomes is recipient i's history as "outcome code" words, comma separated.
func (e *scriptEnv) outcomes(ctx context.Context, i int) (string, error) {
	h, err := e.b.l.History(ctx, e.addr(i))
	out := make([]string, len(h))
	for j, ev := range h {
		out[j] = ev.Outcome + " " + ev.Code
	}
	return strings.Join(out, ", "), err
}

// retryWithdrawn returns an error unless recipient i is unknown with code after its retry was
// withdrawn for why: attempts kept, its history the story given followed by
// "retry_withdrawn why", and nobody of the run waiting for a resend.
func (e *scriptEnv) retryWithdrawn(ctx context.Context, i int, code string, attempts int, story, why string) error {
	en, err1 := e.entry(ctx, i)
	h, err2 := e.outcomes(ctx, i)
	n, err3 := e.b.rdb.ZCard(ctx, rkeys.Unknown(e.run)).Result()
	return first(err1, err2, err3, want(fmt.Sprintf("recipient %d's state", i), Unknown, en.State), want(fmt.Sprintf("recipient %d's code", i), code, en.Code),
		want(fmt.Sprintf("recipient %d's attempts", i), attempts, en.Attempts),
		want(fmt.Sprintf("recipient %d's history", i), story+", "+EventRetryWithdrawn+" "+why, h),
		want("recipients waiting for a resend", int64(0), n))
}

// skippedAs returns an error unless recipient i is skipped with reason.
func (e *scriptEnv) skippedAs(ctx context.Context, i int, reason string) error {
	en, err := e.entry(ctx, i)
	return first(err, want(fmt.Sprintf("recipient %d's state", i), Skipped, en.State), want(fmt.Sprintf("recipient %d's reason", i), reason, en.Code))
}

var maybeSentCases = []scriptCase{
	{name: "AMaybeSentRetryIsCountedAsARetry", delivery: AtLeastOnce, scripts: []string{"claimCmd", "finishCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// The attempt stays counted, the retry and its code are counted as any retry's, and the
		// history names the mode; the retry then sends as any other.
		if err := first(e.maybeSent(ctx, 0), e.notTaken(ctx, 1)); err != nil {
			return err
		}
		en, err1 := e.entry(ctx, 0)
		h, err2 := e.outcomes(ctx, 0)
		c, err3 := e.b.l.Counters(ctx, e.run)
		cl, err4 := e.b.l.Claim(ctx, e.addr(0), AtLeastOnce)
		r, err5 := e.b.l.Finish(ctx, e.addr(0), Outcome{State: Accepted, MessageID: "m", Attempt: cl.Attempts})
		en2, err6 := e.entry(ctx, 0)
		return first(err1, err2, err3, err4, err5, err6, want("state", Queued, en.State), want("code", codeMaybeSent, en.Code),
			want("attempts", 1, en.Attempts), want("history", string(ReleaseRetryMaybeSent)+" "+codeMaybeSent, h),
			want("retries", int64(2), c.Retries), want("retried", int64(1), c.Codes["retried:"+codeMaybeSent]),
			want("attempts counted", int64(2), c.Attempts), want("retry claimed", VerdictSend, cl.Verdict), want("second attempt", 2, cl.Attempts),
			want("accepted", true, r.Applied), want("state after", Accepted, en2.State))
	}},
	{name: "ACancelSettlesAMaybeSentRetryUnknown", delivery: AtLeastOnce, resend: true, scripts: []string{"claimCmd", "finishCmd", "expandedCmd", "cancelCmd", "sweepCancelledCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// Recipient 0's first request may have gone (a 503), then a throttle gave its next
		// attempt back; recipient 1's request was not taken (a 408); recipient 2 was never
		// sent. The cancel skips 1 and 2, and leaves 0 unknown with the 503, counted under it
		// once, not waiting for a resend; its retry task, when it comes, sends nothing; the run
		// is finished.
		if _, err := e.b.l.FinishExpansion(ctx, e.run, len(e.es)); err != nil {
			return err
		}
		if err := first(e.maybeSent(ctx, 0), e.retryAfter(ctx, 0, ReleaseThrottle, "HTTP_429"), e.notTaken(ctx, 1)); err != nil {
			return err
		}
		_, n, err1 := e.b.l.Cancel(ctx, e.run, "operator")
		cl, err2 := e.b.l.Claim(ctx, e.addr(0), AtLeastOnce)
		c, err3 := e.b.l.Counters(ctx, e.run)
		run, err4 := e.b.l.GetRun(ctx, e.run)
		return first(err1, err2, err3, err4, want("skipped by the cancel", 2, n),
			e.retryWithdrawn(ctx, 0, codeMaybeSent, 1, "retry_maybe_sent "+codeMaybeSent+", throttle HTTP_429", SkipCancelled),
			e.skippedAs(ctx, 1, SkipCancelled), e.skippedAs(ctx, 2, SkipCancelled),
			want("retry task", VerdictDone, cl.Verdict), want("retry task's state", Unknown, cl.State),
			want("unknown", int64(1), c.States[Unknown]), want("skipped", int64(2), c.States[Skipped]), want("queued", int64(0), c.States[Queued]),
			want("unknown codes", int64(1), c.Codes["unknown:"+codeMaybeSent]), want("skipped codes", int64(2), c.Codes["skipped:cancelled"]),
			want("attempts", int64(2), c.Attempts), want("retries", int64(2), c.Retries), want("resend waiting", int64(0), c.ResendWaiting),
			want("resent", int64(0), c.ResentUnknown), want("status", RunCancelled, run.Status), want("finished", false, run.Finished.IsZero()),
			e.verify(ctx, e.run))
	}},
	{name: "AClaimOrSkipBeforeTheSweepSettlesAMaybeSentRetryUnknown", delivery: AtLeastOnce, scripts: []string{"claimCmd", "finishCmd", "expandedCmd", "cancelCmd", "skipCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// The run is cancelled but its sweep has not come to these entries: the retry task's
		// claim, or a skip for the cancel, settles a maybe-sent retry unknown as the sweep
		// would; a retry that was not taken is still skipped, and the run completes.
		if _, err := e.b.l.FinishExpansion(ctx, e.run, len(e.es)); err != nil {
			return err
		}
		if err := first(e.maybeSent(ctx, 0), e.maybeSent(ctx, 1), e.notTaken(ctx, 2)); err != nil {
			return err
		}
		if err := cancelCmd.Run(ctx, e.b.rdb, []string{rkeys.Run(e.run)}, "operator", e.b.l.nowMS(), NewClaimToken()).Err(); err != nil {
			return err
		}
		c0, err1 := e.b.l.Claim(ctx, e.addr(0), AtLeastOnce)
		ok1, err2 := e.b.l.Skip(ctx, e.addr(1), SkipCancelled)
		c2, err3 := e.b.l.Claim(ctx, e.addr(2), AtLeastOnce)
		c, err4 := e.b.l.Counters(ctx, e.run)
		run, err5 := e.b.l.GetRun(ctx, e.run)
		story := "retry_maybe_sent " + codeMaybeSent
		return first(err1, err2, err3, err4, err5, want("claim", VerdictWithdrawn, c0.Verdict), want("claim's state", Unknown, c0.State),
			want("claim's code", codeMaybeSent, c0.Detail), want("moved", Unknown, ok1),
			e.retryWithdrawn(ctx, 0, codeMaybeSent, 1, story, SkipCancelled), e.retryWithdrawn(ctx, 1, codeMaybeSent, 1, story, SkipCancelled),
			want("not taken", VerdictCancelled, c2.Verdict), e.skippedAs(ctx, 2, SkipCancelled),
			want("unknown codes", int64(2), c.Codes["unknown:"+codeMaybeSent]), want("attempts", int64(3), c.Attempts),
			want("status", RunCancelled, run.Status), want("finished", false, run.Finished.IsZero()), e.verify(ctx, e.run))
	}},
	{name: "ADeletedTaskSettlesAMaybeSentRetryUnknown", delivery: AtLeastOnce, scripts: []string{"claimCmd", "finishCmd", "expandedCmd", "skipCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// The task waiting to retry is deleted by an operator: no other task will send it, and
		// its recipient may hold the message from a 503 and then from a lost answer: unknown with
		// the last of those codes at once, never skipped(deleted). A retry not taken is.
		if _, err := e.b.l.FinishExpansion(ctx, e.run, len(e.es)); err != nil {
			return err
		}
		if err := first(e.maybeSent(ctx, 0), e.retryAfter(ctx, 0, ReleaseRetryMaybeSent, "NO_RESPONSE"), e.notTaken(ctx, 1)); err != nil {
			return err
		}
		prior0, now0, err1 := e.b.l.TaskDeleted(ctx, e.addr(0), false)
		_, again, err2 := e.b.l.TaskDeleted(ctx, e.addr(0), true)
		prior1, now1, err3 := e.b.l.TaskDeleted(ctx, e.addr(1), false)
		_, now2, err4 := e.b.l.TaskDeleted(ctx, e.addr(2), false)
		c, err5 := e.b.l.Counters(ctx, e.run)
		run, err6 := e.b.l.GetRun(ctx, e.run)
		return first(err1, err2, err3, err4, err5, err6, want("prior", Queued, prior0), want("now", Unknown, now0), want("again", State(""), again),
			e.retryWithdrawn(ctx, 0, "NO_RESPONSE", 2, "retry_maybe_sent "+codeMaybeSent+", retry_maybe_sent NO_RESPONSE", SkipDeleted),
			want("not taken: prior", Queued, prior1), want("not taken", Skipped, now1), e.skippedAs(ctx, 1, SkipDeleted),
			want("never sent", Skipped, now2), want("unknown codes", int64(1), c.Codes["unknown:NO_RESPONSE"]),
			want("no unknown code of the first answer", int64(0), c.Codes["unknown:"+codeMaybeSent]),
			want("no unknown code of the deletion", int64(0), c.Codes["unknown:"+CodeTaskDeleted]),
			want("status", RunCompleted, run.Status), e.verify(ctx, e.run))
	}},
	{name: "AWorkersSkipSettlesAMaybeSentRetryUnknown", delivery: AtLeastOnce, scripts: []string{"claimCmd", "finishCmd", "skipCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// The worker decides at retry time not to send (the window closed, the send expired):
		// a maybe-sent retry becomes unknown with its history saying why; one not taken is
		// skipped with the reason.
		if err := first(e.maybeSent(ctx, 0), e.maybeSent(ctx, 1), e.notTaken(ctx, 2)); err != nil {
			return err
		}
		ok0, held0, err1 := e.b.l.SkipWhileRunning(ctx, e.addr(0), "window_closed")
		ok1, err2 := e.b.l.Skip(ctx, e.addr(1), "expired")
		ok2, err3 := e.b.l.Skip(ctx, e.addr(2), "expired")
		c, err4 := e.b.l.Counters(ctx, e.run)
		story := "retry_maybe_sent " + codeMaybeSent
		return first(err1, err2, err3, err4, want("moved", Unknown, ok0), want("held", RunStatus(""), held0),
			e.retryWithdrawn(ctx, 0, codeMaybeSent, 1, story, "window_closed"), want("moved 1", Unknown, ok1),
			e.retryWithdrawn(ctx, 1, codeMaybeSent, 1, story, "expired"), want("not taken skipped", Skipped, ok2), e.skippedAs(ctx, 2, "expired"),
			want("unknown codes", int64(2), c.Codes["unknown:"+codeMaybeSent]), want("no skip of the window", int64(0), c.Codes["skipped:window_closed"]),
			want("expired once", int64(1), c.Codes["skipped:expired"]), e.verify(ctx, e.run))
	}},
	{name: "AWorkersSkipOfAPausedRunLeavesAMaybeSentRetry", delivery: AtLeastOnce, scripts: []string{"claimCmd", "finishCmd", "skipCmd", "pauseCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// SkipWhileRunning holds back as before: a paused run's entry is left queued.
		if err := e.maybeSent(ctx, 0); err != nil {
			return err
		}
		if _, err := e.b.l.Pause(ctx, e.run, "operator"); err != nil {
			return err
		}
		ok, held, err := e.b.l.SkipWhileRunning(ctx, e.addr(0), "window_closed")
		en, err2 := e.entry(ctx, 0)
		return first(err, err2, want("moved", State(""), ok), want("held", RunPaused, held), want("state", Queued, en.State))
	}},
	{name: "ASkipAtSendTimeSettlesAMaybeSentRetryUnknown", delivery: AtLeastOnce, scripts: []string{"claimCmd", "finishCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// The retry's claim is made, then the frequency cap (or the suppression list) stops
		// it: its attempt is given back, and the recipient is unknown with the 503, not
		// skipped(capped); a retry not taken is skipped as before.
		if err := first(e.maybeSent(ctx, 0), e.notTaken(ctx, 1)); err != nil {
			return err
		}
		c0, err1 := e.b.l.Claim(ctx, e.addr(0), AtLeastOnce)
		r0, err2 := e.b.l.Finish(ctx, e.addr(0), Outcome{State: Skipped, Code: "capped", Attempt: c0.Attempts})
		c1, err3 := e.b.l.Claim(ctx, e.addr(1), AtLeastOnce)
		r1, err4 := e.b.l.Finish(ctx, e.addr(1), Outcome{State: Skipped, Code: "suppressed", Attempt: c1.Attempts})
		c, err5 := e.b.l.Counters(ctx, e.run)
		return first(err1, err2, err3, err4, err5, want("applied", true, r0.Applied), want("withdrawn", true, r0.Withdrawn),
			e.retryWithdrawn(ctx, 0, codeMaybeSent, 1, "retry_maybe_sent "+codeMaybeSent, "capped"),
			want("not taken applied", true, r1.Applied), want("not taken withdrawn", false, r1.Withdrawn), e.skippedAs(ctx, 1, "suppressed"),
			want("unknown codes", int64(1), c.Codes["unknown:"+codeMaybeSent]), want("no capped skip", int64(0), c.Codes["skipped:capped"]),
			want("submitting", int64(0), c.States[Submitting]), want("attempts", int64(2), c.Attempts), e.verify(ctx, e.run))
	}},
	{name: "ARepairSettlesAMaybeSentRetryUnknown", delivery: AtLeastOnce, scripts: []string{"claimCmd", "finishCmd", "expandedCmd", "repairSettleCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// A repair finds the retry tasks lost and cannot write them again: a maybe-sent retry
		// is settled unknown with its code, whether asked to skip it or not; a retry not taken
		// is skipped(task_lost).
		if _, err := e.b.l.FinishExpansion(ctx, e.run, len(e.es)); err != nil {
			return err
		}
		if err := first(e.maybeSent(ctx, 0), e.maybeSent(ctx, 1), e.notTaken(ctx, 2)); err != nil {
			return err
		}
		ss, err := e.stranded(ctx, 0, 1, 2)
		if err != nil {
			return err
		}
		changed0, err1 := e.settle(ctx, ss[0], Skipped, SkipTaskLost)
		changed1, err2 := e.settle(ctx, ss[1], Unknown, CodeTaskDeleted)
		changed2, err3 := e.settle(ctx, ss[2], Skipped, SkipTaskLost)
		run, err4 := e.b.l.GetRun(ctx, e.run)
		c, err5 := e.b.l.Counters(ctx, e.run)
		story := "retry_maybe_sent " + codeMaybeSent
		return first(err1, err2, err3, err4, err5, want("maybe sent", true, ss[0].RetriedMaybeSent), want("not taken", false, ss[2].RetriedMaybeSent),
			want("not resent", false, ss[0].Resent), want("not counted as a resend", false, ss[0].MaySent()),
			want("changed", true, changed0), want("changed 1", true, changed1), want("changed 2", true, changed2),
			e.retryWithdrawn(ctx, 0, codeMaybeSent, 1, story, SkipTaskLost), e.retryWithdrawn(ctx, 1, codeMaybeSent, 1, story, CodeTaskDeleted),
			e.skippedAs(ctx, 2, SkipTaskLost), want("unknown codes", int64(2), c.Codes["unknown:"+codeMaybeSent]),
			want("status", RunCompleted, run.Status), e.verify(ctx, e.run))
	}},
}
