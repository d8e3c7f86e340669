package main

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/tasks"
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
	pause := a.queueActionCmd("pause", "Pause a queue: no worker takes its tasks until resume", "paused", tasks.PauseQueue)
	resume := a.queueActionCmd("resume", "Resume a paused queue", "resumed", tasks.ResumeQueue)
	return group("queue", "Inspect and steer the asynq queues Herald uses", stats, pause, resume)
}

// queueActionCmd is `queue pause` or `queue resume`: act on the queue (the action keeps
// itself in the audit log) and say done.
func (a *app) queueActionCmd(verb, short, done string,
	act func(context.Context, *asynq.Inspector, string, audit.Record) error) *cobra.Command {
	var by auditFlags
	cmd := a.redisCmd(verb+" QUEUE", short, cobra.ExactArgs(1), func(ctx context.Context, k conn, args []string) error {
		if err := act(ctx, asynq.NewInspectorFromRedisClient(k.rdb), args[0], by.record(k.rdb)); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "queue %s %s\n", args[0], done)
		return nil
	})
	by.add(cmd, reasonInAuditLog)
	return cmd
}
