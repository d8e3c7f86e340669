package expand

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// ErrNothingToRetry is wrapped by RetryRun when no recipient of the parent run matches.
var ErrNothingToRetry = errors.New("no recipients matching the filter; nothing to retry")

// ErrRetried is wrapped by RetryRun when the parent was retried already by a run that sends
// again to some of the recipients this retry would pick: retry that run instead, once it has
// finished.
var ErrRetried = errors.New("already retried")

// RetryParams say which recipients of a finished run RetryRun sends to again.
type RetryParams struct {
	// Parent is the run whose recipients are retried.
	Parent string
	// Codes picks failures with these codes; when empty, Class picks them.
	Codes []string
	// AnyClass picks every failure; otherwise Class (under Table) does.
	AnyClass bool
	Class    connectly.Class
	Table    *connectly.Table
	// IncludeUnknown also picks recipients whose outcome is unknown (they may have received
	// the first message).
	IncludeUnknown bool
	// Started, when set, is told the child run once it exists and its expansion task is
	// enqueued, before any of it is expanded here.
	Started func(child ledger.Run)
}

// Retried is what RetryRun did.
type Retried struct {
	Parent, Child ledger.Run
	// Picked counts the recipients picked from the parent's ledger; ByCode counts them by
	// "<state>:<code>".
	Picked int
	ByCode map[string]int
	// Stats are the child run's expansion in the call: Rows are the audience rows of the
	// picked recipients (a duplicate row too; all of the audience's when not Continues),
	// Planned those that got a task.
	Stats Stats
	// Recipients counts the picked recipients the call found in the audience, each once
	// however many rows name it: when not Continues, Picked - Recipients are no longer in the
	// audience file.
	Recipients int
	// Continues says the child's backlog filled and its expansion task carries it on.
	Continues bool
}

// retryStarting is how long a retry recorded on its parent whose child run does not exist
// yet is taken as being started (its child about to be created), not as one that died first.
const retryStarting = time.Minute

// RetryRun starts a child run, linked to its parent, that sends again to exactly the
// recipients of a finished run that p picks, expanded from the campaign the parent was
// started from and written through the same task writer as every run. It refuses a parent
// still running, a campaign that now names another template or language, a filter that
// picks nobody (wrapping ErrNothingToRetry), and a parent already retried by a run that
// sends to some of the same recipients (wrapping ErrRetried: retry that run instead) and a
// follow-up run (RUN~RULE); a parent that does not exist wraps ledger.ErrRunNotFound.
//
// The child keeps the recipients it picked in Redis and is recorded on its parent before it
// is created. It is expanded as a run of campaign send is: its next expansion step is
// enqueued first, then one backlog of it is expanded here, and the expansion task carries on
// from the cursors whatever stops the command. With an error, out.Child is set once the
// child exists.
func (r *Runs) RetryRun(ctx context.Context, p RetryParams) (Retried, error) {
	parent, err := r.ledger.GetRun(ctx, p.Parent)
	if err != nil {
		return Retried{}, err
	}
	out := Retried{Parent: parent, ByCode: map[string]int{}}
	if follows, rule, ok := ledger.FollowupOf(parent.ID); ok {
		// It never finishes, and its sends answer replies: a later copy could answer a reply
		// the customer has moved on from.
		return out, fmt.Errorf("run %s is the follow-up run of on_reply rule %s of run %s: follow-up runs cannot be retried, "+
			"as each send answers a reply; herald recipient explain %s NUMBER shows a recipient's follow-up, and herald message send "+
			"answers one by hand", parent.ID, rule, follows, follows)
	}
	if parent.Status != ledger.RunCompleted && parent.Status != ledger.RunCancelled {
		return out, fmt.Errorf("run %s is %s: retry its failures once it has finished", parent.ID, parent.Status)
	}
	def, err := r.SourceOf(ctx, parent)
	if err != nil {
		return out, err
	}
	if def.Template.Name != parent.Template || def.Template.Language != parent.Language {
		return out, fmt.Errorf("%s now sends %s/%s, but run %s sent %s/%s: refusing to retry with another template",
			parent.Definition, def.Template.Name, def.Template.Language, parent.ID, parent.Template, parent.Language)
	}
	picked, err := r.pick(ctx, parent.ID, p, out.ByCode)
	if err != nil {
		return out, err
	}
	out.Picked = len(picked)
	if len(picked) == 0 {
		return out, fmt.Errorf("run %s has %w", parent.ID, ErrNothingToRetry)
	}
	rcpts := slices.Sorted(maps.Keys(picked))
	exp := r.expander(0, nil)
	n := newRun{id: NewRunID(def.ID, r.deps.Now()) + "-retry", parent: parent.ID, version: parent.Version, source: parent.Source, picked: rcpts}
	prepared, err := exp.prepareRun(def, parent.Sender, n)
	if err != nil {
		return out, err
	}
	// The child's next step exists before the child does (see StartRun), and before the
	// parent records it: a retry that could not enqueue it leaves no trace.
	next := campaigns.ExpandPayload{Run: prepared.ID, Campaign: prepared.Campaign, Version: prepared.Version, Trigger: "retry", Seq: 1}
	if err := r.handOver(ctx, next); err != nil {
		return out, err
	}
	// Recorded on the parent first, the child is created right after: a retry started
	// meanwhile is checked again, and one that dies between the two leaves a record of no run.
	for try := 0; ; try++ {
		checked, err := r.checkRetries(ctx, parent, rcpts)
		if err != nil {
			r.withdrawUnborn(next)
			return out, err
		}
		ok, err := r.ledger.MarkRetry(ctx, parent.ID, checked, n.id)
		if err != nil {
			r.withdrawUnborn(next)
			return out, err
		}
		if ok {
			break
		}
		if try == 10 {
			r.withdrawUnborn(next)
			return out, fmt.Errorf("run %s is being retried concurrently; try again", parent.ID)
		}
		if parent, err = r.ledger.GetRun(ctx, parent.ID); err != nil {
			r.withdrawUnborn(next)
			return out, err
		}
	}
	child, err := exp.storeRun(ctx, def, prepared, n)
	if err != nil {
		// The child, recorded on its parent, may be stored: its step then carries it on, so
		// it finishes and can be retried in turn.
		return out, r.createFailed(next, err)
	}
	out.Child = child
	backlog := r.backlogOf(def, parent.Sender)
	if p.Started != nil {
		p.Started(child)
	}
	// The step enqueued above may start while this expansion still runs (see StartRun).
	cexp := r.expander(backlog, nil)
	cexp.cfg.Checked = true
	found := make(map[string]bool, len(picked))
	out.Stats, err = cexp.ExpandOnly(ctx, def, child, func(rcpt string) bool {
		if !picked[rcpt] {
			return false
		}
		found[rcpt] = true
		return true
	})
	out.Recipients = len(found)
	switch {
	case err == nil:
		r.withdraw(child.ID, 1)
		return out, nil
	case errors.Is(err, ErrBacklogFull) || errors.Is(err, ledger.ErrStaleBatch):
		out.Continues = true
		return out, nil
	}
	out.Continues = true
	return out, r.stopped(ctx, child, err)
}

// checkRetries checks the retries recorded on parent against rcpts, the recipients a new
// retry picked, and returns the children it checked: it refuses (wrapping ErrRetried) when
// one of them sends to some of rcpts, or (a retry being started) when one recorded less than
// a minute ago does not exist yet. A recorded child that does not exist, older than that, is
// a retry that died before it created its run: it sends to no one.
func (r *Runs) checkRetries(ctx context.Context, parent ledger.Run, rcpts []string) ([]string, error) {
	checked := make([]string, 0, len(parent.RetriedBy))
	for _, m := range parent.RetriedBy {
		child, err := r.ledger.GetRun(ctx, m.Child)
		switch {
		case errors.Is(err, ledger.ErrRunNotFound):
			if r.deps.Now().Sub(m.At) < retryStarting {
				return nil, fmt.Errorf("run %s is being retried by run %s, which is starting: try again in a minute", parent.ID, m.Child)
			}
		case err != nil:
			return nil, err
		default:
			common, err := r.sendsTo(ctx, child, rcpts)
			if err != nil {
				return nil, err
			}
			if common > 0 {
				return nil, fmt.Errorf("run %s was %w by run %s (%s), which sends again to %d of the %d recipients this retry picks: "+
					"retry %s instead once it has finished (herald run retry %s)", parent.ID, ErrRetried, child.ID, child.Status,
					common, len(rcpts), child.ID, child.ID)
			}
		}
		checked = append(checked, m.Child)
	}
	return checked, nil
}

// sendsTo counts the recipients of rcpts that retry run child sends to, has sent to, or may
// still send to: those of its pick set, or for a cancelled child, those whose entry is neither
// skipped(cancelled) nor waiting to be with no request made yet (planned, or queued with no
// attempt: the cancel sweeps them to skipped(cancelled)); rows it never planned will be
// skipped(cancelled) too. A queued entry with attempts may have sent its message (the resend of
// an unknown recipient, which the sweep turns back to unknown; an at-least-once retry after an
// answer that left it open): it counts until the sweep has settled it. A child cancelled before
// it sent anything (its expansion task could not be enqueued, say) sends to no one.
func (r *Runs) sendsTo(ctx context.Context, child ledger.Run, rcpts []string) (int, error) {
	if child.Status != ledger.RunCancelled {
		return r.ledger.PickOverlap(ctx, child.ID, rcpts)
	}
	n := 0
	for i := 0; i < len(rcpts); i += 1000 {
		part := rcpts[i:min(i+1000, len(rcpts))]
		addrs := make([]ledger.Address, len(part))
		for j, rcpt := range part {
			addrs[j] = ledger.AddressIn(child.ID, rcpt, child.Buckets)
		}
		entries, err := r.ledger.Entries(ctx, addrs)
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			switch {
			case e.State == "", e.State == ledger.Planned, e.State == ledger.Queued && e.Attempts == 0:
			case e.State == ledger.Skipped && e.Code == "cancelled":
			default:
				n++
			}
		}
	}
	return n, nil
}

// pick reads the parent's ledger and returns the recipients p picks, counting them into
// byCode.
func (r *Runs) pick(ctx context.Context, parentID string, p RetryParams, byCode map[string]int) (map[string]bool, error) {
	codes := map[string]bool{}
	for _, c := range p.Codes {
		codes[c] = true
	}
	picked := map[string]bool{}
	err := r.ledger.EachEntry(ctx, parentID, func(rcpt string, _ int, e ledger.Entry) error {
		ok := false
		switch e.State {
		case ledger.Failed:
			switch {
			case len(codes) > 0:
				ok = codes[e.Code]
			case p.AnyClass:
				ok = true
			default:
				ok = p.Table.ClassOf(e.Code) == p.Class
			}
		case ledger.Unknown:
			ok = p.IncludeUnknown
		}
		if ok {
			picked[rcpt] = true
			byCode[string(e.State)+":"+e.Code]++
		}
		return nil
	})
	return picked, err
}
