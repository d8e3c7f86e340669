package expand

import (
	"context"
	"errors"
	"fmt"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// ErrNothingToRetry is wrapped by RetryRun when no recipient of the parent run matches.
var ErrNothingToRetry = errors.New("no recipients matching the filter; nothing to retry")

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
}

// Retried is what RetryRun did.
type Retried struct {
	Parent, Child ledger.Run
	// Picked counts the recipients picked from the parent's ledger; ByCode counts them by
	// "<state>:<code>".
	Picked int
	ByCode map[string]int
	// Stats are the child run's expansion: Rows are the picked recipients still in the
	// audience, Planned those that got a task.
	Stats Stats
}

// RetryRun starts a child run, linked to its parent, that sends again to exactly the
// recipients of a finished run that p picks, expanded from the campaign the parent was
// started from and written through the same task writer as every run. It refuses a parent
// still running, a campaign that now names another template or language, and a filter that
// picks nobody (wrapping ErrNothingToRetry); a parent that does not exist wraps
// ledger.ErrRunNotFound.
func (r *Runs) RetryRun(ctx context.Context, p RetryParams) (Retried, error) {
	parent, err := r.ledger.GetRun(ctx, p.Parent)
	if err != nil {
		return Retried{}, err
	}
	out := Retried{Parent: parent, ByCode: map[string]int{}}
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
	exp := r.expander(0, nil)
	child, err := exp.createRun(ctx, def, parent.Sender, newRun{id: NewRunID(def.ID, r.deps.Now()) + "-retry", parent: parent.ID, version: parent.Version})
	if err != nil {
		return out, err
	}
	out.Child = child
	out.Stats, err = exp.ExpandOnly(ctx, def, child, func(rcpt string) bool { return picked[rcpt] })
	if err != nil {
		return out, fmt.Errorf("expand retry run %s: %w", child.ID, err)
	}
	return out, nil
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
