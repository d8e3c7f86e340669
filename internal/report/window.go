package report

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/servicewindow"
)

// Window is a customer's service window as `window show --json` and `recipient explain
// --json` print it.
type Window struct {
	Business string `json:"business"`
	Customer string `json:"customer"`
	Open     bool   `json:"open"`
	// Recorded says whether an inbound message of the customer is recorded at all.
	Recorded    bool      `json:"recorded"`
	LastInbound time.Time `json:"last_inbound,omitzero"`
	ClosesAt    time.Time `json:"closes_at,omitzero"`
	// ClosesIn is whole seconds until the window closes; 0 when it is closed.
	ClosesIn int64 `json:"closes_in_s"`
}

// WindowQuery names a customer's service window to read: the business, the customer's id
// (E.164 or bsuid:...), how the customer is printed (Shown, masked or not), and when.
type WindowQuery struct {
	Business, Customer, Shown string
	Now                       time.Time
}

// ReadWindow reads the service window q names.
func ReadWindow(ctx context.Context, rdb redis.UniversalClient, q WindowQuery) (Window, error) {
	business, id, shown, now := q.Business, q.Customer, q.Shown, q.Now
	ws, err := servicewindow.New(rdb, func() time.Time { return now }).Lookup(ctx, business, []string{id})
	if err != nil {
		return Window{}, err
	}
	return WindowOf(servicewindow.Latest(ws), business, shown, now), nil
}

// WindowOf is the report of a window Herald recorded (servicewindow.Tracker.Lookup), read at
// now; shown is how the customer is printed (masked or not).
func WindowOf(w servicewindow.Window, business, shown string, now time.Time) Window {
	r := Window{Business: business, Customer: shown, Open: w.Open, Recorded: !w.ClosesAt.IsZero(),
		LastInbound: w.LastInbound, ClosesAt: w.ClosesAt}
	if w.Open {
		r.ClosesIn = int64(w.ClosesAt.Sub(now).Seconds())
	}
	return r
}

// Line is the one-line account of the window at now, for `window show` and `recipient explain`.
func (r Window) Line(now time.Time) string {
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

// PrintWindow renders a customer's window as `window show` does.
func PrintWindow(w io.Writer, r Window, now time.Time) {
	fmt.Fprintf(w, "Customer   %s\n", r.Customer)
	if r.Business != "" {
		fmt.Fprintf(w, "Business   %s\n", r.Business)
	}
	fmt.Fprintf(w, "Window     %s\n", r.Line(now))
}
