package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/logx"
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

// printAudit renders the audit log as `audit ls` does. An entry's actor and reason are what an
// operator typed, and its target and detail may hold a name from a campaign file or an error:
// each is printed through logx.Safe, so that a newline, a tab or an escape sequence shows as
// \n, \t or \x1b instead of forging a row or hiding a cell, and no phone number shows in full.
func printAudit(w io.Writer, es []audit.Entry) error {
	rows := make([][]string, 0, len(es))
	for _, e := range es {
		rows = append(rows, []string{e.Time.UTC().Format(time.RFC3339), logx.Safe(e.Actor), logx.Safe(e.Action),
			logx.Escape(e.Target), logx.Safe(e.Reason), logx.Safe(e.Detail)})
	}
	return printTable(w, []string{"TIME", "ACTOR", "ACTION", "TARGET", "REASON", "DETAIL"}, rows)
}
