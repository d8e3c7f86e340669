package ledger

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// scriptEnv is what one script case works with: a ledger and a run of its own, seeded with
// three recipients whose tasks exist (queued), the first of them in es[0].
type scriptEnv struct {
	b   *testBundle
	run string
	es  []PlanEntry
}

func (e *scriptEnv) addr(i int) Address {
	return Address{Run: e.run, Bucket: e.es[i].Bucket, Recipient: e.es[i].Recipient}
}

// scriptCase is one case of the ledger's scripts: what it does to a freshly seeded run, and
// the error that says how the outcome differs from the wanted one (nil when it matches).
type scriptCase struct {
	name     string
	delivery Delivery
	// resend creates the run with a resend_after of 1 ms (unknown recipients are resent).
	resend bool
	// scripts names the scripts (allScripts keys) the case plays besides the seeding's
	// (seedScripts); the case fails unless each of them ran.
	scripts []string
	play    func(ctx context.Context, e *scriptEnv) error
}

// want returns an error naming what when got differs from want.
func want[T comparable](what string, want, got T) error {
	if want != got {
		return fmt.Errorf("%s = %v, want %v", what, got, want)
	}
	return nil
}

// first returns the first non-nil error.
func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *scriptEnv) claim(ctx context.Context, i int) (Claim, error) {
	return e.b.l.Claim(ctx, e.addr(i), AtMostOnce)
}

// accept claims recipient i and settles it accepted with message id mid.
func (e *scriptEnv) accept(ctx context.Context, i int, mid string) error {
	c, err := e.claim(ctx, i)
	if err != nil {
		return err
	}
	if c.Verdict != VerdictSend {
		return fmt.Errorf("claim of %d: %s, want send", i, c.Verdict)
	}
	r, err := e.b.l.Finish(ctx, e.addr(i), Outcome{State: Accepted, MessageID: mid, Attempt: c.Attempts})
	if err != nil {
		return err
	}
	return want("finish applied", true, r.Applied)
}

// rawEntry returns recipient i's entry as Redis holds it, with its bucket and field.
func (e *scriptEnv) rawEntry(ctx context.Context, i int) (v, key, field string, err error) {
	key = rkeys.LedgerBucket(e.run, e.es[i].Bucket)
	if field, err = e.b.l.field(ctx, e.run, e.es[i].Recipient); err != nil {
		return "", "", "", err
	}
	v, err = e.b.rdb.HGet(ctx, key, field).Result()
	return v, key, field, err
}

// claimedBeforeTokens claims recipient i and rewrites its entry the way a version of Herald
// before claim tokens wrote a claim: nothing after the code.
func (e *scriptEnv) claimedBeforeTokens(ctx context.Context, i int) error {
	if c, err := e.claim(ctx, i); err != nil || c.Verdict != VerdictSend {
		return first(err, want("claim", VerdictSend, c.Verdict))
	}
	v, key, field, err := e.rawEntry(ctx, i)
	if err != nil {
		return err
	}
	cut := strings.LastIndexByte(v, '|')
	if !strings.HasPrefix(v, "s|") || cut == len(v)-1 {
		return fmt.Errorf("claimed entry %q holds no token", v)
	}
	return e.b.rdb.HSet(ctx, key, field, v[:cut+1]).Err()
}

// giveBack gives back recipient i's claim by token, as a worker whose claim's answer was lost.
func (e *scriptEnv) giveBack(ctx context.Context, i int, token string) (FinishResult, error) {
	return e.b.l.Finish(ctx, e.addr(i), Outcome{State: Queued, Mode: ReleaseRequeue, Code: "CLAIM_UNANSWERED", Token: token})
}

// followup returns the follow-up of rule "yes" of e's run for recipient i (audience row i+2).
func (e *scriptEnv) followup(i int, payload string) Followup {
	return Followup{Parent: ParentRun{ID: e.run, Campaign: "script-cases", Template: "spring_sale", Language: "en",
		Delivery: AtMostOnce, Buckets: 2}, Rule: "yes", Recipient: e.es[i].Recipient, Row: i + 2,
		Payload: []byte(payload), Queue: "herald:utility"}
}

// onceCampaign is the campaign a case of once_per: campaign marks in: one of its own, so the
// marker holds nothing from another case.
func onceCampaign(run string) string { return "once-" + run }

// verify returns an error when the counters of run disagree with its ledger.
func (e *scriptEnv) verify(ctx context.Context, run string) error {
	v, err := e.b.l.Verify(ctx, run)
	if err == nil && len(v.Mismatches) > 0 {
		err = fmt.Errorf("the counters of %s disagree with its ledger: %+v", run, v.Mismatches)
	}
	return err
}

// releasedResends finishes the run's expansion, settles its first n recipients unknown
// (NO_RESPONSE, their task payload kept) and, a second later (past the run's quiet period of
// 1 ms), releases each for its one resend and records its resend task as enqueued: they are
// queued again, with a resend in their history.
func (e *scriptEnv) releasedResends(ctx context.Context, n int) error {
	if _, err := e.b.l.FinishExpansion(ctx, e.run, len(e.es)); err != nil {
		return err
	}
	for i := range n {
		if _, err := e.claim(ctx, i); err != nil {
			return err
		}
		if _, err := e.b.l.Finish(ctx, e.addr(i), Outcome{State: Unknown, Code: "NO_RESPONSE", Attempt: 1, Payload: []byte("task")}); err != nil {
			return err
		}
	}
	e.b.l.now = func() time.Time { return testNow.Add(time.Second) }
	members, _, err := e.b.l.LeaseUnknown(ctx, e.run, 10, time.Minute)
	if err = first(err, want("leased", n, len(members))); err != nil {
		return err
	}
	for _, m := range members {
		if v, _, err := e.b.l.ReleaseForResend(ctx, e.run, m); err != nil || v != ResendEnqueue {
			return first(err, want("release", ResendEnqueue, v))
		}
		if err := e.b.l.ResendEnqueued(ctx, e.run, m); err != nil {
			return err
		}
	}
	return nil
}

// withdrawn returns an error unless recipient i is unknown again after its resend was
// withdrawn by a cancel: its first attempt's code (NO_RESPONSE), one attempt, and a history
// of unknown, resend, resend_withdrawn(cancelled).
func (e *scriptEnv) withdrawn(ctx context.Context, i int) error {
	return e.withdrawnFor(ctx, i, SkipCancelled)
}

// withdrawnFor is withdrawn with its history naming why.
func (e *scriptEnv) withdrawnFor(ctx context.Context, i int, why string) error {
	en, err1 := e.entry(ctx, i)
	h, err2 := e.b.l.History(ctx, e.addr(i))
	outcomes := make([]string, len(h))
	for j, ev := range h {
		outcomes[j] = ev.Outcome + " " + ev.Code
	}
	return first(err1, err2, want("state", Unknown, en.State), want("code", "NO_RESPONSE", en.Code), want("attempts", 1, en.Attempts),
		want("history", "unknown NO_RESPONSE, resend NO_RESPONSE, resend_withdrawn "+why, strings.Join(outcomes, ", ")))
}

func (e *scriptEnv) entry(ctx context.Context, i int) (Entry, error) {
	en, ok, err := e.b.l.Entry(ctx, e.addr(i))
	if err == nil && !ok {
		err = fmt.Errorf("recipient %d has no entry", i)
	}
	return en, err
}

// scriptCases are the ledger's scripts, case by case: claim, finish, skip, delivery events,
// the resend of unknown recipients, pause / resume / cancel, reply counts, parked events and
// follow-ups. TestScriptCasesCoverEveryScript fails when a script has none.
var scriptCases = []scriptCase{
	{name: "ClaimSends", scripts: []string{"claimCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		c, err := e.claim(ctx, 0)
		return first(err, want("verdict", VerdictSend, c.Verdict), want("state", Submitting, c.State), want("attempts", 1, c.Attempts))
	}},
	{name: "ClaimFoundAtMostOnceIsUnknown", scripts: []string{"claimCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		if _, err := e.claim(ctx, 0); err != nil {
			return err
		}
		c, err := e.claim(ctx, 0)
		return first(err, want("verdict", VerdictUnknown, c.Verdict), want("state", Unknown, c.State), want("detail", CodeClaimFound, c.Detail))
	}},
	{name: "ClaimFoundAtLeastOnceSendsAgain", scripts: []string{"claimCmd"}, delivery: AtLeastOnce, play: func(ctx context.Context, e *scriptEnv) error {
		for range 2 {
			c, err := e.b.l.Claim(ctx, e.addr(0), AtLeastOnce)
			if err = first(err, want("verdict", VerdictSend, c.Verdict)); err != nil {
				return err
			}
		}
		c, err := e.b.l.Counters(ctx, e.run)
		return first(err, want("resent", int64(1), c.Resent), want("attempts", int64(2), c.Attempts))
	}},
	{name: "ClaimOfAPausedRunHolds", scripts: []string{"pauseCmd", "claimCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		if _, err := e.b.l.Pause(ctx, e.run, "operator"); err != nil {
			return err
		}
		c, err := e.claim(ctx, 0)
		return first(err, want("verdict", VerdictPaused, c.Verdict), want("detail", "operator", c.Detail))
	}},
	{name: "ClaimOfACancelledRunSkips", scripts: []string{"cancelCmd", "sweepCancelledCmd", "claimCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		if _, _, err := e.b.l.Cancel(ctx, e.run, "operator"); err != nil {
			return err
		}
		c, err := e.claim(ctx, 0)
		en, err2 := e.entry(ctx, 0)
		return first(err, err2, want("verdict", VerdictDone, c.Verdict), want("state", Skipped, en.State), want("code", "cancelled", en.Code))
	}},
	{name: "ClaimOfNoEntryOrNoRun", scripts: []string{"claimCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		c1, err1 := e.b.l.Claim(ctx, Address{Run: e.run, Recipient: "+19999999999"}, AtMostOnce)
		c2, err2 := e.b.l.Claim(ctx, Address{Run: e.run + "-none", Recipient: e.es[0].Recipient}, AtMostOnce)
		return first(err1, err2, want("verdict without entry", VerdictNoEntry, c1.Verdict), want("verdict without run", VerdictNoRun, c2.Verdict))
	}},
	{name: "AClaimRunAgainWithItsTokenSendsOnce", scripts: []string{"claimCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// Its answer was lost and it ran again (go-redis retries a command whose connection
		// broke): the same answer, one attempt.
		c1, err1 := e.b.l.ClaimWith(ctx, e.addr(0), AtMostOnce, "tok1")
		c2, err2 := e.b.l.ClaimWith(ctx, e.addr(0), AtMostOnce, "tok1")
		v, _, _, err3 := e.rawEntry(ctx, 0)
		en, err4 := e.entry(ctx, 0)
		cs, err5 := e.b.l.Counters(ctx, e.run)
		return first(err1, err2, err3, err4, err5, want("first verdict", VerdictSend, c1.Verdict), want("second verdict", VerdictSend, c2.Verdict),
			want("second attempts", 1, c2.Attempts), want("entry", "s|1|1||tok1", v), want("message id read", "", en.MessageID),
			want("attempts counted", int64(1), cs.Attempts), want("submitting", int64(1), cs.States[Submitting]))
	}},
	{name: "AClaimRunAgainAnswersAsItDidThen", scripts: []string{"claimCmd", "pauseCmd", "cancelCmd", "sweepCancelledCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// The run paused, then was cancelled, after the claim ran: its worker never had the
		// answer, so it is still the claim's to use or give back.
		if _, err := e.b.l.ClaimWith(ctx, e.addr(0), AtMostOnce, "tok1"); err != nil {
			return err
		}
		if _, err := e.b.l.Pause(ctx, e.run, "operator"); err != nil {
			return err
		}
		c1, err1 := e.b.l.ClaimWith(ctx, e.addr(0), AtMostOnce, "tok1")
		_, _, err2 := e.b.l.Cancel(ctx, e.run, "operator")
		c2, err3 := e.b.l.ClaimWith(ctx, e.addr(0), AtMostOnce, "tok1")
		return first(err1, err2, err3, want("verdict while paused", VerdictSend, c1.Verdict), want("verdict once cancelled", VerdictSend, c2.Verdict),
			want("attempts", 1, c2.Attempts))
	}},
	{name: "AClaimRunAgainAtLeastOnceIsNoResend", scripts: []string{"claimCmd"}, delivery: AtLeastOnce, play: func(ctx context.Context, e *scriptEnv) error {
		for range 2 {
			c, err := e.b.l.ClaimWith(ctx, e.addr(0), AtLeastOnce, "tok1")
			if err = first(err, want("verdict", VerdictSend, c.Verdict), want("attempts", 1, c.Attempts)); err != nil {
				return err
			}
		}
		c, err := e.b.l.ClaimWith(ctx, e.addr(0), AtLeastOnce, "tok2")
		cs, err2 := e.b.l.Counters(ctx, e.run)
		return first(err, err2, want("another attempt's verdict", VerdictSend, c.Verdict), want("its attempts", 2, c.Attempts),
			want("resent", int64(1), cs.Resent), want("attempts counted", int64(2), cs.Attempts))
	}},
	{name: "AClaimIsGivenBackByItsTokenOnly", scripts: []string{"claimCmd", "finishCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		if _, err := e.b.l.ClaimWith(ctx, e.addr(0), AtMostOnce, "tok1"); err != nil {
			return err
		}
		other, err1 := e.giveBack(ctx, 0, "tok2")
		mine, err2 := e.giveBack(ctx, 0, "tok1")
		en, err3 := e.entry(ctx, 0)
		cs, err4 := e.b.l.Counters(ctx, e.run)
		if err := first(err1, err2, err3, err4, want("another token's give-back applied", false, other.Applied),
			want("its own applied", true, mine.Applied), want("state", Queued, en.State), want("attempts", 0, en.Attempts),
			want("attempts counted", int64(0), cs.Attempts), want("throttled", int64(0), cs.Throttled), want("retries", int64(0), cs.Retries)); err != nil {
			return err
		}
		// The next attempt claims it as if nothing had happened.
		c, err := e.claim(ctx, 0)
		return first(err, want("next verdict", VerdictSend, c.Verdict), want("next attempts", 1, c.Attempts))
	}},
	{name: "AGiveBackFindsNothingOfItsOwn", scripts: []string{"claimCmd", "finishCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// A claim that never ran (recipient 1 is still queued), and one that found an earlier
		// attempt's claim (recipient 0 is now unknown): neither is given back.
		never, err1 := e.giveBack(ctx, 1, "tok1")
		if _, err := e.claim(ctx, 0); err != nil {
			return err
		}
		c, err2 := e.b.l.ClaimWith(ctx, e.addr(0), AtMostOnce, "tok2")
		found, err3 := e.giveBack(ctx, 0, "tok2")
		en, err4 := e.entry(ctx, 0)
		return first(err1, err2, err3, err4, want("never ran: applied", false, never.Applied), want("verdict", VerdictUnknown, c.Verdict),
			want("found: applied", false, found.Applied), want("state", Unknown, en.State), want("code", CodeClaimFound, en.Code))
	}},
	{name: "AnEntryClaimedBeforeTokensIsAnEarlierAttempts", scripts: []string{"claimCmd", "finishCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// Claims written before this version hold no token: found, never taken for a re-run,
		// never given back by a token; finished by their attempt as before.
		if err := first(e.claimedBeforeTokens(ctx, 0), e.claimedBeforeTokens(ctx, 2)); err != nil {
			return err
		}
		back, err1 := e.giveBack(ctx, 0, "tok1")
		c, err2 := e.b.l.ClaimWith(ctx, e.addr(0), AtMostOnce, "tok1")
		r, err3 := e.b.l.Finish(ctx, e.addr(2), Outcome{State: Accepted, MessageID: "m", Attempt: 1})
		en, err4 := e.entry(ctx, 2)
		return first(err1, err2, err3, err4, want("given back", false, back.Applied), want("verdict", VerdictUnknown, c.Verdict),
			want("detail", CodeClaimFound, c.Detail), want("finish applied", true, r.Applied), want("state", Accepted, en.State),
			want("message id", "m", en.MessageID))
	}},
	{name: "FinishAcceptsOnce", scripts: []string{"claimCmd", "finishCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		if err := e.accept(ctx, 0, "01JABCDEFGHJKMNPQRSTVWXYZ0"); err != nil {
			return err
		}
		r, err := e.b.l.Finish(ctx, e.addr(0), Outcome{State: Failed, Code: "X"})
		en, err2 := e.entry(ctx, 0)
		return first(err, err2, want("second finish applied", false, r.Applied), want("state", Accepted, en.State),
			want("message id", "01JABCDEFGHJKMNPQRSTVWXYZ0", en.MessageID))
	}},
	{name: "FinishRetryReleasesTheClaim", scripts: []string{"claimCmd", "finishCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		c, err := e.claim(ctx, 0)
		if err != nil {
			return err
		}
		r, err := e.b.l.Finish(ctx, e.addr(0), Outcome{State: Queued, Mode: ReleaseRetry, Code: "HTTP_503", Attempt: c.Attempts})
		en, err2 := e.entry(ctx, 0)
		cs, err3 := e.b.l.Counters(ctx, e.run)
		return first(err, err2, err3, want("applied", true, r.Applied), want("state", Queued, en.State), want("retries", int64(1), cs.Retries))
	}},
	{name: "FinishOfAStaleAttemptIsIgnored", scripts: []string{"claimCmd", "finishCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		c, err := e.claim(ctx, 0)
		if err != nil {
			return err
		}
		r, err := e.b.l.Finish(ctx, e.addr(0), Outcome{State: Accepted, MessageID: "m", Attempt: c.Attempts + 1})
		return first(err, want("applied", false, r.Applied))
	}},
	{name: "TheLastOutcomeCompletesTheRun", scripts: []string{"expandedCmd", "claimCmd", "finishCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		if _, err := e.b.l.FinishExpansion(ctx, e.run, len(e.es)); err != nil {
			return err
		}
		for i := range e.es[:len(e.es)-1] {
			if err := e.accept(ctx, i, fmt.Sprintf("m%d", i)); err != nil {
				return err
			}
		}
		last := len(e.es) - 1
		c, err := e.claim(ctx, last)
		if err != nil {
			return err
		}
		r, err := e.b.l.Finish(ctx, e.addr(last), Outcome{State: Failed, Code: "131026", Attempt: c.Attempts})
		run, err2 := e.b.l.GetRun(ctx, e.run)
		return first(err, err2, want("completed", true, r.RunCompleted), want("status", RunCompleted, run.Status))
	}},
	{name: "SkipLeavesASendInFlight", scripts: []string{"skipCmd", "claimCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		ok0, err0 := e.b.l.Skip(ctx, e.addr(0), "deleted")
		if _, err := e.claim(ctx, 1); err != nil {
			return err
		}
		ok1, err1 := e.b.l.Skip(ctx, e.addr(1), "deleted")
		return first(err0, err1, want("queued skipped", Skipped, ok0), want("submitting skipped", State(""), ok1))
	}},
	{name: "FinishRecordsWindowRefusals", scripts: []string{"claimCmd", "finishCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// 0: refused as outside the window, its fallback accepted under the same claim; 1:
		// refused with no fallback; 2: refused, its fallback retried (a 503), then failed
		// otherwise on the next attempt.
		outcomes := []struct {
			i int
			o Outcome
		}{
			{0, Outcome{State: Accepted, Code: SentFallback, MessageID: "m", WindowRefused: "131047"}},
			{1, Outcome{State: Failed, Code: "131047", OutsideWindow: true}},
			{2, Outcome{State: Queued, Mode: ReleaseRetry, Code: "HTTP_503", WindowRefused: "131047"}},
			{2, Outcome{State: Failed, Code: "131026"}},
		}
		for _, x := range outcomes {
			c, err := e.claim(ctx, x.i)
			if err != nil {
				return err
			}
			o := x.o
			o.Attempt = c.Attempts
			if r, err := e.b.l.Finish(ctx, e.addr(x.i), o); err != nil || !r.Applied {
				return first(err, want("applied", true, r.Applied))
			}
		}
		h, err1 := e.b.l.History(ctx, e.addr(0))
		c, err2 := e.b.l.Counters(ctx, e.run)
		got := ""
		for _, ev := range h {
			got += fmt.Sprintf("%s:%d:%s;", ev.Outcome, ev.Attempt, ev.Code)
		}
		// Only the accepted fallback counts as refused by Connectly with a fallback sent.
		return first(err1, err2, want("history", "window_refused:1:131047;accepted:1:fallback;", got),
			want("window_refused", int64(1), c.WindowRefused), want("window_refused_fallback", int64(1), c.WindowRefusedFallback),
			want("fallback", int64(1), c.Accepted(SentFallback)), want("failed", int64(2), c.States[Failed]))
	}},
	{name: "AWorkerSkipWaitsForARunningRun", scripts: []string{"skipCmd", "pauseCmd", "resumeCmd", "cancelCmd", "claimCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// A worker's own skip (a closed window) settles nothing while the run is paused or
		// cancelled: it answers the run's status, and the entry stays queued.
		if _, err := e.b.l.Pause(ctx, e.run, "operator"); err != nil {
			return err
		}
		ok0, held0, err0 := e.b.l.SkipWhileRunning(ctx, e.addr(0), "window_closed")
		e0, _, errE := e.b.l.Entry(ctx, e.addr(0))
		if _, err := e.b.l.Resume(ctx, e.run); err != nil {
			return err
		}
		ok1, held1, err1 := e.b.l.SkipWhileRunning(ctx, e.addr(0), "window_closed")
		if _, err := e.claim(ctx, 1); err != nil {
			return err
		}
		if _, err := cancelCmd.Run(ctx, e.b.rdb, []string{rkeys.Run(e.run)}, "operator", 0, "t1").Result(); err != nil {
			return err
		}
		// Cancelled, not swept yet: a queued entry and a submitting one are left alone.
		ok2, held2, err2 := e.b.l.SkipWhileRunning(ctx, e.addr(2), "window_closed")
		ok3, held3, err3 := e.b.l.SkipWhileRunning(ctx, e.addr(1), "window_closed")
		c, errC := e.b.l.Counters(ctx, e.run)
		return first(err0, errE, err1, err2, err3, errC,
			want("paused skipped", State(""), ok0), want("paused held", RunPaused, held0), want("paused entry", Queued, e0.State),
			want("running skipped", Skipped, ok1), want("running held", RunStatus(""), held1),
			want("cancelled skipped", State(""), ok2), want("cancelled held", RunCancelled, held2),
			want("submitting skipped", State(""), ok3), want("submitting held", RunCancelled, held3),
			want("skipped", int64(1), c.States[Skipped]), want("queued", int64(1), c.States[Queued]),
			want("window_closed", int64(1), c.Codes["skipped:window_closed"]))
	}},
	{name: "ADeletedTaskSettlesItsOrphanedClaimUnknown", resend: true, scripts: []string{"skipCmd", "claimCmd", "expandedCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// A worker died mid-request and its task was deleted: left alone unless the caller
		// found no task left to settle the claim, then unknown (the request may have gone),
		// not tracked for a resend, and the run completes with it.
		if _, err := e.b.l.FinishExpansion(ctx, e.run, len(e.es)); err != nil {
			return err
		}
		if _, err := e.claim(ctx, 0); err != nil {
			return err
		}
		prior0, now0, err0 := e.b.l.TaskDeleted(ctx, e.addr(0), false)
		prior1, now1, err1 := e.b.l.TaskDeleted(ctx, e.addr(0), true)
		_, now2, err2 := e.b.l.TaskDeleted(ctx, e.addr(1), true)
		_, now3, err3 := e.b.l.TaskDeleted(ctx, e.addr(2), false)
		_, now4, err4 := e.b.l.TaskDeleted(ctx, e.addr(0), true)
		en, err5 := e.entry(ctx, 0)
		run, err6 := e.b.l.GetRun(ctx, e.run)
		c, err7 := e.b.l.Counters(ctx, e.run)
		return first(err0, err1, err2, err3, err4, err5, err6, err7, want("prior", Submitting, prior0), want("left alone", State(""), now0),
			want("prior again", Submitting, prior1), want("settled", Unknown, now1), want("queued", Skipped, now2), want("queued too", Skipped, now3),
			want("settled again", State(""), now4), want("state", Unknown, en.State), want("code", CodeTaskDeleted, en.Code),
			want("attempts", 1, en.Attempts), want("counted", int64(1), c.Codes["unknown:"+CodeTaskDeleted]),
			want("resend waiting", int64(0), c.ResendWaiting), want("status", RunCompleted, run.Status), e.verify(ctx, e.run))
	}},
	{name: "ADeletedTaskSettlesAClaimInACancelledRun", scripts: []string{"skipCmd", "claimCmd", "expandedCmd", "cancelCmd", "sweepCancelledCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// The cancel leaves the claim to its worker, which died: the delete of its task
		// settles it, and the cancelled run is finished, its counts adding up.
		if _, err := e.b.l.FinishExpansion(ctx, e.run, len(e.es)); err != nil {
			return err
		}
		if _, err := e.claim(ctx, 0); err != nil {
			return err
		}
		_, n, err1 := e.b.l.Cancel(ctx, e.run, "operator")
		before, err2 := e.b.l.GetRun(ctx, e.run)
		_, now, err3 := e.b.l.TaskDeleted(ctx, e.addr(0), true)
		run, err4 := e.b.l.GetRun(ctx, e.run)
		c, err5 := e.b.l.Counters(ctx, e.run)
		return first(err1, err2, err3, err4, err5, want("swept", 2, n), want("finished before", true, before.Finished.IsZero()),
			want("settled", Unknown, now), want("status", RunCancelled, run.Status), want("finished", false, run.Finished.IsZero()),
			want("sum", int64(len(e.es)), c.Sum()), want("terminal", int64(len(e.es)), c.States[Unknown]+c.States[Skipped]), e.verify(ctx, e.run))
	}},
	{name: "ALegacyPlannedEntryIsTakenAsQueued", scripts: []string{"deliveryCmd", "claimCmd", "skipCmd", "cancelCmd", "sweepCancelledCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// Entries planned by an earlier version of Herald ('p'), still in Redis after an
		// upgrade: every script that takes a queued entry takes them.
		for _, pe := range e.es {
			if err := legacyPlanned(ctx, e.b, e.run, pe); err != nil {
				return err
			}
		}
		v, prior, err1 := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: e.addr(0), State: Delivered})
		c, err2 := e.claim(ctx, 0)
		ok, err3 := e.b.l.Skip(ctx, e.addr(1), "deleted")
		_, n, err4 := e.b.l.Cancel(ctx, e.run, "operator")
		en, err5 := e.entry(ctx, 2)
		return first(err1, err2, err3, err4, err5, want("delivery", DeliveryEarly, v), want("prior", Planned, prior),
			want("verdict", VerdictSend, c.Verdict), want("state", Submitting, c.State), want("skipped", Skipped, ok),
			want("skipped by cancel", 1, n), want("swept", Skipped, en.State), want("code", "cancelled", en.Code))
	}},
	{name: "DeliveryMovesForwardOnly", scripts: []string{"deliveryCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		if err := e.accept(ctx, 0, "01JABCDEFGHJKMNPQRSTVWXYZ0"); err != nil {
			return err
		}
		ev := DeliveryEvent{Address: e.addr(0), State: Read, MessageID: "01JABCDEFGHJKMNPQRSTVWXYZ0", TimeToDeliver: time.Second}
		v1, prior, err1 := e.b.l.ApplyDelivery(ctx, ev)
		ev.State = Delivered
		v2, _, err2 := e.b.l.ApplyDelivery(ctx, ev)
		d, err3 := e.b.l.DeliveryStats(ctx, e.run)
		return first(err1, err2, err3, want("read", DeliveryApplied, v1), want("prior", Accepted, prior), want("late delivered", DeliveryStale, v2),
			want("read count", int64(1), d.Read), want("time-to-deliver samples", int64(1), d.TimeToDeliver.Samples))
	}},
	{name: "DeliveryBeforeTheSendIsEarly", scripts: []string{"deliveryCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		v, prior, err := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: e.addr(0), State: Delivered})
		return first(err, want("verdict", DeliveryEarly, v), want("prior", Queued, prior))
	}},
	{name: "DeliveryOfAnotherMessageOrNoEntry", scripts: []string{"deliveryCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		if err := e.accept(ctx, 0, "m-new"); err != nil {
			return err
		}
		v1, _, err1 := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: e.addr(0), State: Sent, MessageID: "m-old", Strict: true})
		v2, _, err2 := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: Address{Run: e.run, Recipient: "+19999999999"}, State: Sent})
		return first(err1, err2, want("other message", DeliveryOtherMessage, v1), want("no entry", DeliveryNoEntry, v2))
	}},
	{name: "DeliveryFailureIsCountedByCodeAndClass", scripts: []string{"deliveryCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		if err := e.accept(ctx, 0, "m"); err != nil {
			return err
		}
		v, _, err := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: e.addr(0), State: Failed, Code: "131026", Class: "permanent", MessageID: "m"})
		d, err2 := e.b.l.DeliveryStats(ctx, e.run)
		return first(err, err2, want("verdict", DeliveryApplied, v), want("by code", int64(1), d.FailedByCode["131026"]),
			want("by class", int64(1), d.FailedByClass["permanent"]))
	}},
	{name: "UnknownIsResentOnceAfterItsQuietPeriod", scripts: []string{"claimCmd", "finishCmd", "resendLeaseCmd", "resendReleaseCmd", "resendDoneCmd"}, resend: true, play: func(ctx context.Context, e *scriptEnv) error {
		if _, err := e.claim(ctx, 0); err != nil {
			return err
		}
		c, err := e.b.l.Claim(ctx, e.addr(0), AtMostOnce)
		if err = first(err, want("second claim", VerdictFound, c.Verdict)); err != nil {
			return err
		}
		if _, err := e.b.l.Finish(ctx, e.addr(0), Outcome{State: Unknown, Code: CodeClaimFound, Attempt: c.Attempts, Payload: []byte("task")}); err != nil {
			return err
		}
		e.b.l.now = func() time.Time { return testNow.Add(time.Second) }
		members, gone, err := e.b.l.LeaseUnknown(ctx, e.run, 10, time.Minute)
		if err = first(err, want("gone", false, gone), want("leased", 1, len(members))); err != nil {
			return err
		}
		v, payload, err := e.b.l.ReleaseForResend(ctx, e.run, members[0])
		if err = first(err, want("release", ResendEnqueue, v), want("payload", "task", string(payload))); err != nil {
			return err
		}
		if err := e.b.l.ResendEnqueued(ctx, e.run, members[0]); err != nil {
			return err
		}
		v2, _, err := e.b.l.ReleaseForResend(ctx, e.run, members[0])
		en, err2 := e.entry(ctx, 0)
		return first(err, err2, want("second release", ResendGone, v2), want("state", Queued, en.State))
	}},
	{name: "ADeletedTaskLeavesAReleasedResendToItsTask", scripts: []string{"skipCmd", "claimCmd", "finishCmd", "resendLeaseCmd", "resendReleaseCmd", "resendDoneCmd", "expandedCmd"}, resend: true, play: func(ctx context.Context, e *scriptEnv) error {
		// An unknown recipient whose resend was released is queued again, but its first
		// message may have gone: a deleted task (the original, long completed) does not skip
		// it; it is left to its resend task, and only when the caller found none left is its
		// resend, never sent, withdrawn (RESEND_DELETED), the recipient unknown with the code
		// it had and no longer counted as resent; Skip (a worker's own decision: capped here)
		// withdraws the resend and leaves it unknown with the code it had.
		if err := e.releasedResends(ctx, 2); err != nil {
			return err
		}
		prior0, now0, err0 := e.b.l.TaskDeleted(ctx, e.addr(0), false)
		en0, err1 := e.entry(ctx, 0)
		prior1, now1, err2 := e.b.l.TaskDeleted(ctx, e.addr(0), true)
		en1, err3 := e.entry(ctx, 0)
		skipped, err4 := e.b.l.Skip(ctx, e.addr(1), "capped")
		en2, err7 := e.entry(ctx, 1)
		_, now3, err5 := e.b.l.TaskDeleted(ctx, e.addr(2), false)
		run, err6 := e.b.l.GetRun(ctx, e.run)
		c, err8 := e.b.l.Counters(ctx, e.run)
		return first(err0, err1, err2, err3, err4, err5, err6, err7, err8, want("prior", Queued, prior0), want("left to its resend", State(""), now0),
			want("still queued", Queued, en0.State), want("prior again", Queued, prior1), want("settled", Unknown, now1),
			want("code", "NO_RESPONSE", en1.Code), e.withdrawnFor(ctx, 0, CodeResendDeleted), want("resent", int64(0), c.ResentUnknown),
			want("unknown codes", int64(2), c.Codes["unknown:NO_RESPONSE"]), want("no code of the deletion", int64(0), c.Codes["unknown:"+CodeTaskDeleted]),
			want("skip by a worker", State(""), skipped),
			want("a worker's skip withdraws the resend", Unknown, en2.State), want("with the code it had", "NO_RESPONSE", en2.Code),
			want("never resent", Skipped, now3),
			want("status", RunCompleted, run.Status), e.verify(ctx, e.run))
	}},
	{name: "ACancelWithdrawsAReleasedResend", scripts: []string{"claimCmd", "finishCmd", "resendLeaseCmd", "resendReleaseCmd", "resendDoneCmd", "expandedCmd", "cancelCmd", "sweepCancelledCmd"}, resend: true, play: func(ctx context.Context, e *scriptEnv) error {
		// Two unknown recipients are queued for their resend when the run is cancelled: their
		// first message may have gone, so the cancel's sweep leaves them unknown with their
		// code, as the run's other unknown recipients, and skips only the never-sent one. The
		// resend task, when it comes, sends nothing, and the run is finished.
		if err := e.releasedResends(ctx, 2); err != nil {
			return err
		}
		_, n, err1 := e.b.l.Cancel(ctx, e.run, "operator")
		c, err2 := e.claim(ctx, 0)
		cs, err3 := e.b.l.Counters(ctx, e.run)
		run, err4 := e.b.l.GetRun(ctx, e.run)
		en2, err5 := e.entry(ctx, 2)
		return first(err1, err2, err3, err4, err5, want("skipped by cancel", 1, n), e.withdrawn(ctx, 0), e.withdrawn(ctx, 1),
			want("never sent", Skipped, en2.State), want("resend task", VerdictDone, c.Verdict), want("resend task's state", Unknown, c.State),
			want("unknown", int64(2), cs.States[Unknown]), want("skipped", int64(1), cs.States[Skipped]), want("queued", int64(0), cs.States[Queued]),
			want("resent", int64(0), cs.ResentUnknown), want("attempts", int64(2), cs.Attempts),
			want("unknown codes", int64(2), cs.Codes["unknown:NO_RESPONSE"]), want("skipped codes", int64(1), cs.Codes["skipped:cancelled"]),
			want("status", RunCancelled, run.Status), want("finished", false, run.Finished.IsZero()), e.verify(ctx, e.run))
	}},
	{name: "AClaimOrSkipBeforeTheSweepWithdrawsAReleasedResend", scripts: []string{"claimCmd", "finishCmd", "resendLeaseCmd", "resendReleaseCmd", "resendDoneCmd", "expandedCmd", "cancelCmd", "skipCmd"}, resend: true, play: func(ctx context.Context, e *scriptEnv) error {
		// The run is cancelled but its sweep has not come to these entries yet: the resend
		// task's claim, or a skip for the cancel (a follow-up of a cancelled run), withdraws
		// the resend as the sweep would, and the run completes once every entry is terminal.
		if err := e.releasedResends(ctx, 2); err != nil {
			return err
		}
		if err := cancelCmd.Run(ctx, e.b.rdb, []string{rkeys.Run(e.run)}, "operator", e.b.l.nowMS(), NewClaimToken()).Err(); err != nil {
			return err
		}
		c0, err1 := e.claim(ctx, 0)
		ok1, err2 := e.b.l.Skip(ctx, e.addr(1), SkipCancelled)
		c0again, err3 := e.claim(ctx, 0)
		c2, err4 := e.claim(ctx, 2)
		cs, err5 := e.b.l.Counters(ctx, e.run)
		run, err6 := e.b.l.GetRun(ctx, e.run)
		return first(err1, err2, err3, err4, err5, err6, want("claim", VerdictDone, c0.Verdict), want("claim's state", Unknown, c0.State),
			want("claim's code", "NO_RESPONSE", c0.Detail), want("skipped", State(""), ok1), want("claimed again", VerdictDone, c0again.Verdict),
			e.withdrawn(ctx, 0), e.withdrawn(ctx, 1), want("never sent", VerdictCancelled, c2.Verdict),
			want("unknown", int64(2), cs.States[Unknown]), want("resent", int64(0), cs.ResentUnknown), want("attempts", int64(2), cs.Attempts),
			want("status", RunCancelled, run.Status), want("finished", false, run.Finished.IsZero()), e.verify(ctx, e.run))
	}},
	{name: "PauseResumeCancel", scripts: []string{"pauseCmd", "resumeCmd", "cancelCmd", "sweepCancelledCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		p1, err1 := e.b.l.Pause(ctx, e.run, "burst")
		p2, err2 := e.b.l.Pause(ctx, e.run, "burst")
		r1, err3 := e.b.l.Resume(ctx, e.run)
		c1, n, err4 := e.b.l.Cancel(ctx, e.run, "operator")
		return first(err1, err2, err3, err4, want("first pause", true, p1), want("second pause", false, p2), want("resume", true, r1),
			want("cancel", true, c1), want("skipped by cancel", len(e.es), n))
	}},
	{name: "ARetryIsRecordedUnlessAnotherCameFirst", scripts: []string{"retryMarkCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		ok1, err1 := e.b.l.MarkRetry(ctx, e.run, nil, e.run+"-c1")
		// A retry that read the run before c1 was recorded checked nothing: it reads again.
		ok2, err2 := e.b.l.MarkRetry(ctx, e.run, nil, e.run+"-c2")
		ok3, err3 := e.b.l.MarkRetry(ctx, e.run, []string{e.run + "-c1"}, e.run+"-c2")
		r, err4 := e.b.l.GetRun(ctx, e.run)
		_, err5 := e.b.l.MarkRetry(ctx, e.run+"-none", nil, "x")
		marks := ""
		for _, m := range r.RetriedBy {
			marks += m.Child + "@" + strconv.FormatInt(m.At.UnixMilli(), 10) + " "
		}
		return first(err1, err2, err3, err4, want("first", true, ok1), want("unchecked", false, ok2), want("checked", true, ok3),
			want("marks", e.run+"-c1@"+strconv.FormatInt(testNow.UnixMilli(), 10)+" "+e.run+"-c2@"+strconv.FormatInt(testNow.UnixMilli(), 10)+" ", marks),
			want("no run", true, errors.Is(err5, ErrRunNotFound)))
	}},
	{name: "AReplyWithAnIDCountsOnce", scripts: []string{"replyCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		r := Reply{Run: e.run, ID: "m:01JREPLY", Button: "Yes"}
		c1, err1 := e.b.l.CountReply(ctx, r)
		c2, err2 := e.b.l.CountReply(ctx, r)
		d, err3 := e.b.l.DeliveryStats(ctx, e.run)
		return first(err1, err2, err3, want("first counted", true, c1), want("repeat counted", false, c2),
			want("replies", int64(1), d.Replies), want("taps", int64(1), d.ButtonReplies["Yes"]))
	}},
	{name: "TheReplyIDIsForgottenAfterItsMemory", scripts: []string{"replyCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		r := Reply{Run: e.run, ID: "m:01JREPLY", Memory: time.Minute}
		if _, err := e.b.l.CountReply(ctx, r); err != nil {
			return err
		}
		ttl, err := e.b.rdb.PTTL(ctx, rkeys.InboundSeen(e.run, "m:01JREPLY")).Result()
		if err != nil {
			return err
		}
		if ttl <= 0 || ttl > time.Minute {
			return fmt.Errorf("the reply id lives %v, want at most its memory of 1m", ttl)
		}
		return nil
	}},
	{name: "ParkedEventIsAppliedOnceItsSendIsRecorded", scripts: []string{"deliveryCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		ev := DeliveryEvent{Address: e.addr(0), State: Delivered, MessageID: "m", TimeToDeliver: 1500 * time.Microsecond}
		if err := first(e.b.l.Park(ctx, ev), e.b.l.Park(ctx, ev)); err != nil {
			return err
		}
		var got []ParkedOutcome
		report := func(o ParkedOutcome) { got = append(got, o) }
		done, left, err := e.b.l.RetryParked(ctx, time.Hour, report)
		if err = first(err, want("dropped before the send", 0, done), want("kept", 1, left)); err != nil {
			return err
		}
		if err := e.accept(ctx, 0, "m"); err != nil {
			return err
		}
		done, left, err = e.b.l.RetryParked(ctx, time.Hour, report)
		if err = first(err, want("dropped", 1, done), want("kept", 0, left), want("reports", 1, len(got))); err != nil {
			return err
		}
		en, err := e.entry(ctx, 0)
		// The time to deliver was rounded up to whole milliseconds when parked.
		return first(err, want("verdict", ParkedApplied, got[0].Verdict), want("state", Delivered, en.State),
			want("event", ev.Address, got[0].Event.Address), want("time to deliver", 2*time.Millisecond, got[0].Event.TimeToDeliver))
	}},
	{name: "ParkedEventExpires", play: func(ctx context.Context, e *scriptEnv) error {
		if err := e.b.l.Park(ctx, DeliveryEvent{Address: e.addr(0), State: Sent}); err != nil {
			return err
		}
		e.b.l.now = func() time.Time { return testNow.Add(time.Hour) }
		var got []ParkedOutcome
		done, left, err := e.b.l.RetryParked(ctx, time.Hour, func(o ParkedOutcome) { got = append(got, o) })
		n, err2 := e.b.l.ParkedCount(ctx)
		if err = first(err, err2, want("dropped", 1, done), want("kept", 0, left), want("parked", int64(0), n), want("reports", 1, len(got))); err != nil {
			return err
		}
		return first(want("verdict", ParkedExpired, got[0].Verdict), want("prior", Queued, got[0].Prior), want("age", time.Hour, got[0].Age))
	}},
	{name: "AFollowupEntryIsCreatedOnce", scripts: []string{"followupCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		f := e.followup(0, `{"p":1}`)
		r1, err1 := e.b.l.CreateFollowup(ctx, f)
		again := f
		again.Payload = []byte(`{"p":2}`)
		r2, err2 := e.b.l.CreateFollowup(ctx, again)
		if err := first(err1, err2, want("first verdict", FollowupCreated, r1.Verdict), want("run", FollowupRun(e.run, "yes"), r1.Run),
			want("verdict before its task", FollowupPending, r2.Verdict), want("stored payload", `{"p":1}`, string(r2.Payload))); err != nil {
			return err
		}
		if err := e.b.l.FollowupQueued(ctx, r1.Run, f.Recipient); err != nil {
			return err
		}
		r3, err1 := e.b.l.CreateFollowup(ctx, f)
		run, err2 := e.b.l.GetRun(ctx, r1.Run)
		c, err3 := e.b.l.Counters(ctx, r1.Run)
		en, ok, err4 := e.b.l.Entry(ctx, r1.Address)
		return first(err1, err2, err3, err4, want("verdict after its task", FollowupQueuedBefore, r3.Verdict),
			want("parent", e.run, run.Parent), want("status", RunRunning, run.Status), want("total", 1, run.Total),
			want("queued", int64(1), c.States[Queued]), want("entry", true, ok), want("state", Queued, en.State), want("row", 2, en.Row),
			e.verify(ctx, r1.Run))
	}},
	{name: "ASkippedFollowupHasNoTask", scripts: []string{"followupCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		f := e.followup(1, "")
		f.Skip = "suppressed"
		r, err1 := e.b.l.CreateFollowup(ctx, f)
		c, err2 := e.b.l.Counters(ctx, r.Run)
		n, err3 := e.b.rdb.HLen(ctx, rkeys.FollowupOutbox(r.Run)).Result()
		return first(err1, err2, err3, want("verdict", FollowupSkipped, r.Verdict), want("skipped", int64(1), c.States[Skipped]),
			want("in the outbox", int64(0), n), e.verify(ctx, r.Run))
	}},
	{name: "AFollowupOncePerCampaignGoesToTheFirstRun", scripts: []string{"onceCampaignCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		campaign, to := onceCampaign(e.run), e.es[0].Recipient
		a1, err1 := e.b.l.OncePerCampaign(ctx, campaign, "yes", to, e.run)
		a2, err2 := e.b.l.OncePerCampaign(ctx, campaign, "yes", to, e.run)
		b, err3 := e.b.l.OncePerCampaign(ctx, campaign, "yes", to, e.run+"-later")
		other, err4 := e.b.l.OncePerCampaign(ctx, campaign, "yes", e.es[2].Recipient, e.run+"-later")
		return first(err1, err2, err3, err4, want("first run", true, a1), want("first run again", true, a2),
			want("later run", false, b), want("later run, another recipient", true, other))
	}},
	{name: "ARecipientKeepsEveryTagOnce", scripts: []string{"tagCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		to := e.es[0].Recipient
		err1 := e.b.l.Tag(ctx, e.run, to, "medium")
		err2 := e.b.l.Tag(ctx, e.run, to, "interested")
		err3 := e.b.l.Tag(ctx, e.run, to, "medium")
		v, err4 := e.b.rdb.HGet(ctx, rkeys.Tags(e.run), to).Result()
		return first(err1, err2, err3, err4, want("tags", "interested,medium", v))
	}},
	{name: "AnIdleFollowupRunLeavesTheSweep", scripts: []string{"followupCmd", "followupForgetCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		f := e.followup(0, `{"p":1}`)
		r, err := e.b.l.CreateFollowup(ctx, f)
		if err != nil {
			return err
		}
		registered := func() (bool, error) {
			err := e.b.rdb.ZScore(ctx, rkeys.FollowupActive(), r.Run).Err()
			if errors.Is(err, redis.Nil) {
				return false, nil
			}
			return err == nil, err
		}
		forget := func(at time.Duration) (bool, error) {
			e.b.l.now = func() time.Time { return testNow.Add(at) }
			if err := e.b.l.forgetIdleFollowup(ctx, r.Run); err != nil {
				return false, err
			}
			return registered()
		}
		// An entry waiting for its task keeps the run however old.
		waiting, err1 := forget(FollowupIdle + time.Minute)
		err2 := e.b.l.FollowupQueued(ctx, r.Run, f.Recipient)
		within, err3 := forget(FollowupIdle - time.Minute)
		after, err4 := forget(FollowupIdle + time.Millisecond)
		return first(err1, err2, err3, err4, want("registered with an entry waiting", true, waiting),
			want("registered within the idle time", true, within), want("registered after the idle time", false, after))
	}},
	{name: "ASuppressionOnlyWidens", scripts: []string{"suppressCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// The list is one hash shared by every run: recipients of this case's own.
		r, old := e.run+"/stopped-marketing", e.run+"/legacy"
		defer e.b.rdb.HDel(context.WithoutCancel(ctx), rkeys.Suppressed(), r, old)
		read := func(who string) Suppression {
			ss, err := e.b.l.Suppressions(ctx, []string{who})
			if err != nil {
				return Suppression{Reason: err.Error()}
			}
			return ss[0]
		}
		at := func(d time.Duration) { e.b.l.now = func() time.Time { return testNow.Add(d) } }
		at(0)
		err1 := e.b.l.Suppress(ctx, r, "131050")
		marketing := read(r)
		at(time.Hour)
		err2 := e.b.l.Suppress(ctx, r, "131050")
		again := read(r)
		err3 := e.b.l.Suppress(ctx, r, "STOP")
		wider := read(r)
		at(2 * time.Hour)
		err4 := e.b.l.Suppress(ctx, r, "131050")
		kept := read(r)
		// An entry written before scopes: 131050 reads as marketing, and widens like one.
		err5 := e.b.rdb.HSet(ctx, rkeys.Suppressed(), old, "131050|5").Err()
		oldRead := read(old)
		err6 := e.b.l.Suppress(ctx, old, "131050")
		oldKept, _ := e.b.rdb.HGet(ctx, rkeys.Suppressed(), old).Result()
		err7 := e.b.l.Suppress(ctx, old, "INBOUND_OPT_OUT")
		oldWider := read(old)
		return first(err1, err2, err3, err4, err5, err6, err7,
			want("first", Suppression{Scope: ScopeMarketing, Reason: "131050", At: testNow.UTC()}, marketing),
			want("the same scope again keeps the first entry", marketing, again),
			want("every message widens it", Suppression{Scope: ScopeAll, Reason: "STOP", At: testNow.Add(time.Hour).UTC()}, wider),
			want("marketing after every message leaves it", wider, kept),
			want("old 131050 entry", Suppression{Scope: ScopeMarketing, Reason: "131050", At: time.UnixMilli(5).UTC()}, oldRead),
			want("old entry kept by marketing", "131050|5", oldKept),
			want("old entry widened", Suppression{Scope: ScopeAll, Reason: "INBOUND_OPT_OUT", At: testNow.Add(2 * time.Hour).UTC()}, oldWider))
	}},
}

// caseSeq makes run ids unique across backends and repeated runs.
var caseSeq atomic.Int64

// seedScripts are the scripts that seed every case's run (CreateRun, PlanQueued, MarkQueuedAt).
var seedScripts = []string{"createRunCmd", "planCmd", "queuedCmd"}

// uncovered returns what is wrong with the cases of the scripts: a script that neither the
// seeding nor any case plays, a case naming no script of the ledger.
func uncovered(scripts []string, cases []scriptCase) []string {
	var out []string
	played := map[string]bool{}
	for _, s := range seedScripts {
		played[s] = true
	}
	for _, c := range cases {
		for _, s := range c.scripts {
			if !slices.Contains(scripts, s) {
				out = append(out, fmt.Sprintf("case %s plays %s, which is not a script of the ledger", c.name, s))
			}
			played[s] = true
		}
	}
	for _, s := range slices.Sorted(slices.Values(scripts)) {
		if !played[s] {
			out = append(out, fmt.Sprintf("script %s has no case", s))
		}
	}
	return out
}

// TestScriptCasesCoverEveryScript fails when a script of the ledger (allScripts, which
// TestScriptFiles holds to the package's scripts) has no case in scriptCases; each case's
// scripts are checked to have run when it plays.
func TestScriptCasesCoverEveryScript(t *testing.T) {
	scripts := slices.Collect(maps.Keys(allScripts))
	for _, p := range uncovered(scripts, scriptCases) {
		t.Error(p)
	}
	// The check can fail: without the cases of followupCmd, it says so.
	var without []scriptCase
	for _, c := range scriptCases {
		if !slices.Contains(c.scripts, "followupCmd") {
			without = append(without, c)
		}
	}
	if got := uncovered(scripts, without); !slices.Contains(got, "script followupCmd has no case") {
		t.Errorf("without the follow-up cases the check says %q", got)
	}
	if got := uncovered(scripts, []scriptCase{{name: "X", scripts: []string{"nopeCmd"}}}); !slices.Contains(got, "case X plays nopeCmd, which is not a script of the ledger") {
		t.Errorf("a case of no script: the check says %q", got)
	}
}

// scriptsRan records which of the ledger's scripts a client ran (EVAL or EVALSHA, alone or
// in a pipeline, answered without error), by their Go variable.
type scriptsRan struct {
	byHash map[string]string
	mu     sync.Mutex
	ran    map[string]bool
}

func newScriptsRan() *scriptsRan {
	r := &scriptsRan{byHash: map[string]string{}, ran: map[string]bool{}}
	for name, s := range allScripts {
		r.byHash[s.Hash()] = name
	}
	return r
}

func (r *scriptsRan) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *scriptsRan) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		r.saw(cmd)
		return err
	}
}

func (r *scriptsRan) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			r.saw(c)
		}
		return err
	}
}

// saw records cmd when it ran a script of the ledger without error (a script's reply of
// nil aside).
func (r *scriptsRan) saw(cmd redis.Cmder) {
	args := cmd.Args()
	if len(args) < 2 || (cmd.Err() != nil && !errors.Is(cmd.Err(), redis.Nil)) {
		return
	}
	var hash string
	switch strings.ToLower(fmt.Sprint(args[0])) {
	case "evalsha", "evalsha_ro":
		hash = fmt.Sprint(args[1])
	case "eval", "eval_ro":
		hash = fmt.Sprintf("%x", sha1.Sum([]byte(fmt.Sprint(args[1]))))
	default:
		return
	}
	if name, ok := r.byHash[hash]; ok {
		r.mu.Lock()
		r.ran[name] = true
		r.mu.Unlock()
	}
}

// take returns the scripts run since the last take and forgets them.
func (r *scriptsRan) take() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ran := r.ran
	r.ran = map[string]bool{}
	return ran
}

// playScriptCases plays every case on rdb, one after another (the parked set is shared by
// all runs, so parked cases must not overlap), each on a run of its own, and fails a case
// unless the seeding's scripts and the case's own ran.
func playScriptCases(t *testing.T, rdb *redis.Client, cleanup func(runID string)) {
	ctx := context.Background()
	ran := newScriptsRan()
	rdb.AddHook(ran)
	for _, tc := range scriptCases {
		t.Run(tc.name, func(t *testing.T) {
			ran.take()
			b := &testBundle{rdb: rdb, l: New(rdb, func() time.Time { return testNow })}
			runID := fmt.Sprintf("sc-%d-%d", time.Now().UnixNano(), caseSeq.Add(1))
			if cleanup != nil {
				t.Cleanup(func() { cleanup(runID) })
			}
			d := tc.delivery
			if d == "" {
				d = AtMostOnce
			}
			r := Run{ID: runID, Campaign: "script-cases", Delivery: d, Buckets: 2}
			if tc.resend {
				r.ResendAfter = time.Millisecond
			}
			if err := b.l.CreateRun(ctx, r); err != nil {
				t.Fatal(err)
			}
			rcpts := []string{"+15550000001", "bsuid:US.13491208655302741918", "+15550000003"}
			es := planEntries(rcpts, 2)
			if _, err := b.l.PlanQueued(ctx, Batch{Run: runID, From: 0, To: len(es), Entries: es}); err != nil {
				t.Fatal(err)
			}
			if err := b.l.MarkQueuedAt(ctx, runID, 0, len(es), 0); err != nil {
				t.Fatal(err)
			}
			if err := tc.play(ctx, &scriptEnv{b: b, run: runID, es: es}); err != nil {
				t.Fatal(err)
			}
			if v, err := b.l.Verify(ctx, runID); err != nil || len(v.Mismatches) > 0 {
				t.Fatalf("after the case the counters disagree with the ledger: %+v, %v", v.Mismatches, err)
			}
			got := ran.take()
			for _, s := range append(slices.Clone(seedScripts), tc.scripts...) {
				if !got[s] {
					t.Errorf("the case did not run %s", s)
				}
			}
		})
	}
}

// TestScriptCases plays the table of script cases on miniredis always, and on real Redis
// (whose Lua, not miniredis's, runs the scripts) when HERALD_TEST_REDIS is set.
func TestScriptCases(t *testing.T) {
	t.Run("Miniredis", func(t *testing.T) {
		playScriptCases(t, setup(t).rdb, nil)
	})
	t.Run("RealRedis", func(t *testing.T) {
		rdb := redis.NewClient(testredis.Options(t, testredis.OffsetLedger))
		t.Cleanup(func() { rdb.Close() })
		ctx := context.Background()
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatalf("%s: %v", testredis.Env, err)
		}
		// The package's database is shared with its other tests: delete only this test's keys.
		playScriptCases(t, rdb, func(runID string) {
			keys, _ := rdb.Keys(ctx, rkeys.Run(runID)+"*").Result()
			followups, _ := rdb.Keys(ctx, rkeys.Run(FollowupRun(runID, "*"))+"*").Result()
			keys = append(append(keys, followups...), rkeys.FollowupOnce(onceCampaign(runID), "yes"))
			rdb.Del(ctx, keys...)
			rdb.ZRem(ctx, rkeys.FollowupActive(), FollowupRun(runID, "yes"))
			rdb.ZRem(ctx, rkeys.Runs(), runID)
			rdb.ZRem(ctx, rkeys.ActiveRuns(), runID)
			rdb.ZRem(ctx, rkeys.CampaignRuns("script-cases"), runID)
			rdb.SRem(ctx, rkeys.ResendRuns(), runID)
			parked, _ := rdb.ZRange(ctx, rkeys.WebhookParked(), 0, -1).Result()
			for _, m := range parked {
				if strings.Contains(m, `"r":"`+runID+`"`) {
					rdb.ZRem(ctx, rkeys.WebhookParked(), m)
				}
			}
			if n, _ := rdb.ZCard(ctx, rkeys.CampaignRuns("script-cases")).Result(); n == 0 {
				rdb.ZRem(ctx, rkeys.Campaigns(), "script-cases")
			}
		})
	})
}
