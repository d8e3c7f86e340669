package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/sendpolicy"
	"github.com/heraldmsg/herald/scheduler"
	"github.com/heraldmsg/herald/serve"
)

func (a *app) campaignSubmitCmd() *cobra.Command {
	var asJSON bool
	cmd := command("submit FILE", "Store a campaign for the scheduler (validated first); a changed file becomes a new version",
		cobra.ExactArgs(1), func(ctx context.Context, args []string) error {
			// The file is checked as campaign validate checks it, every problem at once; a
			// config that does not load is left to Submit, which reports a file that is not a
			// campaign before it.
			checked := false
			if c, err := a.config(); err == nil {
				notes, err := serve.CheckCampaign(ctx, c, args[0])
				for _, n := range notes {
					fmt.Fprintf(a.stderr, "note: %s\n", logx.EscapeLines(n))
				}
				if err != nil {
					return fmt.Errorf("not submitted: %w", err)
				}
				checked = true
			}
			var c config.Config
			res, err := scheduler.Submit(ctx, scheduler.SubmitParams{Path: args[0],
				// The config is read once the file is known to be a campaign.
				Rules: func() (campaigns.FileRules, error) {
					var err error
					c, err = a.config()
					return serve.FileRules(c), err
				},
				Connect: func(ctx context.Context) (redis.UniversalClient, error) { return a.redis(ctx, c) },
				Check: func(ctx context.Context, def *campaigns.Definition) error {
					if checked {
						// Its on_reply rules were checked with the rest: only the warning.
						if w := campaigns.UnlistedSender(def, c.Senders); w != "" {
							fmt.Fprintf(a.stderr, "warning: %s\n", w)
						}
						return nil
					}
					if err := a.checkOnReplyOf(ctx, c, def); err != nil {
						return fmt.Errorf("not submitted: %w", err)
					}
					return nil
				},
			})
			if err != nil {
				return err
			}
			out := map[string]any{"campaign": res.Campaign, "version": res.Version, "changed": res.Changed,
				"restored": res.Restored}
			if !res.NextRun.IsZero() {
				out["next_run"] = res.NextRun.UTC()
			}
			return a.print(asJSON, out, func(w io.Writer) error {
				// A removed campaign submitted again is back, whether or not its file changed.
				again := ""
				if res.Restored && res.Scheduled {
					again = ", scheduled again"
				}
				switch {
				case res.Restored && res.Changed:
					fmt.Fprintf(w, "campaign %s submitted again as version %d%s\n", res.Campaign, res.Version, again)
				case res.Restored:
					fmt.Fprintf(w, "campaign %s submitted again: version %d (unchanged)%s\n", res.Campaign, res.Version, again)
				case res.Changed:
					fmt.Fprintf(w, "campaign %s submitted as version %d\n", res.Campaign, res.Version)
				default:
					fmt.Fprintf(w, "campaign %s unchanged: still version %d\n", res.Campaign, res.Version)
				}
				switch {
				case !res.NextRun.IsZero():
					fmt.Fprintf(w, "next run %s\n", res.NextRun.UTC().Format(time.RFC3339))
				case !res.Scheduled:
					fmt.Fprintf(w, "no schedule: start runs with herald campaign run %s\n", res.Campaign)
				default:
					fmt.Fprintf(w, "its schedule has no future time: start a run with herald campaign run %s\n", res.Campaign)
				}
				return nil
			})
		})
	cmd.Long = `Store a campaign for the scheduler. The file is validated exactly as by campaign validate;
its on_reply rules are checked against its templates as by campaign send; a file that changed since its last submit (text or path) becomes the next version, an
unchanged one keeps its version. Runs keep the version they started with. A campaign removed
with campaign rm is scheduled again by its next submit, at its version when the file is unchanged.

The audience file is not copied: the scheduler reads it when a run starts, from the path the
campaign file names (relative to the campaign file's folder). Every process that expands runs
(herald scheduler, and workers serving expansion) must see that file at that path.`
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func (a *app) campaignRmCmd() *cobra.Command {
	var (
		by     auditFlags
		asJSON bool
	)
	cmd := a.redisCmd("rm ID", "Stop future runs of a submitted campaign (runs already started continue)", cobra.ExactArgs(1),
		func(ctx context.Context, k conn, args []string) error {
			ok, err := serve.RemoveCampaign(ctx, k.rdb, args[0], by.record(k.rdb))
			if ok {
				// Removed, even when its audit entry then failed (the error says so).
				out := map[string]any{"campaign": args[0], "removed": true}
				if perr := a.print(asJSON, out, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "campaign %s removed: no further runs; runs already started continue\n", args[0])
					return err
				}); perr != nil {
					return errors.Join(perr, err)
				}
			}
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("campaign %s is not submitted", args[0])
			}
			return nil
		})
	by.add(cmd, reasonInAuditLog)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON: campaign, removed")
	return cmd
}

// whoExpands says which processes create and expand a run campaign run enqueued: every
// herald scheduler and herald worker serves expansion tasks, unless its config sets
// scheduler.expand_concurrency to 0.
const whoExpands = "whichever process serves expansion tasks first (herald scheduler or herald worker) creates and expands it"

func (a *app) campaignRunCmd() *cobra.Command {
	var asJSON bool
	cmd := a.redisCmd("run ID", "Start a run of a submitted campaign now (its current version)", cobra.ExactArgs(1),
		func(ctx context.Context, k conn, args []string) error {
			log, err := a.commandLogger(k.c)
			if err != nil {
				return err
			}
			started, err := serve.Runs(k.c, k.rdb, log, serve.ExpandTaskOptions(k.c)).StartRun(ctx,
				expand.StartParams{Campaign: args[0], Trigger: "manual", Retention: sendpolicy.Retention,
					Check: func(ctx context.Context, def *campaigns.Definition) error {
						if err := a.checkOnReplyOf(ctx, k.c, def); err != nil {
							return fmt.Errorf("no run started: %w", err)
						}
						return nil
					}})
			if errors.Is(err, defstore.ErrNotSubmitted) {
				return fmt.Errorf("campaign %s is not submitted (herald campaign submit FILE first)", args[0])
			}
			if err != nil {
				return err
			}
			runID := started.RunID
			out := map[string]any{"run": runID, "campaign": args[0], "version": started.Version}
			return a.print(asJSON, out, func(w io.Writer) error {
				fmt.Fprintf(w, "run %s of %s (version %d) enqueued: %s\n", runID, args[0], started.Version, whoExpands)
				fmt.Fprintf(w, "follow it with: herald run show %s\n", runID)
				return nil
			})
		})
	cmd.Long = `Start a run of a submitted campaign now, from its current version. The run is created and
expanded by whichever process serves expansion tasks first: herald scheduler or herald worker
(scheduler.expand_concurrency, 0 in a process's config leaving it to the others). Its on_reply rules
are checked against its templates as Connectly has them now, as by campaign submit; a campaign
whose rules name buttons its template no longer has starts no run.`
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
