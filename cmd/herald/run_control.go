package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/serve"
)

// notFound turns ErrRunNotFound into a message naming the run.
func notFound(runID string, err error) error {
	if errors.Is(err, ledger.ErrRunNotFound) {
		return fmt.Errorf("no run %q (recent runs: herald run ls)", runID)
	}
	return err
}

// reasonInAuditLog is --reason's help for an action whose reason is kept in the audit log only.
const reasonInAuditLog = "why (kept in the audit log)"

// auditFlags are an operator action's --actor and --reason, kept with it in the audit log.
type auditFlags struct{ actor, reason string }

// add puts --actor and --reason on cmd; reasonHelp says where the reason is kept.
func (f *auditFlags) add(cmd *cobra.Command, reasonHelp string) {
	cmd.Flags().StringVar(&f.reason, "reason", "", reasonHelp)
	cmd.Flags().StringVar(&f.actor, "actor", "", "who is acting (default: the OS user)")
}

// record is who acts and why, for an action that keeps itself in the audit log on rdb.
func (f *auditFlags) record(rdb redis.UniversalClient) audit.Record {
	return audit.Record{Redis: rdb, Actor: f.actor, Reason: f.reason}
}

// runAction is one of pause, resume and cancel: a change of a run's status by an operator,
// which keeps itself in the audit log.
type runAction struct {
	verb, short, reasonHelp string
	change                  serve.ChangeRun
	// refused ends "run R is STATUS, ..." when the status does not allow it.
	refused string
	// done is printed once changed, formatted with the run id (and the change's detail when
	// it has one).
	done string
	// doneDetail, when set, is printed instead of done when the change has a detail,
	// formatted with the run id and the detail (done then takes the run id only).
	doneDetail string
	// status is the run's status once changed, when it could not be read back.
	status ledger.RunStatus
}

var (
	runPause = runAction{
		verb: "pause", short: "Pause a run: its tasks are held (neither sent nor failed) until resume; a completed run's follow-ups, while on_reply.until lasts or one is still to be sent",
		reasonHelp: "why (shown by run show)", refused: "not running", change: serve.PauseRun, status: ledger.RunPaused,
		done: "run %s paused; workers hold its tasks from their next send on\n",
	}
	runResume = runAction{
		verb: "resume", short: "Resume a paused run where it stopped, and its paused follow-ups",
		reasonHelp: reasonInAuditLog, refused: "not paused", change: serve.ResumeRun, status: ledger.RunRunning,
		done:       "run %s resumed; held tasks continue within the hold delay\n",
		doneDetail: "run %s: %s; held tasks continue within the hold delay\n",
	}
	runCancel = runAction{
		verb: "cancel", short: "Cancel a run: every recipient not yet sent becomes skipped(cancelled); a completed run's follow-ups, while on_reply.until lasts or one is still to be sent",
		reasonHelp: "why (kept on the run)", refused: "cannot cancel", change: serve.CancelRun, status: ledger.RunCancelled,
		done: "run %s cancelled: %s; sends in flight finish normally\n",
	}
)

func (a *app) runActionCmd(act runAction) *cobra.Command {
	var (
		by     auditFlags
		asJSON bool
	)
	cmd := a.redisCmd(act.verb+" RUN", act.short, cobra.ExactArgs(1), func(ctx context.Context, k conn, args []string) error {
		id := args[0]
		res, err := act.change(ctx, k.c, k.rdb, id, by.record(k.rdb))
		if res.Changed {
			// Changed, even when its audit entry then failed (the error says so).
			status := act.status
			if res.Followups {
				status = ledger.RunCompleted
			}
			out := runActed{Run: id, Action: act.verb, Status: string(cmp.Or(res.Status, status)), Detail: res.Detail,
				Followups: res.Followups, Resumed: res.Resumed}
			if perr := a.print(asJSON, out, func(w io.Writer) error {
				// The detail may quote pause reasons other operators wrote: escaped, so none
				// prints a line that looks like Herald's own.
				detail := logx.Escape(res.Detail)
				switch {
				case res.Followups && act.verb != "resume":
					fmt.Fprintf(w, "run %s: %s\n", id, detail)
				case act.doneDetail != "" && res.Detail != "":
					fmt.Fprintf(w, act.doneDetail, id, detail)
				case res.Detail != "":
					fmt.Fprintf(w, act.done, id, detail)
				default:
					fmt.Fprintf(w, act.done, id)
				}
				return nil
			}); perr != nil {
				return errors.Join(perr, err)
			}
		}
		if err != nil {
			return notFound(id, err)
		}
		if !res.Changed {
			return fmt.Errorf("run %s is %s, %s", id, res.Status, act.refused)
		}
		return nil
	})
	by.add(cmd, act.reasonHelp)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON: run, action, status, detail, followups, resumed_followups")
	return cmd
}

// runActed is `run pause|resume|cancel --json`, printed once the run has changed.
type runActed struct {
	Run string `json:"run"`
	// Action is pause, resume or cancel.
	Action string `json:"action"`
	// Status is the run's status after it: paused, running or cancelled.
	Status string `json:"status"`
	// Detail is what the change did, as the audit log keeps it: for cancel, "N recipients
	// skipped"; for resume, the follow-ups it resumed besides the run.
	Detail string `json:"detail,omitempty"`
	// Followups is set when the change was to the follow-ups of a completed run, which
	// stays completed (pause and cancel of a run whose on_reply.until has not passed, or with a
	// follow-up still to be sent).
	Followups bool `json:"followups,omitempty"`
	// Resumed are the follow-up runs a resume resumed, by rule, with why each was paused.
	Resumed []ledger.ResumedFollowup `json:"resumed_followups,omitempty"`
}
