package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/sendpolicy"
	"github.com/heraldmsg/herald/scheduler"
	"github.com/heraldmsg/herald/serve"
)

func (a *app) campaignSubmitCmd() *cobra.Command {
	var asJSON bool
	cmd := command("submit FILE", "Store a campaign for the scheduler (validated first); a changed file becomes a new version",
		cobra.ExactArgs(1), func(ctx context.Context, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("campaign: %w", err)
			}
			def, err := campaigns.Parse(args[0], data)
			if err != nil {
				return err
			}
			// The config is read once the file is known to be a campaign.
			c, err := a.config()
			if err != nil {
				return err
			}
			def.Files = fileRules(c)
			// The file, its place (inside the campaigns root) and its header, as validate checks.
			if err := campaigns.CheckAudience(def); err != nil {
				return err
			}
			return a.connected(ctx, c, func(rdb redis.UniversalClient) error {
				v, created, err := defstore.New(rdb, nil).Submit(ctx, def.ID, def.Path, data)
				if err != nil {
					return err
				}
				next := scheduler.NextFire(def, time.Now())
				out := map[string]any{"campaign": def.ID, "version": v, "changed": created}
				if !next.IsZero() {
					out["next_run"] = next.UTC()
				}
				return a.print(asJSON, out, func(w io.Writer) error {
					if created {
						fmt.Fprintf(w, "campaign %s submitted as version %d\n", def.ID, v)
					} else {
						fmt.Fprintf(w, "campaign %s unchanged: still version %d\n", def.ID, v)
					}
					switch {
					case !next.IsZero():
						fmt.Fprintf(w, "next run %s\n", next.UTC().Format(time.RFC3339))
					case def.Schedule.Cron == "" && def.Schedule.At == "":
						fmt.Fprintf(w, "no schedule: start runs with herald campaign run %s\n", def.ID)
					default:
						fmt.Fprintf(w, "its schedule has no future time: start a run with herald campaign run %s\n", def.ID)
					}
					return nil
				})
			})
		})
	cmd.Long = `Store a campaign for the scheduler. The file is validated exactly as by campaign validate;
a file that changed since its last submit (text or path) becomes the next version, an
unchanged one keeps its version. Runs keep the version they started with.

The audience file is not copied: the scheduler reads it when a run starts, from the path the
campaign file names (relative to the campaign file's folder). Every process that expands runs
(herald scheduler, and workers serving expansion) must see that file at that path.`
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func (a *app) campaignRmCmd() *cobra.Command {
	var by auditFlags
	cmd := a.redisCmd("rm ID", "Stop future runs of a submitted campaign (runs already started continue)", cobra.ExactArgs(1),
		func(ctx context.Context, k conn, args []string) error {
			ok, err := defstore.New(k.rdb, nil).Remove(ctx, args[0])
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("campaign %s is not submitted", args[0])
			}
			if err := by.record(ctx, k.rdb, "campaign rm", args[0], ""); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "campaign %s removed: no further runs; runs already started continue\n", args[0])
			return nil
		})
	by.add(cmd, reasonInAuditLog)
	return cmd
}

func (a *app) campaignRunCmd() *cobra.Command {
	var asJSON bool
	cmd := a.redisCmd("run ID", "Start a run of a submitted campaign now (its current version)", cobra.ExactArgs(1),
		func(ctx context.Context, k conn, args []string) error {
			sub, err := defstore.New(k.rdb, nil).Current(ctx, args[0])
			if errors.Is(err, defstore.ErrNotSubmitted) {
				return fmt.Errorf("campaign %s is not submitted (herald campaign submit FILE first)", args[0])
			}
			if err != nil {
				return err
			}
			log, err := a.logger(k.c)
			if err != nil {
				return err
			}
			started, err := serve.Runs(k.c, k.rdb, log, serve.ExpandTaskOptions(k.c)).StartRun(ctx,
				expand.StartParams{Campaign: sub.ID, Version: sub.Version, Trigger: "manual", Retention: sendpolicy.Retention})
			if err != nil {
				return err
			}
			runID := started.RunID
			out := map[string]any{"run": runID, "campaign": sub.ID, "version": sub.Version}
			return a.print(asJSON, out, func(w io.Writer) error {
				fmt.Fprintf(w, "run %s of %s (version %d) enqueued: a scheduler creates and expands it\n", runID, sub.ID, sub.Version)
				fmt.Fprintf(w, "follow it with: herald run show %s\n", runID)
				return nil
			})
		})
	cmd.Long = `Start a run of a submitted campaign now, from its current version. The run is created and
expanded by a process serving expansion tasks (herald scheduler by default).`
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
