package serve

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/reclaim"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/tasks"
)

// RepairKind names one way a run cannot finish on its own, which RepairRun repairs.
type RepairKind string

const (
	// RepairExpansion: a run not expanded whose expansion stopped: no task of its expansion
	// is left (in any state but completed and archived) and no server may still run one, so
	// nothing will read the rows not read yet. A new expansion step is enqueued, carrying on
	// from the run's cursors (expand.Runs.RestartExpansion); in a cancelled run it plans the
	// rows not read as skipped(cancelled), so the run's states add up to its audience.
	RepairExpansion RepairKind = "lost_expansion"
	// RepairExpansionArchived: the same, with the run's expansion task archived (its retries
	// used up): the latest one is retried.
	RepairExpansionArchived RepairKind = "expansion_archived"
	// RepairClaim: a recipient submitting (a worker claimed it) with no task of it left to
	// settle the claim, in an at-most-once run (or a cancelled one, or one whose task cannot
	// be rebuilt). Becomes unknown(TASK_DELETED): the message may have gone.
	RepairClaim RepairKind = "stranded_claim"
	// RepairClaimRequeue: the same in an at-least-once run: its send task is written again as
	// expansion wrote it (same id), and its claim sends it again, as after a dead worker's
	// task is put back: sent again rather than left unknown, at the price of a possible duplicate.
	RepairClaimRequeue RepairKind = "stranded_claim_requeued"
	// RepairResend: a recipient queued for its one resend with no task of it left: the resend
	// never made a request (it waited, held by a paused run or for a worker). It is withdrawn
	// (history resend_withdrawn RESEND_DELETED, no longer counted as resent): the recipient is
	// unknown again with the code it had, as its first message may have gone.
	RepairResend RepairKind = "stranded_resend"
	// RepairRequeue: a recipient queued, its batch written, with no task of it left. Its send
	// task is written again as expansion wrote it.
	RepairRequeue RepairKind = "lost_task"
	// RepairLost: the same, when the task cannot be rebuilt (the run's campaign or audience
	// file is gone or changed, or its row no longer holds the recipient). Becomes
	// skipped(task_lost).
	RepairLost RepairKind = "lost_task_skipped"
	// RepairCancelled: a recipient queued in a cancelled run with no task of it left. Becomes
	// skipped(cancelled), as the cancel's sweep would have made it.
	RepairCancelled RepairKind = "cancelled_queued"
	// RepairRetry: a recipient queued for a retry after an answer that may follow a message
	// that went out (at-least-once), with no task left, in a cancelled run or one whose task
	// cannot be rebuilt. Its retry is withdrawn (history retry_withdrawn): unknown with that
	// answer's code, never skipped, as the message may have gone.
	RepairRetry RepairKind = "stranded_retry"
	// RepairCounter: the run's count of unknown recipients waiting for their resend is not
	// what its resend set holds (above it, the run waits for resends nobody will make). The
	// counter is set to the set's size.
	RepairCounter RepairKind = "resend_counter"
	// RepairUnlisted: unknown recipients wait for their resend, but the run is not where the
	// resend sweep looks. It is listed there.
	RepairUnlisted RepairKind = "resend_unlisted"
	// RepairComplete: every row is terminal and nothing waits, but the run still says
	// running or paused. It is completed.
	RepairComplete RepairKind = "completion"
)

// repairKinds lists the kinds in the order a repair reports them, with what it does of each.
var repairKinds = []struct {
	kind RepairKind
	does string
}{
	{RepairExpansion, "not expanded, and no expansion task left to read the rest of the audience: a new expansion step enqueued, which carries on from the run's cursors (in a cancelled run the rows not read become skipped(cancelled))"},
	{RepairExpansionArchived, "not expanded, its expansion task archived: the task retried"},
	{RepairClaim, "submitting, no task left to settle the claim: unknown(" + ledger.CodeTaskDeleted + "), the message may have gone"},
	{RepairClaimRequeue, "submitting in an at-least-once run, no task left to settle the claim: the send task written again as expansion wrote it, which sends again (the message may have gone: a possible duplicate)"},
	{RepairResend, "queued for their resend, no task left: the resend, never sent, withdrawn (" + ledger.CodeResendDeleted + "); unknown again with the code they had, the first message may have gone"},
	{RepairRequeue, "queued, their send task gone: the task written again as expansion wrote it"},
	{RepairLost, "queued, their send task gone and not rebuildable: skipped(" + ledger.SkipTaskLost + ")"},
	{RepairCancelled, "queued in the cancelled run, no task left: skipped(cancelled)"},
	{RepairRetry, "queued for a retry after an answer that may follow a message that went out, no task left (cancelled run, or not rebuildable): the retry withdrawn; unknown with that answer's code, the message may have gone"},
	{RepairCounter, "resend_waiting is not the number of recipients waiting for their resend: set to it"},
	{RepairUnlisted, "unknown recipients wait for their resend, but the resend sweep does not look at the run: listed for it"},
	{RepairComplete, "every row terminal and nothing waiting, but not completed: completed"},
}

// RepairSamples is how many recipients a repair shows of each kind, masked.
const RepairSamples = 3

// repairPage is how many unsettled entries a repair judges at once: it reads them, looks for
// their tasks and settles them page by page, so its memory does not grow with the run.
const repairPage = 500

// RepairFinding is one kind of thing a repair found.
type RepairFinding struct {
	Kind RepairKind `json:"kind"`
	// Does says what the repair does of it.
	Does string `json:"does"`
	// Found counts the recipients found (1 for a finding of the run itself); Repaired those
	// the repair changed (0 without Apply).
	Found    int `json:"found"`
	Repaired int `json:"repaired"`
	// Samples are a few of the recipients, masked to their last 4 digits.
	Samples []string `json:"samples,omitempty"`
}

// Repair is what RepairRun found, and did with Apply.
type Repair struct {
	Run string `json:"run"`
	// Status is the run's status once repaired (as found, without Apply).
	Status  ledger.RunStatus `json:"status"`
	Applied bool             `json:"applied"`
	// Findings are the kinds found, in a fixed order; empty when the run needs no repair.
	Findings []RepairFinding `json:"findings"`
	// InFlight counts recipients with no task left whose worker may still be running it (an
	// asynq server lists it, or its lease has not run out): left alone; repair again later.
	InFlight int `json:"in_flight"`
	// Moved counts recipients left alone because they changed between the repair's read and
	// its change (a worker settled them meanwhile), or whose send task id was taken when the
	// repair wrote it (by another repair, or a completed task still kept).
	Moved int `json:"moved"`
	// NotRebuilt says why lost tasks could not be written again (RepairLost), when they could
	// not for the whole run.
	NotRebuilt string `json:"not_rebuilt,omitempty"`
}

// Repaired counts the recipients and run findings the repair changed.
func (r Repair) Repaired() int {
	n := 0
	for _, f := range r.Findings {
		n += f.Repaired
	}
	return n
}

// Detail is the repair as the audit log keeps it: what it did, by kind.
func (r Repair) Detail() string {
	var parts []string
	for _, f := range r.Findings {
		if f.Repaired > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", f.Kind, f.Repaired))
		}
	}
	if len(parts) == 0 {
		return "nothing repaired"
	}
	return strings.Join(parts, ", ")
}

// RepairParams say which run RepairRun repairs, and whether it changes anything.
type RepairParams struct {
	// Config gives the send task options of a task written again (SendTaskOptions).
	Config config.Config
	Redis  redis.UniversalClient
	Log    zerolog.Logger
	Run    string
	// Apply makes the changes; without it RepairRun changes nothing and says what it would do.
	Apply bool
	// Audit is who asks and why: an applied repair that changed something is kept in the
	// audit log as "run repair", with its counts.
	Audit audit.Record
	// Now is the clock of the ledger and of the look for tasks a worker may still be running
	// (default time.Now).
	Now func() time.Time
}

// RepairRun finds what keeps a run from ever finishing on its own, and with p.Apply repairs it:
// recipients whose tasks are all gone (removed outside Herald: a DEL, a deleted queue), left
// submitting or queued with nothing to send or settle them, a run not expanded whose expansion
// task is gone or archived (nothing would read the rest of its audience), and a run whose
// completion check never ran or whose resends nobody will make. What it does of each is
// RepairKind's.
//
// It reads the ledger bucket by bucket and judges the unsettled entries a page at a time: each
// is read, then its tasks looked for (its send task and its resend, in every send queue, in any
// state but completed: tasks.TaskLeft), then whether a worker may still be running one
// (reclaim.Running: an asynq server lists it, or its lease has not run out): such an entry is
// left alone. A settlement is one script that applies only while the entry is exactly as read
// before the look (ledger.Settle), and a task is written again only when its id is new (the
// one task writer, asynqbatch): no Herald writer but a repair (or a task delete) makes a task
// for a submitting entry, and none for a queued one of a batch already written, so what the
// look found missing stays missing, and a worker running at the same time is safe (a task a
// second repair writes for the same at-least-once claim finds its id taken, or, run after the
// first one's, finds the entry settled or sends again as at-least-once allows). A repair
// applied finds nothing to do the second time. A run that does not exist wraps
// ledger.ErrRunNotFound.
func RepairRun(ctx context.Context, p RepairParams) (Repair, error) {
	now := p.Now
	if now == nil {
		now = time.Now
	}
	l := ledger.New(p.Redis, now)
	run, err := l.GetRun(ctx, p.Run)
	if err != nil {
		return Repair{}, err
	}
	rp := &repairer{p: p, now: now, l: l, run: run, in: asynq.NewInspectorFromRedisClient(p.Redis),
		runs: Runs(p.Config, p.Redis, p.Log, SendTaskOptions(p.Config)), writer: asynqbatch.New(p.Redis),
		found: map[RepairKind]*RepairFinding{}, out: Repair{Run: run.ID, Status: run.Status, Applied: p.Apply}}
	err = rp.repair(ctx)
	res := rp.result()
	if r, gerr := l.GetRun(ctx, run.ID); gerr == nil {
		res.Status = r.Status
	}
	if !p.Apply || (err == nil && res.Repaired() == 0) {
		return res, err
	}
	if err != nil {
		// The command's context may be what ended it: the entry is written all the same.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return res, p.Audit.Failed(actx, "run repair", run.ID, fmt.Errorf("%s: %w", res.Detail(), err))
	}
	return res, p.Audit.Keep(ctx, "run repair", run.ID, res.Detail())
}

// repairer is one RepairRun.
type repairer struct {
	p      RepairParams
	now    func() time.Time
	l      *ledger.Ledger
	run    ledger.Run
	in     *asynq.Inspector
	runs   *expand.Runs
	writer asynqbatch.Writer
	ids    ledger.TaskIDs
	found  map[RepairKind]*RepairFinding
	out    Repair
}

// repair pages through the run's entries, then looks at the run itself.
func (rp *repairer) repair(ctx context.Context) error {
	var err error
	if rp.ids, err = rp.l.TaskIDs(ctx); err != nil {
		return err
	}
	page := make([]ledger.Address, 0, repairPage)
	err = rp.l.EachEntry(ctx, rp.run.ID, func(rcpt string, bucket int, e ledger.Entry) error {
		if !rp.candidate(e) {
			return nil
		}
		page = append(page, ledger.Address{Run: rp.run.ID, Bucket: bucket, Recipient: rcpt})
		if len(page) < repairPage {
			return nil
		}
		err := rp.page(ctx, page)
		page = page[:0]
		return err
	})
	if err == nil {
		err = rp.page(ctx, page)
	}
	if err != nil {
		return err
	}
	return rp.runLevel(ctx)
}

// candidate says whether an entry may be stranded: submitting, or planned or queued in a
// batch whose tasks were written (the run's expansion has finished, or moved its queued
// cursor past the row; a later row is the expansion's to write again).
func (rp *repairer) candidate(e ledger.Entry) bool {
	switch e.State {
	case ledger.Submitting:
		return true
	case ledger.Planned, ledger.Queued:
		return rp.run.Expanded || e.Row <= rp.run.QueuedTo
	}
	return false
}

// page judges one page of candidates, and with Apply repairs those stranded.
func (rp *repairer) page(ctx context.Context, addrs []ledger.Address) error {
	if len(addrs) == 0 {
		return nil
	}
	read, err := rp.l.ReadStranded(ctx, rp.run.ID, addrs)
	if err != nil {
		return err
	}
	// Only entries still unsettled and not the resend sweep's, with no task left.
	var orphans []ledger.Stranded
	for _, s := range read {
		switch s.Entry.State {
		case ledger.Planned, ledger.Queued, ledger.Submitting:
		default:
			continue // settled since the scan
		}
		if s.Waiting {
			continue
		}
		// A task naming only the run's queue, which is looked in first, passes no task over.
		left, err := tasks.TaskLeft(ctx, rp.in, rp.ids, rp.run.ID, s.Recipient, &asynq.TaskInfo{Queue: rp.run.Queue})
		if err != nil {
			return err
		}
		if !left {
			orphans = append(orphans, s)
		}
	}
	if len(orphans) == 0 {
		return nil
	}
	ids := make([]string, 0, 2*len(orphans))
	for _, s := range orphans {
		ids = append(ids, rp.ids.TaskID(rp.run.ID, s.Recipient), rp.ids.ResendTaskID(rp.run.ID, s.Recipient))
	}
	running, err := reclaim.Running(ctx, rp.p.Redis, sendQueues(), ids, rp.now())
	if err != nil {
		return err
	}
	var lost, claims []ledger.Stranded
	for i, s := range orphans {
		switch {
		case running[ids[2*i]] || running[ids[2*i+1]]:
			rp.out.InFlight++
		case s.Entry.State == ledger.Submitting && rp.run.Delivery == ledger.AtLeastOnce && rp.run.Status != ledger.RunCancelled:
			claims = append(claims, s)
		case s.Entry.State == ledger.Submitting:
			err = rp.settle(ctx, RepairClaim, s, ledger.Unknown, ledger.CodeTaskDeleted)
		case s.MaySent():
			err = rp.settle(ctx, RepairResend, s, ledger.Unknown, ledger.CodeResendDeleted)
		case rp.run.Status == ledger.RunCancelled && s.RetriedMaybeSent:
			err = rp.settle(ctx, RepairRetry, s, ledger.Skipped, "cancelled")
		case rp.run.Status == ledger.RunCancelled:
			err = rp.settle(ctx, RepairCancelled, s, ledger.Skipped, "cancelled")
		default:
			lost = append(lost, s)
		}
		if err != nil {
			return err
		}
	}
	if err := rp.requeue(ctx, lost, rebuilt{RepairRequeue, RepairLost, ledger.Skipped, ledger.SkipTaskLost}); err != nil {
		return err
	}
	return rp.requeue(ctx, claims, rebuilt{RepairClaimRequeue, RepairClaim, ledger.Unknown, ledger.CodeTaskDeleted})
}

// rebuilt says what requeue does of an entry: the kind of one whose task is written again, and
// the kind, state and code of one whose task cannot be rebuilt.
type rebuilt struct {
	written, not RepairKind
	to           ledger.State
	code         string
}

// settle counts s under kind and, with Apply, settles it.
func (rp *repairer) settle(ctx context.Context, kind RepairKind, s ledger.Stranded, to ledger.State, code string) error {
	f := rp.finding(kind, s.Recipient)
	if !rp.p.Apply {
		return nil
	}
	changed, _, err := rp.l.Settle(ctx, s, to, code)
	if err != nil {
		return err
	}
	if changed {
		f.Repaired++
	} else {
		rp.out.Moved++
	}
	return nil
}

// requeue writes the send tasks of lost recipients again, as expansion wrote them (how.written);
// those whose task cannot be rebuilt are settled as how says (queued: skipped(task_lost); a
// claim of an at-least-once run: unknown(TASK_DELETED)).
func (rp *repairer) requeue(ctx context.Context, lost []ledger.Stranded, how rebuilt) error {
	if len(lost) == 0 {
		return nil
	}
	want := make([]expand.Lost, len(lost))
	for i, s := range lost {
		want[i] = expand.Lost{Recipient: s.Recipient, Row: s.Entry.Row}
	}
	built, ok, err := rp.runs.RebuildTasks(ctx, rp.run, want)
	switch {
	case expand.Permanent(err):
		rp.out.NotRebuilt = logx.MaskDigits(err.Error())
		ok = make([]bool, len(lost))
	case err != nil:
		return fmt.Errorf("rebuild the send tasks of run %s: %w", rp.run.ID, err)
	}
	var write []asynqbatch.Task
	var writeFor []*RepairFinding
	for i, s := range lost {
		if !ok[i] {
			kind := how.not
			if s.Entry.State == ledger.Queued && s.RetriedMaybeSent {
				// The ledger makes it unknown, not skipped: counted as what it becomes.
				kind = RepairRetry
			}
			if err := rp.settle(ctx, kind, s, how.to, how.code); err != nil {
				return err
			}
			continue
		}
		f := rp.finding(how.written, s.Recipient)
		write = append(write, built[i])
		writeFor = append(writeFor, f)
	}
	if !rp.p.Apply || len(write) == 0 {
		return nil
	}
	created, err := rp.writer.Write(ctx, write, false)
	for i, c := range created {
		if c {
			writeFor[i].Repaired++
		} else {
			rp.out.Moved++
		}
	}
	if err != nil {
		return fmt.Errorf("write the send tasks of run %s again: %w", rp.run.ID, err)
	}
	return nil
}

// runLevel looks at the run itself: its expansion, its resend counter, its completion and its
// listing for the resend sweep.
func (rp *repairer) runLevel(ctx context.Context) error {
	if err := rp.expansion(ctx); err != nil {
		return err
	}
	c, err := rp.l.CompleteStalled(ctx, rp.run.ID, rp.p.Apply)
	if err != nil {
		return err
	}
	if c.Counted != c.Waiting {
		f := rp.finding(RepairCounter, "")
		if rp.p.Apply {
			f.Repaired++
		}
	}
	if c.Completes {
		f := rp.finding(RepairComplete, "")
		if rp.p.Apply {
			f.Repaired++
		}
	}
	if c.Waiting == 0 || rp.run.ResendAfter <= 0 || rp.run.Status == ledger.RunCancelled {
		return nil
	}
	listed, err := rp.l.ResendListed(ctx, rp.run.ID)
	if err != nil || listed {
		return err
	}
	f := rp.finding(RepairUnlisted, "")
	if !rp.p.Apply {
		return nil
	}
	if _, _, followup := ledger.FollowupOf(rp.run.ID); followup {
		err = rp.l.ListFollowupResends(ctx, rp.run.ID)
	} else {
		err = rp.l.ListRun(ctx, rp.run)
	}
	if err == nil {
		f.Repaired++
	}
	return err
}

// expansion looks, in a run not expanded yet (a follow-up run is never expanded), for what
// reads the rest of its audience: a task of its expansion left, or a server that may still run
// one (report.ExpansionOf). With none, the run would never finish: with Apply, its latest
// archived expansion task is retried, or, with none archived, a new step is enqueued under a
// step number no task of the run holds (expand.Runs.RestartExpansion). A chain the look missed
// (a step moving between asynq's lists as it was read twice) is not harmed by the second one:
// both carry on from the run's cursors, and a batch one plans the other steps over.
func (rp *repairer) expansion(ctx context.Context) error {
	run, err := rp.l.GetRun(ctx, rp.run.ID)
	if err != nil {
		return err
	}
	if _, _, followup := ledger.FollowupOf(run.ID); run.Expanded || followup {
		return nil
	}
	e, err := report.ExpansionOf(ctx, rp.p.Redis, run.ID, rp.now())
	if err != nil || !e.Stopped() {
		return err
	}
	if len(e.Archived) > 0 {
		f := rp.finding(RepairExpansionArchived, "")
		if !rp.p.Apply {
			return nil
		}
		err := rp.in.RunTask(campaigns.ExpandQueue, e.Archived[0])
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound):
			// Retried or deleted since the look: the next repair looks again.
		case err != nil:
			return fmt.Errorf("retry the expansion task %s of run %s: %w", e.Archived[0], run.ID, err)
		default:
			f.Repaired++
		}
		return nil
	}
	f := rp.finding(RepairExpansion, "")
	if !rp.p.Apply {
		return nil
	}
	created, err := rp.runs.RestartExpansion(ctx, run, e.Next)
	if created {
		f.Repaired++
	}
	return err
}

// finding counts one more of kind, keeping rcpt (masked) as a sample while there are few.
func (rp *repairer) finding(kind RepairKind, rcpt string) *RepairFinding {
	f := rp.found[kind]
	if f == nil {
		f = &RepairFinding{Kind: kind}
		rp.found[kind] = f
	}
	f.Found++
	if rcpt != "" && len(f.Samples) < RepairSamples {
		f.Samples = append(f.Samples, logx.Phone(rcpt))
	}
	return f
}

// result is the repair's findings in their fixed order.
func (rp *repairer) result() Repair {
	out := rp.out
	out.Findings = []RepairFinding{}
	for _, k := range repairKinds {
		if f := rp.found[k.kind]; f != nil {
			f.Does = k.does
			out.Findings = append(out.Findings, *f)
		}
	}
	return out
}

// sendQueues are Herald's send queues, sorted.
func sendQueues() []string { return slices.Sorted(maps.Keys(campaigns.Queues)) }
