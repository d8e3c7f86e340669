package serve

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/lifecycle"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// RunWebhooks runs the webhook receiver process of s (herald webhooks) until ctx is done: the
// receiver on Config.Webhooks.Listen with its follow-ups, and the ops endpoint on
// MetricsListen. The config must name a webhook secret and an address.
func RunWebhooks(ctx context.Context, s Setup) error {
	p, err := New(s)
	if err != nil {
		return err
	}
	// Ready: Redis takes writes (every webhook is recorded there).
	p.Ops(s.MetricsListen, "webhooks", nil)
	// Shutdown order (the reverse): stop taking webhooks and let those in flight be
	// recorded, stop the parked-event loop, stop the ops endpoint, then close Redis.
	p.Webhooks(ctx)
	return p.Run(ctx)
}

// Receiver is a running webhook receiver and its HTTP server.
type Receiver struct {
	rc   *webhooks.Receiver
	g    *lifecycle.Group
	addr string
}

// Addr is the address the receiver listens on (host:port).
func (r *Receiver) Addr() string { return r.addr }

// Parked counts the events the receiver parked for a later retry (see webhooks.Receiver).
func (r *Receiver) Parked(ctx context.Context) (int64, error) { return r.rc.Parked(ctx) }

// Stop lets requests in flight finish (up to 10 s), then stops the follow-up outbox sweep
// and the parked-event loop.
func (r *Receiver) Stop() { _ = r.g.Stop() }

// ReceiverConfig maps the config file onto the receiver's typed config.
func ReceiverConfig(c config.Config) (webhooks.Config, error) {
	table, err := ErrorTable(c)
	if err != nil {
		return webhooks.Config{}, err
	}
	return webhooks.Config{
		// Whitespace separates the current secret from the previous one during a rotation.
		Secrets:     strings.Fields(c.WebhookSecret),
		MaxBody:     c.Webhooks.MaxBody,
		OptOutWords: c.Webhooks.Words(),
		ParkFor:     c.Webhooks.ParkFor.D(),
		Table:       table,
		Business:    c.Connectly.BusinessID,
		OwnNumbers:  c.SenderNumbers(),
	}, nil
}

// startReceiver starts the receiver of the process's config on Config.Webhooks.Listen in the
// background, on the process's Redis, log and metrics. fm counts follow-ups (on_reply); it may
// be nil.
func (p *Process) startReceiver(ctx context.Context, fm *conversation.Metrics) (*Receiver, error) {
	c, rdb, lg := p.cfg, p.rdb, p.log
	rcfg, err := ReceiverConfig(c)
	if err != nil {
		return nil, err
	}
	if rcfg.Business == "" {
		lg.Warn().Msg("no connectly.business_id (CONNECTLY_BUSINESS_ID): customer service windows are recorded under an empty business id, where workers of a configured business will not find them")
	}
	fu, err := NewFollowups(c, rdb, lg, fm)
	if err != nil {
		return nil, err
	}
	return StartReceiver(ctx, ReceiverSetup{Config: rcfg, Listen: c.Webhooks.Listen, Redis: rdb, Log: lg, Metrics: p.m.NewWebhooks(), Followups: fu})
}

// ReceiverSetup is what StartReceiver runs: the receiver's config, where it listens, and its
// dependencies. Metrics and Followups may be nil.
type ReceiverSetup struct {
	Config webhooks.Config
	// Listen is the address to listen on ("127.0.0.1:0": any free port, see Receiver.Addr).
	Listen  string
	Redis   redis.UniversalClient
	Log     zerolog.Logger
	Metrics *metrics.Webhooks
	// Followups are on_reply's follow-ups (nil: none): the receiver calls them on inbound
	// messages, and the follow-up outbox sweep runs with the parked-event loop.
	Followups *conversation.Followups
}

// StartReceiver starts a webhook receiver: its parked-event loop, its follow-up outbox sweep,
// then its HTTP server. Stop it with Stop.
func StartReceiver(ctx context.Context, s ReceiverSetup) (*Receiver, error) {
	rcfg, listen, rdb, lg, m, fu := s.Config, s.Listen, s.Redis, s.Log, s.Metrics, s.Followups
	deps := webhooks.Deps{Redis: rdb, Logger: lg, Metrics: m}
	if fu != nil {
		deps.Replies, deps.LateRefusals = fu, fu
	}
	rc, err := webhooks.New(rcfg, deps)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           rc,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	ws := &Receiver{rc: rc}
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
					fu.RunSweep(sweepCtx)
				}
			}()
			return nil
		}, Stop: func() error { stopSweep(); <-sweepDone; return nil }},
		lifecycle.HTTP(lifecycle.Server{Name: "webhooks listen", Addr: listen, Server: srv, Grace: 10 * time.Second,
			Listening: func(a net.Addr) { ws.addr = a.String() },
			OnError:   func(err error) { lg.Error().Err(err).Msg("webhook receiver stopped") }}),
	)
	if err := ws.g.Start(); err != nil {
		stopSweep()
		return nil, err
	}
	lg.Info().Str("addr", ws.addr).Msg("receiving Connectly webhooks")
	return ws, nil
}
