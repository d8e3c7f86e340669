package serve

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
)

// An operator's actions on runs and submitted campaigns. Each takes the audit.Record of who
// acts and why and keeps its own entry in the audit log once it has acted (tasks does the
// same for queues and tasks), so that no caller can take one and forget the entry.

// RunChange is what a change of a run's status (PauseRun, ResumeRun, CancelRun) did.
type RunChange struct {
	// Changed is false when the run's status did not allow the change. Status is the run's
	// status: after the change when Changed ("" when it could not be read), else the one
	// that refused it.
	Changed bool
	Status  ledger.RunStatus
	// Detail is what the change did, as the audit log keeps it (CancelRun: "N recipients
	// skipped"; "" for the others).
	Detail string
}

// ChangeRun is one of PauseRun, ResumeRun and CancelRun.
type ChangeRun func(ctx context.Context, rdb redis.UniversalClient, run string, rec audit.Record) (RunChange, error)

// PauseRun pauses a running run: its tasks are held until ResumeRun. The run keeps who paused
// it and why ("paused by " + rec.Why()); the audit log keeps "run pause".
func PauseRun(ctx context.Context, rdb redis.UniversalClient, run string, rec audit.Record) (RunChange, error) {
	return changeRun(ctx, rdb, run, rec, "pause", func(l *ledger.Ledger) (bool, string, error) {
		ok, err := l.Pause(ctx, run, "paused by "+rec.Why())
		return ok, "", err
	})
}

// ResumeRun resumes a paused run; the audit log keeps "run resume".
func ResumeRun(ctx context.Context, rdb redis.UniversalClient, run string, rec audit.Record) (RunChange, error) {
	return changeRun(ctx, rdb, run, rec, "resume", func(l *ledger.Ledger) (bool, string, error) {
		ok, err := l.Resume(ctx, run)
		return ok, "", err
	})
}

// CancelRun cancels a run: every recipient not yet sent becomes skipped(cancelled). The run
// keeps who cancelled it and why; the audit log keeps "run cancel" with how many recipients
// were skipped, and, for a run still reading its audience, how many rows its expansion has yet
// to skip: as it reaches them, or, when its expansion stopped (report.ExpansionOf: no task of
// it left), once run repair starts it again.
func CancelRun(ctx context.Context, rdb redis.UniversalClient, run string, rec audit.Record) (RunChange, error) {
	return changeRun(ctx, rdb, run, rec, "cancel", func(l *ledger.Ledger) (bool, string, error) {
		ok, n, err := l.Cancel(ctx, run, "cancelled by "+rec.Why())
		detail := fmt.Sprintf("%d recipients skipped", n)
		// A run still reading its audience skips the rest as its expansion reaches it; one
		// whose expansion stopped (its task gone) waits for run repair to start it again.
		if r, gerr := l.GetRun(ctx, run); ok && gerr == nil && !r.Expanded {
			if left := max(r.Rows, r.Picked) - r.PlannedTo; left > 0 {
				e, eerr := report.ExpansionOf(ctx, rdb, run, time.Now())
				if eerr == nil && e.Stopped() {
					detail += fmt.Sprintf(", and the %d rows not read yet once its expansion runs again: it stopped (herald run repair %s)", left, run)
				} else {
					detail += fmt.Sprintf(", and the %d rows not read yet as the expansion reaches them", left)
				}
			}
		}
		return ok, detail, err
	})
}

// changeRun applies change to run and keeps it in the audit log as "run VERB"; a change the
// run's status refuses is not kept, and reports the status. A run that does not exist wraps
// ledger.ErrRunNotFound. A change that failed after it took effect (a cancel whose sweep
// failed: change reports ok with its error) is kept as failed, with what went wrong.
func changeRun(ctx context.Context, rdb redis.UniversalClient, run string, rec audit.Record, verb string,
	change func(*ledger.Ledger) (ok bool, detail string, err error)) (RunChange, error) {
	l := ledger.New(rdb, nil)
	ok, detail, err := change(l)
	if err != nil && ok {
		return RunChange{Changed: true, Detail: detail}, rec.Failed(ctx, "run "+verb, run, fmt.Errorf("%s: %w", detail, err))
	}
	if err != nil {
		return RunChange{}, err
	}
	if !ok {
		r, err := l.GetRun(ctx, run)
		return RunChange{Status: r.Status}, err
	}
	// The status the run has now: a resume of a completed run's paused follow-ups leaves it
	// completed. A failed read leaves it unsaid.
	r, _ := l.GetRun(ctx, run)
	return RunChange{Changed: true, Status: r.Status, Detail: detail}, rec.Keep(ctx, "run "+verb, run, detail)
}

// RemoveCampaign stops future runs of submitted campaign id (runs already started continue)
// and keeps it in the audit log as "campaign rm". It returns false, and keeps nothing, when id
// is not submitted.
func RemoveCampaign(ctx context.Context, rdb redis.UniversalClient, id string, rec audit.Record) (bool, error) {
	ok, err := defstore.New(rdb, nil).Remove(ctx, id)
	if err != nil || !ok {
		return false, err
	}
	return true, rec.Keep(ctx, "campaign rm", id, "")
}

// RetryParams say which failed recipients of a run RetryRun sends to again, and who asks.
type RetryParams struct {
	// Config is the process's: its table of Connectly's codes (errors) gives failures their
	// class, and its send task options and expansion keys write the child run.
	Config config.Config
	Redis  redis.UniversalClient
	Log    zerolog.Logger
	// Retry picks the recipients; its Table is ErrorTable(Config).
	Retry expand.RetryParams
	// Audit is who asks and why: the child run is kept in the audit log as "run retry".
	Audit audit.Record
}

// RetryRun starts a child run of exactly the failed recipients of a run that p picks
// (expand.Runs.RetryRun), with send tasks as `campaign send` writes them, and keeps it in
// the audit log. A parent that does not exist wraps ledger.ErrRunNotFound. A retry that
// failed once its child run existed (the child's expansion task carries it on) is kept as
// failed, naming the child.
func RetryRun(ctx context.Context, p RetryParams) (expand.Retried, error) {
	table, err := ErrorTable(p.Config)
	if err != nil {
		return expand.Retried{}, err
	}
	rp := p.Retry
	rp.Table = table
	res, err := Runs(p.Config, p.Redis, p.Log, SendTaskOptions(p.Config)).RetryRun(ctx, rp)
	switch {
	case err != nil && res.Child.ID != "":
		// The command's context may be what ended it: the entry is written all the same.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return res, p.Audit.Failed(actx, "run retry", res.Parent.ID, fmt.Errorf("child run %s with %d recipients picked: %w", res.Child.ID, res.Picked, err))
	case err != nil:
		return res, err
	case res.Continues:
		return res, p.Audit.Keep(ctx, "run retry", res.Parent.ID,
			fmt.Sprintf("child run %s with %d recipients picked, expanding", res.Child.ID, res.Picked))
	}
	return res, p.Audit.Keep(ctx, "run retry", res.Parent.ID, fmt.Sprintf("child run %s with %d recipients", res.Child.ID, res.Stats.Planned))
}
