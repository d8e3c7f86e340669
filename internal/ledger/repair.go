package ledger

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// The repair of runs that cannot finish on their own (herald run repair): entries no task will
// ever send or settle, and runs whose completion check never ran. Finding the entries' tasks
// is the caller's (they are asynq's, in other Cluster slots); the ledger reads an entry before
// that look (Stranded), and settles it only while it is still exactly as read (Settle).

//go:embed lua/repair_settle.lua
var repairSettleLua string

// repairSettleCmd settles one entry no task will send or settle, while it is still as read.
// Its KEYS, ARGV and reply are documented at the top of lua/repair_settle.lua.
var repairSettleCmd = redis.NewScript(luaLib + repairSettleLua)

//go:embed lua/repair_complete.lua
var repairCompleteLua string

// repairCompleteCmd completes a run whose completion check never ran. Its KEYS, ARGV and
// reply are documented at the top of lua/repair_complete.lua.
var repairCompleteCmd = redis.NewScript(luaLib + repairCompleteLua)

// SkipTaskLost is the reason of a recipient skipped by a repair: it was queued, its send task
// was gone, and the task could not be written again as expansion wrote it (the run's campaign
// or audience file is gone or changed, or its row no longer holds the recipient).
const SkipTaskLost = "task_lost"

// Stranded is an unsettled entry as ReadStranded read it: what a repair judges, and what
// Settle requires unchanged.
type Stranded struct {
	Address
	Entry Entry
	// Resent says its history holds its one resend: a queued entry whose first message may
	// have gone.
	Resent bool
	// RetriedMaybeSent says its history holds a retry after an answer that may follow a
	// message that went out (ReleaseRetryMaybeSent): a queued entry of an at-least-once run
	// whose earlier attempt may have sent. Its task is lost like any other (written again, as
	// expansion wrote it, when it can be), but Settle never makes it skipped: asked to, it
	// settles it unknown with that answer's code (history retry_withdrawn REASON).
	RetriedMaybeSent bool
	// Waiting says it is in its run's resend set: the resend sweep's to settle or resend.
	Waiting bool
	// raw is the entry as read; field its ledger field ("" when the entry does not exist).
	raw, field string
}

// MaySent reports whether a request of the entry may have gone: it is submitting (a claim is
// out), or queued after its resend was released. A queued entry retried after a maybe-sent
// answer (RetriedMaybeSent) is not counted here: its retry task, lost, is written again as
// any lost task is, and Settle turns a skip of it into unknown.
func (s Stranded) MaySent() bool {
	return s.Entry.State == Submitting || (s.Entry.State == Queued && s.Resent)
}

// ReadStranded reads the entries at addrs (all of one run), with whether each had its resend
// and waits in the run's resend set, in one round trip. An address without an entry reads with
// no State.
func (l *Ledger) ReadStranded(ctx context.Context, runID string, addrs []Address) ([]Stranded, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	format, err := l.formatOf(ctx, runID)
	if err != nil {
		return nil, err
	}
	type reads struct{ entry, history *redis.StringCmd }
	cmds := make([]reads, len(addrs))
	waiting := make([]*redis.FloatCmd, len(addrs))
	out := make([]Stranded, len(addrs))
	_, err = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, a := range addrs {
			if a.Run != runID {
				return fmt.Errorf("ledger: read entries of run %s: an address of run %s", runID, a.Run)
			}
			f := format.field(a.Recipient)
			out[i] = Stranded{Address: a, field: f}
			cmds[i] = reads{p.HGet(ctx, rkeys.LedgerBucket(runID, a.Bucket), f), p.HGet(ctx, rkeys.History(runID, a.Bucket), f)}
			waiting[i] = p.ZScore(ctx, rkeys.Unknown(runID), resendMember(a.Bucket, f))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("ledger: read entries of run %s: %w", runID, err)
	}
	for i := range out {
		raw, err := cmds[i].entry.Result()
		switch {
		case errors.Is(err, redis.Nil):
			out[i].field = ""
			continue
		case err != nil:
			return nil, fmt.Errorf("ledger: read entries of run %s: %w", runID, err)
		}
		if out[i].Entry, err = decodeEntry(raw); err != nil {
			return nil, fmt.Errorf("ledger: run %s bucket %d: %w", runID, addrs[i].Bucket, err)
		}
		out[i].raw = raw
		h, herr := cmds[i].history.Result()
		_, werr := waiting[i].Result()
		for _, e := range []error{herr, werr} {
			if e != nil && !errors.Is(e, redis.Nil) {
				return nil, fmt.Errorf("ledger: read entries of run %s: %w", runID, e)
			}
		}
		out[i].Resent = herr == nil && hasResend(h)
		out[i].RetriedMaybeSent = herr == nil && hasRetryMaybeSent(h)
		out[i].Waiting = werr == nil
	}
	return out, nil
}

// hasResend reports whether a history value holds the entry's one resend (lib.lua's
// resent_before).
func hasResend(h string) bool { return strings.Contains(";"+h, ";resend:") }

// hasRetryMaybeSent reports whether a history value holds a retry after a maybe-sent answer
// (lib.lua's maybe_sent_before).
func hasRetryMaybeSent(h string) bool {
	return strings.Contains(";"+h, ";"+string(ReleaseRetryMaybeSent)+":")
}

// Settle settles an entry no task will send or settle any more, as read by ReadStranded, and
// reports whether it did and whether that completed the run. to is Unknown, with code, for an
// entry whose request may have gone (MaySent: CodeTaskDeleted, as a deleted task's orphaned
// claim is settled; for a queued entry whose resend was released, code is why its resend is
// withdrawn, CodeResendDeleted: it is unknown again with the code it had, no longer counted as
// resent, as its resend never made a request), or Skipped, with reason, for one never sent; a
// queued entry retried after a maybe-sent answer (RetriedMaybeSent), whether to is Skipped or
// Unknown, becomes unknown with that answer's code, code or reason being why its retry was
// withdrawn (history retry_withdrawn), as its recipient may hold the message. Nothing changes when the
// entry is no longer exactly as read (claimed, settled or given back since), waits in the
// resend set, or is not in a state to settle so.
func (l *Ledger) Settle(ctx context.Context, s Stranded, to State, code string) (changed, completed bool, err error) {
	if (to != Unknown && to != Skipped) || code == "" || strings.Contains(code, "|") {
		return false, false, fmt.Errorf("ledger: settle: want unknown or skipped with a code without '|', not %s(%s)", to, code)
	}
	if s.field == "" {
		return false, false, nil
	}
	runID := s.Run
	keys := []string{rkeys.Run(runID), rkeys.Counts(runID), rkeys.Codes(runID), rkeys.LedgerBucket(runID, s.Bucket),
		rkeys.History(runID, s.Bucket), rkeys.Unknown(runID)}
	res, err := scriptReply(repairSettleCmd.Run(ctx, l.rdb, keys, s.field, s.raw, to.Letter(), code, l.nowMS(),
		resendMember(s.Bucket, s.field)), 2, "settle an entry of run "+runID)
	if err != nil {
		return false, false, err
	}
	changed, completed = replyInt(res[0]) == 1, replyInt(res[1]) == 1
	if completed {
		l.unlist(ctx, runID)
	}
	return changed, completed, nil
}

// Completion is what CompleteStalled found of a run's completion.
type Completion struct {
	// Counted is the run's resend_waiting counter, Waiting the members of its resend set: a
	// counter above the set waits for resends that will never come.
	Counted, Waiting int64
	// Completes says the run completed (applied), or would (not applied): every row is
	// terminal and nothing waits, though it still says running or paused.
	Completes bool
}

// CompleteStalled completes a running or paused run whose rows are all terminal and which
// nothing waits for, though it was not marked completed (the check that completes a run ran
// in no script since), first setting its resend_waiting counter to the members of its resend
// set when they differ. With apply false it changes nothing and says what it would do.
func (l *Ledger) CompleteStalled(ctx context.Context, runID string, apply bool) (Completion, error) {
	flag := "0"
	if apply {
		flag = "1"
	}
	res, err := scriptReply(repairCompleteCmd.Run(ctx, l.rdb, []string{rkeys.Run(runID), rkeys.Counts(runID), rkeys.Unknown(runID)},
		l.nowMS(), flag), 3, "complete run "+runID)
	if err != nil {
		return Completion{}, err
	}
	c := Completion{Counted: replyInt(res[0]), Waiting: replyInt(res[1]), Completes: replyInt(res[2]) == 1}
	if apply && c.Completes {
		l.unlist(ctx, runID)
	}
	return c, nil
}

// ResendListed reports whether run is where the resend sweep looks for runs with unknown
// recipients to resend (ResendRuns).
func (l *Ledger) ResendListed(ctx context.Context, runID string) (bool, error) {
	ok, err := l.rdb.SIsMember(ctx, rkeys.ResendRuns(), runID).Result()
	if err != nil {
		return false, fmt.Errorf("ledger: is run %s listed for its resends: %w", runID, err)
	}
	return ok, nil
}
