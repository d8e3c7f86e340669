package ledger

import (
	"context"
	"strings"
	"time"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// The repair's scripts join the table of scripts and the table of script cases here, in a file
// of their own.
func init() {
	allScripts["repairSettleCmd"] = repairSettleCmd
	allScripts["repairCompleteCmd"] = repairCompleteCmd
	scriptCases = append(scriptCases, repairCases...)
}

// stranded reads recipients is of e's run for a repair.
func (e *scriptEnv) stranded(ctx context.Context, is ...int) ([]Stranded, error) {
	addrs := make([]Address, len(is))
	for j, i := range is {
		addrs[j] = e.addr(i)
	}
	return e.b.l.ReadStranded(ctx, e.run, addrs)
}

// settle settles s as a repair would, and returns whether it changed.
func (e *scriptEnv) settle(ctx context.Context, s Stranded, to State, code string) (bool, error) {
	changed, _, err := e.b.l.Settle(ctx, s, to, code)
	return changed, err
}

var repairCases = []scriptCase{
	{name: "RepairSettlesAStrandedClaimUnknownAndCompletesTheRun", scripts: []string{"repairSettleCmd", "claimCmd", "expandedCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// A claim no task will settle becomes unknown(TASK_DELETED) with its history; the
		// queued entries never sent are skipped(task_lost); a second settle of the same read
		// changes nothing, and the run completes with the last one.
		if _, err := e.b.l.FinishExpansion(ctx, e.run, len(e.es)); err != nil {
			return err
		}
		if _, err := e.claim(ctx, 0); err != nil {
			return err
		}
		ss, err := e.stranded(ctx, 0, 1, 2)
		if err != nil {
			return err
		}
		wrong, err1 := e.settle(ctx, ss[1], Unknown, CodeTaskDeleted)
		claimSkipped, err2 := e.settle(ctx, ss[0], Skipped, SkipTaskLost)
		settled, err3 := e.settle(ctx, ss[0], Unknown, CodeTaskDeleted)
		again, err4 := e.settle(ctx, ss[0], Unknown, CodeTaskDeleted)
		skipped1, err5 := e.settle(ctx, ss[1], Skipped, SkipTaskLost)
		_, completed, err6 := e.b.l.Settle(ctx, ss[2], Skipped, SkipTaskLost)
		en, err7 := e.entry(ctx, 0)
		h, err8 := e.b.l.History(ctx, e.addr(0))
		run, err9 := e.b.l.GetRun(ctx, e.run)
		c, err10 := e.b.l.Counters(ctx, e.run)
		if err := first(err1, err2, err3, err4, err5, err6, err7, err8, err9, err10); err != nil {
			return err
		}
		return first(want("submitting", true, ss[0].MaySent()), want("queued", false, ss[1].MaySent()),
			want("a queued entry made unknown", false, wrong), want("a claim skipped", false, claimSkipped),
			want("settled", true, settled), want("settled twice", false, again), want("queued skipped", true, skipped1),
			want("completed by the last", true, completed), want("state", Unknown, en.State), want("code", CodeTaskDeleted, en.Code),
			want("attempts", 1, en.Attempts), want("history", 1, len(h)), want("history outcome", "unknown", h[0].Outcome),
			want("history code", CodeTaskDeleted, h[0].Code), want("counted", int64(1), c.Codes["unknown:"+CodeTaskDeleted]),
			want("skipped", int64(2), c.Codes["skipped:"+SkipTaskLost]), want("status", RunCompleted, run.Status), e.verify(ctx, e.run))
	}},
	{name: "RepairLeavesAnEntryThatMovedSinceItsRead", scripts: []string{"repairSettleCmd", "claimCmd", "finishCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// Read queued, then claimed: not skipped. Read submitting, then given back and claimed
		// again under a new token: not settled, though its state and attempts read the same.
		before, err := e.stranded(ctx, 0)
		if err != nil {
			return err
		}
		if _, err := e.claim(ctx, 0); err != nil {
			return err
		}
		skipped, err1 := e.settle(ctx, before[0], Skipped, SkipTaskLost)
		claimed, err2 := e.stranded(ctx, 0)
		v, _, _, err3 := e.rawEntry(ctx, 0)
		if err := first(err1, err2, err3); err != nil {
			return err
		}
		if _, err := e.giveBack(ctx, 0, v[strings.LastIndexByte(v, '|')+1:]); err != nil {
			return err
		}
		if _, err := e.claim(ctx, 0); err != nil {
			return err
		}
		now, err4 := e.stranded(ctx, 0)
		settled, err5 := e.settle(ctx, claimed[0], Unknown, CodeTaskDeleted)
		en, err6 := e.entry(ctx, 0)
		return first(err4, err5, err6, want("skipped once claimed", false, skipped),
			want("same state", claimed[0].Entry.State, now[0].Entry.State), want("same attempts", claimed[0].Entry.Attempts, now[0].Entry.Attempts),
			want("settled under a new claim", false, settled), want("state", Submitting, en.State))
	}},
	{name: "RepairLeavesAResendToTheSweepUntilItsTaskIsWritten", resend: true, scripts: []string{"repairSettleCmd", "claimCmd", "finishCmd", "resendLeaseCmd", "resendReleaseCmd", "resendDoneCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// Released for its resend, the entry is queued and still in the resend set (the
		// sweeper died before writing the task): the sweep writes it again, so the repair
		// leaves it. Once out of the set with no task, its first message may have gone:
		// never skipped; its resend, which made no request, is withdrawn (RESEND_DELETED), and
		// it is unknown with the code it had, no longer counted as resent, counted under no
		// code of its own; the run completes.
		if _, err := e.b.l.FinishExpansion(ctx, e.run, len(e.es)); err != nil {
			return err
		}
		for i := 1; i < len(e.es); i++ {
			if err := e.accept(ctx, i, "m"); err != nil {
				return err
			}
		}
		if _, err := e.claim(ctx, 0); err != nil {
			return err
		}
		if _, err := e.b.l.Finish(ctx, e.addr(0), Outcome{State: Unknown, Code: "NO_RESPONSE", Attempt: 1, Payload: []byte("task")}); err != nil {
			return err
		}
		e.b.l.now = func() time.Time { return testNow.Add(time.Second) }
		members, _, err := e.b.l.LeaseUnknown(ctx, e.run, 10, time.Minute)
		if err = first(err, want("leased", 1, len(members))); err != nil {
			return err
		}
		if v, _, err := e.b.l.ReleaseForResend(ctx, e.run, members[0]); err != nil || v != ResendEnqueue {
			return first(err, want("release", ResendEnqueue, v))
		}
		waiting, err1 := e.stranded(ctx, 0)
		left, err2 := e.settle(ctx, waiting[0], Unknown, CodeTaskDeleted)
		err3 := e.b.l.ResendEnqueued(ctx, e.run, members[0])
		gone, err4 := e.stranded(ctx, 0)
		skipped, err5 := e.settle(ctx, gone[0], Skipped, SkipTaskLost)
		before, err6 := e.b.l.Counters(ctx, e.run)
		_, completed, err7 := e.b.l.Settle(ctx, gone[0], Unknown, CodeResendDeleted)
		c, err8 := e.b.l.Counters(ctx, e.run)
		return first(err1, err2, err3, err4, err5, err6, err7, err8, want("waiting", true, waiting[0].Waiting), want("resent", true, waiting[0].Resent),
			want("settled while waiting", false, left), want("waiting once written", false, gone[0].Waiting),
			want("may have gone", true, gone[0].MaySent()), want("skipped", false, skipped),
			want("counted resent before", int64(1), before.ResentUnknown), e.withdrawnFor(ctx, 0, CodeResendDeleted),
			want("counted resent", int64(0), c.ResentUnknown), want("unknown", int64(1), c.States[Unknown]), want("queued", int64(0), c.States[Queued]),
			want("unknown codes", int64(1), c.Codes["unknown:NO_RESPONSE"]), want("no code of the deletion", int64(0), c.Codes["unknown:"+CodeResendDeleted]),
			want("completed", true, completed), e.verify(ctx, e.run))
	}},
	{name: "RepairCompletesARunWhoseCheckNeverRan", scripts: []string{"repairCompleteCmd", "claimCmd", "finishCmd", "expandedCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
		// Every row terminal, but the run says running and counts a resend that its resend
		// set does not hold: a dry look says so and changes nothing, the repair completes it,
		// and a second repair finds nothing to do.
		if _, err := e.b.l.FinishExpansion(ctx, e.run, len(e.es)); err != nil {
			return err
		}
		for i := range e.es {
			if err := e.accept(ctx, i, "m"); err != nil {
				return err
			}
		}
		if err := e.b.rdb.HSet(ctx, rkeys.Run(e.run), "status", "running").Err(); err != nil {
			return err
		}
		if err := e.b.rdb.HIncrBy(ctx, rkeys.Counts(e.run), "resend_waiting", 1).Err(); err != nil {
			return err
		}
		dry, err1 := e.b.l.CompleteStalled(ctx, e.run, false)
		still, err2 := e.b.l.GetRun(ctx, e.run)
		applied, err3 := e.b.l.CompleteStalled(ctx, e.run, true)
		run, err4 := e.b.l.GetRun(ctx, e.run)
		again, err5 := e.b.l.CompleteStalled(ctx, e.run, true)
		c, err6 := e.b.l.Counters(ctx, e.run)
		return first(err1, err2, err3, err4, err5, err6, want("dry completes", true, dry.Completes), want("dry counted", int64(1), dry.Counted),
			want("dry waiting", int64(0), dry.Waiting), want("status after the dry look", RunRunning, still.Status),
			want("applied", true, applied.Completes), want("status", RunCompleted, run.Status), want("again", false, again.Completes),
			want("resend waiting", int64(0), c.ResendWaiting))
	}},
}
