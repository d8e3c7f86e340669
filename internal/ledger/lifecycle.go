package ledger

import (
	"context"
	_ "embed"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

//go:embed lua/resume.lua
var resumeLua string

// resumeCmd resumes a paused run. Its KEYS, ARGV and reply are documented at the top of
// lua/resume.lua.
var resumeCmd = redis.NewScript(resumeLua)

//go:embed lua/cancel.lua
var cancelLua string

// cancelCmd cancels a running or paused run. Its KEYS, ARGV and reply are documented at the top of
// lua/cancel.lua.
var cancelCmd = redis.NewScript(cancelLua)

//go:embed lua/sweep_cancelled.lua
var sweepCancelledLua string

// sweepCancelledCmd marks every planned or queued entry of one bucket of a cancelled run
// skipped(cancelled), but for an unknown recipient queued for its resend, which goes back to
// unknown. Its KEYS, ARGV and reply are documented at the top of
// lua/sweep_cancelled.lua.
var sweepCancelledCmd = redis.NewScript(luaLib + sweepCancelledLua)

// Resume resumes a paused run and its paused follow-up runs (PausedFollowups: a run-stopping
// answer to a follow-up pauses the follow-up run, which its parent's resume resumes, whatever
// the parent's own status but cancelled), and lifts a pause of a completed run's follow-ups
// (PauseFollowups); it reports whether this call resumed any of them (ResumeDetail says which).
func (l *Ledger) Resume(ctx context.Context, runID string) (bool, error) {
	res, err := l.ResumeDetail(ctx, runID)
	return res.Any(), err
}

// Resumed is what ResumeDetail resumed.
type Resumed struct {
	// Run is set when the run itself was paused and runs again.
	Run bool
	// Followups is set when a pause of the completed run's follow-ups (PauseFollowups) was
	// lifted; FollowupsReason was its reason.
	Followups       bool
	FollowupsReason string
	// Rules are the paused follow-up runs ("RUN~RULE") resumed, each with why it was paused.
	Rules []ResumedFollowup
}

// ResumedFollowup is one follow-up run Resume resumed: its rule, and why it had been paused.
type ResumedFollowup struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

// Any reports whether anything was resumed.
func (r Resumed) Any() bool { return r.Run || r.Followups || len(r.Rules) > 0 }

// ResumeDetail is Resume, saying what it resumed: the run, its follow-ups' pause, and which
// follow-up runs, so an operator who paused a rule's follow-ups by hand learns that the run's
// resume released them.
func (l *Ledger) ResumeDetail(ctx context.Context, runID string) (Resumed, error) {
	var res Resumed
	var err error
	res.Run, err = l.resumeOne(ctx, runID)
	if err != nil {
		return res, err
	}
	st, err := l.FollowupsState(ctx, runID)
	if err != nil || st.Cancelled() {
		// The follow-ups of a cancelled run, or cancelled follow-ups of a completed one, are
		// skipped whatever their status: nothing to resume.
		return res, err
	}
	if st.Run.Status == RunCompleted {
		if res.Followups, _, err = l.ResumeFollowups(ctx, runID); err != nil {
			return res, err
		}
		if res.Followups {
			res.FollowupsReason, _ = l.rdb.HGet(ctx, rkeys.Run(runID), "followups_last_reason").Result()
		}
	}
	followups, err := l.PausedFollowups(ctx, runID)
	if err != nil {
		return res, err
	}
	for _, f := range followups {
		ok, err := l.resumeOne(ctx, f.ID)
		if err != nil {
			return res, err
		}
		if ok {
			_, rule, _ := FollowupOf(f.ID)
			res.Rules = append(res.Rules, ResumedFollowup{Rule: rule, Reason: f.PauseReason})
		}
	}
	return res, nil
}

// resumeOne resumes one paused run. A follow-up run leaves FollowupsPaused first: a pause that
// comes after the resume lists it again.
func (l *Ledger) resumeOne(ctx context.Context, runID string) (bool, error) {
	if _, _, ok := FollowupOf(runID); ok {
		if err := l.rdb.ZRem(ctx, rkeys.FollowupsPaused(), runID).Err(); err != nil {
			return false, fmt.Errorf("ledger: resume run %s: %w", runID, err)
		}
	}
	prev, err := resumeCmd.Run(ctx, l.rdb, []string{rkeys.Run(runID)}, l.nowMS(), NewClaimToken()).Text()
	if err != nil {
		return false, fmt.Errorf("ledger: resume run %s: %w", runID, err)
	}
	if prev == "" {
		return false, fmt.Errorf("ledger: resume run %s: %w", runID, ErrRunNotFound)
	}
	return prev == string(RunPaused), nil
}

// Cancel cancels a running or paused run and marks every recipient not yet being sent
// skipped(cancelled). It reports whether this call cancelled the run and how many recipients
// it skipped. Sends already in flight finish normally. An unknown recipient whose one resend
// was released but not yet sent is not skipped: its first message may have gone, so the
// resend is withdrawn and it stays unknown with its code, as the run's other unknown
// recipients (history: resend_withdrawn cancelled); it is not counted as skipped. Nor is a
// recipient of an at-least-once run queued for a retry after an answer that may follow a
// message that went out (ReleaseRetryMaybeSent): it becomes unknown with that answer's code
// (history: retry_withdrawn cancelled). With an error, the first result still
// says whether the run was cancelled (the sweep, after it, is what failed): calling Cancel
// again sweeps what is left. The run's paused follow-up runs (PausedFollowups) are cancelled
// with it, as the worker skips the follow-ups of a cancelled run whatever their own status.
func (l *Ledger) Cancel(ctx context.Context, runID, reason string) (bool, int, error) {
	prev, err := cancelCmd.Run(ctx, l.rdb, []string{rkeys.Run(runID)}, reason, l.nowMS(), NewClaimToken()).Text()
	if err != nil {
		return false, 0, fmt.Errorf("ledger: cancel run %s: %w", runID, err)
	}
	if prev == "" {
		return false, 0, fmt.Errorf("ledger: cancel run %s: %w", runID, ErrRunNotFound)
	}
	cancelled := prev == string(RunRunning) || prev == string(RunPaused)
	r, err := l.GetRun(ctx, runID)
	if err != nil {
		return cancelled, 0, err
	}
	if r.Status != RunCancelled {
		return false, 0, nil
	}
	l.unlist(ctx, runID)
	followups, err := l.PausedFollowups(ctx, runID)
	if err != nil {
		return cancelled, 0, fmt.Errorf("ledger: cancel run %s: %w", runID, err)
	}
	for _, f := range followups {
		if _, _, err := l.Cancel(ctx, f.ID, reason); err != nil {
			return cancelled, 0, err
		}
	}
	// The sweep is pipelined by SHA, which cannot fall back to EVAL inside a pipeline.
	if err := sweepCancelledCmd.Load(ctx, l.rdb).Err(); err != nil {
		return cancelled, 0, fmt.Errorf("ledger: cancel run %s: %w", runID, err)
	}
	skipped := 0
	const chunk = 64
	for b := 0; b < r.Buckets; b += chunk {
		cmds := make([]*redis.Cmd, 0, chunk)
		_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := b; i < min(b+chunk, r.Buckets); i++ {
				keys := []string{rkeys.Run(runID), rkeys.Counts(runID), rkeys.Codes(runID), rkeys.LedgerBucket(runID, i),
					rkeys.History(runID, i)}
				cmds = append(cmds, sweepCancelledCmd.EvalSha(ctx, p, keys, l.nowMS()))
			}
			return nil
		})
		if err != nil {
			return cancelled, skipped, fmt.Errorf("ledger: cancel run %s: sweep: %w", runID, err)
		}
		for _, c := range cmds {
			n, _ := c.Int()
			skipped += n
		}
	}
	return cancelled, skipped, nil
}

// EachEntry calls fn for every ledger entry of a run, bucket by bucket. It reads buckets in
// pipelined chunks, so a million-recipient run costs a few thousand round trips.
func (l *Ledger) EachEntry(ctx context.Context, runID string, fn func(recipient string, bucket int, e Entry) error) error {
	r, err := l.GetRun(ctx, runID)
	if err != nil {
		return err
	}
	const chunk = 64
	for b := 0; b < r.Buckets; b += chunk {
		cmds := make([]*redis.MapStringStringCmd, 0, chunk)
		_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := b; i < min(b+chunk, r.Buckets); i++ {
				cmds = append(cmds, p.HGetAll(ctx, rkeys.LedgerBucket(runID, i)))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("ledger: read entries of run %s: %w", runID, err)
		}
		for i, c := range cmds {
			rcpts := make(map[string]string, len(c.Val())) // recipient → field
			keys := make([]string, 0, len(c.Val()))
			for f := range c.Val() {
				r := recipientOf(f)
				rcpts[r] = f
				keys = append(keys, r)
			}
			sort.Strings(keys)
			for _, k := range keys {
				e, err := decodeEntry(c.Val()[rcpts[k]])
				if err != nil {
					return fmt.Errorf("ledger: run %s bucket %d: %w", runID, b+i, err)
				}
				if err := fn(k, b+i, e); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Mismatch is a difference Verify found between a counter and the ledger.
type Mismatch struct {
	What    string `json:"what"`
	Counter int64  `json:"counter"`
	Ledger  int64  `json:"ledger"`
}

// Verification is the result of Verify.
type Verification struct {
	// Entries is the number of ledger entries read.
	Entries int64 `json:"entries"`
	// States counts the entries per state, recomputed from the ledger.
	States map[State]int64 `json:"states"`
	// Mismatches lists every counter that disagrees with the ledger; empty when all agree.
	Mismatches []Mismatch `json:"mismatches"`
	// Moving says the run changed while each of VerifyReads reads was made: its counters
	// and entries were never read at rest, so nothing was compared (Mismatches is empty).
	Moving bool `json:"moving,omitempty"`
}

// VerifyReads is how many times Verify reads a run that changes while it is read before it
// reports it Moving.
const VerifyReads = 3

// Verify recomputes a run's counters from its ledger entries and reports any disagreement.
// Skipped rows that never reach the ledger (invalid numbers, duplicates) exist only as
// counters, so for skipped it checks that the counter equals the skipped entries plus those
// rows' reason counts, and that every reason kept in entries matches its reason counter.
//
// A script moves an entry and its counters together, but the entries are read bucket by
// bucket: on a run still sending, or still taking delivery events, a read sees some moves and
// not others, which would read as mismatches that are none. So the counters are read before
// and after the entries, and only a read between which they did not change is compared; a
// run that changed during each of VerifyReads reads is reported Moving, not compared.
func (l *Ledger) Verify(ctx context.Context, runID string) (Verification, error) {
	for range VerifyReads {
		before, err := l.Counters(ctx, runID)
		if err != nil {
			return Verification{}, err
		}
		v, reasons, err := l.recount(ctx, runID)
		if err != nil {
			return v, err
		}
		c, err := l.Counters(ctx, runID)
		if err != nil {
			return v, err
		}
		if sameCounts(before, c) {
			return compareCounts(v, reasons, c), nil
		}
	}
	return Verification{States: map[State]int64{}, Mismatches: []Mismatch{}, Moving: true}, nil
}

// sameCounts reports whether two reads of a run's counters agree on every state and code.
func sameCounts(a, b Counters) bool {
	return maps.Equal(a.States, b.States) && maps.Equal(a.Codes, b.Codes)
}

// recount reads a run's entries: their number, per state, and the skipped ones per reason.
func (l *Ledger) recount(ctx context.Context, runID string) (Verification, map[string]int64, error) {
	v := Verification{States: map[State]int64{}}
	reasons := map[string]int64{}
	err := l.EachEntry(ctx, runID, func(_ string, _ int, e Entry) error {
		v.Entries++
		v.States[e.State]++
		if e.State == Skipped {
			reasons[e.Code]++
		}
		return nil
	})
	return v, reasons, err
}

// compareCounts fills v's mismatches: the counters c against the entries v counted, whose
// skipped ones have reasons.
func compareCounts(v Verification, reasons map[string]int64, c Counters) Verification {
	v.Mismatches = []Mismatch{}
	for _, s := range States {
		if s == Skipped {
			continue
		}
		if c.States[s] != v.States[s] {
			v.Mismatches = append(v.Mismatches, Mismatch{What: "state " + string(s), Counter: c.States[s], Ledger: v.States[s]})
		}
	}
	// Skipped: entries keep their reason; rows outside the ledger are counted by reason only.
	outside := int64(0)
	for k, n := range c.Codes {
		if len(k) > 8 && k[:8] == "skipped:" {
			reason := k[8:]
			if in, ok := reasons[reason]; ok {
				if in != n {
					v.Mismatches = append(v.Mismatches, Mismatch{What: "skipped reason " + reason, Counter: n, Ledger: in})
				}
				continue
			}
			outside += n
		}
	}
	for reason, in := range reasons {
		if _, ok := c.Codes["skipped:"+reason]; !ok {
			v.Mismatches = append(v.Mismatches, Mismatch{What: "skipped reason " + reason, Counter: 0, Ledger: in})
		}
	}
	if want := v.States[Skipped] + outside; c.States[Skipped] != want {
		v.Mismatches = append(v.Mismatches, Mismatch{What: "state skipped", Counter: c.States[Skipped], Ledger: want})
	}
	return v
}

// Skip marks a planned or queued recipient skipped with reason and returns the outcome it gave
// the recipient: Skipped, Unknown (below), or "" when it gave none; a recipient being sent or
// already done is left alone. A queued recipient whose one resend was released is not skipped,
// whatever the reason (cancelled, expired, capped, its window closed): its first message may
// have gone, so the resend is withdrawn and it is unknown again with the code it had, as
// Cancel does (its resend task, should it come, finds nothing to send): an outcome it had
// before, so Skip returns "". Nor is one queued for a retry after an answer that may follow a
// message that went out (ReleaseRetryMaybeSent): it becomes unknown with that answer's code,
// its history saying retry_withdrawn with reason, and Skip returns Unknown.
func (l *Ledger) Skip(ctx context.Context, a Address, reason string) (State, error) {
	r, err := l.skip(ctx, a, reason, "", false, false)
	return r.outcome(), err
}

// SkipWhileRunning is Skip for a recipient its worker decided not to send (its window closed,
// say), which only a running run may settle: while the run is paused, cancelled or completed
// a planned, queued or submitting recipient is left as it is and held is the run's status,
// so the worker holds the task (paused: a paused run's tasks are neither sent nor settled)
// or ends it as its claim would (cancelled: skipped(cancelled)). held is "" when the run is
// running (or gone); now is then the outcome the skip gave the recipient, as Skip's.
func (l *Ledger) SkipWhileRunning(ctx context.Context, a Address, reason string) (now State, held RunStatus, err error) {
	r, err := l.skip(ctx, a, reason, "", false, true)
	return r.outcome(), r.held, err
}

// SkipCancelled is the cancelled reason: what a recipient of a cancelled run, or a follow-up
// of one, is skipped with.
const SkipCancelled = "cancelled"

// SkipDeleted is the deleted reason: what a recipient whose send task an operator deleted is
// skipped with.
const SkipDeleted = "deleted"

// CodeTaskDeleted is the code of an entry made unknown because its send task was deleted
// while the entry was submitting: its claim was left by a worker that died mid-request, and
// no task is left to settle it, so the request may have gone.
const CodeTaskDeleted = "TASK_DELETED"

// CodeResendDeleted is why the resend of an unknown recipient was withdrawn when its task was
// deleted, or removed outside Herald, before it made a request (it waited: held by a paused
// run, or for a worker): the recipient is unknown again with the code it had, its history
// saying resend_withdrawn RESEND_DELETED. No worker died sending it, and the resend was never
// made, so it is not counted as resent.
const CodeResendDeleted = "RESEND_DELETED"

// TaskDeleted settles the recipient of a send task an operator deleted, so its run can still
// complete. It returns the recipient's state before the call ("" without an entry) and the
// state it moved to ("" when it did not move). A planned or queued recipient becomes
// skipped(deleted). A submitting one, and a queued one whose resend was released (its first
// message may have gone), is left alone unless claimOrphaned says no task of the recipient
// is left that could send or settle it (the caller looked); then a submitting one becomes
// unknown(TASK_DELETED), as a claim found by a redelivered task would: never skipped, since a
// request may have gone, and never sent again nor tracked for a resend, as its tasks are
// gone; and a queued one has its resend withdrawn, never sent: unknown again with the code it
// had (history resend_withdrawn RESEND_DELETED, no longer counted as resent). So a prior state
// of Submitting, or Queued with nothing moved, asks the caller to look, and Queued moved to
// Unknown is a withdrawn resend, or a withdrawn retry: a queued recipient retried after an
// answer that may follow a message that went out (ReleaseRetryMaybeSent), whose task was the
// one deleted, becomes unknown with that answer's code at once (history retry_withdrawn
// deleted), never skipped. A recipient already done is left alone.
func (l *Ledger) TaskDeleted(ctx context.Context, a Address, claimOrphaned bool) (prior, now State, err error) {
	code := ""
	if claimOrphaned {
		code = CodeTaskDeleted
	}
	r, err := l.skip(ctx, a, SkipDeleted, code, true, false)
	return r.prior, r.now, err
}

// skipResult is what skip.lua did to an entry: its state before, the state it moved to ("" when
// it did not move), the run's status when whileRunning held the skip back, and what it
// withdrew when the entry became unknown instead of skipped ("resend", "retry" or "").
type skipResult struct {
	prior, now State
	held       RunStatus
	withdrew   string
}

// outcome is the outcome the skip gave the recipient: the state it moved to, but none for a
// withdrawn resend, which leaves the recipient unknown as it was before its resend.
func (r skipResult) outcome() State {
	if r.withdrew == "resend" {
		return ""
	}
	return r.now
}

// skip runs skip.lua on a's entry: planned or queued to skipped(reason), and with
// unknownCode, submitting to unknown(unknownCode); guardResent treats a queued entry whose
// resend was released as a submitting one; whileRunning changes nothing unless the run is
// running (SkipWhileRunning).
func (l *Ledger) skip(ctx context.Context, a Address, reason, unknownCode string, guardResent, whileRunning bool) (skipResult, error) {
	field, err := l.field(ctx, a.Run, a.Recipient)
	if err != nil {
		return skipResult{}, err
	}
	return l.skipField(ctx, a.Run, a.Bucket, field, reason, unknownCode, guardResent, whileRunning)
}

// skipField is skip on the entry of ledger field field in bucket of run runID.
func (l *Ledger) skipField(ctx context.Context, runID string, bucket int, field, reason, unknownCode string, guardResent, whileRunning bool) (skipResult, error) {
	if reason == "" || strings.Contains(reason, "|") || strings.Contains(unknownCode, "|") {
		return skipResult{}, fmt.Errorf("ledger: skip: reason must be non-empty and without '|'")
	}
	keys := []string{rkeys.Run(runID), rkeys.Counts(runID), rkeys.Codes(runID), rkeys.LedgerBucket(runID, bucket),
		rkeys.History(runID, bucket)}
	guard, withdraw := "", ""
	if guardResent {
		guard = "1"
	}
	if !guardResent {
		// Not sending a released resend, for any reason, leaves its first message's
		// outcome as it was: unknown.
		withdraw = "1"
	}
	running := ""
	if whileRunning {
		running = "1"
	}
	res, err := scriptReply(skipCmd.Run(ctx, l.rdb, keys, field, reason, l.nowMS(), unknownCode, guard, withdraw, CodeResendDeleted,
		running), 5, "skip in run "+runID)
	if err != nil {
		return skipResult{}, err
	}
	r := skipResult{prior: fromLetter[replyString(res[0])]}
	if replyInt(res[1]) != 1 {
		r.held = RunStatus(replyString(res[3]))
		return r, nil
	}
	r.now, r.withdrew = fromLetter[replyString(res[2])], replyString(res[4])
	// The skip may have been the run's last entry, which completes it.
	l.unlistEnded(ctx, runID)
	return r, nil
}

// Event is one outcome in a recipient's history.
type Event struct {
	// Outcome is accepted, failed, unknown, skipped, or for a claim given back: retry
	// (transient failure), throttle (429 or pacing), hold (the run paused) or requeue (a
	// paced send came late to its slot and took a fresh one); or resend: an
	// unknown recipient was queued for its one resend after the campaign's quiet period; or
	// resend_withdrawn (Code: why, cancelled): that resend will not be sent, the recipient
	// unknown again with the code it had; or retry_maybe_sent: a retry after an answer that
	// may follow a message that went out (at-least-once), and retry_withdrawn (Code: why,
	// cancelled): that retry will not be sent, the recipient unknown with that answer's code;
	// or retries_exhausted (Code: the last attempt's answer): after such a retry the attempts
	// ran out on an answer that says nothing went, the recipient unknown with the code of the
	// earlier answer; or retry_refused (Code: Connectly's refusal): such a retry was refused
	// for a reason that may have come after that answer (an opt-out, a closed window), the
	// recipient unknown the same way.
	Outcome string    `json:"outcome"`
	Attempt int       `json:"attempt"`
	Code    string    `json:"code,omitempty"`
	At      time.Time `json:"at"`
}

// History returns a recipient's recorded outcomes, oldest first. Recipients accepted on their
// first attempt with nothing else happening have no history (their entry says it all).
func (l *Ledger) History(ctx context.Context, a Address) ([]Event, error) {
	v, ok, err := l.recipientField(ctx, a, rkeys.History(a.Run, a.Bucket), "history")
	if err != nil || !ok {
		return nil, err
	}
	var out []Event
	for _, ev := range strings.Split(v, ";") {
		parts := strings.SplitN(ev, ":", 4)
		if len(parts) != 4 {
			continue
		}
		att, _ := strconv.Atoi(parts[1])
		sec, _ := strconv.ParseInt(parts[3], 10, 64)
		outcome := parts[0]
		if st, ok := fromLetter[outcome]; ok {
			outcome = string(st)
		}
		out = append(out, Event{Outcome: outcome, Attempt: att, Code: parts[2], At: time.Unix(sec, 0).UTC()})
	}
	return out, nil
}

// SetWaiting records why the run's sends wait (a reason such as "daily tier") and until when,
// for `herald run show`. It is a note, not a state: it reads as stale once until has passed.
func (l *Ledger) SetWaiting(ctx context.Context, runID, reason string, until time.Time) error {
	err := l.rdb.HSet(ctx, rkeys.Run(runID), "waiting", reason, "waiting_until", until.UnixMilli()).Err()
	if err != nil {
		return fmt.Errorf("ledger: run %s: set waiting: %w", runID, err)
	}
	return nil
}

// WaitingNow returns the run's waiting reason if it is still current at now, else "".
func (r Run) WaitingNow(now time.Time) string {
	if r.Waiting == "" || !now.Before(r.WaitingUntil) {
		return ""
	}
	return r.Waiting
}
