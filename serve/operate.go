package serve

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/words"
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
	// Followups is set when the change was to the follow-ups of a completed run (paused,
	// cancelled or resumed), the run's own status left completed.
	Followups bool
	// Detail is what the change did, as the audit log keeps it (CancelRun: "N recipients
	// skipped"; ResumeRun: the follow-ups it resumed besides the run; "" when nothing more
	// than the change itself).
	Detail string
	// Resumed are the follow-up runs ResumeRun resumed, by rule, with why each was paused.
	Resumed []ledger.ResumedFollowup
}

// ChangeRun is one of PauseRun, ResumeRun and CancelRun. c is the configuration the run's
// campaign is read with (whether a completed run's follow-ups may still come).
type ChangeRun func(ctx context.Context, c config.Config, rdb redis.UniversalClient, run string, rec audit.Record) (RunChange, error)

// PauseRun pauses a running run: its tasks are held until ResumeRun. The run keeps who paused
// it and why ("paused by " + rec.Why()); the audit log keeps "run pause". A completed run whose
// campaign's on_reply.until has not passed has its follow-ups paused instead
// (ledger.PauseFollowups): new and due ones are held, the run stays completed.
func PauseRun(ctx context.Context, c config.Config, rdb redis.UniversalClient, run string, rec audit.Record) (RunChange, error) {
	return changeRun(ctx, rdb, run, rec, "pause", func(l *ledger.Ledger) (bool, string, error) {
		reason := "paused by " + rec.Why()
		ok, err := l.Pause(ctx, run, reason)
		if ok || err != nil {
			return ok, "", err
		}
		if open, err := followupsOpen(ctx, c, rdb, l, run); err != nil || !open {
			return false, "", err
		}
		ok, _, err = l.PauseFollowups(ctx, run, reason)
		return ok, followupsPaused, err
	})
}

// Details of a change to a completed run's follow-ups.
const (
	followupsPaused    = "follow-ups paused; the run stays completed"
	followupsCancelled = "follow-ups cancelled; the run stays completed"
)

// followupsOpen reports whether run has completed and its follow-ups may still come: its
// campaign has on_reply rules whose until has not passed, an operator's hold is on them
// (held follow-ups may still wait once until has passed), or a follow-up created before until
// is still to be sent (a rule's delay may put it days after until). A campaign that cannot be
// read any more reads as none.
func followupsOpen(ctx context.Context, c config.Config, rdb redis.UniversalClient, l *ledger.Ledger, run string) (bool, error) {
	r, err := l.GetRun(ctx, run)
	if err != nil || r.Status != ledger.RunCompleted {
		return false, err
	}
	fs, err := l.FollowupsState(ctx, run)
	if err != nil || fs.Hold != ledger.FollowupsGo {
		return err == nil, err
	}
	def, err := RunSource(c, rdb, zerolog.Nop())(ctx, r)
	if errors.Is(err, conversation.ErrNoCampaign) {
		return false, nil
	}
	if err != nil || def == nil || !def.OnReply.Enabled() {
		return false, err
	}
	if conversation.Within(&def.OnReply, r.Created, time.Time{}, time.Now()) {
		return true, nil
	}
	return followupsWaiting(ctx, l, run, def.OnReply.Rules)
}

// followupsWaiting reports whether a follow-up run of run (one per rule) has an entry still to
// be sent, or an unknown one waiting for its resend.
func followupsWaiting(ctx context.Context, l *ledger.Ledger, run string, rules []campaigns.ReplyRule) (bool, error) {
	for i := range rules {
		c, err := l.Counters(ctx, ledger.FollowupRun(run, rules[i].ID()))
		if err != nil {
			return false, err
		}
		if c.ResendWaiting > 0 {
			return true, nil
		}
		for st, n := range c.States {
			if n > 0 && !st.Terminal() {
				return true, nil
			}
		}
	}
	return false, nil
}

// ResumeRun resumes a paused run, the follow-ups of a completed run an operator paused, and
// the paused follow-up runs of the run (ledger.ResumeDetail); the audit log keeps "run resume"
// with the follow-ups it resumed, so that resuming a run says it released a rule's follow-ups
// paused by hand.
func ResumeRun(ctx context.Context, c config.Config, rdb redis.UniversalClient, run string, rec audit.Record) (RunChange, error) {
	var res ledger.Resumed
	ch, err := changeRun(ctx, rdb, run, rec, "resume", func(l *ledger.Ledger) (bool, string, error) {
		var err error
		res, err = l.ResumeDetail(ctx, run)
		return res.Any(), resumedDetail(res), err
	})
	if ch.Changed {
		ch.Followups = res.Followups
		ch.Resumed = res.Rules
		for i := range ch.Resumed {
			ch.Resumed[i].Reason = logx.MaskDigits(ch.Resumed[i].Reason)
		}
	}
	return ch, err
}

// resumedDetail says what a resume resumed besides the run itself: "" for the run alone, else
// "the run and follow-ups of rule yes (paused by ana: wrong link)", its pause reasons masked.
func resumedDetail(r ledger.Resumed) string {
	var parts []string
	if r.Followups {
		parts = append(parts, fmt.Sprintf("follow-ups (%s)", logx.MaskDigits(r.FollowupsReason)))
	}
	for _, f := range r.Rules {
		parts = append(parts, fmt.Sprintf("follow-ups of rule %s (%s)", f.Rule, logx.MaskDigits(f.Reason)))
	}
	if len(parts) == 0 {
		return ""
	}
	if r.Run {
		parts = append([]string{"the run"}, parts...)
	}
	return "resumed " + strings.Join(parts, ", ")
}

// CancelRun cancels a run: every recipient not yet sent becomes skipped(cancelled). The run
// keeps who cancelled it and why; the audit log keeps "run cancel" with how many recipients
// were skipped, and, for a run still reading its audience, how many rows its expansion has yet
// to skip: as it reaches them, or, when its expansion stopped (report.ExpansionOf: no task of
// it left), once run repair starts it again. A completed run whose follow-ups may still come
// (its on_reply.until has not passed, or they are paused) has its follow-ups cancelled
// instead (ledger.CancelFollowups): due ones are skipped(cancelled), replies create none, the
// run stays completed.
func CancelRun(ctx context.Context, c config.Config, rdb redis.UniversalClient, run string, rec audit.Record) (RunChange, error) {
	return changeRun(ctx, rdb, run, rec, "cancel", func(l *ledger.Ledger) (bool, string, error) {
		ok, n, err := l.Cancel(ctx, run, "cancelled by "+rec.Why())
		if !ok && err == nil {
			// A completed run: its follow-ups, while they may still come.
			if open, err := followupsOpen(ctx, c, rdb, l, run); err != nil || !open {
				return false, "", err
			}
			ok, _, err = l.CancelFollowups(ctx, run, "cancelled by "+rec.Why())
			return ok, followupsCancelled, err
		}
		detail := words.Count(n, "recipient", "recipients") + " skipped"
		// A run still reading its audience skips the rest as its expansion reaches it; one
		// whose expansion stopped (its task gone) waits for run repair to start it again.
		if r, gerr := l.GetRun(ctx, run); ok && gerr == nil && !r.Expanded {
			if left := max(r.Rows, r.Picked) - r.PlannedTo; left > 0 {
				e, eerr := report.ExpansionOf(ctx, rdb, run, time.Now())
				if eerr == nil && e.Stopped() {
					detail += fmt.Sprintf(", and the %s not read yet once its expansion runs again: it stopped (herald run repair %s)", words.Count(left, "row", "rows"), run)
				} else {
					detail += fmt.Sprintf(", and the %s not read yet as the expansion reaches %s", words.Count(left, "row", "rows"), words.Plural(left, "it", "them"))
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
		return RunChange{Changed: true, Detail: detail, Followups: detail == followupsPaused || detail == followupsCancelled}, rec.Failed(ctx, "run "+verb, run, fmt.Errorf("%s: %w", detail, err))
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
	return RunChange{Changed: true, Status: r.Status, Detail: detail, Followups: detail == followupsPaused || detail == followupsCancelled},
		rec.Keep(ctx, "run "+verb, run, detail)
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
		return res, p.Audit.Failed(actx, "run retry", res.Parent.ID, fmt.Errorf("child run %s with %s picked: %w", res.Child.ID, words.Count(res.Picked, "recipient", "recipients"), err))
	case err != nil:
		return res, err
	case res.Continues:
		return res, p.Audit.Keep(ctx, "run retry", res.Parent.ID,
			fmt.Sprintf("child run %s with %s picked, expanding", res.Child.ID, words.Count(res.Picked, "recipient", "recipients")))
	}
	return res, p.Audit.Keep(ctx, "run retry", res.Parent.ID, fmt.Sprintf("child run %s with %s", res.Child.ID, words.Count(res.Stats.Planned, "recipient", "recipients")))
}
