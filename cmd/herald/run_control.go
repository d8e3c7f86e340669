package main

import (
	"context"
	"errors"
	"fmt"
	"os/user"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/ledger"
)

// notFound turns ErrRunNotFound into a message naming the run.
func notFound(runID string, err error) error {
	if errors.Is(err, ledger.ErrRunNotFound) {
		return fmt.Errorf("no run %q (recent runs: redis-cli ZREVRANGE herald:runs 0 9)", runID)
	}
	return err
}

// operator names who is acting, for pause reasons.
func operator(actor string) string {
	if actor != "" {
		return actor
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "operator"
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

// record appends the action on target, and what it did (detail), to the audit log.
func (f *auditFlags) record(ctx context.Context, rdb redis.UniversalClient, action, target, detail string) error {
	return audit.Append(ctx, rdb, audit.Entry{Actor: operator(f.actor), Action: action, Target: target, Reason: f.reason, Detail: detail})
}

// why is who acts and why, as a run's status note keeps it.
func (f *auditFlags) why() string {
	if f.reason == "" {
		return operator(f.actor)
	}
	return operator(f.actor) + ": " + f.reason
}

// runAction is one of pause, resume and cancel: a change of a run's status by an operator,
// kept in the audit log.
type runAction struct {
	verb, short, reasonHelp string
	// change applies it with why (who and why, for the run); ok false when the run's status
	// does not allow it; detail goes to the audit log and into done.
	change func(ctx context.Context, l *ledger.Ledger, run, why string) (ok bool, detail string, err error)
	// refused ends "run R is STATUS, ..." when the status does not allow it.
	refused string
	// done is printed once changed, formatted with the run id (and detail when it has a %s).
	done string
}

var (
	runPause = runAction{
		verb: "pause", short: "Pause a run: its tasks are held (neither sent nor failed) until resume",
		reasonHelp: "why (shown by run show)", refused: "not running",
		done: "run %s paused; workers hold its tasks from their next send on\n",
		change: func(ctx context.Context, l *ledger.Ledger, run, why string) (bool, string, error) {
			ok, err := l.Pause(ctx, run, "paused by "+why)
			return ok, "", err
		},
	}
	runResume = runAction{
		verb: "resume", short: "Resume a paused run where it stopped",
		reasonHelp: reasonInAuditLog, refused: "not paused",
		done: "run %s resumed; held tasks continue within the hold delay\n",
		change: func(ctx context.Context, l *ledger.Ledger, run, _ string) (bool, string, error) {
			ok, err := l.Resume(ctx, run)
			return ok, "", err
		},
	}
	runCancel = runAction{
		verb: "cancel", short: "Cancel a run: every recipient not yet sent becomes skipped(cancelled)",
		reasonHelp: "why (kept on the run)", refused: "cannot cancel",
		done: "run %s cancelled: %s; sends in flight finish normally\n",
		change: func(ctx context.Context, l *ledger.Ledger, run, why string) (bool, string, error) {
			ok, n, err := l.Cancel(ctx, run, "cancelled by "+why)
			return ok, fmt.Sprintf("%d recipients skipped", n), err
		},
	}
)

func (a *app) runActionCmd(act runAction) *cobra.Command {
	var by auditFlags
	cmd := a.redisCmd(act.verb+" RUN", act.short, cobra.ExactArgs(1), func(ctx context.Context, k conn, args []string) error {
		id, l := args[0], k.ledger()
		ok, detail, err := act.change(ctx, l, id, by.why())
		if err != nil {
			return notFound(id, err)
		}
		if !ok {
			r, _ := l.GetRun(ctx, id)
			return fmt.Errorf("run %s is %s, %s", id, r.Status, act.refused)
		}
		if detail != "" {
			fmt.Fprintf(a.stdout, act.done, id, detail)
		} else {
			fmt.Fprintf(a.stdout, act.done, id)
		}
		return by.record(ctx, k.rdb, "run "+act.verb, id, detail)
	})
	by.add(cmd, act.reasonHelp)
	return cmd
}
