package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/serve"
)

func (a *app) runCmd() *cobra.Command {
	return group("run", "Inspect runs (one run = one firing of a campaign)", a.runShowCmd(), a.runLsCmd(),
		a.runActionCmd(runPause), a.runActionCmd(runResume), a.runActionCmd(runCancel), a.runRetryCmd())
}

func (a *app) runShowCmd() *cobra.Command {
	var (
		asJSON, verify, watch bool
		interval              time.Duration
	)
	cmd := a.redisCmd("show RUN", "Show a run's progress: recipients per state, outcome codes, and their sum", cobra.ExactArgs(1),
		func(ctx context.Context, k conn, args []string) error {
			l := k.ledger()
			if watch {
				return a.watchRun(ctx, l, args[0], interval)
			}
			rep, err := report.ShowRun(ctx, l, k.rdb, report.ShowParams{Run: args[0], Now: time.Now(), Limits: &k.c,
				RuleIDs: serve.RunRuleIDs(k.c, k.rdb), Verify: verify})
			if err != nil {
				return notFound(args[0], err)
			}
			if err := a.print(asJSON, rep, func(w io.Writer) error { report.PrintRun(w, rep); report.PrintFunnel(w, rep.Funnel); return nil }); err != nil {
				return err
			}
			if rep.Verify != nil && len(rep.Verify.Mismatches) > 0 {
				return fmt.Errorf("run %s: %d counters disagree with the ledger", rep.Run, len(rep.Verify.Mismatches))
			}
			return nil
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the run as JSON")
	cmd.Flags().BoolVar(&watch, "watch", false, "refresh until the run ends, with a progress bar (Ctrl-C to stop watching)")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "with --watch: how often to refresh")
	cmd.Flags().BoolVar(&verify, "verify", false, "recompute the counters from the ledger and report any mismatch (exit 1 if any)")
	return cmd
}

func (a *app) runLsCmd() *cobra.Command {
	var (
		campaign string
		limit    int
	)
	cmd := viewCmd(a, view[[]report.Run]{
		Use: "ls", Short: "List recent runs, newest first", Args: cobra.NoArgs,
		JSONHelp: "print the runs as JSON", Text: report.PrintRuns,
		Read: func(ctx context.Context, k conn, _ []string) ([]report.Run, error) {
			return report.RecentRuns(ctx, k.ledger(), campaign, limit, time.Now())
		},
	})
	cmd.Flags().StringVar(&campaign, "campaign", "", "only runs of this campaign")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many runs")
	return cmd
}

// watchRun redraws a run's report with a progress bar until the run completes or is
// cancelled. On a terminal the screen is redrawn; otherwise one progress line is printed per
// refresh, so the output can be logged. A run that does not exist is reported before
// anything is drawn: PollRun's first read fails.
func (a *app) watchRun(ctx context.Context, l *ledger.Ledger, runID string, every time.Duration) error {
	term := isTerminal(a.stdout)
	_, err := report.PollRun(ctx, l, runID, every, func(rep report.Run, elapsed time.Duration) error {
		if term {
			fmt.Fprint(a.stdout, "\033[H\033[2J")
			report.PrintRun(a.stdout, rep)
			fmt.Fprintln(a.stdout)
		}
		fmt.Fprintln(a.stdout, report.ProgressLine(rep, elapsed))
		return nil
	})
	if ctx.Err() != nil {
		return nil // the operator stopped watching
	}
	return notFound(runID, err)
}
