package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/serve"
)

// planOutput is `campaign plan --json`: the plan, with the follow-ups of its on_reply rules.
type planOutput = serve.PlanOutput

func (a *app) campaignPlanCmd() *cobra.Command {
	var (
		samples                int
		asJSON, checkT, reveal bool
	)
	cmd := a.configCmd("plan FILE", "Dry run: what a campaign would send (counts, skips with reasons, exact sample requests, duration)",
		cobra.ExactArgs(1), func(ctx context.Context, c config.Config, args []string) error {
			if samples <= 0 {
				samples = -1 // none: the library reads 0 as its default
			}
			p := serve.PlanParams{Path: args[0], Config: c, Samples: samples, Reveal: reveal, CheckTemplates: checkT, Connect: a.connect(c),
				Now: a.now()}
			if isTerminal(a.stderr) {
				p.Progress, p.ProgressDone = a.planProgress()
			}
			out, err := serve.PlanCampaign(ctx, p)
			if err != nil {
				return err
			}
			if err := a.print(asJSON, out, func(w io.Writer) error { printPlan(w, out); return nil }); err != nil {
				return err
			}
			// Sends would fail, a follow-up would not render, or a run of this file would refuse
			// to start: say so, and exit 1.
			if err := out.Problem(); err != nil {
				return err
			}
			for _, f := range out.Followups {
				if f.Error != "" {
					return fmt.Errorf("on_reply: the follow-up of rule %s: %s", f.Rule, f.Error)
				}
			}
			return nil
		})
	cmd.Flags().IntVar(&samples, "sample", 3, "how many exact request bodies to show (0: none, the follow-ups' neither)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	cmd.Flags().BoolVar(&reveal, "reveal", false, "show phone numbers in full: the sender's, and those in the sample and follow-up requests (masked to their last 4 digits by default)")
	cmd.Flags().BoolVar(&checkT, "check-templates", false, "ask Connectly for the template's translations and check status, body variables and header (needs credentials)")
	return cmd
}

// planProgress draws a bar of the rows a plan has read, of about total, on a terminal, and
// clears it.
func (a *app) planProgress() (progress func(rows, total int), done func()) {
	start := time.Now()
	progress = func(rows, total int) {
		const width = 30
		filled := min(width, rows*width/max(1, total))
		fmt.Fprintf(a.stderr, "\r[%s%s] %d of about %d rows (%.0f rows/s)", strings.Repeat("=", filled),
			strings.Repeat(" ", width-filled), rows, total, float64(rows)/time.Since(start).Seconds())
	}
	return progress, func() { fmt.Fprint(a.stderr, "\r\033[K") }
}

// maxDurationSeconds is the longest time.Duration, in seconds.
const maxDurationSeconds = float64(math.MaxInt64 / int64(time.Second))

// printPlan renders a plan as text.
func printPlan(w io.Writer, p planOutput) {
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "WARNING        %s\n", warn)
	}
	// What the check of the file could not check (on_reply buttons without the API); its
	// problems are the command's error.
	for _, n := range p.Notes {
		fmt.Fprintf(w, "Note           %s\n", logx.EscapeLines(n))
	}
	// The audience's name and a row's problem come from the campaign file: escaped.
	fmt.Fprintf(w, "Campaign file  %s\nAudience       %s\n", logx.Escape(p.File), logx.Escape(p.Audience))
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
		fmt.Fprintf(w, "  %s:%d: row %d: %s: %s\n", logx.Escape(p.Audience), e.Line, e.Row, e.Reason, logx.EscapeControl(e.Detail))
	}
	for _, f := range p.FollowupProblems {
		fmt.Fprintf(w, "Follow-up      %s: PROBLEM: would not render for %d of %d recipients (skipped invalid_params when they reply)\n",
			f.Rule, f.Failing, f.Recipients)
		for _, e := range f.Examples {
			fmt.Fprintf(w, "  %s:%d: row %d: %s\n", logx.Escape(p.Audience), e.Line, e.Row, logx.EscapeControl(e.Detail))
		}
	}
	if p.FollowupNote != "" {
		fmt.Fprintf(w, "Follow-ups     note: %s\n", logx.EscapeControl(p.FollowupNote))
	}
	for _, lang := range slices.Sorted(maps.Keys(p.Languages)) {
		fmt.Fprintf(w, "Language       %s: %d\n", lang, p.Languages[lang])
	}
	sender := p.Sender
	if sender == "" {
		sender = "(the business's number)"
	}
	if p.SuppressionNote != "" {
		fmt.Fprintf(w, "Suppression    %s\n", strings.TrimPrefix(p.SuppressionNote, "suppression list "))
	}
	if p.FirstOpening != nil {
		fmt.Fprintf(w, "Send hours     %d wait for the send hours: first at %s\n", p.SendHoursWaiting,
			p.FirstOpening.UTC().Format("2006-01-02 15:04 MST"))
	}
	est := "under a second"
	switch s := p.EstimatedSeconds; {
	case s >= maxDurationSeconds: // beyond a time.Duration (about 292 years): in hours
		est = fmt.Sprintf("%.0fh", s/3600)
	case s >= 1:
		est = (time.Duration(s * float64(time.Second))).Round(time.Second).String()
	}
	how := "at that rate, before retries"
	if p.FirstOpening != nil {
		how = "from now: sends wait for the send hours to open, then go at that rate; before retries"
	}
	fmt.Fprintf(w, "Sender         %s at %g msg/s\nEstimated time %s (%s)\n", sender, p.RatePerSecond, est, how)
	report.PrintPlanLimits(w, p.Limits, p.TierPeriod)
	for _, ch := range p.Templates {
		if len(ch.Problems) == 0 {
			fmt.Fprintf(w, "Template       %s: %s, parameters match\n", ch.Language, ch.Status)
		}
		for _, pr := range ch.Problems {
			fmt.Fprintf(w, "Template       %s: PROBLEM: %s\n", ch.Language, pr)
		}
	}
	for _, ch := range p.FollowupTemplates {
		what := fmt.Sprintf("follow-up %s: %s (%s)", ch.Rule, ch.Template, ch.Language)
		if len(ch.Problems) == 0 {
			fmt.Fprintf(w, "Template       %s: %s, parameters match\n", what, ch.Status)
		}
		for _, pr := range ch.Problems {
			fmt.Fprintf(w, "Template       %s: PROBLEM: %s\n", what, pr)
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
		case f.Requests[0].Body == nil:
			fmt.Fprintf(w, "\n%s: %d request(s), bodies not shown (--sample 0)\n", title, len(f.Requests))
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
