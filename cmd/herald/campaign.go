package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/serve"
)

func (a *app) campaignCmd() *cobra.Command {
	return group("campaign", "Work with campaign definitions", a.campaignSendCmd(), a.campaignValidateCmd(),
		a.campaignPlanCmd(), a.campaignLsCmd(), a.campaignSubmitCmd(), a.campaignRmCmd(), a.campaignRunCmd())
}

func (a *app) campaignSendCmd() *cobra.Command {
	var asJSON bool
	cmd := a.configCmd("send FILE", "Start a run of a campaign now: every recipient gets one send task", cobra.ExactArgs(1),
		func(ctx context.Context, c config.Config, args []string) error {
			log, err := a.commandLogger(c)
			if err != nil {
				return err
			}
			p := serve.SendParams{Path: args[0], Config: c, Log: log, Connect: a.connect(c),
				Note:    func(n string) { fmt.Fprintf(a.stderr, "note: %s\n", logx.EscapeLines(n)) },
				Warning: func(w string) { fmt.Fprintf(a.stderr, "warning: %s\n", logx.EscapeLines(w)) }}
			var drawn bool
			if isTerminal(a.stderr) && !asJSON {
				p.Progress = func(done, est int) {
					drawn = true
					fmt.Fprintf(a.stderr, "\rexpanding: %d of about %d rows", done, est)
				}
			}
			sent, err := serve.SendCampaign(ctx, p)
			if drawn {
				fmt.Fprintln(a.stderr)
			}
			if err != nil {
				return err
			}
			run, st, continues, backlog, took := sent.Run, sent.Stats, sent.Continues, sent.Backlog, sent.Took
			st.Skipped = a.runSkipped(ctx, c, run.ID, st.Skipped)
			out := map[string]any{
				"run": run.ID, "campaign": run.Campaign, "rows": st.Rows, "planned": st.Planned,
				"skipped": st.Skipped, "queue": run.Queue, "seconds": took.Seconds(),
				"expanding": continues, "backlog": backlog,
				// "window" is a compatibility alias of "backlog" (its older name, as the
				// README documents), kept for scripts that read it.
				"window": backlog,
			}
			return a.print(asJSON, out, func(w io.Writer) error {
				printStarted(w, run, st, took)
				if continues {
					fmt.Fprintf(w, "the audience goes on expanding %d tasks at a time as sends complete, in herald worker or herald scheduler\n", backlog)
				}
				return nil
			})
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// checkOnReplyOf refuses campaign def when its on_reply rules have the problems campaign
// validate reports (serve.RefuseOnReply: follow-up messages, and buttons and list rows against
// what the campaign sends, its templates read from Connectly when it can be reached), so
// validate, submit and run agree (send and plan check the whole file as validate does:
// serve.CheckCampaign); its notes on what could not be checked go to stderr,
// and so does the warning of a sender the config does not list (campaigns.UnlistedSender),
// which does not refuse: the worker sends from it, at the default rate.
func (a *app) checkOnReplyOf(ctx context.Context, c config.Config, def *campaigns.Definition) error {
	if w := campaigns.UnlistedSender(def, c.Senders); w != "" {
		fmt.Fprintf(a.stderr, "warning: %s\n", w)
	}
	notes, err := serve.RefuseOnReply(ctx, c, def)
	for _, n := range notes {
		fmt.Fprintf(a.stderr, "note: %s\n", n)
	}
	return err
}

// runSkipped returns the rows of run runID skipped so far, by reason, as its ledger counts
// them (skipped:REASON): those that never reached the ledger (an invalid number), which the
// expansion's own count (expanded) has, and also those the ledger itself planned as skipped (a
// repeated recipient, a suppressed one), which it lacks. When the counters cannot be read it
// says so on stderr and returns expanded.
func (a *app) runSkipped(ctx context.Context, c config.Config, runID string, expanded map[string]int) map[string]int {
	var cn ledger.Counters
	err := a.connected(ctx, c, func(rdb redis.UniversalClient) error {
		var err error
		cn, err = ledger.New(rdb, nil).Counters(ctx, runID)
		return err
	})
	if err != nil {
		fmt.Fprintf(a.stderr, "herald: skipped rows not counted from the ledger (%v): showing the invalid rows only\n", err)
		return expanded
	}
	out := map[string]int{}
	for code, n := range cn.Codes {
		if reason, ok := strings.CutPrefix(code, string(ledger.Skipped)+":"); ok && n > 0 {
			out[reason] = int(n)
		}
	}
	return out
}

func printStarted(w io.Writer, run ledger.Run, st expand.Stats, d time.Duration) {
	fmt.Fprintf(w, "run %s started: %s, %s queued on %s in %s\n", run.ID, serve.Count(st.Rows, "row", "rows"),
		serve.Count(st.Planned, "recipient", "recipients"), run.Queue, d.Round(time.Millisecond))
	for _, r := range slices.Sorted(maps.Keys(st.Skipped)) {
		fmt.Fprintf(w, "  skipped %s: %s\n", serve.Count(st.Skipped[r], "row", "rows"), r)
	}
	fmt.Fprintf(w, "follow it with: herald run show %s\n", run.ID)
}

func (a *app) campaignLsCmd() *cobra.Command {
	var limit int
	cmd := viewCmd(a, view[[]campaigns.Listed]{
		Use: "ls", Short: "Submitted campaigns (version, schedule, next run) and campaigns that have runs",
		Args: cobra.NoArgs, JSONHelp: "print as JSON", Text: printCampaigns,
		Read: func(ctx context.Context, k conn, _ []string) ([]campaigns.Listed, error) {
			return serve.ListCampaigns(ctx, k.rdb, limit, a.now())
		},
	})
	countFlag(cmd.Flags(), &limit, "limit", 50, "how many campaigns with runs (1 or more)")
	return cmd
}

// printCampaigns renders campaign rows as `campaign ls` does.
func printCampaigns(w io.Writer, rows []campaigns.Listed) error {
	table := make([][]string, 0, len(rows))
	for _, r := range rows {
		version, next, last := "-", "-", "-"
		if r.Version > 0 {
			version = strconv.Itoa(r.Version)
		}
		if r.NextRun != nil {
			next = r.NextRun.Format(time.RFC3339)
		}
		if !r.LastAt.IsZero() {
			last = r.LastAt.Format(time.RFC3339)
		}
		// The schedule is the campaign file's (or its problem): escaped.
		table = append(table, []string{r.Campaign, version, cmp.Or(logx.EscapeControl(r.Schedule), "-"), next, strconv.FormatInt(r.Runs, 10),
			cmp.Or(r.LastRun, "-"), last})
	}
	return printTable(w, []string{"CAMPAIGN", "VERSION", "SCHEDULE", "NEXT RUN", "RUNS", "LAST RUN", "LAST RUN AT"}, table)
}
