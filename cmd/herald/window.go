package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/report"
)

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
			return a.withRedis(ctx, func(c config.Config, rdb redis.UniversalClient) error {
				now := time.Now()
				r, err := report.ReadWindow(ctx, rdb, c.Connectly.BusinessID, id, shownID(id, reveal), now)
				if err != nil {
					return err
				}
				return a.print(asJSON, r, func(w io.Writer) error { report.PrintWindow(w, r, now); return nil })
			})
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	revealFlags(show, &reveal, &region)
	cmd.AddCommand(show)
	return cmd
}
