package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/serve"
)

// validateResult is one file's result in `campaign validate --json`.
type validateResult = campaigns.Validation

func (a *app) campaignValidateCmd() *cobra.Command {
	var asJSON, rows bool
	cmd := a.configCmd("validate FILE...", "Check campaign files: every problem as file:line:col, exit 1 if any", cobra.MinimumNArgs(1),
		func(ctx context.Context, c config.Config, args []string) error {
			results := make([]validateResult, 0, len(args))
			bad := 0
			for _, f := range args {
				p := serve.ValidateParams{Path: f, Config: c, Rows: rows, Senders: true}
				// The rows of a large audience take seconds to read: draw campaign plan's bar.
				var done func()
				if rows && !asJSON && isTerminal(a.stderr) {
					p.Progress, done = a.planProgress()
				}
				r := serve.ValidateCampaign(ctx, p)
				if done != nil {
					done()
				}
				if !r.OK {
					bad++
				}
				results = append(results, r)
			}
			if err := a.print(asJSON, results, func(w io.Writer) error { printValidated(w, results); return nil }); err != nil {
				return err
			}
			if bad > 0 {
				verb := "have"
				if bad == 1 {
					verb = "has"
				}
				return fmt.Errorf("%d of %s %s problems", bad, serve.Count(len(args), "campaign file", "campaign files"), verb)
			}
			return nil
		})
	cmd.Long = `Check campaign files: the definition, and its audience file as far as can be known
without reading rows: that it is a regular file inside the campaigns root (campaigns.root,
default the campaign file's folder), within the size bound, UTF-8, with a header naming the
phone (or bsuid) column once, and every column the templates and replies read. Every problem
is printed as file:line:col: field: message, all of a file's in one run, in the file's order: a
problem does not stop the checks, only those that read the part that is broken.

Rows are not read unless --rows is given: then every row is read, as by campaign plan, and a
file with more invalid rows than audience.max_invalid_share allows is a problem too. On a
terminal, reading them draws campaign plan's progress bar on stderr (not with --json).

With --json, one result per file: file, ok, errors (each problem as text), problems (the same
problems, each as file, line, col, field, message; line and col 0 when it has no place),
rows_read, and with --rows rows and skipped; notes when there are some.`
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one result per file as JSON")
	cmd.Flags().BoolVar(&rows, "rows", false, "also read every audience row (as campaign plan does) and check the share of invalid rows")
	return cmd
}

// printValidated renders validate's results as text: a valid file's ok line, then every
// file's notes and problems.
func printValidated(w io.Writer, results []validateResult) {
	for _, r := range results {
		if r.OK {
			fmt.Fprintf(w, "ok  %s (%s)\n", logx.Escape(r.File), rowsNote(r))
		}
		for _, n := range r.Notes {
			if !strings.HasPrefix(n, r.File+":") {
				n = r.File + ": " + n // a note without a place names its file
			}
			fmt.Fprintf(w, "note: %s\n", logx.EscapeLines(n))
		}
		for _, e := range r.Errors {
			// Problem lines escape what the file wrote; any other error (a path that could not
			// be read) may quote a name with control characters: no line of it is Herald's.
			fmt.Fprintln(w, logx.EscapeLines(e))
		}
	}
}

// rowsNote says how far a valid file's audience was read.
func rowsNote(r validateResult) string {
	if !r.RowsRead {
		return "audience header checked; rows not read: use --rows or campaign plan"
	}
	reasons := make([]string, 0, len(r.Skipped))
	for reason, n := range r.Skipped {
		reasons = append(reasons, fmt.Sprintf("%d %s", n, reason))
	}
	sort.Strings(reasons)
	rows := fmt.Sprintf("%d rows", r.Rows)
	if r.Rows == 1 {
		rows = "1 row"
	}
	if len(reasons) == 0 {
		return "audience: " + rows + ", none skipped"
	}
	return "audience: " + rows + ", skipped " + strings.Join(reasons, ", ")
}
