package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/serve"
)

func (a *app) workerCmd() *cobra.Command {
	var (
		concurrency   int
		metricsListen string
	)
	cmd := a.configCmd("worker", "Run a worker: take send tasks from Redis and deliver them through Connectly", cobra.NoArgs,
		func(ctx context.Context, c config.Config, _ []string) error {
			if err := c.RequireConnectly(); err != nil {
				return err
			}
			if concurrency > 0 {
				c.Worker.Concurrency = concurrency
			}
			return a.serve(ctx, c, metricsListen, serve.RunWorker)
		})
	cmd.Flags().IntVar(&concurrency, "concurrency", 0, "sends in flight in this process (default worker.concurrency)")
	cmd.Flags().StringVar(&metricsListen, "metrics-listen", "", "serve /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9090)")
	return cmd
}
