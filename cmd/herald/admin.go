package main

import (
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
)

func (a *app) runLsCmd() *cobra.Command {
	var (
		campaign string
		limit    int
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List recent runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return a.withLedger(ctx, func(l *ledger.Ledger, rdb redis.UniversalClient) error {
				ids, err := l.RecentRuns(ctx, campaign, limit)
				if err != nil {
					return err
				}
				reps := make([]runReport, 0, len(ids))
				for _, id := range ids {
					r, err := l.GetRun(ctx, id)
					if err != nil {
						return err
					}
					c, err := l.Counters(ctx, id)
					if err != nil {
						return err
					}
					reps = append(reps, newRunReport(r, c))
				}
				if asJSON {
					return writeJSON(a.stdout, reps)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
				// ACCEPTED counts recipients accepted or further on (sent, delivered, read).
				fmt.Fprintln(tw, "RUN\tCAMPAIGN\tSTATUS\tRECIPIENTS\tDONE\tACCEPTED\tDELIVERED\tFAILED\tCREATED")
				for _, rep := range reps {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", rep.Run, rep.Campaign, rep.Status, rep.Recipients,
						rep.Done, rep.Accepted, rep.Delivered, rep.States["failed"], rep.Created.UTC().Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&campaign, "campaign", "", "only runs of this campaign")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many runs")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the runs as JSON")
	return cmd
}

// queueStat is one queue in `queue stats --json`.
type queueStat struct {
	Queue           string  `json:"queue"`
	Paused          bool    `json:"paused"`
	Size            int     `json:"size"`
	Pending         int     `json:"pending"`
	Active          int     `json:"active"`
	Scheduled       int     `json:"scheduled"`
	Retry           int     `json:"retry"`
	Archived        int     `json:"archived"`
	Completed       int     `json:"completed"`
	ProcessedToday  int     `json:"processed_today"`
	FailedToday     int     `json:"failed_today"`
	LatencySeconds  float64 `json:"latency_seconds"`
	MemoryUsageByte int64   `json:"memory_usage_bytes"`
}

func (a *app) queueCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "queue", Short: "Inspect and steer the asynq queues Herald uses"}
	var (
		asJSON          bool
		qActor, qReason string
	)
	stats := &cobra.Command{
		Use:     "stats",
		Aliases: []string{"ls"},
		Short:   "Tasks per state, processed and failed today, latency and pause state of every queue",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withInspector(cmd, func(in *asynq.Inspector, rdb redis.UniversalClient) error {
				names, err := in.Queues()
				if err != nil {
					return err
				}
				for q := range campaigns.Queues {
					if !contains(names, q) {
						names = append(names, q)
					}
				}
				sort.Strings(names)
				out := make([]queueStat, 0, len(names))
				for _, q := range names {
					info, err := in.GetQueueInfo(q)
					if err != nil {
						out = append(out, queueStat{Queue: q}) // a queue that has never held a task
						continue
					}
					out = append(out, queueStat{Queue: q, Paused: info.Paused, Size: info.Size, Pending: info.Pending,
						Active: info.Active, Scheduled: info.Scheduled, Retry: info.Retry, Archived: info.Archived,
						Completed: info.Completed, ProcessedToday: info.Processed, FailedToday: info.Failed,
						LatencySeconds: info.Latency.Seconds(), MemoryUsageByte: info.MemoryUsage})
				}
				if asJSON {
					return writeJSON(a.stdout, out)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintln(tw, "QUEUE\tPAUSED\tPENDING\tACTIVE\tSCHEDULED\tRETRY\tARCHIVED\tCOMPLETED\tPROCESSED TODAY\tFAILED TODAY\tLATENCY\t")
				for _, s := range out {
					fmt.Fprintf(tw, "%s\t%v\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", s.Queue, s.Paused, s.Pending, s.Active,
						s.Scheduled, s.Retry, s.Archived, s.Completed, s.ProcessedToday, s.FailedToday,
						(time.Duration(s.LatencySeconds * float64(time.Second))).Round(time.Millisecond))
				}
				return tw.Flush()
			})
		},
	}
	stats.Flags().BoolVar(&asJSON, "json", false, "print the queues as JSON")
	pause := &cobra.Command{
		Use: "pause QUEUE", Short: "Pause a queue: no worker takes its tasks until resume", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withInspector(cmd, func(in *asynq.Inspector, rdb redis.UniversalClient) error {
				if err := in.PauseQueue(args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "queue %s paused\n", args[0])
				return audit.Append(cmd.Context(), rdb, audit.Entry{Actor: operator(qActor), Action: "queue pause", Target: args[0], Reason: qReason})
			})
		},
	}
	resume := &cobra.Command{
		Use: "resume QUEUE", Short: "Resume a paused queue", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withInspector(cmd, func(in *asynq.Inspector, rdb redis.UniversalClient) error {
				if err := in.UnpauseQueue(args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "queue %s resumed\n", args[0])
				return audit.Append(cmd.Context(), rdb, audit.Entry{Actor: operator(qActor), Action: "queue resume", Target: args[0], Reason: qReason})
			})
		},
	}
	for _, c := range []*cobra.Command{pause, resume} {
		c.Flags().StringVar(&qActor, "actor", "", "who is acting (default: the OS user)")
		c.Flags().StringVar(&qReason, "reason", "", "why (kept in the audit log)")
	}
	cmd.AddCommand(stats, pause, resume)
	return cmd
}

// withInspector calls fn with an asynq Inspector on the configured Redis.
func (a *app) withInspector(cmd *cobra.Command, fn func(*asynq.Inspector, redis.UniversalClient) error) error {
	c, err := a.config()
	if err != nil {
		return err
	}
	rdb, err := a.redis(cmd.Context(), c)
	if err != nil {
		return err
	}
	defer rdb.Close()
	return fn(asynq.NewInspectorFromRedisClient(rdb), rdb)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// explanation is `recipient explain --json`.
type explanation struct {
	Run        string `json:"run"`
	Recipient  string `json:"recipient"`
	InLedger   bool   `json:"in_ledger"`
	State      string `json:"state,omitempty"`
	Row        int    `json:"row,omitempty"`
	Attempts   int    `json:"attempts"`
	Code       string `json:"code,omitempty"`
	Class      string `json:"class,omitempty"`
	Why        string `json:"why,omitempty"`
	MessageID  string `json:"message_id,omitempty"`
	Suppressed bool   `json:"suppressed"`
	// Window is the recipient's customer service window now (not at the time of the run).
	Window windowReport `json:"window"`
	// History lists every outcome when the story is more than one clean accept.
	History []historyLine `json:"history"`
}

// historyLine is one event of a recipient's story, with its code's class.
type historyLine struct {
	ledger.Event
	Class string `json:"class,omitempty"`
}

func (a *app) recipientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "recipient", Short: "Why a person did or did not get a message"}
	var asJSON, reveal bool
	var region string
	explain := &cobra.Command{
		Use:   "explain RUN PHONE|bsuid:BSUID",
		Short: "A recipient's state in a run: attempts, last code and its class, message id, suppression",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.config()
			if err != nil {
				return err
			}
			rcpt := args[1]
			if len(rcpt) < 6 || rcpt[:6] != "bsuid:" {
				if rcpt, err = campaigns.NormalizePhone(args[1], region); err != nil {
					return usageError{fmt.Errorf("recipient: %w (give +E.164, or --region for a national number)", err)}
				}
			}
			return a.withLedger(ctx, func(l *ledger.Ledger, rdb redis.UniversalClient) error {
				r, err := l.GetRun(ctx, args[0])
				if err != nil {
					return notFound(args[0], err)
				}
				e, ok, err := l.Entry(ctx, ledger.AddressIn(r.ID, rcpt, r.Buckets))
				if err != nil {
					return err
				}
				supp, err := l.Suppressed(ctx, []string{rcpt})
				if err != nil {
					return err
				}
				shown := rcpt
				if !reveal {
					shown = logx.Phone(rcpt)
				}
				x := explanation{Run: r.ID, Recipient: shown, InLedger: ok, Suppressed: supp[0], History: []historyLine{}}
				now := time.Now()
				if x.Window, err = readWindow(ctx, rdb, c.Connectly.BusinessID, rcpt, shown, now); err != nil {
					return err
				}
				hist, err := l.History(ctx, ledger.AddressIn(r.ID, rcpt, r.Buckets))
				if err != nil {
					return err
				}
				for _, ev := range hist {
					hl := historyLine{Event: ev}
					if ev.Code != "" {
						hl.Class, _ = explainCode(c, ev.Code)
					}
					x.History = append(x.History, hl)
				}
				if ok {
					x.State, x.Row, x.Attempts, x.Code, x.MessageID = string(e.State), e.Row, e.Attempts, e.Code, e.MessageID
					if e.Code != "" && (e.State == ledger.Failed || e.State == ledger.Queued || e.State == ledger.Unknown) {
						x.Class, x.Why = explainCode(c, e.Code)
					}
				}
				if asJSON {
					return writeJSON(a.stdout, x)
				}
				if !ok {
					fmt.Fprintf(a.stdout, "%s is not a recipient of run %s (not in its audience, or skipped before the ledger: invalid or duplicate row)\n", shown, r.ID)
				} else {
					fmt.Fprintf(a.stdout, "Run        %s\nRecipient  %s (audience row %d)\nState      %s\nAttempts   %d\n", r.ID, shown, x.Row, x.State, x.Attempts)
					if x.Code != "" {
						fmt.Fprintf(a.stdout, "Last code  %s", x.Code)
						if x.Class != "" {
							fmt.Fprintf(a.stdout, " (%s: %s)", x.Class, x.Why)
						}
						fmt.Fprintln(a.stdout)
					}
					if x.MessageID != "" {
						fmt.Fprintf(a.stdout, "Message    %s\n", x.MessageID)
					}
					for _, h := range x.History {
						fmt.Fprintf(a.stdout, "  %s attempt %d: %s", h.At.Format(time.RFC3339), h.Attempt, h.Outcome)
						if h.Code != "" {
							fmt.Fprintf(a.stdout, " %s (%s)", h.Code, h.Class)
						}
						fmt.Fprintln(a.stdout)
					}
				}
				fmt.Fprintf(a.stdout, "Suppressed %v\n", x.Suppressed)
				fmt.Fprintf(a.stdout, "Window     %s\n", x.Window.line(now))
				return nil
			})
		},
	}
	explain.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	explain.Flags().BoolVar(&reveal, "reveal", false, "show the full number instead of the last 4 digits")
	explain.Flags().StringVar(&region, "region", "", "country for a number written without country code (e.g. US)")
	cmd.AddCommand(explain)
	return cmd
}

// explainCode returns the class and reason of a recorded code under the configured table.
func explainCode(c config.Config, code string) (string, string) {
	t, err := connectly.NewTable(c.Errors)
	if err != nil {
		return "", ""
	}
	if r, ok := t.Lookup(code); ok {
		return r.Class.String(), r.Why
	}
	return t.ClassOf(code).String(), "no documented meaning"
}
