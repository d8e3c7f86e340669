package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/serve"
)

func (a *app) runRetryCmd() *cobra.Command {
	var (
		class          string
		codes          []string
		includeUnknown bool
		asJSON         bool
		by             auditFlags
	)
	var cmd *cobra.Command
	cmd = command("retry RUN", "Start a child run of exactly the failed recipients of a run (by class or code)", cobra.ExactArgs(1),
		func(ctx context.Context, args []string) error {
			var want connectly.Class
			if class != "any" && len(codes) == 0 {
				var err error
				if want, err = connectly.ParseClass(class); err != nil {
					return usageError{fmt.Errorf("--class: %w (or any)", err)}
				}
			}
			return a.withRedis(ctx, func(k conn) error {
				log, err := a.commandLogger(k.c)
				if err != nil {
					return err
				}
				retry := expand.RetryParams{Parent: args[0], Codes: codes, AnyClass: class == "any", Class: want, IncludeUnknown: includeUnknown}
				if !asJSON {
					// Said before anything is expanded: a retry stopped part way names its run.
					retry.Started = func(child ledger.Run) {
						fmt.Fprintf(a.stderr, "run %s started (retry of %s)\n", child.ID, child.Parent)
					}
				}
				res, err := serve.RetryRun(ctx, serve.RetryParams{Config: k.c, Redis: k.rdb, Log: log, Audit: by.record(k.rdb), Retry: retry})
				if errors.Is(err, ledger.ErrRunNotFound) {
					return notFound(args[0], err)
				}
				if errors.Is(err, expand.ErrNothingToRetry) {
					return nothingToRetry(err, args[0], class, codes, includeUnknown, cmd.Flags().Changed("class"))
				}
				if err != nil {
					return err
				}
				parent, child, st, byCode := res.Parent, res.Child, res.Stats, res.ByCode
				out := map[string]any{"run": child.ID, "parent": parent.ID, "recipients": res.Recipients, "planned": st.Planned, "picked": byCode,
					"expanding": res.Continues}
				return a.print(asJSON, out, func(w io.Writer) error {
					if res.Continues {
						fmt.Fprintf(w, "run %s retries %s of %s (%d queued; the rest expand as sends complete):\n",
							child.ID, serve.Count(res.Picked, "recipient", "recipients"), parent.ID, st.Planned)
					} else {
						fmt.Fprintf(w, "run %s retries %s of %s:\n", child.ID, serve.Count(st.Planned, "recipient", "recipients"), parent.ID)
					}
					for _, code := range slices.Sorted(maps.Keys(byCode)) {
						fmt.Fprintf(w, "  %-50s %d\n", code, byCode[code])
					}
					if missing := res.Picked - res.Recipients; missing > 0 && !res.Continues {
						fmt.Fprintf(w, "  (%d picked recipients are no longer in the audience file)\n", missing)
					}
					fmt.Fprintf(w, "follow it with: herald run show %s\n", child.ID)
					return nil
				})
			})
		})
	cmd.Long = `Start a child run, linked to its parent, that sends again to exactly the recipients of RUN
that failed with the given class (default transient: attempts used up on 5xx or timeouts) or
codes. --class any takes every failure. --include-unknown also takes recipients whose outcome
is unknown (they may have received the first message). The child is expanded from the
campaign the parent was started from (its submitted version, or the campaign file as the
parent kept it), one backlog in the command and the rest by an expansion task, as campaign
send does. A run already retried by a run that sends to some of the same recipients is not
retried again: retry that run once it has finished.`
	cmd.Flags().StringVar(&class, "class", "transient", "retry failures of this class: transient, permanent, throttle, stop-run, or any")
	cmd.Flags().StringSliceVar(&codes, "code", nil, "retry failures with this code (repeatable; overrides --class)")
	cmd.Flags().BoolVar(&includeUnknown, "include-unknown", false, "also retry recipients whose outcome is unknown (may double-send)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	by.add(cmd, reasonInAuditLog)
	return cmd
}

// nothingToRetry is run retry's err (wrapping expand.ErrNothingToRetry) saying which filter
// picked nobody, the default --class included, and what would pick more.
func nothingToRetry(err error, run, class string, codes []string, unknown, classGiven bool) error {
	var filter, more []string
	switch {
	case len(codes) > 0:
		filter = append(filter, "--code "+strings.Join(codes, ","))
		more = append(more, "--class any takes every failure")
	case !classGiven:
		filter = append(filter, "--class "+class+" (the default)")
		more = append(more, "--class any takes every failure")
	case class != "any":
		filter = append(filter, "--class "+class)
		more = append(more, "--class any takes every failure")
	default:
		filter = append(filter, "--class any")
	}
	if unknown {
		filter = append(filter, "--include-unknown")
	} else {
		more = append(more, "--include-unknown also those whose outcome is unknown (they may have the message)")
	}
	more = append(more, "herald run show "+run+" counts its outcomes by code")
	return fmt.Errorf("%w (filter: %s); %s", err, strings.Join(filter, " "), strings.Join(more, "; "))
}
