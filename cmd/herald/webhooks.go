package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/lifecycle"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/webhooks"
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
			return a.runWebhooks(ctx, c, metricsListen)
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

func (a *app) runWebhooks(ctx context.Context, c config.Config, metricsListen string) error {
	p, err := a.newProcess(ctx, c)
	if err != nil {
		return err
	}
	// Ready: Redis takes writes (every webhook is recorded there).
	p.ops(metricsListen, "webhooks", nil)
	// Shutdown order (the reverse): stop taking webhooks and let those in flight be
	// recorded, stop the parked-event loop, stop the ops endpoint, then close Redis.
	p.webhooks(ctx, c)
	return p.run(ctx)
}

// webhookServer is a running receiver and its HTTP server.
type webhookServer struct {
	rc   *webhooks.Receiver
	g    *lifecycle.Group
	addr string
}

// receiverConfig maps the config file onto the receiver's typed config.
func receiverConfig(c config.Config) (webhooks.Config, error) {
	table, err := connectly.NewTable(c.Errors)
	if err != nil {
		return webhooks.Config{}, &config.Error{Key: "errors", Msg: err.Error(), Err: err}
	}
	return webhooks.Config{
		// Whitespace separates the current secret from the previous one during a rotation.
		Secrets:     strings.Fields(c.WebhookSecret),
		MaxBody:     c.Webhooks.MaxBody,
		OptOutWords: c.Webhooks.Words(),
		ParkFor:     c.Webhooks.ParkFor.D(),
		Table:       table,
		Business:    c.Connectly.BusinessID,
	}, nil
}

// startWebhookServer starts the receiver of config c on c.Webhooks.Listen in the background,
// on the process's Redis, log and metrics. fm counts follow-ups (on_reply); it may be nil.
func (p *process) startWebhookServer(ctx context.Context, c config.Config, fm *conversation.Metrics) (*webhookServer, error) {
	rdb, lg := p.rdb, p.log
	rcfg, err := receiverConfig(c)
	if err != nil {
		return nil, err
	}
	if rcfg.Business == "" {
		lg.Warn().Msg("no connectly.business_id (CONNECTLY_BUSINESS_ID): customer service windows are recorded under an empty business id, where workers of a configured business will not find them")
	}
	fu, err := newFollowups(c, rdb, lg, fm)
	if err != nil {
		return nil, err
	}
	return startReceiver(ctx, receiverSetup{Config: rcfg, Listen: c.Webhooks.Listen, Redis: rdb, Log: lg, Metrics: p.m.NewWebhooks(), Followups: fu})
}

// receiverSetup is what startReceiver runs: the receiver's config, where it listens, and its
// dependencies. Metrics and Followups may be nil.
type receiverSetup struct {
	Config  webhooks.Config
	Listen  string
	Redis   redis.UniversalClient
	Log     zerolog.Logger
	Metrics *metrics.Webhooks
	// Followups are on_reply's follow-ups (nil: none): the receiver calls them on inbound
	// messages, and the follow-up outbox sweep runs with the parked-event loop.
	Followups *conversation.Followups
}

// startReceiver starts a webhook receiver: its parked-event loop, its follow-up outbox sweep,
// then its HTTP server.
func startReceiver(ctx context.Context, s receiverSetup) (*webhookServer, error) {
	rcfg, listen, rdb, lg, m, fu := s.Config, s.Listen, s.Redis, s.Log, s.Metrics, s.Followups
	deps := webhooks.Deps{Redis: rdb, Logger: lg, Metrics: m}
	if fu != nil {
		deps.Replies = fu
	}
	rc, err := webhooks.New(rcfg, deps)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           rc,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	ws := &webhookServer{rc: rc}
	// Stopped in reverse: requests in flight finish (up to 10 s), then the parked-event loop stops.
	sweepCtx, stopSweep := context.WithCancel(context.WithoutCancel(ctx))
	sweepDone := make(chan struct{})
	ws.g = lifecycle.New(
		lifecycle.Component{Name: "parked webhook events", Start: func() error { rc.Start(context.WithoutCancel(ctx)); return nil },
			Stop: func() error { rc.Stop(); return nil }},
		lifecycle.Component{Name: "follow-up outbox sweep", Start: func() error {
			go func() {
				defer close(sweepDone)
				if fu != nil {
					fu.RunSweep(sweepCtx, followupSweepEvery, followupSweepAfter)
				}
			}()
			return nil
		}, Stop: func() error { stopSweep(); <-sweepDone; return nil }},
		lifecycle.HTTP(lifecycle.Server{Name: "webhooks listen", Addr: listen, Server: srv, Grace: 10 * time.Second,
			Listening: func(a net.Addr) { ws.addr = a.String() },
			OnError:   func(err error) { lg.Error().Err(err).Msg("webhook receiver stopped") }}),
	)
	if err := ws.g.Start(); err != nil {
		return nil, err
	}
	lg.Info().Str("addr", ws.addr).Msg("receiving Connectly webhooks")
	return ws, nil
}

// stop lets requests in flight finish (up to 10 s), then stops the parked-event loop.
func (ws *webhookServer) stop() { _ = ws.g.Stop() }

func (a *app) webhooksRegisterCmd() *cobra.Command {
	var (
		address string
		topics  []string
	)
	cmd := command("register --url URL", "Point Connectly's delivery_status and messages webhooks at URL (create or update)", cobra.NoArgs,
		func(ctx context.Context, _ []string) error {
			u, err := url.Parse(address)
			if address == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usageError{fmt.Errorf("--url %q: want an absolute http(s) URL", address)}
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
			client, err := connectlyClient(c, 2)
			if err != nil {
				return err
			}
			for _, t := range topics {
				res, w, err := client.EnsureWebhook(ctx, t, address)
				if err != nil {
					return fmt.Errorf("register %s: %w", t, err)
				}
				fmt.Fprintf(a.stdout, "%-16s %-9s %s (%s)\n", t, res, w.Address, w.ID)
			}
			if u.Scheme == "http" {
				fmt.Fprintln(a.stderr, "note: the URL is plain http; Connectly's calls carry customer data, use https outside a test setup")
			}
			return nil
		})
	cmd.Long = `Create or update the webhook registrations of the configured business so that Connectly sends
delivery_status events and inbound messages to URL. An existing registration of a topic is updated
in place (no gap in delivery); a topic without one gets a new registration. Needs the business id
and API key (CONNECTLY_BUSINESS_ID, CONNECTLY_API_KEY).`
	cmd.Flags().StringVar(&address, "url", "", "the public address of `herald webhooks` (https://...)")
	cmd.Flags().StringSliceVar(&topics, "topics", []string{connectly.TopicDeliveryStatus, connectly.TopicMessages}, "topics to register")
	return cmd
}
