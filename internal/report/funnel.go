package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
)

// Funnel is what a run's replies led to (on_reply): who replied, each button's taps, and
// per rule the follow-ups created and how far they got, and the replies to them.
type Funnel struct {
	// Replied counts replies to the run's messages (each inbound message once).
	Replied int64 `json:"replied"`
	// Taps counts button replies by button label.
	Taps map[string]int64 `json:"taps,omitempty"`
	// Tagged counts recipients by tag: each recipient under every tag on_reply rules gave them.
	Tagged map[string]int64 `json:"tagged,omitempty"`
	// Rules are the run's rules, in the campaign's order.
	Rules []FunnelRule `json:"rules"`
}

// FunnelRule is one rule's follow-ups.
type FunnelRule struct {
	Rule string `json:"rule"`
	// Created counts follow-up entries (one per recipient at most), Skipped those written
	// skipped (suppressed, window closed, cancelled...), Pending those not sent yet.
	Created int64 `json:"created"`
	Pending int64 `json:"pending"`
	Skipped int64 `json:"skipped"`
	// Sent counts follow-ups Connectly accepted; Delivered and Read those the delivery
	// webhooks reported at least that far; Failed those that failed (sending or delivering).
	Sent      int64 `json:"sent"`
	Delivered int64 `json:"delivered"`
	Read      int64 `json:"read"`
	Failed    int64 `json:"failed"`
	Unknown   int64 `json:"unknown"`
	// Replies counts replies to the follow-ups.
	Replies int64 `json:"replies"`
}

// ReadFunnel reads the funnel of run, whose campaign has the on_reply rules ruleIDs (in
// order). It returns nil for a run without rules.
func ReadFunnel(ctx context.Context, l *ledger.Ledger, run string, ruleIDs []string) (*Funnel, error) {
	if len(ruleIDs) == 0 {
		return nil, nil
	}
	d, err := l.DeliveryStats(ctx, run)
	if err != nil {
		return nil, err
	}
	f := &Funnel{Replied: d.Replies, Taps: d.ButtonReplies, Rules: []FunnelRule{}}
	tags, err := l.Tags(ctx, run)
	if err != nil {
		return nil, err
	}
	for _, ts := range tags {
		for _, t := range ts {
			if f.Tagged == nil {
				f.Tagged = map[string]int64{}
			}
			f.Tagged[t]++
		}
	}
	for _, id := range ruleIDs {
		fr, _, err := readFollowups(ctx, l, ledger.FollowupRun(run, id), id)
		if err != nil {
			return nil, err
		}
		f.Rules = append(f.Rules, fr)
		// A rule whose session message Connectly accepted and then could not deliver (the
		// customer's window had closed) sent its fallback as a follow-up run of its own.
		_, late, _ := ledger.LateFallbackRun(ledger.FollowupRun(run, id))
		if fr, ok, err := readFollowups(ctx, l, ledger.FollowupRun(run, late), id+" (late fallback)"); err != nil {
			return nil, err
		} else if ok {
			f.Rules = append(f.Rules, fr)
		}
	}
	return f, nil
}

// readFollowups reads the follow-ups of follow-up run child as the funnel's row label; ok is
// false when it has none (the run does not exist yet).
func readFollowups(ctx context.Context, l *ledger.Ledger, child, label string) (fr FunnelRule, ok bool, err error) {
	fr = FunnelRule{Rule: label}
	c, err := l.Counters(ctx, child)
	if errors.Is(err, ledger.ErrRunNotFound) {
		return fr, false, nil
	}
	if err != nil {
		return fr, false, err
	}
	for st, n := range c.States {
		fr.Created += n
		switch st {
		case ledger.Planned, ledger.Queued, ledger.Submitting:
			fr.Pending += n
		case ledger.Skipped:
			fr.Skipped += n
		case ledger.Failed:
			fr.Failed += n
		case ledger.Unknown:
			fr.Unknown += n
		}
	}
	cd, err := l.DeliveryStats(ctx, child)
	if err != nil {
		return fr, false, err
	}
	// Sent (Accepted) includes the messages whose delivery then failed; Failed already counts
	// them once, as the delivery event moved their entries to failed.
	fr.Sent, fr.Delivered, fr.Read, fr.Replies = cd.Accepted, cd.Delivered, cd.Read, cd.Replies
	// A follow-up run is made by its first entry: one with none does not exist.
	return fr, fr.Created > 0, nil
}

// LateFallbacks reads the fallback templates sent for run's session messages that Connectly
// accepted and then reported undelivered because the customer's window had closed (the
// follow-up run ledger.LateFallbackRun(run)); nil when there were none.
func LateFallbacks(ctx context.Context, l *ledger.Ledger, run string) (*FunnelRule, error) {
	child, _, _ := ledger.LateFallbackRun(run)
	fr, ok, err := readFollowups(ctx, l, child, child)
	if err != nil || !ok {
		return nil, err
	}
	return &fr, nil
}

// PrintLateFallbacks renders LateFallbacks' answer for people (nothing for nil).
func PrintLateFallbacks(w io.Writer, fr *FunnelRule) {
	if fr == nil {
		return
	}
	fmt.Fprintf(w, "late window refusals (session message accepted, then undelivered as outside the window): fallback templates %d created, %d pending, %d sent, %d delivered, %d read, %d failed, %d skipped (follow-up run %s)\n",
		fr.Created, fr.Pending, fr.Sent, fr.Delivered, fr.Read, fr.Failed, fr.Skipped, fr.Rule)
}

// RuleIDs returns the ids of the on_reply rules of run r's campaign, in order; none for a
// campaign without rules, one that cannot be read, and a follow-up run.
type RuleIDs func(ctx context.Context, r ledger.Run) []string

// RunFunnel reads the on_reply funnel of run r for the rules ruleIDs gives it: nil when it
// gives none (the funnel is then not shown).
func RunFunnel(ctx context.Context, l *ledger.Ledger, r ledger.Run, ruleIDs RuleIDs) (*Funnel, error) {
	return ReadFunnel(ctx, l, r.ID, ruleIDs(ctx, r))
}

// Settled counts the follow-ups f's rules created and reports whether none is still pending
// (planned, queued or being sent).
func (f *Funnel) Settled() (created int64, done bool) {
	done = true
	for _, r := range f.Rules {
		created += r.Created
		if r.Pending > 0 {
			done = false
		}
	}
	return created, done
}

// CountFollowups counts by on_reply rule the callbacks that name a follow-up of run: what a
// provider's record of accepted sends says of the run's follow-ups.
func CountFollowups(run string, callbacks []json.RawMessage) map[string]int64 {
	n := map[string]int64{}
	for _, cb := range callbacks {
		a, ok := ledger.ParseCallback(cb)
		if !ok {
			continue
		}
		if parent, rule, ok := ledger.FollowupOf(a.Run); ok && parent == run {
			n[rule]++
		}
	}
	return n
}

// PrintFunnel renders a funnel for people. Its first column is as wide as its longest label
// (a long button text or rule id), at least 18, so every count stays in line. A button's label
// is shown quoted with its control characters escaped (%q), as ShowRun left it: masked unless
// --reveal (Run.Mask).
func PrintFunnel(w io.Writer, f *Funnel) {
	if f == nil {
		return
	}
	type line struct {
		label string
		n     int64
	}
	lines := []line{{"replied", f.Replied}}
	for _, b := range slices.Sorted(maps.Keys(f.Taps)) {
		lines = append(lines, line{fmt.Sprintf("tapped %q", b), f.Taps[b]})
	}
	for _, t := range slices.Sorted(maps.Keys(f.Tagged)) {
		lines = append(lines, line{"tagged " + logx.Escape(t), f.Tagged[t]})
	}
	width := 18
	for _, l := range lines {
		width = max(width, utf8.RuneCountInString(l.label))
	}
	for _, r := range f.Rules {
		width = max(width, utf8.RuneCountInString(r.Rule))
	}
	pad := func(s string) string { return s + strings.Repeat(" ", width-utf8.RuneCountInString(s)) }
	fmt.Fprintf(w, "\nReplies (on_reply)\n")
	for _, l := range lines {
		fmt.Fprintf(w, "  %s %d\n", pad(l.label), l.n)
	}
	fmt.Fprintf(w, "  %s %8s %8s %8s %9s %8s %8s %8s %8s\n", pad("follow-up"), "created", "pending", "sent", "delivered", "read", "failed", "skipped", "replies")
	for _, r := range f.Rules {
		fmt.Fprintf(w, "  %s %8d %8d %8d %9d %8d %8d %8d %8d\n", pad(r.Rule), r.Created, r.Pending, r.Sent, r.Delivered, r.Read, r.Failed, r.Skipped, r.Replies)
	}
}
