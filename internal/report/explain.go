package report

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// Explanation is the whole story of one recipient in a run, as `recipient explain --json`
// prints it.
type Explanation struct {
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
	Window Window `json:"window"`
	// History lists every outcome when the story is more than one clean accept.
	History []HistoryLine `json:"history"`
	// Followups are the on_reply follow-ups the recipient's replies created, in the order of
	// the campaign's rules; rules that created none are left out.
	Followups []FollowupStory `json:"followups,omitempty"`
}

// FollowupStory is one follow-up of a recipient: the rule that created it and its entry in
// the rule's follow-up run.
type FollowupStory struct {
	Rule      string        `json:"rule"`
	State     string        `json:"state"`
	Attempts  int           `json:"attempts"`
	Code      string        `json:"code,omitempty"`
	MessageID string        `json:"message_id,omitempty"`
	History   []HistoryLine `json:"history"`
}

// HistoryLine is one event of a recipient's story, with its code's class.
type HistoryLine struct {
	ledger.Event
	Class string `json:"class,omitempty"`
}

// ExplainParams names the recipient to explain.
type ExplainParams struct {
	Run string
	// Recipient is the normalised recipient (E.164 or bsuid:...); Shown is how it is printed.
	Recipient, Shown string
	// Business is the business whose service window is read.
	Business string
	// Table gives codes their class and meaning; nil leaves them without.
	Table *connectly.Table
	// Rules are the ids of the campaign's on_reply rules, in order (none: no follow-ups read).
	Rules []string
	Now   time.Time
}

// Explain reads a recipient's story in a run: its ledger entry, every outcome of its
// history, the class and meaning of its codes, its suppression and its service window now.
// It returns an error wrapping ledger.ErrRunNotFound when there is no such run.
func Explain(ctx context.Context, l *ledger.Ledger, rdb redis.UniversalClient, p ExplainParams) (Explanation, error) {
	r, err := l.GetRun(ctx, p.Run)
	if err != nil {
		return Explanation{}, err
	}
	addr := ledger.AddressIn(r.ID, p.Recipient, r.Buckets)
	e, ok, err := l.Entry(ctx, addr)
	if err != nil {
		return Explanation{}, err
	}
	supp, err := l.Suppressed(ctx, []string{p.Recipient})
	if err != nil {
		return Explanation{}, err
	}
	x := Explanation{Run: r.ID, Recipient: p.Shown, InLedger: ok, Suppressed: supp[0], History: []HistoryLine{}}
	if x.Window, err = ReadWindow(ctx, rdb, p.Business, p.Recipient, p.Shown, p.Now); err != nil {
		return Explanation{}, err
	}
	if x.History, err = historyOf(ctx, l, addr, p.Table); err != nil {
		return Explanation{}, err
	}
	for _, rule := range p.Rules {
		fa := ledger.FollowupAddress(r.ID, rule, p.Recipient, r.Buckets)
		fe, found, err := l.Entry(ctx, fa)
		if err != nil {
			return Explanation{}, err
		}
		if !found {
			continue
		}
		fs := FollowupStory{Rule: rule, State: string(fe.State), Attempts: fe.Attempts, Code: fe.Code, MessageID: fe.MessageID}
		if fs.History, err = historyOf(ctx, l, fa, p.Table); err != nil {
			return Explanation{}, err
		}
		x.Followups = append(x.Followups, fs)
	}
	if ok {
		x.State, x.Row, x.Attempts, x.Code, x.MessageID = string(e.State), e.Row, e.Attempts, e.Code, e.MessageID
		if e.Code != "" && (e.State == ledger.Failed || e.State == ledger.Queued || e.State == ledger.Unknown) {
			x.Class, x.Why = ExplainCode(p.Table, e.Code)
		}
	}
	return x, nil
}

// historyOf reads the history of the entry at a, each code with its class.
func historyOf(ctx context.Context, l *ledger.Ledger, a ledger.Address, table *connectly.Table) ([]HistoryLine, error) {
	hist, err := l.History(ctx, a)
	if err != nil {
		return nil, err
	}
	out := []HistoryLine{}
	for _, ev := range hist {
		hl := HistoryLine{Event: ev}
		if ev.Code != "" {
			hl.Class, _ = ExplainCode(table, ev.Code)
		}
		out = append(out, hl)
	}
	return out, nil
}

// ExplainCode returns the class and meaning of a recorded code under table ("" and "" when
// table is nil).
func ExplainCode(table *connectly.Table, code string) (class, why string) {
	if table == nil {
		return "", ""
	}
	if r, ok := table.Lookup(code); ok {
		return r.Class.String(), r.Why
	}
	return table.ClassOf(code).String(), "no documented meaning"
}

// PrintExplanation renders a recipient's story as `recipient explain` does, its window as
// of now.
func PrintExplanation(w io.Writer, x Explanation, now time.Time) {
	if !x.InLedger {
		fmt.Fprintf(w, "%s is not a recipient of run %s (not in its audience, or skipped before the ledger: invalid or duplicate row)\n", x.Recipient, x.Run)
	} else {
		fmt.Fprintf(w, "Run        %s\nRecipient  %s (audience row %d)\nState      %s\nAttempts   %d\n", x.Run, x.Recipient, x.Row, x.State, x.Attempts)
		if x.Code != "" {
			fmt.Fprintf(w, "Last code  %s", x.Code)
			if x.Class != "" {
				fmt.Fprintf(w, " (%s: %s)", x.Class, x.Why)
			}
			fmt.Fprintln(w)
		}
		if x.MessageID != "" {
			fmt.Fprintf(w, "Message    %s\n", x.MessageID)
		}
		printHistory(w, x.History)
		for _, f := range x.Followups {
			fmt.Fprintf(w, "Follow-up  %s: %s, %d attempts", f.Rule, f.State, f.Attempts)
			if f.Code != "" {
				fmt.Fprintf(w, ", code %s", f.Code)
			}
			if f.MessageID != "" {
				fmt.Fprintf(w, ", message %s", f.MessageID)
			}
			fmt.Fprintln(w)
			printHistory(w, f.History)
		}
	}
	fmt.Fprintf(w, "Suppressed %v\n", x.Suppressed)
	fmt.Fprintf(w, "Window     %s\n", x.Window.Line(now))
}

// printHistory prints one line an outcome, indented under its entry.
func printHistory(w io.Writer, hist []HistoryLine) {
	for _, h := range hist {
		fmt.Fprintf(w, "  %s attempt %d: %s", h.At.Format(time.RFC3339), h.Attempt, h.Outcome)
		if h.Code != "" {
			fmt.Fprintf(w, " %s (%s)", h.Code, h.Class)
		}
		fmt.Fprintln(w)
	}
}
