package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/config"
)

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "The log of operator actions"}
	var (
		limit  int
		asJSON bool
	)
	ls := &cobra.Command{
		Use:   "ls",
		Short: "Operator actions, newest first: who paused, resumed, cancelled, retried or deleted what, and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withRedis(cmd.Context(), func(_ config.Config, rdb redis.UniversalClient) error {
				es, err := audit.List(cmd.Context(), rdb, limit)
				if err != nil {
					return err
				}
				return a.print(asJSON, es, func(w io.Writer) error {
					tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tTARGET\tREASON\tDETAIL")
					for _, e := range es {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Actor, e.Action, e.Target, e.Reason, e.Detail)
					}
					return tw.Flush()
				})
			})
		},
	}
	ls.Flags().IntVar(&limit, "limit", 50, "how many entries")
	ls.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.AddCommand(ls)
	return cmd
}
