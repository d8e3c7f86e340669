package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/audit"
)

func (a *app) auditCmd() *cobra.Command {
	var limit int
	ls := viewCmd(a, view[[]audit.Entry]{
		Use: "ls", Short: "Operator actions, newest first: who paused, resumed, cancelled, retried or deleted what, and why",
		Args: cobra.NoArgs, JSONHelp: "print as JSON", Text: printAudit,
		Read: func(ctx context.Context, k conn, _ []string) ([]audit.Entry, error) {
			return audit.List(ctx, k.rdb, limit)
		},
	})
	countFlag(ls.Flags(), &limit, "limit", 50, "how many entries (1 or more)")
	return group("audit", "The log of operator actions", ls)
}

// printAudit renders the audit log as `audit ls` does.
func printAudit(w io.Writer, es []audit.Entry) error {
	rows := make([][]string, 0, len(es))
	for _, e := range es {
		rows = append(rows, []string{e.Time.UTC().Format(time.RFC3339), e.Actor, e.Action, e.Target, e.Reason, e.Detail})
	}
	return printTable(w, []string{"TIME", "ACTOR", "ACTION", "TARGET", "REASON", "DETAIL"}, rows)
}
