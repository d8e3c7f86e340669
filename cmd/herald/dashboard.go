package main

import (
	"context"
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/serve"
)

func (a *app) dashboardCmd() *cobra.Command {
	var listen string
	cmd := a.configCmd("dashboard", "Serve asynqmon's web UI for Herald's queues, read-only (steer with the CLI, which keeps the ledger and audit log)",
		cobra.NoArgs, func(ctx context.Context, c config.Config, _ []string) error {
			return serve.RunDashboard(ctx, serve.DashboardParams{RedisURL: c.Redis.URL, Listen: listen,
				Listening: func(addr net.Addr) { fmt.Fprintf(a.stdout, "dashboard on http://%s (read-only)\n", addr) }})
		})
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	return cmd
}
