package report

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// Window is a customer's service windows as `window show --json` and `recipient explain
// --json` print them, and the window of a session message as `message send --json` prints
// it. A customer opens a window by writing to one business number, and only a send from that
// number is inside it (servicewindow.Policy). Business numbers are masked to their last 4
// digits, as customers' are.
type Window struct {
	Business string `json:"business"`
	Customer string `json:"customer"`
	// Opening is the window the report is about: for `window show` and `recipient explain`
	// the customer's latest window, to any number or none (the time of their last inbound
	// message to the business); for `message send` the window that counts for its sender.
	Opening
	// Sender is the business number a message goes from (`message send`); "" otherwise.
	Sender string `json:"sender,omitempty"`
	// Numbers are the customer's windows to each business number they wrote to (`window
	// show`, `recipient explain`).
	Numbers []Opening `json:"numbers,omitempty"`
	// NoNumber is the window recorded with no business number (inbound messages that named
	// none, and windows recorded before Herald told numbers apart), when there is one.
	NoNumber *Opening `json:"no_number,omitempty"`
	// Senders are, for each configured sender number, the window that counts for a session
	// message from it now (`window show`, `recipient explain`).
	Senders []SenderWindow `json:"senders,omitempty"`
	// Margin is how long before its close a window no longer lets a session message go
	// (worker.window_margin: the worker and `message send` refuse one then); WindowQuery.Margin.
	Margin time.Duration `json:"-"`
	// Ahead is how much earlier still a campaign's or follow-up's session message stops going
	// (WindowQuery.Ahead, SendAhead).
	Ahead time.Duration `json:"-"`
}

// Opening is one recorded customer service window.
type Opening struct {
	// To is the business number the customer wrote to, masked; "" for a window recorded with
	// no number, or none.
	To   string `json:"to,omitempty"`
	Open bool   `json:"open"`
	// Recorded says whether an inbound message of the customer is recorded at all.
	Recorded    bool      `json:"recorded"`
	LastInbound time.Time `json:"last_inbound,omitzero"`
	ClosesAt    time.Time `json:"closes_at,omitzero"`
	// ClosesIn is whole seconds until the window closes; 0 when it is closed.
	ClosesIn int64 `json:"closes_in_s"`
}

// SenderWindow is the window that counts for a send from one sender number.
type SenderWindow struct {
	// Sender is the sender number, masked.
	Sender string `json:"sender"`
	Opening
	// Allowed says whether `message send` may send a session message from the sender now: its
	// window is open and closes later than the margin (worker.window_margin) from now.
	// AllowedUntil is when that margin starts, the window's close less the margin; set while
	// the window is open.
	Allowed      bool      `json:"allowed"`
	AllowedUntil time.Time `json:"allowed_until,omitzero"`
	// CampaignAllowed and CampaignAllowedUntil are the same for a campaign's or an on_reply
	// follow-up's session message, which the workers send only while the window stays open
	// for the margin plus the longest the send may still wait for its slot after its window
	// check (SendAhead): its fallback template goes instead, or the recipient is skipped
	// window_closed, from CampaignAllowedUntil on.
	CampaignAllowed      bool      `json:"campaign_allowed"`
	CampaignAllowedUntil time.Time `json:"campaign_allowed_until,omitzero"`
}

// SendAhead is the longest a campaign's or follow-up's send may wait between the worker's
// window check and its request: keeping its place while its limits are booked ahead
// (retry.keep_place_for, none when negative: off), then its slot, booked at most
// retry.max_pace_wait ahead and booked afresh up to twice when the send comes to it late.
// The worker's gate wants a session message's window open for worker.window_margin plus
// this; `window show` and `recipient explain` count the same.
func SendAhead(keepPlaceFor, maxPaceWait time.Duration) time.Duration {
	return max(keepPlaceFor, 0) + 3*maxPaceWait
}

// WindowQuery names a customer's service windows to read: the business, the customer's id
// (E.164 or bsuid:...), how the customer is printed (Shown, masked or not), the business's
// window policy (its sender numbers and windows.scope), the worker's margin
// (worker.window_margin: a window closing within it takes no session message), the longest
// a campaign's send waits after its window check (Ahead: SendAhead of the retry settings),
// and when.
type WindowQuery struct {
	Business, Customer, Shown string
	Policy                    servicewindow.Policy
	Margin, Ahead             time.Duration
	Now                       time.Time
}

// ReadWindow reads every service window of the customer q names (servicewindow.Record).
func ReadWindow(ctx context.Context, rdb redis.UniversalClient, q WindowQuery) (Window, error) {
	tr := servicewindow.New(rdb, func() time.Time { return q.Now })
	rec, err := tr.Record(ctx, q.Business, []string{q.Customer})
	if err != nil {
		return Window{}, err
	}
	r := WindowOf(rec.Latest(), q.Business, q.Shown, q.Now)
	for _, w := range rec.Numbers {
		r.Numbers = append(r.Numbers, OpeningOf(w, q.Now))
	}
	if !rec.Unnamed.ClosesAt.IsZero() {
		o := OpeningOf(rec.Unnamed, q.Now)
		r.NoNumber = &o
	}
	r.Margin, r.Ahead = max(q.Margin, 0), max(q.Ahead, 0)
	for _, s := range q.Policy.Senders {
		sw := SenderWindow{Sender: logx.Phone(s), Opening: OpeningOf(rec.For(q.Policy, s), q.Now)}
		if sw.Open {
			// As `message send` and the worker's gate (servicewindow.Tracker.OpenFor, asked
			// for SendAhead) count it.
			sw.AllowedUntil = sw.ClosesAt.Add(-r.Margin)
			sw.Allowed = sw.ClosesAt.After(q.Now.Add(r.Margin))
			sw.CampaignAllowedUntil = sw.AllowedUntil.Add(-r.Ahead)
			sw.CampaignAllowed = sw.ClosesAt.After(q.Now.Add(r.Margin + r.Ahead))
		}
		r.Senders = append(r.Senders, sw)
	}
	return r, nil
}

// WindowOf is the report of one window Herald recorded (servicewindow.Tracker.Lookup), read
// at now; shown is how the customer is printed (masked or not).
func WindowOf(w servicewindow.Window, business, shown string, now time.Time) Window {
	return Window{Business: business, Customer: shown, Opening: OpeningOf(w, now)}
}

// OpeningOf is the report of one window Herald recorded, read at now.
func OpeningOf(w servicewindow.Window, now time.Time) Opening {
	o := Opening{Open: w.Open, Recorded: !w.ClosesAt.IsZero(), LastInbound: w.LastInbound, ClosesAt: w.ClosesAt}
	if w.To != "" {
		o.To = logx.Phone(w.To)
	}
	if w.Open {
		o.ClosesIn = int64(w.ClosesAt.Sub(now).Seconds())
	}
	return o
}

// Line is the one-line account of the window at now, for `window show` and `recipient explain`.
func (r Opening) Line(now time.Time) string {
	switch {
	case r.Open:
		return fmt.Sprintf("open, closes %s (in %s); last inbound message %s",
			r.ClosesAt.UTC().Format(time.RFC3339), r.ClosesAt.Sub(now).Round(time.Minute), r.LastInbound.UTC().Format(time.RFC3339))
	case r.Recorded:
		return fmt.Sprintf("closed since %s (%s ago); last inbound message %s",
			r.ClosesAt.UTC().Format(time.RFC3339), now.Sub(r.ClosesAt).Round(time.Minute), r.LastInbound.UTC().Format(time.RFC3339))
	}
	return "closed: no inbound message in the last 24 h"
}

// to names the business number of the window the report is about, " (to ****1234)", or "".
func (r Window) to() string {
	if r.To == "" {
		return ""
	}
	return " (to " + r.To + ")"
}

// printWindows prints the customer's windows under the Window line: each business number's,
// the one with no number, and what counts for a session message from each sender number.
func printWindows(w io.Writer, r Window, now time.Time) {
	for _, o := range r.Numbers {
		fmt.Fprintf(w, "  to %s  %s\n", o.To, o.Line(now))
	}
	if r.NoNumber != nil {
		fmt.Fprintf(w, "  no number  %s (the inbound messages named no business number)\n", r.NoNumber.Line(now))
	}
	for _, s := range r.Senders {
		fmt.Fprintf(w, "From %s  %s\n", s.Sender, senderVerdict(s, r.Margin, r.Ahead, now))
	}
}

// senderVerdict says whether a session message may go from a sender now, and by which window:
// not within margin (worker.window_margin) of the window's close, when the worker and message
// send refuse one; and for a campaign's or follow-up's, not within margin plus ahead (the
// longest such a send waits after its window check, SendAhead), when the workers send its
// fallback or skip it instead.
func senderVerdict(o SenderWindow, margin, ahead time.Duration, now time.Time) string {
	via := "its own window"
	if o.To == "" {
		via = "a window recorded with no business number"
	}
	closes := o.ClosesAt.UTC().Format(time.RFC3339)
	until, campaignUntil := o.AllowedUntil.UTC().Format(time.RFC3339), o.CampaignAllowedUntil.UTC().Format(time.RFC3339)
	less := "less worker.window_margin " + shortDuration(margin)
	if margin == 0 {
		less = "with no worker.window_margin"
	}
	wait := fmt.Sprintf("campaigns and follow-ups %s more: their longest wait for a slot, retry.keep_place_for + 3 × retry.max_pace_wait",
		shortDuration(ahead))
	switch {
	case o.CampaignAllowed && margin == 0 && ahead == 0:
		return fmt.Sprintf("session messages allowed until %s (%s)", closes, via)
	case o.CampaignAllowed && ahead == 0:
		return fmt.Sprintf("session messages allowed until %s (%s closes %s, %s)", until, via, closes, less)
	case o.CampaignAllowed:
		return fmt.Sprintf("session messages allowed until %s from campaigns and follow-ups, until %s from message send (%s closes %s, %s; %s)",
			campaignUntil, until, via, closes, less, wait)
	case o.Allowed:
		return fmt.Sprintf("session messages from message send only, until %s; campaigns and follow-ups send their fallback template or skip "+
			"window_closed since %s (%s closes %s, %s; %s)", until, campaignUntil, via, closes, less, wait)
	case o.Open:
		return fmt.Sprintf("templates only: %s closes %s (in %s), too close to its close (worker.window_margin %s)",
			via, closes, shortDuration(o.ClosesAt.Sub(now).Round(time.Second)), shortDuration(margin))
	case o.Recorded:
		return fmt.Sprintf("templates only: %s closed %s ago", via, now.Sub(o.ClosesAt).Round(time.Minute))
	}
	return "templates only: the customer has not written to this number in the last 24 h"
}

// shortDuration is d without its trailing zero units: 2m, 1h30m, 45s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if d%time.Minute == 0 && d != 0 {
		s = strings.TrimSuffix(s, "0s")
		if d%time.Hour == 0 {
			s = strings.TrimSuffix(s, "0m")
		}
	}
	return s
}

// PrintWindow renders a customer's windows as `window show` does.
func PrintWindow(w io.Writer, r Window, now time.Time) {
	fmt.Fprintf(w, "Customer   %s\n", r.Customer)
	if r.Business != "" {
		fmt.Fprintf(w, "Business   %s\n", r.Business)
	}
	fmt.Fprintf(w, "Window     %s\n", r.Line(now)+r.to())
	printWindows(w, r, now)
}
