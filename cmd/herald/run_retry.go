package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/scheduler"
)

func (a *app) runRetryCmd() *cobra.Command {
	var (
		class          string
		codes          []string
		includeUnknown bool
		asJSON         bool
		actor, reason  string
	)
	cmd := &cobra.Command{
		Use:   "retry RUN",
		Short: "Start a child run of exactly the failed recipients of a run (by class or code)",
		Long: `Start a child run, linked to its parent, that sends again to exactly the recipients of RUN
that failed with the given class (default transient: attempts used up on 5xx or timeouts) or
codes. --class any takes every failure. --include-unknown also takes recipients whose outcome
is unknown (they may have received the first message). The campaign file the parent was
started from is read again for the template parameters.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.config()
			if err != nil {
				return err
			}
			table, err := connectly.NewTable(c.Errors)
			if err != nil {
				return err
			}
			var want connectly.Class
			if class != "any" && len(codes) == 0 {
				if want, err = connectly.ParseClass(class); err != nil {
					return usageError{fmt.Errorf("--class: %w (or any)", err)}
				}
			}
			codeSet := map[string]bool{}
			for _, k := range codes {
				codeSet[k] = true
			}
			log, err := a.logger(c)
			if err != nil {
				return err
			}
			rdb, err := a.redis(ctx, c)
			if err != nil {
				return err
			}
			defer rdb.Close()
			l := ledger.New(rdb, nil)
			parent, err := l.GetRun(ctx, args[0])
			if err != nil {
				return notFound(args[0], err)
			}
			if parent.Status != ledger.RunCompleted && parent.Status != ledger.RunCancelled {
				return fmt.Errorf("run %s is %s: retry its failures once it has finished", parent.ID, parent.Status)
			}
			def, err := parentDefinition(ctx, rdb, parent)
			if err != nil {
				return err
			}
			if def.Template.Name != parent.Template || def.Template.Language != parent.Language {
				return fmt.Errorf("%s now sends %s/%s, but run %s sent %s/%s: refusing to retry with another template",
					parent.Definition, def.Template.Name, def.Template.Language, parent.ID, parent.Template, parent.Language)
			}

			picked := map[string]bool{}
			byCode := map[string]int{}
			err = l.EachEntry(ctx, parent.ID, func(rcpt string, _ int, e ledger.Entry) error {
				ok := false
				switch e.State {
				case ledger.Failed:
					switch {
					case len(codeSet) > 0:
						ok = codeSet[e.Code]
					case class == "any":
						ok = true
					default:
						ok = table.ClassOf(e.Code) == want
					}
				case ledger.Unknown:
					ok = includeUnknown
				}
				if ok {
					picked[rcpt] = true
					byCode[string(e.State)+":"+e.Code]++
				}
				return nil
			})
			if err != nil {
				return err
			}
			if len(picked) == 0 {
				return fmt.Errorf("run %s has no recipients matching the filter; nothing to retry", parent.ID)
			}
			exp := scheduler.NewExpander(scheduler.ExpanderConfig{
				Ledger: l, Enqueuer: asynq.NewClientFromRedisClient(rdb), Task: sendTaskOptions(c), Logger: log,
			})
			child, err := exp.CreateChildRun(ctx, def, parent.Sender, scheduler.NewRunID(def.ID, time.Now())+"-retry", parent.ID)
			if err != nil {
				return err
			}
			st, err := exp.ExpandOnly(ctx, def, child, func(r string) bool { return picked[r] })
			if err != nil {
				return fmt.Errorf("expand retry run %s: %w", child.ID, err)
			}
			if err := audit.Append(ctx, rdb, audit.Entry{Actor: operator(actor), Action: "run retry", Target: parent.ID, Reason: reason,
				Detail: fmt.Sprintf("child run %s with %d recipients", child.ID, st.Planned)}); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, map[string]any{"run": child.ID, "parent": parent.ID, "recipients": st.Rows,
					"planned": st.Planned, "picked": byCode})
			}
			keys := make([]string, 0, len(byCode))
			for k := range byCode {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			fmt.Fprintf(a.stdout, "run %s retries %d recipients of %s:\n", child.ID, st.Planned, parent.ID)
			for _, k := range keys {
				fmt.Fprintf(a.stdout, "  %-50s %d\n", k, byCode[k])
			}
			if missing := len(picked) - st.Rows; missing > 0 {
				fmt.Fprintf(a.stdout, "  (%d picked recipients are no longer in the audience file)\n", missing)
			}
			fmt.Fprintf(a.stdout, "follow it with: herald run show %s\n", child.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&class, "class", "transient", "retry failures of this class: transient, permanent, throttle, stop-run, or any")
	cmd.Flags().StringSliceVar(&codes, "code", nil, "retry failures with this code (repeatable; overrides --class)")
	cmd.Flags().BoolVar(&includeUnknown, "include-unknown", false, "also retry recipients whose outcome is unknown (may double-send)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().StringVar(&actor, "actor", "", "who is acting (default: the OS user)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the audit log)")
	return cmd
}

// parentDefinition is the campaign a run was started from: the stored version for runs of a
// submitted campaign (so a retry sends what the run sent, whatever the file says now), else
// the campaign file the run records.
func parentDefinition(ctx context.Context, rdb redis.UniversalClient, parent ledger.Run) (*campaigns.Definition, error) {
	if parent.Version > 0 {
		sub, err := scheduler.NewStore(rdb, nil).Version(ctx, parent.Campaign, parent.Version)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", parent.ID, err)
		}
		return sub.Definition()
	}
	if parent.Definition == "" {
		return nil, fmt.Errorf("run %s does not record its campaign file", parent.ID)
	}
	if _, err := os.Stat(parent.Definition); err != nil {
		return nil, fmt.Errorf("run %s was started from %s, which cannot be read: %w", parent.ID, parent.Definition, err)
	}
	return campaigns.Load(parent.Definition)
}
