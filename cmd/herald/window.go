package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// windowReport is a customer's service window as `window show --json` and `recipient
// explain --json` print it.
type windowReport struct {
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

// readWindow reads the service window of the customer known by id (E.164 or bsuid:...) for
// business; shown is how the customer is printed.
func readWindow(ctx context.Context, rdb redis.UniversalClient, business, id, shown string, now time.Time) (windowReport, error) {
	ws, err := servicewindow.New(rdb, func() time.Time { return now }).Lookup(ctx, business, []string{id})
	if err != nil {
		return windowReport{}, err
	}
	w := servicewindow.Latest(ws)
	r := windowReport{Business: business, Customer: shown, Open: w.Open, Recorded: !w.ClosesAt.IsZero(),
		LastInbound: w.LastInbound, ClosesAt: w.ClosesAt}
	if w.Open {
		r.ClosesIn = int64(w.ClosesAt.Sub(now).Seconds())
	}
	return r, nil
}

// line is the one-line account of the window, for `window show` and `recipient explain`.
func (r windowReport) line(now time.Time) string {
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

// customerID normalises a NUMBER argument: a phone number (E.164, or national with region),
// or a BSUID as bsuid:<id>.
func customerID(arg, region string) (string, error) {
	if b, ok := strings.CutPrefix(arg, "bsuid:"); ok {
		if strings.TrimSpace(b) == "" {
			return "", usageError{fmt.Errorf("%q: an empty BSUID", arg)}
		}
		return "bsuid:" + strings.TrimSpace(b), nil
	}
	id, err := campaigns.NormalizePhone(arg, region)
	if err != nil {
		return "", usageError{fmt.Errorf("customer: %w (give +E.164, --region for a national number, or bsuid:BSUID)", err)}
	}
	return id, nil
}

func (a *app) windowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "window",
		Short: "Customer service windows: whether Herald may send a customer session messages now",
		Long: `A customer service window opens when a customer messages the business and closes 24 hours after
their last inbound message (WhatsApp's rule). Herald records it from the inbound messages its
webhook receiver takes (herald webhooks), per business (connectly.business_id).`,
	}
	var asJSON, reveal bool
	var region string
	show := &cobra.Command{
		Use:   "show NUMBER|bsuid:BSUID",
		Short: "Whether a customer's service window is open, and when it closes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id, err := customerID(args[0], region)
			if err != nil {
				return err
			}
			c, err := a.config()
			if err != nil {
				return err
			}
			rdb, err := a.redis(ctx, c)
			if err != nil {
				return err
			}
			defer rdb.Close()
			shown := id
			if !reveal {
				shown = logx.Phone(id)
			}
			now := time.Now()
			r, err := readWindow(ctx, rdb, c.Connectly.BusinessID, id, shown, now)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, r)
			}
			printWindow(a.stdout, r, now)
			return nil
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	show.Flags().BoolVar(&reveal, "reveal", false, "show the full number instead of the last 4 digits")
	show.Flags().StringVar(&region, "region", "", "country for a number written without country code (e.g. US)")
	cmd.AddCommand(show)
	return cmd
}

func printWindow(w io.Writer, r windowReport, now time.Time) {
	fmt.Fprintf(w, "Customer   %s\n", r.Customer)
	if r.Business != "" {
		fmt.Fprintf(w, "Business   %s\n", r.Business)
	}
	fmt.Fprintf(w, "Window     %s\n", r.line(now))
}
