package main

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/report"
)

func (a *app) queueCmd() *cobra.Command {
	stats := viewCmd(a, &cobra.Command{
		Use:     "stats",
		Aliases: []string{"ls"},
		Short:   "Tasks per state, processed and failed today, latency and pause state of every queue",
		Args:    cobra.NoArgs,
	}, "print the queues as JSON",
		func(_ context.Context, k conn, _ []string) ([]report.QueueStat, error) {
			return report.Queues(asynq.NewInspectorFromRedisClient(k.rdb), slices.Collect(maps.Keys(campaigns.Queues)))
		}, report.PrintQueues)
	pause := a.queueActionCmd("pause", "Pause a queue: no worker takes its tasks until resume", "paused", (*asynq.Inspector).PauseQueue)
	resume := a.queueActionCmd("resume", "Resume a paused queue", "resumed", (*asynq.Inspector).UnpauseQueue)
	return group("queue", "Inspect and steer the asynq queues Herald uses", stats, pause, resume)
}

// queueActionCmd is `queue pause` or `queue resume`: act on the queue, say done, and keep it
// in the audit log.
func (a *app) queueActionCmd(verb, short, done string, act func(*asynq.Inspector, string) error) *cobra.Command {
	var by auditFlags
	cmd := &cobra.Command{
		Use: verb + " QUEUE", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withInspector(cmd, func(in *asynq.Inspector, rdb redis.UniversalClient) error {
				if err := act(in, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "queue %s %s\n", args[0], done)
				return by.record(cmd.Context(), rdb, "queue "+verb, args[0], "")
			})
		},
	}
	by.add(cmd, "why (kept in the audit log)")
	return cmd
}

// withInspector calls fn with an asynq Inspector on the configured Redis.
func (a *app) withInspector(cmd *cobra.Command, fn func(*asynq.Inspector, redis.UniversalClient) error) error {
	return a.withRedis(cmd.Context(), func(_ config.Config, rdb redis.UniversalClient) error {
		return fn(asynq.NewInspectorFromRedisClient(rdb), rdb)
	})
}
