package ledger

import (
	"context"
	"errors"
)

// An operator's hold on the follow-ups of a completed run (followups.lua): a running run is
// left to pause.lua and cancel.lua; a completed one's follow-ups pause once, resume once,
// cancel from either, and its status and counts stay as they are. The run's resume lifts the
// pause and names the follow-up runs it resumed.

func init() {
	scriptCases = append(scriptCases,
		scriptCase{name: "FollowupsOfACompletedRunPauseResumeCancel", scripts: []string{"followupsCmd", "followupCmd", "pauseCmd", "resumeCmd", "expandedCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
			l := e.b.l
			ok0, st0, err0 := l.PauseFollowups(ctx, e.run, "early")
			if _, err := l.FinishExpansion(ctx, e.run, len(e.es)); err != nil {
				return err
			}
			for i := range e.es {
				if err := e.accept(ctx, i, "m"+e.es[i].Recipient); err != nil {
					return err
				}
			}
			before, err := l.Counters(ctx, e.run)
			if err != nil {
				return err
			}
			p1, st1, err1 := l.PauseFollowups(ctx, e.run, "paused by ana: wrong link")
			p2, _, err2 := l.PauseFollowups(ctx, e.run, "again")
			fs, err3 := l.FollowupsState(ctx, e.run)
			held, why := fs.Held()
			// GetRun reads the hold with the run (run ls lists it without a round trip more).
			paused, err15 := l.GetRun(ctx, e.run)
			// A follow-up run paused by hand is resumed with the run, and named.
			res, err4 := l.CreateFollowup(ctx, e.followup(0, "{}"))
			pf, err5 := l.Pause(ctx, res.Run, "paused by bo: typo")
			r, err6 := l.ResumeDetail(ctx, e.run)
			fs2, err7 := l.FollowupsState(ctx, e.run)
			c1, _, err8 := l.CancelFollowups(ctx, e.run, "cancelled by ana")
			c2, _, err9 := l.CancelFollowups(ctx, e.run, "again")
			rs, _, err10 := l.ResumeFollowups(ctx, e.run)
			fs3, err11 := l.FollowupsState(ctx, e.run)
			run, err12 := l.GetRun(ctx, e.run)
			after, err13 := l.Counters(ctx, e.run)
			_, _, err14 := l.PauseFollowups(ctx, e.run+"-none", "x")
			rule := ""
			if len(r.Rules) == 1 {
				rule = r.Rules[0].Rule + " (" + r.Rules[0].Reason + ")"
			}
			return first(err0, err1, err2, err3, err4, err5, err6, err7, err8, err9, err10, err11, err12, err13, err15,
				want("pause of a running run's follow-ups", false, ok0), want("status", RunRunning, st0),
				want("pause", true, p1), want("status", RunCompleted, st1), want("second pause", false, p2),
				want("held", true, held), want("why", "follow-ups paused by ana: wrong link", why),
				want("run's hold", FollowupsPausedHold, paused.Followups), want("its reason", "paused by ana: wrong link", paused.FollowupsReason),
				want("follow-up run paused", true, pf), want("run resumed", false, r.Run), want("follow-ups resumed", true, r.Followups),
				want("their reason", "paused by ana: wrong link", r.FollowupsReason), want("follow-up runs resumed", "yes (paused by bo: typo)", rule),
				want("hold after resume", FollowupsGo, fs2.Hold),
				want("cancel", true, c1), want("second cancel", false, c2), want("resume of cancelled", false, rs),
				want("cancelled", true, fs3.Cancelled()), want("status", RunCompleted, run.Status),
				want("run's hold", FollowupsCancelledHold, run.Followups), want("its reason", "cancelled by ana", run.FollowupsReason),
				want("accepted", before.States[Accepted], after.States[Accepted]), want("no run", true, errors.Is(err14, ErrRunNotFound)))
		}},
	)
}
