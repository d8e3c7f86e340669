package main

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/ledger"
)

// withLedger loads the config, connects to Redis and calls fn with a Ledger.
func (a *app) withLedger(ctx context.Context, fn func(l *ledger.Ledger, rdb redis.UniversalClient) error) error {
	c, err := a.config()
	if err != nil {
		return err
	}
	rdb, err := a.redis(ctx, c)
	if err != nil {
		return err
	}
	defer rdb.Close()
	return fn(ledger.New(rdb, nil), rdb)
}

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

func (a *app) runPauseCmd() *cobra.Command {
	var reason, actor string
	cmd := &cobra.Command{
		Use:   "pause RUN",
		Short: "Pause a run: its tasks are held (neither sent nor failed) until resume",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withLedger(cmd.Context(), func(l *ledger.Ledger, rdb redis.UniversalClient) error {
				why := "paused by " + operator(actor)
				if reason != "" {
					why += ": " + reason
				}
				ok, err := l.Pause(cmd.Context(), args[0], why)
				if err != nil {
					return notFound(args[0], err)
				}
				if !ok {
					r, _ := l.GetRun(cmd.Context(), args[0])
					return fmt.Errorf("run %s is %s, not running", args[0], r.Status)
				}
				fmt.Fprintf(a.stdout, "run %s paused; workers hold its tasks from their next send on\n", args[0])
				return audit.Append(cmd.Context(), rdb, audit.Entry{Actor: operator(actor), Action: "run pause", Target: args[0], Reason: reason})
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (shown by run show)")
	cmd.Flags().StringVar(&actor, "actor", "", "who is acting (default: the OS user)")
	return cmd
}

func (a *app) runResumeCmd() *cobra.Command {
	var reason, actor string
	cmd := &cobra.Command{
		Use:   "resume RUN",
		Short: "Resume a paused run where it stopped",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withLedger(cmd.Context(), func(l *ledger.Ledger, rdb redis.UniversalClient) error {
				ok, err := l.Resume(cmd.Context(), args[0])
				if err != nil {
					return notFound(args[0], err)
				}
				if !ok {
					r, _ := l.GetRun(cmd.Context(), args[0])
					return fmt.Errorf("run %s is %s, not paused", args[0], r.Status)
				}
				fmt.Fprintf(a.stdout, "run %s resumed; held tasks continue within the hold delay\n", args[0])
				return audit.Append(cmd.Context(), rdb, audit.Entry{Actor: operator(actor), Action: "run resume", Target: args[0], Reason: reason})
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the audit log)")
	cmd.Flags().StringVar(&actor, "actor", "", "who is acting (default: the OS user)")
	return cmd
}

func (a *app) runCancelCmd() *cobra.Command {
	var reason, actor string
	cmd := &cobra.Command{
		Use:   "cancel RUN",
		Short: "Cancel a run: every recipient not yet sent becomes skipped(cancelled)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withLedger(cmd.Context(), func(l *ledger.Ledger, rdb redis.UniversalClient) error {
				why := "cancelled by " + operator(actor)
				if reason != "" {
					why += ": " + reason
				}
				ok, n, err := l.Cancel(cmd.Context(), args[0], why)
				if err != nil {
					return notFound(args[0], err)
				}
				if !ok {
					r, _ := l.GetRun(cmd.Context(), args[0])
					return fmt.Errorf("run %s is %s, cannot cancel", args[0], r.Status)
				}
				fmt.Fprintf(a.stdout, "run %s cancelled: %d recipients skipped; sends in flight finish normally\n", args[0], n)
				return audit.Append(cmd.Context(), rdb, audit.Entry{Actor: operator(actor), Action: "run cancel", Target: args[0],
					Reason: reason, Detail: fmt.Sprintf("%d recipients skipped", n)})
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept on the run)")
	cmd.Flags().StringVar(&actor, "actor", "", "who is acting (default: the OS user)")
	return cmd
}

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "The log of operator actions"}
	var (
		limit  int
		asJSON bool
	)
	ls := &cobra.Command{
		Use:   "ls",
		Short: "Operator actions, newest first: who paused, resumed, cancelled, retried or deleted what, and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withLedger(cmd.Context(), func(_ *ledger.Ledger, rdb redis.UniversalClient) error {
				es, err := audit.List(cmd.Context(), rdb, limit)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, es)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tTARGET\tREASON\tDETAIL")
				for _, e := range es {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Actor, e.Action, e.Target, e.Reason, e.Detail)
				}
				return tw.Flush()
			})
		},
	}
	ls.Flags().IntVar(&limit, "limit", 50, "how many entries")
	ls.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.AddCommand(ls)
	return cmd
}
