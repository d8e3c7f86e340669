package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/report"
)

// planOutput is `campaign plan --json`.
type planOutput struct {
	campaigns.PlanReport
	Sender           string  `json:"sender"`
	InvalidShare     float64 `json:"invalid_share"`
	RatePerSecond    float64 `json:"rate_per_second"`
	EstimatedSeconds float64 `json:"estimated_seconds"`
	// Templates is set by --check-templates.
	Templates []report.TemplateCheck `json:"templates,omitempty"`
	// Limits is what the frequency cap and the daily tier would do if the run started now.
	Limits *report.PlanLimits `json:"limits,omitempty"`
	// Followups are the on_reply rules' requests, rendered for a sample reply.
	Followups []conversation.FollowupPlan `json:"followups,omitempty"`
	window    time.Duration
}

func (a *app) campaignPlanCmd() *cobra.Command {
	var (
		samples                int
		asJSON, checkT, reveal bool
	)
	cmd := a.configCmd("plan FILE", "Dry run: what a campaign would send (counts, skips with reasons, exact sample requests, duration)",
		cobra.ExactArgs(1), func(ctx context.Context, c config.Config, args []string) error {
			def, err := loadCampaign(c, args[0])
			if err != nil {
				return err
			}
			sender, err := resolveSender(def, c)
			if err != nil {
				return err
			}
			o := campaigns.PlanOptions{Samples: samples, Wire: c.Connectly.Wire()}
			if isTerminal(a.stderr) {
				// The file's line count is a fast upper bound on its rows: enough for a bar.
				total, _ := campaigns.CountLines(def) // an error is the plan's too
				start := time.Now()
				o.Progress = func(rows int) {
					const width = 30
					filled := min(width, rows*width/max(1, total))
					fmt.Fprintf(a.stderr, "\r[%s%s] %d of about %d rows (%.0f rows/s)", strings.Repeat("=", filled),
						strings.Repeat(" ", width-filled), rows, total, float64(rows)/time.Since(start).Seconds())
				}
			}
			lc, closeLC := a.newLimitCheck(ctx, c, def)
			defer closeLC()
			if lc != nil {
				o.Recipient = lc.Add
			}
			rep, err := campaigns.Plan(def, sender, o)
			if o.Progress != nil {
				fmt.Fprint(a.stderr, "\r\033[K")
			}
			if err != nil {
				return err
			}
			pl, err := lc.Result()
			if err != nil {
				return err
			}
			rep.Recipients = pl.ApplyCaps(rep.Recipients, rep.Skipped)
			var checks []report.TemplateCheck
			if checkT {
				list := func(ctx context.Context) ([]connectly.TemplateInfo, error) {
					client, err := connectlyClient(c, 0)
					if err != nil {
						return nil, err
					}
					list, err := client.ListTemplates(ctx)
					if err != nil {
						return nil, fmt.Errorf("list templates: %w", err)
					}
					return list, nil
				}
				params := slices.Collect(maps.Keys(def.Parameters.Values))
				languages := append([]string{def.Template.Language}, def.Template.Languages...)
				if checks, err = report.CheckTemplates(ctx, list, def.Template.Name, languages, params); err != nil {
					return err
				}
			}
			if !reveal {
				rep.Samples = maskSamples(rep.Samples)
				if rep.Session != nil {
					rep.Session.FallbackSamples = maskSamples(rep.Session.FallbackSamples)
				}
			}
			rate := report.PlanRate(c, sender, def.Rate)
			out := planOutput{PlanReport: rep, Templates: checks, Sender: sender, InvalidShare: rep.InvalidShare(), RatePerSecond: rate,
				EstimatedSeconds: float64(rep.Recipients) / rate, Limits: pl, window: c.Limits.TierWindow.D(),
				Followups: conversation.PlanFollowups(def, sender, c.Connectly.Wire())}
			if err := a.print(asJSON, out, func(w io.Writer) error { printPlan(w, out); return nil }); err != nil {
				return err
			}
			if templateProblems := report.TemplateProblems(checks); templateProblems > 0 {
				return fmt.Errorf("%d template problems: sends would fail or pause the run", templateProblems)
			}
			// A run of this file would refuse to start: say so, and exit 1.
			return rep.CheckInvalidShare(def.Audience.MaxInvalidShare)
		})
	cmd.Flags().IntVar(&samples, "sample", 3, "how many exact request bodies to show")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	cmd.Flags().BoolVar(&reveal, "reveal", false, "show phone numbers in full in the sample requests (masked to their last 4 digits by default)")
	cmd.Flags().BoolVar(&checkT, "check-templates", false, "ask Connectly for the template's translations and check status, body variables and header (needs credentials)")
	return cmd
}

// printPlan renders a plan as text.
func printPlan(w io.Writer, p planOutput) {
	fmt.Fprintf(w, "Campaign file  %s\nAudience       %s\n", p.File, p.Audience)
	fmt.Fprintf(w, "Rows           %d\nRecipients     %d\n", p.Rows, p.Recipients)
	reasons := make([]string, 0, len(p.Skipped))
	for r := range p.Skipped {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "Skipped        %d %s\n", p.Skipped[r], r)
	}
	for _, e := range p.Examples {
		fmt.Fprintf(w, "  %s:%d: row %d: %s: %s\n", p.Audience, e.Line, e.Row, e.Reason, e.Detail)
	}
	for lang, n := range p.Languages {
		fmt.Fprintf(w, "Language       %s: %d\n", lang, n)
	}
	sender := p.Sender
	if sender == "" {
		sender = "(the business's number)"
	}
	est := "under a second"
	if p.EstimatedSeconds >= 1 {
		est = (time.Duration(p.EstimatedSeconds * float64(time.Second))).Round(time.Second).String()
	}
	fmt.Fprintf(w, "Sender         %s at %g msg/s\nEstimated time %s (at that rate, before retries)\n", sender, p.RatePerSecond, est)
	report.PrintPlanLimits(w, p.Limits, p.window)
	for _, ch := range p.Templates {
		if len(ch.Problems) == 0 {
			fmt.Fprintf(w, "Template       %s: %s, parameters match\n", ch.Language, ch.Status)
		}
		for _, pr := range ch.Problems {
			fmt.Fprintf(w, "Template       %s: PROBLEM: %s\n", ch.Language, pr)
		}
	}
	path := connectly.SendPath("{businessId}")
	if p.Session != nil {
		path = p.Session.Path
		fmt.Fprintf(w, "Session        %s message; %s\n", p.Session.Kind, p.Session.Note())
	}
	printRequests(w, "Request", path, p.Samples)
	if p.Session != nil {
		printRequests(w, "Fallback request", connectly.SendPath("{businessId}"), p.Session.FallbackSamples)
	}
	for _, f := range p.Followups {
		title := "Follow-up " + f.Rule
		if f.Delay != "" {
			title += " (after " + f.Delay + ")"
		}
		switch {
		case f.Error != "":
			fmt.Fprintf(w, "\n%s: PROBLEM: %s\n", title, f.Error)
		case len(f.Requests) == 0:
			fmt.Fprintf(w, "\n%s: sends nothing\n", title)
		default:
			for _, r := range f.Requests {
				printRequests(w, title+" request", r.Path, []json.RawMessage{r.Body})
			}
		}
	}
}

// printRequests prints request bodies, indented, under "TITLE n: POST path".
func printRequests(w io.Writer, title, path string, bodies []json.RawMessage) {
	for i, s := range bodies {
		var buf bytes.Buffer
		_ = json.Indent(&buf, s, "  ", "  ")
		fmt.Fprintf(w, "\n%s %d: POST %s\n  %s\n", title, i+1, unescapePath(path), buf.String())
	}
}

// unescapePath shows "{businessId}" in a path as written, not escaped.
func unescapePath(p string) string {
	return strings.ReplaceAll(strings.ReplaceAll(p, "%7B", "{"), "%7D", "}")
}

// maskSamples masks the recipient in sample request bodies (all but its last 4 characters),
// wherever it appears (number or a session send's recipient, callbackData), and phone-like
// digits in every other text, as Herald's logs and pages do. The bodies keep their exact
// shape otherwise.
func maskSamples(samples []json.RawMessage) []json.RawMessage {
	out := make([]json.RawMessage, len(samples))
	for i, s := range samples {
		var to struct {
			Number    string `json:"number"`
			Recipient struct {
				ID     string `json:"id"`
				UserID string `json:"userId"`
			} `json:"recipient"`
		}
		b := []byte(s)
		if json.Unmarshal(s, &to) == nil {
			for _, r := range []string{to.Number, to.Recipient.ID, to.Recipient.UserID} {
				if len(r) > 4 {
					b = bytes.ReplaceAll(b, []byte(r), []byte(logx.Phone(r)))
				}
			}
		}
		out[i] = json.RawMessage(logx.MaskDigits(string(b)))
	}
	return out
}
