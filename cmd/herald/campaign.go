package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/scheduler"
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
			def, err := campaigns.Load(args[0])
			if err != nil {
				return err
			}
			if _, err := serve.SenderOf(def, c); err != nil {
				return err
			}
			log, err := a.logger(c)
			if err != nil {
				return err
			}
			if asJSON && log.GetLevel() == zerolog.InfoLevel {
				// The JSON on stdout is the report; at the default level the expansion's
				// info lines would only repeat it on stderr. Warnings still show.
				log = log.Level(zerolog.WarnLevel)
			}
			return a.connected(ctx, c, func(rdb redis.UniversalClient) error {
				var progress func(int, int)
				if isTerminal(a.stderr) && !asJSON {
					progress = func(done, est int) { fmt.Fprintf(a.stderr, "\rexpanding: %d of about %d rows", done, est) }
				}
				start := time.Now()
				started, err := serve.Runs(c, rdb, log, serve.SendTaskOptions(c)).StartRun(ctx, expand.StartParams{Def: def, Bounded: true, Progress: progress})
				if progress != nil {
					fmt.Fprintln(a.stderr)
				}
				if err != nil {
					return err
				}
				run, st, continues, backlog, took := started.Run, started.Stats, started.Continues, started.Backlog, time.Since(start)
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
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func printStarted(w io.Writer, run ledger.Run, st expand.Stats, d time.Duration) {
	fmt.Fprintf(w, "run %s started: %d rows, %d recipients queued on %s in %s\n",
		run.ID, st.Rows, st.Planned, run.Queue, d.Round(time.Millisecond))
	for r, n := range st.Skipped {
		fmt.Fprintf(w, "  skipped %d rows: %s\n", n, r)
	}
	fmt.Fprintf(w, "follow it with: herald run show %s\n", run.ID)
}

func (a *app) campaignLsCmd() *cobra.Command {
	var limit int
	cmd := viewCmd(a, view[[]campaigns.Listed]{
		Use: "ls", Short: "Submitted campaigns (version, schedule, next run) and campaigns that have runs",
		Args: cobra.NoArgs, JSONHelp: "print as JSON", Text: printCampaigns,
		Read: func(ctx context.Context, k conn, _ []string) ([]campaigns.Listed, error) {
			cs, err := k.ledger().Campaigns(ctx, limit)
			if err != nil {
				return nil, err
			}
			subs, err := defstore.New(k.rdb, nil).Active(ctx)
			if err != nil {
				return nil, err
			}
			return campaigns.Listing(cs, subs, time.Now(), scheduler.NextFire), nil
		},
	})
	cmd.Flags().IntVar(&limit, "limit", 50, "how many campaigns with runs")
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
		table = append(table, []string{r.Campaign, version, cmp.Or(r.Schedule, "-"), next, strconv.FormatInt(r.Runs, 10),
			cmp.Or(r.LastRun, "-"), last})
	}
	return printTable(w, []string{"CAMPAIGN", "VERSION", "SCHEDULE", "NEXT RUN", "RUNS", "LAST RUN", "LAST RUN AT"}, table)
}
