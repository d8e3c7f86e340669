package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/report"
)

func (a *app) limitsCmd() *cobra.Command {
	var reveal bool
	show := viewCmd(a, view[report.Limits]{
		Use: "show", Short: "Show live use of the sender, business, daily-tier and frequency limits",
		Args: cobra.NoArgs, JSONHelp: "print the report as JSON", Text: report.PrintLimits,
		Read: func(ctx context.Context, k conn, _ []string) (report.Limits, error) {
			rep, err := report.ReadLimits(ctx, k.c, k.ledger(), k.rdb, a.now())
			if err == nil && !reveal {
				rep = rep.Masked()
			}
			return rep, err
		},
	})
	show.Flags().BoolVar(&reveal, "reveal", false, "show the sender numbers in full (masked to their last 4 digits by default)")
	show.Long = `Show live use of the limits every worker shares: each sender's configured and effective
rate, its sends per second over the last 5 seconds, the share of its requests the provider
throttled over the adaptive window and the adaptive controller's last decision, the
business's request rate, the daily messaging tier (unique recipients in the rolling window and
when room frees), the frequency caps, and the runs waiting for the tier. Sender numbers are
masked to their last 4 digits unless --reveal.`
	return group("limits", "Inspect the limits shared by every worker", show)
}
