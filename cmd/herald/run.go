package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/ledger"
)

func (a *app) runCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Inspect runs (one run = one firing of a campaign)",
	}
	cmd.AddCommand(a.runShowCmd(), a.runLsCmd(), a.runPauseCmd(), a.runResumeCmd(), a.runCancelCmd(), a.runRetryCmd())
	return cmd
}

// runReport is the JSON form of a run's state, shared by `run show --json` and `demo --json`.
type runReport struct {
	Run         string `json:"run"`
	Campaign    string `json:"campaign"`
	Parent      string `json:"parent,omitempty"`
	Status      string `json:"status"`
	PauseReason string `json:"pause_reason,omitempty"`
	// Waiting says what a running run's sends wait for (the daily tier), while it lasts.
	Waiting string `json:"waiting,omitempty"`
	// SenderBackoff says the run's sender is slowed after a throttle (run show only).
	SenderBackoff string           `json:"sender_backoff,omitempty"`
	Expanded      bool             `json:"expanded"`
	Recipients    int              `json:"recipients"`
	States        map[string]int64 `json:"states"`
	Sum           int64            `json:"sum"`
	// Done counts recipients that need no more sending (the terminal states).
	Done int64 `json:"done"`
	// Accepted counts recipients Connectly accepted, whatever they reached since: accepted,
	// sent, delivered or read. Delivered counts those delivered or read.
	Accepted           int64            `json:"accepted"`
	Delivered          int64            `json:"delivered"`
	Codes              map[string]int64 `json:"codes"`
	Attempts           int64            `json:"attempts"`
	Retries            int64            `json:"retries"`
	AcceptedAfterRetry int64            `json:"accepted_after_retry"`
	Throttled          int64            `json:"throttled"`
	// ResendAfter is the run's quiet period before an unknown recipient's one resend (the
	// campaign's unknown.resend_after); ResentUnknown counts the recipients resent so far,
	// ResendWaiting those still waiting for their quiet period to end.
	ResendAfter   string     `json:"resend_after,omitempty"`
	ResentUnknown int64      `json:"resent_unknown"`
	ResendWaiting int64      `json:"resend_waiting"`
	Created       time.Time  `json:"created"`
	Finished      *time.Time `json:"finished,omitempty"`
	// RatePerSecond is rows finished per second since the run started; ETASeconds estimates
	// the rest at that rate (0 once the run has ended).
	RatePerSecond float64 `json:"rate_per_second"`
	ETASeconds    float64 `json:"eta_seconds"`
	// Verify is set by --verify.
	Verify *ledger.Verification `json:"verify,omitempty"`
	// Delivery is what the delivery webhooks said, once any was recorded.
	Delivery *ledger.DeliveryStats `json:"delivery,omitempty"`
}

func newRunReport(r ledger.Run, c ledger.Counters) runReport {
	rep := runReport{
		Run: r.ID, Campaign: r.Campaign, Parent: r.Parent, Status: string(r.Status), PauseReason: r.PauseReason,
		Expanded: r.Expanded, Recipients: r.Total, States: map[string]int64{}, Sum: c.Sum(),
		Codes: c.Codes, Attempts: c.Attempts, Retries: c.Retries,
		AcceptedAfterRetry: c.AcceptedAfterRetry, Throttled: c.Throttled, Created: r.Created,
		ResentUnknown: c.ResentUnknown, ResendWaiting: c.ResendWaiting,
	}
	if r.ResendAfter > 0 {
		rep.ResendAfter = r.ResendAfter.String()
	}
	if !r.Expanded {
		rep.Recipients = r.PlannedTo
	}
	if r.Status == ledger.RunRunning {
		rep.Waiting = r.WaitingNow(time.Now())
	}
	for s, n := range c.States {
		rep.States[string(s)] = n
	}
	if !r.Finished.IsZero() {
		f := r.Finished
		rep.Finished = &f
	}
	for st, n := range c.States {
		if st.Terminal() {
			rep.Done += n
		}
		switch st {
		case ledger.Accepted, ledger.Sent:
			rep.Accepted += n
		case ledger.Delivered, ledger.Read:
			rep.Accepted += n
			rep.Delivered += n
		}
	}
	end := time.Now()
	if rep.Finished != nil {
		end = *rep.Finished
	}
	if secs := end.Sub(r.Created).Seconds(); secs > 0 && rep.Done > 0 {
		rep.RatePerSecond = float64(rep.Done) / secs
		if rep.Finished == nil && rep.Status == string(ledger.RunRunning) {
			rep.ETASeconds = float64(int64(rep.Recipients)-rep.Done) / rep.RatePerSecond
		}
	}
	return rep
}

// printRunReport renders a run for people: status, per-state counts with their sum checked
// against the audience, and outcome codes.
func printRunReport(w io.Writer, rep runReport) {
	fmt.Fprintf(w, "Run       %s\nCampaign  %s\n", rep.Run, rep.Campaign)
	if rep.Parent != "" {
		fmt.Fprintf(w, "Retries   %s\n", rep.Parent)
	}
	fmt.Fprintf(w, "Status    %s", rep.Status)
	if rep.PauseReason != "" && rep.Status == string(ledger.RunPaused) {
		fmt.Fprintf(w, " (%s)", rep.PauseReason)
	}
	if rep.Waiting != "" {
		fmt.Fprintf(w, ", waiting for the %s", rep.Waiting)
	}
	fmt.Fprintln(w)
	if rep.SenderBackoff != "" {
		fmt.Fprintf(w, "Sender    %s\n", rep.SenderBackoff)
	}
	if rep.Finished != nil {
		fmt.Fprintf(w, "Took      %s\n", rep.Finished.Sub(rep.Created).Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "STATE\tCOUNT\t")
	for _, s := range ledger.States {
		fmt.Fprintf(tw, "%s\t%d\t\n", s, rep.States[string(s)])
	}
	fmt.Fprintf(tw, "total\t%d\t\n", rep.Sum)
	tw.Flush()
	switch {
	case !rep.Expanded:
		fmt.Fprintf(w, "audience: still expanding (%d rows so far)\n", rep.Recipients)
	case rep.Sum == int64(rep.Recipients):
		fmt.Fprintf(w, "audience: %d rows, all accounted for\n", rep.Recipients)
	default:
		fmt.Fprintf(w, "audience: %d rows, but the states add up to %d\n", rep.Recipients, rep.Sum)
	}
	if rep.RatePerSecond > 0 {
		fmt.Fprintf(w, "rate %.1f recipients/s", rep.RatePerSecond)
		if rep.ETASeconds > 0 {
			fmt.Fprintf(w, ", about %s left", (time.Duration(rep.ETASeconds * float64(time.Second))).Round(time.Second))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "attempts %d, retries %d, accepted after a retry %d, throttled (no attempt used) %d\n",
		rep.Attempts, rep.Retries, rep.AcceptedAfterRetry, rep.Throttled)
	if rep.ResendAfter != "" || rep.ResentUnknown > 0 {
		fmt.Fprintf(w, "unknown recipients resent once after %s with no delivery event %d, waiting for the quiet period %d\n",
			cmp.Or(rep.ResendAfter, "the quiet period"), rep.ResentUnknown, rep.ResendWaiting)
	}
	if v := rep.Verify; v != nil {
		if len(v.Mismatches) == 0 {
			fmt.Fprintf(w, "verify: %d ledger entries agree with the counters\n", v.Entries)
		}
		for _, m := range v.Mismatches {
			fmt.Fprintf(w, "verify: MISMATCH %s: counter %d, ledger %d\n", m.What, m.Counter, m.Ledger)
		}
	}
	if len(rep.Codes) > 0 {
		keys := make([]string, 0, len(rep.Codes))
		for k := range rep.Codes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "OUTCOME:CODE\tCOUNT")
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%d\n", k, rep.Codes[k])
		}
		tw.Flush()
	}
	if rep.Delivery != nil {
		printDelivery(w, *rep.Delivery)
	}
}

func (a *app) runShowCmd() *cobra.Command {
	var (
		asJSON, verify, watch bool
		interval              time.Duration
	)
	cmd := &cobra.Command{
		Use:   "show RUN",
		Short: "Show a run's progress: recipients per state, outcome codes, and their sum",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return a.withLedger(ctx, func(l *ledger.Ledger, rdb redis.UniversalClient) error {
				r, err := l.GetRun(ctx, args[0])
				if err != nil {
					return notFound(args[0], err)
				}
				if watch {
					return a.watchRun(ctx, l, r.ID, interval)
				}
				counters, err := l.Counters(ctx, r.ID)
				if err != nil {
					return err
				}
				rep := newRunReport(r, counters)
				rep.SenderBackoff = a.senderBackoffNote(ctx, rdb, r.Sender)
				if rep.Delivery, err = deliveryReport(ctx, l, r.ID); err != nil {
					return err
				}
				if verify {
					v, err := l.Verify(ctx, r.ID)
					if err != nil {
						return err
					}
					rep.Verify = &v
				}
				if asJSON {
					if err := writeJSON(a.stdout, rep); err != nil {
						return err
					}
				} else {
					printRunReport(a.stdout, rep)
				}
				if rep.Verify != nil && len(rep.Verify.Mismatches) > 0 {
					return fmt.Errorf("run %s: %d counters disagree with the ledger", r.ID, len(rep.Verify.Mismatches))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the run as JSON")
	cmd.Flags().BoolVar(&watch, "watch", false, "refresh until the run ends, with a progress bar (Ctrl-C to stop watching)")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "with --watch: how often to refresh")
	cmd.Flags().BoolVar(&verify, "verify", false, "recompute the counters from the ledger and report any mismatch (exit 1 if any)")
	return cmd
}

// watchRun redraws a run's report with a progress bar until the run completes or is
// cancelled. On a terminal the screen is redrawn; otherwise one progress line is printed per
// refresh, so the output can be logged.
func (a *app) watchRun(ctx context.Context, l *ledger.Ledger, runID string, every time.Duration) error {
	term := isTerminal(a.stdout)
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		r, err := l.GetRun(ctx, runID)
		if err != nil {
			return err
		}
		c, err := l.Counters(ctx, runID)
		if err != nil {
			return err
		}
		rep := newRunReport(r, c)
		if term {
			fmt.Fprint(a.stdout, "\033[H\033[2J")
			printRunReport(a.stdout, rep)
			fmt.Fprintln(a.stdout)
		}
		fmt.Fprintln(a.stdout, progressLine(rep, time.Since(start)))
		if r.Status == ledger.RunCompleted || r.Status == ledger.RunCancelled {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
