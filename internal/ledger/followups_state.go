package ledger

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

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
	var changed bool
	switch to {
	case FollowupsPausedHold:
		changed = before == FollowupsGo
	case FollowupsCancelledHold:
		changed = before != FollowupsCancelledHold
	default:
		changed = before == FollowupsPausedHold
	}
	// Every call, a change or not, brings the index in line: a pause made before the index
	// existed (or whose listing failed) is listed by the next pause of the run.
	if err := l.listHeld(ctx, run); err != nil && to == FollowupsPausedHold {
		return changed, status, fmt.Errorf("ledger: follow-ups of run %s paused but not listed for herald_run_paused (pause it again to list it): %w", run, err)
	}
	return changed, status, nil
}

// The index of completed runs whose follow-ups are paused (rkeys.FollowupsHeld), from which
// herald_run_paused reports them however old the run: a delayed follow-up may wait past any
// span of creation times a scan of the run list would read.
//
// The index lives in another Cluster slot than the run hash, so followups.lua does not write
// it: setFollowups brings it in line with the run hash after the script (listHeld), whatever
// the call (PauseFollowups, ResumeFollowups and so Resume, CancelFollowups). A pause whose
// listing failed reports it; a resume or cancel whose removal failed leaves a run the reader
// drops (HeldFollowups). Reading the hold after the script, rather than writing what the call
// asked, keeps two calls at the same time from leaving the index wrong: the later read sees
// the later change. Runs whose follow-ups were paused before the index existed are listed once
// by BackfillHeldFollowups.

// HeldRun is a completed run whose follow-ups an operator paused.
type HeldRun struct {
	ID       string
	Campaign string
	// Since is when its follow-ups were paused.
	Since time.Time
}

// heldFields are the run hash fields that say whether its follow-ups are held, and since when.
var heldFields = []string{"status", "followups", "followups_at", "campaign"}

// heldOf reads heldFields' values v of run: the run and whether its follow-ups are held.
func heldOf(run string, v []any) (HeldRun, bool) {
	if len(v) != len(heldFields) {
		return HeldRun{}, false
	}
	str := func(x any) string { s, _ := x.(string); return s }
	if RunStatus(str(v[0])) != RunCompleted || FollowupsHold(str(v[1])) != FollowupsPausedHold {
		return HeldRun{}, false
	}
	at, _ := strconv.ParseInt(str(v[2]), 10, 64)
	return HeldRun{ID: run, Campaign: str(v[3]), Since: time.UnixMilli(at)}, true
}

// listHeld lists run in the index of held follow-ups when its follow-ups are held, and takes
// it out when they are not. A removal reads the hold again after it: a pause made after the
// first read may have listed the run before the removal, and is listed again, so a removal
// never takes out a pause made at the same time (a pause listing after the removal stands).
func (l *Ledger) listHeld(ctx context.Context, run string) error {
	list := func() (bool, error) {
		v, err := l.rdb.HMGet(ctx, rkeys.Run(run), heldFields...).Result()
		if err != nil {
			return false, err
		}
		h, ok := heldOf(run, v)
		if ok {
			err = l.rdb.ZAdd(ctx, rkeys.FollowupsHeld(), redis.Z{Score: float64(h.Since.UnixMilli()), Member: run}).Err()
		}
		return ok, err
	}
	if held, err := list(); held || err != nil {
		return err
	}
	if err := l.rdb.ZRem(ctx, rkeys.FollowupsHeld(), run).Err(); err != nil {
		return err
	}
	_, err := list()
	return err
}

// HeldFollowups returns up to n of the completed runs listed as holding their follow-ups,
// longest held first, reading at most 5n listed runs. A listed run found no longer held
// (resumed, cancelled, gone) is dropped from the index and looked at once more after
// (listHeld): one paused again in between is listed again, so a drop never takes out a pause
// made at the same time. No run is returned twice.
func (l *Ledger) HeldFollowups(ctx context.Context, n int) ([]HeldRun, error) {
	var held []HeldRun
	var stale []any
	// A run listed meanwhile ahead of the read position moves the next page's ranks: the same
	// run may come twice, and a metric reported twice fails the whole scrape.
	seen := map[string]bool{}
	for offset := 0; len(held) < n && offset < 5*n; {
		ids, err := l.rdb.ZRange(ctx, rkeys.FollowupsHeld(), int64(offset), int64(offset+n-1)).Result()
		if err != nil {
			return held, fmt.Errorf("ledger: list held follow-ups: %w", err)
		}
		vals, err := l.readHeld(ctx, ids)
		if err != nil {
			return held, fmt.Errorf("ledger: list held follow-ups: %w", err)
		}
		for i, id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			switch h, ok := heldOf(id, vals[i]); {
			case !ok:
				stale = append(stale, id)
			case len(held) < n:
				held = append(held, h)
			}
		}
		offset += len(ids)
		if len(ids) < n {
			break
		}
	}
	if len(stale) == 0 {
		return held, nil
	}
	if err := l.rdb.ZRem(ctx, rkeys.FollowupsHeld(), stale...).Err(); err != nil {
		return held, nil
	}
	for _, id := range stale {
		_ = l.listHeld(ctx, id.(string))
	}
	return held, nil
}

// readHeld reads heldFields of each run of ids in one round trip.
func (l *Ledger) readHeld(ctx context.Context, ids []string) ([][]any, error) {
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, rkeys.Run(id), heldFields...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	vals := make([][]any, len(ids))
	for i, c := range cmds {
		vals[i] = c.Val()
	}
	return vals, nil
}

// BackfillHeldFollowups lists in the index of held follow-ups the completed runs of the run
// list whose follow-ups are paused, once per deployment: the runs paused before the index
// existed, which nothing else lists until they are paused again. It walks the run list oldest
// first, a page per round trip, keeping its position in Redis (rkeys.FollowupsHeldBackfill),
// so a walk cut short (its context ended) goes on from there at the next call; it reports
// whether the walk is done. Calls at the same time list the same runs, which is harmless.
func (l *Ledger) BackfillHeldFollowups(ctx context.Context) (bool, error) {
	return l.backfillHeldFollowups(ctx, backfillPage)
}

// backfillHeldFollowups is BackfillHeldFollowups reading page runs per step. A run listed
// since by its pause keeps its place.
func (l *Ledger) backfillHeldFollowups(ctx context.Context, page int64) (bool, error) {
	return l.backfillIndex(ctx, "held follow-ups", rkeys.FollowupsHeldBackfill(), rkeys.FollowupsHeld(), page,
		func(zs []redis.Z) ([]redis.Z, error) {
			ids := make([]string, len(zs))
			for i, z := range zs {
				ids[i], _ = z.Member.(string)
			}
			vals, err := l.readHeld(ctx, ids)
			if err != nil {
				return nil, err
			}
			var held []redis.Z
			for i, id := range ids {
				if h, ok := heldOf(id, vals[i]); ok {
					held = append(held, redis.Z{Score: float64(h.Since.UnixMilli()), Member: id})
				}
			}
			return held, nil
		})
}
