package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/serve"
)

func (a *app) webhooksCmd() *cobra.Command {
	var listen, metricsListen string
	cmd := a.configCmd("webhooks", "Receive Connectly's signed webhooks and record deliveries, reads, failures and opt-outs", cobra.NoArgs,
		func(ctx context.Context, c config.Config, _ []string) error {
			if listen != "" {
				c.Webhooks.Listen = listen
			}
			if c.Webhooks.Listen == "" {
				return usageError{errors.New("webhooks needs --listen ADDR (or webhooks.listen / HERALD_WEBHOOKS_LISTEN)")}
			}
			if err := c.RequireWebhookSecret(); err != nil {
				return err
			}
			return a.serve(ctx, c, metricsListen, serve.RunWebhooks)
		})
	cmd.Long = `Serve the webhook receiver: Connectly POSTs delivery_status events (sent, delivered, read,
delivery_failed) and inbound messages here, signed with x-connectly-hmac-sha256. Each event is
checked (signature, size, JSON), applied to the run's ledger and answered 200; a wrong or
missing signature gets 401 and changes nothing. The signing secret comes from
CONNECTLY_WEBHOOK_SECRET or connectly.webhook_secret_file. Register the address with
'herald webhooks register --url URL'.`
	cmd.Flags().StringVar(&listen, "listen", "", "address to receive webhooks on, e.g. 127.0.0.1:8090 (default webhooks.listen)")
	cmd.Flags().StringVar(&metricsListen, "metrics-listen", "", "serve /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9091)")
	cmd.AddCommand(a.webhooksRegisterCmd())
	return cmd
}

func (a *app) webhooksRegisterCmd() *cobra.Command {
	var (
		address string
		topics  []string
	)
	cmd := command("register --url URL", "Point Connectly's delivery_status and messages webhooks at URL (create or update)", cobra.NoArgs,
		func(ctx context.Context, _ []string) error {
			u, err := url.Parse(address)
			if address == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usageError{fmt.Errorf("--url %q: want an absolute http(s) URL", shownWebhookURL(address))}
			}
			for _, t := range topics {
				if t != connectly.TopicDeliveryStatus && t != connectly.TopicMessages {
					return usageError{fmt.Errorf("--topics: %q is not delivery_status or messages", t)}
				}
			}
			c, err := a.config()
			if err != nil {
				return err
			}
			client, err := serve.ConnectlyClient(c, 2)
			if err != nil {
				return err
			}
			for _, t := range topics {
				res, w, err := client.EnsureWebhook(ctx, t, address)
				if err != nil {
					return fmt.Errorf("register %s: %w", t, hideCredentials(err, u))
				}
				fmt.Fprintf(a.stdout, "%-16s %-9s %s (%s)\n", t, res, shownWebhookURL(w.Address), w.ID)
			}
			if u.Scheme == "http" {
				fmt.Fprintln(a.stderr, "note: the URL is plain http; Connectly's calls carry customer data, use https outside a test setup")
			}
			return nil
		})
	cmd.Long = `Create or update the webhook registrations of the configured business so that Connectly sends
delivery_status events and inbound messages to URL. A URL with credentials (https://user:password@...)
or query parameters (?token=...) is shown with its password and parameter values as xxxxx. An existing
registration of a topic is updated in place (no gap in delivery), its filters cleared (a filter would keep
Herald's events away); a topic without one gets a new registration. Each registration is listed again
afterwards, and one Connectly still lists elsewhere or filtered is an error. Needs the business id
and API key (CONNECTLY_BUSINESS_ID, CONNECTLY_API_KEY).`
	// pflag takes a word in backquotes as the value's name: `URL` shows as --url URL.
	cmd.Flags().StringVar(&address, "url", "", "the public `URL` of the webhook receiver, herald webhooks (https://...)")
	cmd.Flags().StringSliceVar(&topics, "topics", []string{connectly.TopicDeliveryStatus, connectly.TopicMessages}, "topics to register")
	return cmd
}

// webhookSecrets are the parts of webhook URL u that may be credentials: its password (or a
// lone user name) and the value of each query parameter (a token a receiver or the proxy in
// front of it checks).
func webhookSecrets(u *url.URL) []string {
	var out []string
	if u.User != nil {
		secret, ok := u.User.Password()
		if !ok {
			secret = u.User.Username()
		}
		out = append(out, secret)
	}
	for _, vs := range u.Query() {
		out = append(out, vs...)
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

// shownWebhookURL is webhook URL raw as Herald shows it: its password and query values as
// xxxxx (webhookSecrets).
func shownWebhookURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redisx.Redact(raw)
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = url.User("xxxxx")
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k, vs := range q {
			for i := range vs {
				vs[i] = "xxxxx"
			}
			q[k] = vs
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// hideCredentials returns err with the secrets of u (the URL registered, which Connectly's
// answer may quote) replaced by xxxxx: the URL is shown masked everywhere
// (shownWebhookURL), and so is an error that quotes it.
func hideCredentials(err error, u *url.URL) error {
	msg := err.Error()
	for _, secret := range webhookSecrets(u) {
		msg = strings.ReplaceAll(msg, secret, "xxxxx")
		if esc := url.QueryEscape(secret); esc != secret {
			msg = strings.ReplaceAll(msg, esc, "xxxxx")
		}
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}
