package ledger

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// An operator's hold on the follow-ups (on_reply) of a completed run. A run that has completed
// keeps answering replies with follow-ups until its on_reply.until; pausing or cancelling it
// is no longer possible, so PauseFollowups and CancelFollowups hold or drop those follow-ups
// instead, leaving the run's own status and counts as they are. The worker reads the hold with
// the run's status (FollowupsState) before each follow-up goes, as it does a paused or
// cancelled run's; the receiver reads it before creating one.

//go:embed lua/followups.lua
var followupsLua string

// followupsCmd pauses, resumes or cancels a completed run's follow-ups. Its KEYS, ARGV and
// reply are documented at the top of lua/followups.lua.
var followupsCmd = redis.NewScript(followupsLua)

// FollowupsHold is the state an operator set on a completed run's follow-ups.
type FollowupsHold string

// Holds of FollowupsState.Hold.
const (
	// FollowupsGo: nothing holds them (the zero value).
	FollowupsGo FollowupsHold = ""
	// FollowupsPausedHold: they are held until `run resume`.
	FollowupsPausedHold FollowupsHold = "paused"
	// FollowupsCancelledHold: they are dropped: due ones skipped(cancelled), new ones not created.
	FollowupsCancelledHold FollowupsHold = "cancelled"
)

// FollowupsControl is what steers the follow-ups of a run: the run's own status (and pause
// reason), and the hold an operator put on them once it completed.
type FollowupsControl struct {
	// Run is the run's status and, while paused, its pause reason (Status "" when no run has
	// the id).
	Run Pause
	// Hold is the operator's hold on the follow-ups; Reason is its reason (who and why).
	Hold   FollowupsHold
	Reason string
}

// Cancelled reports whether the run's follow-ups are dropped: the run is cancelled, or its
// follow-ups are. A reply then creates no follow-up, and a due one is skipped(cancelled).
func (c FollowupsControl) Cancelled() bool {
	return c.Run.Status == RunCancelled || c.Hold == FollowupsCancelledHold
}

// Held reports whether the run's follow-ups are held (the run is paused, or its follow-ups
// are), and why: the run's pause reason, else the follow-ups', else "run paused" or
// "follow-ups paused". A cancelled one is not held (Cancelled).
func (c FollowupsControl) Held() (bool, string) {
	switch {
	case c.Cancelled():
		return false, ""
	case c.Run.Paused():
		return true, c.Run.Reason
	case c.Hold == FollowupsPausedHold:
		if c.Reason == "" {
			return true, "follow-ups paused"
		}
		return true, "follow-ups " + c.Reason
	}
	return false, ""
}

// FollowupsState reads what steers the follow-ups of run (the run replied to, not a
// "RUN~RULE" follow-up run) in one round trip. A run that does not exist reads as Status ""
// with no hold. A Redis error is returned as it is, never read as follow-ups that go.
func (l *Ledger) FollowupsState(ctx context.Context, run string) (FollowupsControl, error) {
	v, err := l.rdb.HMGet(ctx, rkeys.Run(run), "status", "pause_reason", "followups", "followups_reason").Result()
	if err != nil {
		return FollowupsControl{}, fmt.Errorf("ledger: follow-ups state of run %s: %w", run, err)
	}
	if len(v) != 4 {
		return FollowupsControl{}, fmt.Errorf("ledger: follow-ups state of run %s: unexpected reply %v", run, v)
	}
	str := func(x any) string { s, _ := x.(string); return s }
	c := FollowupsControl{Run: Pause{Status: RunStatus(str(v[0]))}, Hold: FollowupsHold(str(v[2])), Reason: str(v[3])}
	if c.Run.Paused() {
		c.Run.Reason = str(v[1])
	}
	return c, nil
}

// PauseFollowups holds the follow-ups of a completed run with a reason: new and due ones wait
// until ResumeFollowups (Resume does it too). It reports whether this call paused them; the
// run's status is returned either way. Only a completed run whose follow-ups go changes: the
// caller checks its on_reply.until has not passed.
func (l *Ledger) PauseFollowups(ctx context.Context, run, reason string) (bool, RunStatus, error) {
	return l.setFollowups(ctx, run, FollowupsPausedHold, reason)
}

// ResumeFollowups lifts a pause of a completed run's follow-ups. It reports whether this call
// lifted it, and the run's status.
func (l *Ledger) ResumeFollowups(ctx context.Context, run string) (bool, RunStatus, error) {
	return l.setFollowups(ctx, run, FollowupsGo, "")
}

// CancelFollowups drops the follow-ups of a completed run (paused or not): due and delayed ones
// become skipped(cancelled) as the worker reaches them, as for a cancelled run, and replies
// create none. Its paused follow-up runs (PausedFollowups) are cancelled with it, as Cancel
// does. It reports whether this call cancelled them, and the run's status.
func (l *Ledger) CancelFollowups(ctx context.Context, run, reason string) (bool, RunStatus, error) {
	ok, status, err := l.setFollowups(ctx, run, FollowupsCancelledHold, reason)
	if err != nil {
		return ok, status, err
	}
	if !ok {
		// Cancelled before: a follow-up run paused since (a stop-the-run answer to a
		// follow-up past the gate) is cancelled now, so none stays listed as paused.
		st, err := l.FollowupsState(ctx, run)
		if err != nil || st.Hold != FollowupsCancelledHold {
			return ok, status, err
		}
	}
	followups, err := l.PausedFollowups(ctx, run)
	if err != nil {
		return ok, status, fmt.Errorf("ledger: cancel follow-ups of run %s: %w", run, err)
	}
	for _, f := range followups {
		if _, _, err := l.Cancel(ctx, f.ID, reason); err != nil {
			return ok, status, err
		}
	}
	return ok, status, nil
}

// setFollowups runs followups.lua: the follow-ups of run to the hold to.
func (l *Ledger) setFollowups(ctx context.Context, run string, to FollowupsHold, reason string) (bool, RunStatus, error) {
	res, err := scriptReply(followupsCmd.Run(ctx, l.rdb, []string{rkeys.Run(run)}, string(to), reason, l.nowMS(), NewClaimToken()),
		2, "follow-ups of run "+run)
	if err != nil {
		return false, "", err
	}
	status, before := RunStatus(replyString(res[0])), FollowupsHold(replyString(res[1]))
	if status == "" {
		return false, "", fmt.Errorf("ledger: follow-ups of run %s: %w", run, ErrRunNotFound)
	}
	if status != RunCompleted {
		return false, status, nil
	}
	switch to {
	case FollowupsPausedHold:
		return before == FollowupsGo, status, nil
	case FollowupsCancelledHold:
		return before != FollowupsCancelledHold, status, nil
	}
	return before == FollowupsPausedHold, status, nil
}
