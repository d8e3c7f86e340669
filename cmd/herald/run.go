package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/serve"
)

func (a *app) runCmd() *cobra.Command {
	return group("run", "Inspect runs (one run = one firing of a campaign)", a.runShowCmd(), a.runLsCmd(),
		a.runActionCmd(runPause), a.runActionCmd(runResume), a.runActionCmd(runCancel), a.runRetryCmd(), a.runRepairCmd())
}

func (a *app) runShowCmd() *cobra.Command {
	var (
		asJSON, verify, watch, reveal bool
		interval                      time.Duration
	)
	cmd := command("show RUN", "Show a run's progress: recipients per state, outcome codes, and their sum", cobra.ExactArgs(1),
		func(ctx context.Context, args []string) error {
			if watch && interval <= 0 {
				return usageError{fmt.Errorf("--interval %s: want a positive duration, e.g. 1s", interval)}
			}
			if follows, rule, ok := ledger.FollowupOf(args[0]); ok && watch {
				// Its replies may add entries until the rule's on_reply.until: it never ends.
				return usageError{fmt.Errorf("run %s follows %s (on_reply rule %s): a follow-up run never ends, so --watch would never stop; "+
					"run show %s without --watch shows it as it stands", args[0], follows, rule, args[0])}
			}
			return a.withRedis(ctx, func(k conn) error {
				if watch {
					return a.watchRun(ctx, k, args[0], interval, asJSON, verify, reveal)
				}
				rep, err := report.ShowRun(ctx, k.ledger(), k.rdb, a.showParams(k, args[0], a.now(), verify, reveal))
				if err != nil {
					return notFound(args[0], err)
				}
				if err := a.print(asJSON, rep, func(w io.Writer) error { report.PrintRun(w, rep); report.PrintFunnel(w, rep.Funnel); return nil }); err != nil {
					return err
				}
				return verified(rep)
			})
		})
	cmd.Long = `Show a run's progress: recipients per state, outcome codes, and their sum.

--watch refreshes until the run has ended (completed or cancelled). On a terminal it redraws the
report with a progress bar; otherwise it prints one progress line per refresh, followed on the
same line by the status lines (what the run waits for, a pause, ...). With --json it
prints one JSON object per refresh instead, each on one line (JSON lines), with the fields of
run show --json; the last line is the ended run. With --verify the counters are recounted from
the ledger once the run has ended (the last line, or the text after the last progress line).

A follow-up run (RUN~RULE: what an on_reply rule of RUN sent) shows the run and rule it follows
and counts its entries, one per reply that matched the rule. It never ends, as later replies
may add to it, so --watch refuses it (exit 2).

Phone numbers are masked to their last 4 digits unless --reveal: the run's sender, and any
number in the labels of the buttons customers tapped or in a pause reason. Those texts come from
customers and operators: their control characters (escape sequences, newlines, tabs) are shown
escaped, as Go writes them (\x1b, \n, \t).`
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the run as JSON (with --watch: one JSON object per line and refresh)")
	cmd.Flags().BoolVar(&watch, "watch", false, "refresh until the run ends, with a progress bar (Ctrl-C to stop watching)")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "with --watch: how often to refresh (positive)")
	cmd.Flags().BoolVar(&reveal, "reveal", false, "show phone numbers in full (the sender, numbers in button labels; a pause reason is stored masked)")
	cmd.Flags().BoolVar(&verify, "verify", false, "recompute the counters from the ledger and report any mismatch (exit 1 if any; with --watch, once the run has ended)")
	return cmd
}

// showParams are what run show reads of run runID as of now.
func (a *app) showParams(k conn, runID string, now time.Time, verify, reveal bool) report.ShowParams {
	return report.ShowParams{Run: runID, Now: now, Limits: &k.c, RuleIDs: serve.RunRuleIDs(k.c, k.rdb), Verify: verify,
		SendAddress: sendAddress, Reveal: reveal}
}

// sendAddress reads the ledger address of a send task's recipient (report.SendAddress).
func sendAddress(taskType string, payload []byte) (ledger.Address, bool) {
	if taskType != campaigns.TypeSend {
		return ledger.Address{}, false
	}
	p, err := campaigns.DecodeSend(payload)
	if err != nil {
		return ledger.Address{}, false
	}
	return p.Address(), true
}

// verified is run show's error when its recount found the counters wrong.
func verified(rep report.Run) error {
	if rep.Verify != nil && len(rep.Verify.Mismatches) > 0 {
		n := len(rep.Verify.Mismatches)
		return fmt.Errorf("run %s: %s with the ledger", rep.Run, serve.Count(n, "counter disagrees", "counters disagree"))
	}
	return nil
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
			return report.RecentRuns(ctx, k.ledger(), campaign, limit, a.now())
		},
	})
	cmd.Flags().StringVar(&campaign, "campaign", "", "only runs of this campaign")
	countFlag(cmd.Flags(), &limit, "limit", 20, "how many runs (1 or more)")
	return cmd
}

// watchRun redraws a run's report with a progress bar until the run completes or is
// cancelled. On a terminal the screen is redrawn; otherwise one progress line is printed per
// refresh, so the output can be logged. asJSON prints each refresh as one line of JSON, the
// report run show --json prints. verify recounts the ledger once the run has ended; reveal shows
// phone numbers in full. A run that does not exist is reported before anything is drawn:
// PollRun's first read fails.
func (a *app) watchRun(ctx context.Context, k conn, runID string, every time.Duration, asJSON, verify, reveal bool) error {
	l := k.ledger()
	term := !asJSON && isTerminal(a.stdout)
	read := func(ctx context.Context, now time.Time) (report.Run, error) {
		if !asJSON {
			rep, err := report.ReadRun(ctx, l, runID, now)
			if err == nil && verify && rep.Ended() {
				var v ledger.Verification
				if v, err = l.Verify(ctx, rep.Run); err == nil {
					rep.Verify = &v
				}
			}
			if !reveal {
				rep.Mask()
			}
			return rep, err
		}
		rep, err := report.ShowRun(ctx, l, k.rdb, a.showParams(k, runID, now, false, reveal))
		if err == nil && verify && rep.Ended() {
			rep, err = report.ShowRun(ctx, l, k.rdb, a.showParams(k, runID, now, true, reveal))
		}
		return rep, err
	}
	lines := json.NewEncoder(a.stdout)
	rep, err := report.PollRun(ctx, every, read, func(rep report.Run, elapsed time.Duration) error {
		switch {
		case asJSON:
			return lines.Encode(rep)
		case term:
			fmt.Fprint(a.stdout, "\033[H\033[2J")
			report.PrintRun(a.stdout, rep)
			fmt.Fprintln(a.stdout)
		}
		if term {
			fmt.Fprintln(a.stdout, report.ProgressLine(rep, elapsed))
		} else {
			fmt.Fprintln(a.stdout, report.WatchLine(rep, elapsed)) // the progress and the status lines
		}
		if !term && rep.Verify != nil {
			report.PrintVerify(a.stdout, *rep.Verify, rep.Sum)
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil // the operator stopped watching
	}
	if err != nil {
		return notFound(runID, err)
	}
	return verified(rep)
}
