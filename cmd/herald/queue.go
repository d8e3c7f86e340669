package main

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/report"
)

func (a *app) queueCmd() *cobra.Command {
	stats := viewCmd(a, view[[]report.QueueStat]{
		Use: "stats", Short: "Tasks per state, processed and failed today, latency and pause state of every queue",
		Args: cobra.NoArgs, JSONHelp: "print the queues as JSON", Text: report.PrintQueues,
		Read: func(_ context.Context, k conn, _ []string) ([]report.QueueStat, error) {
			return report.Queues(asynq.NewInspectorFromRedisClient(k.rdb), slices.Collect(maps.Keys(campaigns.Queues)))
		},
	})
	stats.Aliases = []string{"ls"}
	pause := a.queueActionCmd("pause", "Pause a queue: no worker takes its tasks until resume", "paused", (*asynq.Inspector).PauseQueue)
	resume := a.queueActionCmd("resume", "Resume a paused queue", "resumed", (*asynq.Inspector).UnpauseQueue)
	return group("queue", "Inspect and steer the asynq queues Herald uses", stats, pause, resume)
}

// queueActionCmd is `queue pause` or `queue resume`: act on the queue, say done, and keep it
// in the audit log.
func (a *app) queueActionCmd(verb, short, done string, act func(*asynq.Inspector, string) error) *cobra.Command {
	var by auditFlags
	cmd := a.redisCmd(verb+" QUEUE", short, cobra.ExactArgs(1), func(ctx context.Context, k conn, args []string) error {
		if err := act(asynq.NewInspectorFromRedisClient(k.rdb), args[0]); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "queue %s %s\n", args[0], done)
		return by.record(ctx, k.rdb, "queue "+verb, args[0], "")
	})
	by.add(cmd, reasonInAuditLog)
	return cmd
}
