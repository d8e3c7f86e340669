package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/serve"
)

func (a *app) schedulerCmd() *cobra.Command {
	var (
		metricsListen string
		concurrency   int
		// changed says whether a flag was given: --expand-concurrency 0 means no expansion here.
		changed func(flag string) bool
	)
	cmd := a.configCmd("scheduler", "Run the scheduler: start runs of submitted campaigns on their cron or one-shot schedule",
		cobra.NoArgs, func(ctx context.Context, c config.Config, _ []string) error {
			if changed("expand-concurrency") {
				c.Scheduler.ExpandConcurrency = concurrency
			}
			return a.serve(ctx, c, metricsListen, serve.RunScheduler)
		})
	changed = cmd.Flags().Changed
	cmd.Long = `Run the scheduler: every submitted campaign (herald campaign submit) with a schedule gets a
run per cron tick, or one at its one-shot time. Run as many replicas as you like: each tick
becomes one run, whichever replica fires it. By default this process also expands runs
(streams audiences into send tasks, a backlog at a time); the audience files must be readable
here at the paths they were submitted with.`
	cmd.Flags().StringVar(&metricsListen, "metrics-listen", "", "serve /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9091)")
	cmd.Flags().IntVar(&concurrency, "expand-concurrency", 0, "runs this process expands at once; 0 leaves expansion to other processes (default scheduler.expand_concurrency)")
	return cmd
}
