package main

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/lifecycle"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/reclaim"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// process is what the long-running commands (worker, scheduler, webhooks) share: a logger,
// Redis, metrics, and the group of the process's parts. Redis is the group's first part, so
// it is closed last, once every part has stopped.
//
// The group starts the parts in the order they are added and stops them in reverse in two
// passes: first every part stops taking work (cron ticks, asynq servers), newest first; then
// each lets its work in flight finish and is released, newest first. Every process adds its
// ops endpoint right after Redis, so /readyz answers until the rest has stopped.
type process struct {
	log zerolog.Logger
	rdb redis.UniversalClient
	m   *metrics.Metrics
	g   *lifecycle.Group
}

// newProcess opens the logger and Redis of config c.
func (a *app) newProcess(ctx context.Context, c config.Config) (*process, error) {
	log, err := a.logger(c)
	if err != nil {
		return nil, err
	}
	rdb, err := a.redis(ctx, c)
	if err != nil {
		return nil, err
	}
	p := &process{log: log, rdb: rdb, m: metrics.New(), g: lifecycle.New(lifecycle.Component{Name: "redis", Stop: rdb.Close})}
	// Redis is open: the group holds it from now on, and stop closes it.
	if err := p.g.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// fail stops what the process holds (Redis) after a failure to build it.
func (p *process) fail(err error) error { return errors.Join(err, p.g.Stop()) }

// add appends parts to the process.
func (p *process) add(comps ...lifecycle.Component) { p.g.Add(comps...) }

// run starts the parts, waits until ctx is done, and stops them.
func (p *process) run(ctx context.Context) error { return p.g.Run(ctx) }

// ops adds the /metrics, /healthz and /readyz endpoint on addr ("": none). /readyz answers
// role's checks, then a write to Redis on one key per queue the process takes tasks from
// (see readiness).
func (p *process) ops(addr, role string, queues []string, checks ...func(context.Context) error) {
	if addr == "" {
		return
	}
	srv := &http.Server{Handler: p.m.Mux(readiness(role, p.rdb, queues, checks...)), ReadHeaderTimeout: 5 * time.Second}
	p.add(lifecycle.HTTP(lifecycle.Server{Name: "ops endpoint (--metrics-listen)", Addr: addr, Server: srv, Grace: 2 * time.Second,
		Listening: func(a net.Addr) { p.log.Info().Str("addr", a.String()).Msg("serving /metrics, /healthz, /readyz") },
		OnError:   func(err error) { p.log.Error().Err(err).Msg("ops endpoint stopped") }}))
}

// webhooks adds the webhook receiver of config c, listening on c.Webhooks.Listen.
func (p *process) webhooks(ctx context.Context, c config.Config) {
	var ws *webhookServer
	fm := conversation.NewMetrics(nil)
	p.m.Register(fm.Replies)
	p.add(lifecycle.Component{
		Name: "webhook receiver",
		Start: func() (err error) {
			ws, err = p.startWebhookServer(ctx, c, fm)
			return err
		},
		Stop: func() error { ws.stop(); return nil },
	})
}

// expansion adds an expansion server serving the expansion queue with
// c.Scheduler.ExpandConcurrency (none when 0): it takes no more tasks with the intake, and
// lets expansions in flight stop at their next row when it stops.
func (p *process) expansion(c config.Config) {
	if c.Scheduler.ExpandConcurrency <= 0 {
		return
	}
	rdb, log, m := p.rdb, p.log, p.m
	var exp *expand.Server
	p.add(lifecycle.Component{
		Name: "expansion",
		Start: func() (err error) {
			exp, err = startExpansion(c, rdb, log, c.Scheduler.ExpandConcurrency, m)
			return err
		},
		Quiesce: func() { exp.Stop() },
		Stop:    func() error { exp.Shutdown(); return nil },
	})
}

// reclaimer adds putting the tasks of dead workers (send and expansion tasks held by an
// asynq server that stopped heartbeating) back in Herald's queues within seconds, instead of
// asynq's 60-120 s. Every worker and scheduler process runs one; they do not get in each
// other's way. It stops first, with the intake.
func (p *process) reclaimer() {
	var r *reclaim.Reclaimer
	p.add(lifecycle.Component{
		Name: "reclaimer",
		Start: func() error {
			queues := append(slices.Sorted(maps.Keys(campaigns.Queues)), campaigns.ExpandQueue)
			r = reclaim.New(p.rdb, reclaim.Config{Queues: queues}, p.log)
			r.Start()
			return nil
		},
		Quiesce: func() { r.Stop() },
	})
}

// readiness builds a process's /readyz answer (see metrics.Readiness): its checks, then a
// write to Redis on one key per queue the process takes tasks from (one untagged key when
// none), the answer cached for a second.
func readiness(role string, rdb redis.UniversalClient, queues []string, checks ...func(context.Context) error) func(context.Context) error {
	name := metrics.ProcessName(role)
	keys := []string{rkeys.ReadyProbe("", name)}
	if len(queues) > 0 {
		keys = keys[:0]
		for _, q := range queues {
			keys = append(keys, rkeys.ReadyProbe(q, name))
		}
	}
	return metrics.NewReadiness(metrics.ReadinessConfig{Redis: rdb, Keys: keys, Checks: checks}).Check
}
