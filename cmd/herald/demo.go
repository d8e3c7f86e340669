package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/demo"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/sendpolicy"
)

type demoOptions struct {
	recipients  int
	rate        float64
	concurrency int
	asJSON      bool
	verbose     bool
	timeout     time.Duration
}

func (a *app) demoCmd() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a real campaign end to end in one process: in-memory Redis, a fake Connectly, a worker",
		Long: `Run a real campaign end to end with nothing installed: an in-process Redis (miniredis),
a local fake of the Connectly API with a realistic fault mix (invalid numbers, opt-outs,
5xx answers, some after the message went out, 429s, lost answers), and a worker. The demo generates an audience,
expands it into the ledger and the queue, delivers it, and reports per state and code.
The fake's readers answer the template's buttons and type keywords; the campaign's on_reply
rules answer them once each, a session step follows, and the report ends with the funnel.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.recipients < 1 {
				return usageError{fmt.Errorf("--recipients must be at least 1")}
			}
			return a.runDemo(cmd.Context(), o)
		},
	}
	cmd.Flags().IntVar(&o.recipients, "recipients", 1000, "audience rows to generate")
	cmd.Flags().Float64Var(&o.rate, "rate", 200, "sender rate in messages/s (Connectly's business limit of 200/s also applies)")
	cmd.Flags().IntVar(&o.concurrency, "concurrency", sendpolicy.DefaultConcurrency, "worker concurrency")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print the report as one JSON object on stdout")
	cmd.Flags().BoolVar(&o.verbose, "verbose", false, "log every send (debug level; default: errors only)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up when the run has not completed by then")
	return cmd
}

// runDemo runs the demo (package demo), showing each run's progress on a terminal, prints
// its report, and fails when the demo did not pass.
func (a *app) runDemo(ctx context.Context, o demoOptions) error {
	level := "error"
	if o.verbose {
		level = "debug"
	}
	log, err := logx.New(a.stderr, logx.Options{Level: level})
	if err != nil {
		return err
	}
	opts := demo.Options{Recipients: o.recipients, Rate: o.rate, Concurrency: o.concurrency, Timeout: o.timeout, Log: log}
	if isTerminal(a.stderr) {
		opts.Progress = func(rep report.Run, elapsed time.Duration) {
			fmt.Fprint(a.stderr, "\r"+report.ProgressLine(rep, elapsed))
			if rep.Ended() {
				fmt.Fprintln(a.stderr)
			}
		}
	}
	out, err := demo.Run(ctx, opts)
	if err != nil {
		return err
	}
	err = a.print(o.asJSON, out, func(w io.Writer) error {
		fmt.Fprintf(w, "Herald demo: %d recipients through a fake Connectly in %s (%.0f msg/s accepted)\n\n",
			out.Recipients, out.Wall.Round(time.Millisecond), out.MsgsPerSecond)
		report.PrintRun(w, out.Run)
		fmt.Fprintf(w, "\nfake Connectly saw %d requests: %d accepted, %d throttled (429), %d answers lost on purpose\n",
			out.Fake.Requests, out.Fake.Accepted, out.Fake.Throttled, out.Fake.Lost)
		fmt.Fprintf(w, "fake Connectly made %d signed webhook calls, duplicates and out-of-order ones included (%d sent, %d delivered, %d read, %d delivery_failed, %d replies)\n",
			out.Webhooks.Delivered, out.Webhooks.ByStatus["sent"], out.Webhooks.ByStatus["delivered"], out.Webhooks.ByStatus["read"],
			out.Webhooks.ByStatus["delivery_failed"], out.Webhooks.ByStatus["reply"])
		printDemoSession(w, out.SessionStep, out.Fake)
		printDemoFunnel(w, out.Run)
		fmt.Fprintf(w, "\nTry a recipient's story, a real Redis and worker, and more: see README.md\n")
		return nil
	})
	if err != nil {
		return err
	}
	return out.Check()
}

// printDemoFunnel renders the template run's replies and follow-ups (on_reply).
func printDemoFunnel(w io.Writer, rep report.Run) {
	if rep.Funnel == nil {
		return
	}
	report.PrintFunnel(w, rep.Funnel)
	fmt.Fprintf(w, "  (a \"Yes\" tap gets the collection, \"No thanks\" a confirmation and no more messages, \"price\" the prices;\n"+
		"   each at most once per recipient, however often Connectly repeats the webhook)\n")
}

// printDemoSession renders the demo's session step.
func printDemoSession(w io.Writer, rep *report.Run, fake demo.FakeStats) {
	if rep == nil {
		return
	}
	sc := cmp.Or(rep.Session, &report.SessionCounts{})
	fmt.Fprintf(w, "\nSession step: %s follows up with the same %d rows as a session message (no template)\n", rep.Campaign, rep.Recipients)
	fmt.Fprintf(w, "  %d replied to the promo, so their 24-hour window was open: sent the session message\n", sc.Sent)
	fmt.Fprintf(w, "  %d did not: skipped(window_closed), no request made; %d session requests refused by Connectly for a closed window\n",
		sc.WindowClosed, fake.WindowRefused)
	if other := int64(rep.Recipients) - sc.Sent - sc.Fallback - sc.WindowClosed; other > 0 {
		fmt.Fprintf(w, "  %d others: %s\n", other, otherOutcomes(*rep))
	}
}

// otherOutcomes names what became of a session run's recipients that were neither sent nor
// skipped for a closed window: skipped by reason, then failed and unknown, most first within
// skipped ("skipped(suppressed) 18, skipped(invalid_phone) 2, failed 1").
func otherOutcomes(rep report.Run) string {
	type reason struct {
		name string
		n    int64
	}
	var skips []reason
	for k, n := range rep.Codes {
		code, ok := strings.CutPrefix(k, string(ledger.Skipped)+":")
		if ok && code != ledger.SkipWindowClosed && n > 0 {
			skips = append(skips, reason{code, n})
		}
	}
	slices.SortFunc(skips, func(a, b reason) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.name, b.name)) })
	var parts []string
	for _, r := range skips {
		parts = append(parts, fmt.Sprintf("skipped(%s) %d", r.name, r.n))
	}
	for _, st := range []ledger.State{ledger.Failed, ledger.Unknown} {
		if n := rep.States[string(st)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
		}
	}
	return strings.Join(parts, ", ")
}
