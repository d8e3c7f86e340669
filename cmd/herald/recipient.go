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
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/serve"
)

// A person's views: a recipient's story in a run (`recipient explain`) and a customer's
// service window (`window show`).

func (a *app) recipientCmd() *cobra.Command {
	var asJSON, reveal bool
	var region string
	explain := command("explain RUN PHONE|bsuid:BSUID", "A recipient's state in a run: attempts, last code and its class, message id, suppression",
		cobra.ExactArgs(2), func(ctx context.Context, args []string) error {
			rcpt := args[1]
			if !strings.HasPrefix(rcpt, "bsuid:") {
				var err error
				if rcpt, err = campaigns.NormalizePhone(args[1], region); err != nil {
					return usageError{fmt.Errorf("recipient: %w (give +E.164, or --region for a national number)", err)}
				}
			}
			return a.withRedis(ctx, func(k conn) error {
				now := a.now()
				x, err := serve.ExplainRecipient(ctx, k.c, k.rdb, serve.ExplainParams{Run: args[0], Recipient: rcpt,
					Shown: shownID(rcpt, reveal), Now: now})
				if err != nil {
					return notFound(args[0], err)
				}
				if unknown := serve.WindowsReadable(k.c); unknown != nil {
					// No business: the window read is no one's, and would say closed whatever
					// the customer wrote. The rest of the story stands; the window is unknown.
					out := explanationWithoutWindow{Explanation: x, WindowUnknown: unknown.Error()}
					return a.print(asJSON, out, func(w io.Writer) error { return printWithoutWindow(w, x, now, unknown) })
				}
				return a.print(asJSON, x, func(w io.Writer) error { report.PrintExplanation(w, x, now); printTimeline(w, x); return nil })
			})
		})
	explain.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	revealFlags(explain, &reveal, &region)
	return group("recipient", "Why a person did or did not get a message", explain)
}

// explanationWithoutWindow is `recipient explain --json` when the config names no business:
// window is null, and window_unknown says why.
type explanationWithoutWindow struct {
	report.Explanation
	Window        *report.Window `json:"window"`
	WindowUnknown string         `json:"window_unknown"`
}

// printWithoutWindow renders x as recipient explain does, its Window line saying the window
// is unknown (why) in place of the one it read.
func printWithoutWindow(w io.Writer, x report.Explanation, now time.Time, why error) error {
	var b strings.Builder
	x.Window = report.Window{Customer: x.Window.Customer} // its Window line alone, and last
	report.PrintExplanation(&b, x, now)
	text := b.String()
	i := strings.LastIndex(text, "Window     ")
	if i < 0 || strings.Count(text[i:], "\n") != 1 {
		return fmt.Errorf("recipient explain: the window's line is not the last: %q", text)
	}
	fmt.Fprintf(w, "%sWindow     unknown: %s\n", text[:i], why)
	printTimeline(w, x)
	return nil
}

// shownID is how a recipient or customer is printed: masked to the last 4 digits unless
// --reveal.
func shownID(id string, reveal bool) string {
	if reveal {
		return id
	}
	return logx.Phone(id)
}

// revealFlags adds --reveal and --region to a command that takes a person's number.
func revealFlags(cmd *cobra.Command, reveal *bool, region *string) {
	cmd.Flags().BoolVar(reveal, "reveal", false, "show the full number instead of the last 4 digits")
	cmd.Flags().StringVar(region, "region", "", "country for a number written without country code (e.g. US)")
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
	var asJSON, reveal bool
	var region string
	show := command("show NUMBER|bsuid:BSUID", "Whether a customer's service window is open, and when it closes", cobra.ExactArgs(1),
		func(ctx context.Context, args []string) error {
			id, err := customerID(args[0], region)
			if err != nil {
				return err
			}
			c, err := a.config()
			if err != nil {
				return err
			}
			if err := serve.WindowsReadable(c); err != nil {
				return fmt.Errorf("window show: %w", err)
			}
			return a.connected(ctx, c, func(rdb redis.UniversalClient) error {
				k := conn{c: c, rdb: rdb}
				now := a.now()
				r, err := report.ReadWindow(ctx, k.rdb, serve.WindowQuery(k.c, id, shownID(id, reveal), now))
				if err != nil {
					return err
				}
				return a.print(asJSON, r, func(w io.Writer) error { report.PrintWindow(w, r, now); return nil })
			})
		})
	show.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	revealFlags(show, &reveal, &region)
	cmd := group("window", "Customer service windows: whether Herald may send a customer session messages now", show)
	cmd.Long = `A customer service window opens when a customer messages the business and closes 24 hours after
their last inbound message (WhatsApp's rule). The window is the business number's the customer
wrote to: only a send from that number may use it. Herald records it from the inbound messages
its webhook receiver takes (herald webhooks), per business (connectly.business_id) and business
number; an inbound message that names no number records a window with none, which counts as
windows.scope says. Shown: the customer's latest window, each number's, the one with no number,
and for each configured sender whether a session message may go from it now: until its window's
close less worker.window_margin for message send (--json: "allowed" and "allowed_until" of each
sender), and less that margin plus the longest a send waits for its slot after its window check
(retry.keep_place_for + 3 x retry.max_pace_wait) for campaigns and on_reply follow-ups, as the
workers count it ("campaign_allowed", "campaign_allowed_until").`
	return cmd
}
