package main

import (
	"io"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
)

func (a *app) limitsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "limits", Short: "Inspect the limits shared by every worker"}
	var asJSON bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Show live use of the sender, business, daily-tier and frequency limits",
		Long: `Show live use of the limits every worker shares: each sender's configured and effective
rate, its sends per second over the last 5 seconds, the share of its requests the provider
throttled over the adaptive window and the adaptive controller's last decision, the
business's request rate, the daily messaging tier (unique recipients in the rolling window and
when room frees), the frequency caps, and the runs waiting for the tier.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return a.withRedis(ctx, func(c config.Config, rdb redis.UniversalClient) error {
				rep, err := report.ReadLimits(ctx, c, ledger.New(rdb, nil), rdb, time.Now())
				if err != nil {
					return err
				}
				return a.print(asJSON, rep, func(w io.Writer) error { return report.PrintLimits(w, rep) })
			})
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.AddCommand(show)
	return cmd
}
