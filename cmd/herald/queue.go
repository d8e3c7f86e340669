package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

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
		Args: cobra.NoArgs, JSONHelp: "print the queues as JSON (size: the tasks but the completed ones)", Text: report.PrintQueues,
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
// itself in the audit log) and say done. A name that is none of Herald's queues is refused
// (tasks.Queue): asynq would pause a queue of any name, and sending would go on.
func (a *app) queueActionCmd(verb, short, done string,
	act func(context.Context, *asynq.Inspector, string, audit.Record) (string, error)) *cobra.Command {
	var (
		by     auditFlags
		asJSON bool
	)
	cmd := a.redisCmd(verb+" QUEUE", short, cobra.ExactArgs(1), func(ctx context.Context, k conn, args []string) error {
		q, err := act(ctx, asynq.NewInspectorFromRedisClient(k.rdb), args[0], by.record(k.rdb))
		if err != nil {
			return err
		}
		out := queueActed{Queue: q, Action: verb, Paused: verb == "pause"}
		return a.print(asJSON, out, func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "queue %s %s\n", q, done)
			return err
		})
	})
	cmd.Long = short + `.

QUEUE is one of Herald's send queues: ` + strings.Join(slices.Sorted(maps.Keys(campaigns.Queues)), ", ") + `, or the
same without "herald:" (marketing for herald:marketing). Any other name is refused (exit 1).`
	by.add(cmd, reasonInAuditLog)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// queueActed is `queue pause|resume --json`.
type queueActed struct {
	// Queue is the queue's full name (herald:marketing), also when given in short.
	Queue string `json:"queue"`
	// Action is pause or resume.
	Action string `json:"action"`
	// Paused is the queue's state after the action.
	Paused bool `json:"paused"`
}
