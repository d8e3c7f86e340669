package ledger

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// The resend of unknown recipients (a campaign's unknown.resend_after).
//
// When an entry of such a run becomes unknown (Finish with State Unknown and the task's
// Payload), the finish script also puts it in the run's resend set (rkeys.Unknown), scored by
// when its quiet period ends, with its payload beside it; the run counts it in resend_waiting
// and does not complete while anything waits. A delivery event that settles the entry takes it
// out again. Workers sweep: LeaseUnknown takes the due members of a run (moving their score to
// the end of a lease, so no other sweeper takes them), ReleaseForResend checks each entry is
// still unknown and never resent and moves it to queued with a "resend" event in its history,
// the caller enqueues the resend task, and ResendEnqueued removes the member. A sweeper that
// dies in between leaves the member leased; when the lease ends it is taken again, and the
// entry, already queued for its resend, is handed out again under the same task id.

//go:embed lua/resend_lease.lua
var resendLeaseLua string

//go:embed lua/resend_release.lua
var resendReleaseLua string

//go:embed lua/resend_done.lua
var resendDoneLua string

var (
	resendLeaseCmd   = redis.NewScript(resendLeaseLua)
	resendReleaseCmd = redis.NewScript(luaLib + resendReleaseLua)
	resendDoneCmd    = redis.NewScript(luaLib + resendDoneLua)
)

// resendMember is a recipient's member in its run's resend set: "<bucket>:<ledger field>".
func resendMember(bucket int, field string) string { return strconv.Itoa(bucket) + ":" + field }

// parseResendMember splits a resend-set member into its bucket and ledger field.
func parseResendMember(m string) (int, string, error) {
	b, field, ok := strings.Cut(m, ":")
	n, err := strconv.Atoi(b)
	if !ok || err != nil || n < 0 || field == "" {
		return 0, "", fmt.Errorf("ledger: malformed resend member %q", logx.Phone(m))
	}
	return n, field, nil
}

// shownMember is a resend-set member for an error: its bucket and its recipient masked
// (logx.Phone), as every log shows a recipient. The worker logs these errors.
func shownMember(m string) string {
	b, field, ok := strings.Cut(m, ":")
	if !ok {
		return logx.Phone(m)
	}
	return b + ":" + logx.Phone(recipientOf(field))
}

// ResendRuns lists the runs whose campaign resends unknown recipients and which may still have
// some to resend.
func (l *Ledger) ResendRuns(ctx context.Context) ([]string, error) {
	ids, err := l.rdb.SMembers(ctx, rkeys.ResendRuns()).Result()
	if err != nil {
		return nil, fmt.Errorf("ledger: list runs that resend unknown recipients: %w", err)
	}
	return ids, nil
}

// ListFollowupResends lists follow-up run run (FollowupRun) where the resend sweep finds it
// (ResendRuns), for a parent whose campaign resends unknown recipients. A follow-up run is
// created by its first entry and never finishes, so it is not listed with its run (ListRun),
// nor for good: the receiver lists it each time it writes an entry's task (an entry cannot
// become unknown before its task exists; a receiver that dies first leaves the entry in the
// outbox, whose sweep lists it again), and LeaseUnknown drops it once none of its entries is
// queued, being sent or waiting for its resend.
func (l *Ledger) ListFollowupResends(ctx context.Context, run string) error {
	if _, _, ok := FollowupOf(run); !ok {
		return fmt.Errorf("ledger: list %s for its resends: not a follow-up run", run)
	}
	if err := l.rdb.SAdd(ctx, rkeys.ResendRuns(), run).Err(); err != nil {
		return fmt.Errorf("ledger: list %s for its resends: %w", run, err)
	}
	return nil
}

// relistFollowup lists a follow-up run for the resend sweep again once one of its entries
// became unknown (a run of another kind is listed for its whole life). The receiver lists the
// run before writing each task, and the sweep drops it once nothing of it is left to send and
// looks again; a sweeper that stopped between the two would leave an entry written in
// between unlisted, so whoever makes an entry wait for its resend lists its run too. An error
// is let go: the outcome is written, and the receiver's next task lists the run again.
func (l *Ledger) relistFollowup(ctx context.Context, runID string) {
	if _, _, ok := FollowupOf(runID); ok {
		_ = l.ListFollowupResends(ctx, runID)
	}
}

// LeaseUnknown leases up to n members of a run's resend set whose quiet period has passed
// (every member, when the run was cancelled) to the caller for lease: no other caller gets
// them until the lease ends. gone reports that the run needs no more sweeping (it has finished
// with nothing waiting, or no longer exists; a follow-up run, which never finishes, once none
// of its entries is queued, being sent or waiting); it is then dropped from ResendRuns.
//
// A follow-up run may get a new entry at any time, listed again by ListFollowupResends after
// the entry is written: so after dropping one, LeaseUnknown looks again, and lists it back
// when an entry came meanwhile (a listing that came before the drop would be lost with it).
func (l *Ledger) LeaseUnknown(ctx context.Context, runID string, n int, lease time.Duration) (members []string, gone bool, err error) {
	_, _, followup := FollowupOf(runID)
	members, gone, err = l.leaseUnknown(ctx, runID, n, lease, followup)
	if err != nil || !gone {
		return members, gone, err
	}
	if err := l.rdb.SRem(ctx, rkeys.ResendRuns(), runID).Err(); err != nil {
		return nil, true, fmt.Errorf("ledger: forget run %s: %w", runID, err)
	}
	if !followup {
		return nil, true, nil
	}
	if members, gone, err = l.leaseUnknown(ctx, runID, n, lease, true); err != nil || gone {
		return members, gone, err
	}
	if err := l.ListFollowupResends(ctx, runID); err != nil {
		return nil, false, err
	}
	return members, false, nil
}

// leaseUnknown runs the lease script once; followup says runID is a follow-up run.
func (l *Ledger) leaseUnknown(ctx context.Context, runID string, n int, lease time.Duration, followup bool) ([]string, bool, error) {
	now := l.nowMS()
	fu := "0"
	if followup {
		fu = "1"
	}
	res, err := resendLeaseCmd.Run(ctx, l.rdb, []string{rkeys.Run(runID), rkeys.Unknown(runID), rkeys.Counts(runID)},
		now, now+lease.Milliseconds(), n, fu).Slice()
	if err != nil {
		return nil, false, fmt.Errorf("ledger: lease unknown recipients of run %s: %w", runID, err)
	}
	if len(res) == 0 {
		return nil, false, fmt.Errorf("ledger: lease unknown recipients of run %s: empty reply", runID)
	}
	if replyInt(res[0]) == 1 {
		return nil, true, nil
	}
	var members []string
	for _, v := range res[1:] {
		if m, ok := v.(string); ok {
			members = append(members, m)
		}
	}
	return members, false, nil
}

// ResendVerdict is what ReleaseForResend did with a leased member.
type ResendVerdict string

const (
	// ResendEnqueue: the entry is queued for its one resend; enqueue the task and then call
	// ResendEnqueued.
	ResendEnqueue ResendVerdict = "enqueue"
	// ResendGone: the member is no longer in the set (another sweeper finished it).
	ResendGone ResendVerdict = "gone"
	// ResendSettled: the entry is no longer unknown (a delivery event settled it, or its
	// resend is already under way); the member was removed.
	ResendSettled ResendVerdict = "settled"
	// ResendAlready: the entry had its one resend already; the member was removed.
	ResendAlready ResendVerdict = "resent"
	// ResendCancelled: the run was cancelled; the entry stays unknown and the member was
	// removed.
	ResendCancelled ResendVerdict = "cancelled"
	// ResendNoPayload: the task payload was not kept, so no resend can be built; the entry
	// stays unknown and the member was removed.
	ResendNoPayload ResendVerdict = "nopayload"
	// ResendNoEntry: the run or the entry no longer exists; the member was removed.
	ResendNoEntry ResendVerdict = "noentry"
	// ResendNoRun: the run no longer exists; the member was removed.
	ResendNoRun ResendVerdict = "norun"
)

// ReleaseForResend checks, in one step, that a leased member's entry is still unknown, was
// never resent and its run is not cancelled, and if so moves it to queued, counts it in
// resent_unknown and records a "resend" event in its history. It returns the verdict and, for
// ResendEnqueue, the send task's payload. An entry already queued for its resend (the caller
// of an earlier lease died before ResendEnqueued) is handed out again.
func (l *Ledger) ReleaseForResend(ctx context.Context, runID, member string) (ResendVerdict, []byte, error) {
	bucket, field, err := parseResendMember(member)
	if err != nil {
		return "", nil, err
	}
	keys := []string{rkeys.Run(runID), rkeys.Counts(runID), rkeys.LedgerBucket(runID, bucket),
		rkeys.History(runID, bucket), rkeys.Unknown(runID), rkeys.UnknownPayloads(runID)}
	// The reply holds the task's payload, with the recipient: a reply of the wrong shape is
	// reported by its length, never printed (scriptReply would print it).
	what := "release run " + runID + " member " + shownMember(member) + " for its resend"
	res, err := resendReleaseCmd.Run(ctx, l.rdb, keys, member, field, l.nowMS()).Slice()
	if err != nil {
		return "", nil, fmt.Errorf("ledger: %s: %w", what, err)
	}
	if len(res) != 2 {
		return "", nil, fmt.Errorf("ledger: %s: unexpected reply of %d values, want 2", what, len(res))
	}
	verdict := ResendVerdict(replyString(res[0]))
	if verdict == ResendEnqueue {
		return ResendEnqueue, []byte(replyString(res[1])), nil
	}
	if verdict != ResendGone {
		// The member left the resend set, which may have been the last thing the run waited
		// for: the run may have completed.
		l.unlistEnded(ctx, runID)
	}
	return verdict, nil, nil
}

// ForgoResend takes a member out of its run's resend set without a resend, its entry left
// unknown: for a follow-up run whose parent was cancelled, as a cancelled run's own unknown
// recipients are never resent (resend_release.lua reads only the follow-up run's status;
// the parent's keys are in another slot). An entry already queued for its resend (a sweep
// released it before the cancel, and stopped before its task was written) has the resend
// withdrawn, unknown again with its code, as the worker's gate would do to its task (Skip
// with SkipCancelled).
func (l *Ledger) ForgoResend(ctx context.Context, runID, member string) error {
	bucket, field, err := parseResendMember(member)
	if err != nil {
		return err
	}
	if _, err := l.skipField(ctx, runID, bucket, field, SkipCancelled, "", false, false); err != nil {
		return fmt.Errorf("ledger: run %s: forgo the resend of %s: %w", runID, shownMember(member), err)
	}
	return l.ResendEnqueued(ctx, runID, member)
}

// ResendEnqueued takes a member out of its run's resend set once its resend task exists.
func (l *Ledger) ResendEnqueued(ctx context.Context, runID, member string) error {
	keys := []string{rkeys.Run(runID), rkeys.Counts(runID), rkeys.Unknown(runID), rkeys.UnknownPayloads(runID)}
	n, err := resendDoneCmd.Run(ctx, l.rdb, keys, member, l.nowMS()).Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("ledger: run %s: resend of %s enqueued: %w", runID, shownMember(member), err)
	}
	if n == 1 {
		// The member left the resend set, which may have completed the run.
		l.unlistEnded(ctx, runID)
	}
	return nil
}
