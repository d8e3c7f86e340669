package main

import (
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/report"
)

func (a *app) queueCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "queue", Short: "Inspect and steer the asynq queues Herald uses"}
	var asJSON bool
	stats := &cobra.Command{
		Use:     "stats",
		Aliases: []string{"ls"},
		Short:   "Tasks per state, processed and failed today, latency and pause state of every queue",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withInspector(cmd, func(in *asynq.Inspector, _ redis.UniversalClient) error {
				qs, err := report.Queues(in, slices.Collect(maps.Keys(campaigns.Queues)))
				if err != nil {
					return err
				}
				return a.print(asJSON, qs, func(w io.Writer) error { return report.PrintQueues(w, qs) })
			})
		},
	}
	stats.Flags().BoolVar(&asJSON, "json", false, "print the queues as JSON")
	pause := a.queueActionCmd("pause", "Pause a queue: no worker takes its tasks until resume", "paused", (*asynq.Inspector).PauseQueue)
	resume := a.queueActionCmd("resume", "Resume a paused queue", "resumed", (*asynq.Inspector).UnpauseQueue)
	cmd.AddCommand(stats, pause, resume)
	return cmd
}

// queueActionCmd is `queue pause` or `queue resume`: act on the queue, say done, and keep it
// in the audit log.
func (a *app) queueActionCmd(verb, short, done string, act func(*asynq.Inspector, string) error) *cobra.Command {
	var actor, reason string
	cmd := &cobra.Command{
		Use: verb + " QUEUE", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withInspector(cmd, func(in *asynq.Inspector, rdb redis.UniversalClient) error {
				if err := act(in, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "queue %s %s\n", args[0], done)
				return audit.Append(cmd.Context(), rdb, audit.Entry{Actor: operator(actor), Action: "queue " + verb, Target: args[0], Reason: reason})
			})
		},
	}
	actorFlags(cmd, &actor, &reason, "why (kept in the audit log)")
	return cmd
}

// withInspector calls fn with an asynq Inspector on the configured Redis.
func (a *app) withInspector(cmd *cobra.Command, fn func(*asynq.Inspector, redis.UniversalClient) error) error {
	return a.withRedis(cmd.Context(), func(_ config.Config, rdb redis.UniversalClient) error {
		return fn(asynq.NewInspectorFromRedisClient(rdb), rdb)
	})
}
