// Package serve wires Herald's long-running processes (herald worker, scheduler, webhooks and
// the embedded demo) out of their parts: the worker, the expansion server, the reclaimer, the
// webhook receiver with its follow-ups, and the ops endpoint, each a lifecycle component on
// the process's one Redis client, logger and metrics.
//
// RunWorker, RunScheduler and RunWebhooks are whole processes: give them a Setup (config,
// logger, Redis, ops address) and they run until ctx is done. Process is the group they are
// built on, for a process of other parts (a console serving the same ops endpoint);
// RunDashboard and RunFakeConnectly are the two processes of other parts. The functions
// mapping the config file onto the parts' typed configs (WorkerConfig, ExpandServerConfig,
// ReceiverConfig, FileRules, ...) and the one client builder (ConnectlyClient, ErrorTable)
// are the one place that mapping is made.
//
// A herald command that needs more than one package is one call here: SendCampaign,
// PlanCampaign, ListCampaigns, ExplainRecipient, SendMessage, CheckOnReply, and the
// operator's actions (PauseRun, ResumeRun, CancelRun, RetryRun, RemoveCampaign), which keep
// themselves in the audit log as the tasks package's actions do.
package serve

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

// readHeaderTimeout is how long every HTTP server of Herald (ops endpoint, webhook receiver,
// dashboard) waits for a request's headers.
const readHeaderTimeout = 5 * time.Second

// Setup is what a process runs with.
type Setup struct {
	// Config is the process's configuration.
	Config config.Config
	// Log is the process's logger.
	Log zerolog.Logger
	// Redis is the process's client, open. The process owns it from then on: it is closed
	// when the process stops, or fails to be built.
	Redis redis.UniversalClient
	// MetricsListen is the address of the ops endpoint (/metrics, /healthz, /readyz); "" for
	// none.
	MetricsListen string
}

// Fail closes what s holds (Redis) after a failure before a process was built on it, and
// returns err joined with the close's error.
func (s Setup) Fail(err error) error { return errors.Join(err, s.Redis.Close()) }

// Process is what the long-running commands (worker, scheduler, webhooks) share: a logger,
// Redis, metrics, and the group of the process's parts. Redis is the group's first part, so
// it is closed last, once every part has stopped.
//
// The group starts the parts in the order they are added and stops them in reverse in two
// passes: first every part stops taking work (cron ticks, asynq servers), newest first; then
// each lets its work in flight finish and is released, newest first. Every process adds its
// ops endpoint right after Redis, so /readyz answers until the rest has stopped.
type Process struct {
	cfg config.Config
	log zerolog.Logger
	rdb redis.UniversalClient
	m   *metrics.Metrics
	g   *lifecycle.Group
}

// New returns the process of s, holding its Redis (closed when the process stops) and new
// metrics.
func New(s Setup) (*Process, error) {
	p := &Process{cfg: s.Config, log: s.Log, rdb: s.Redis, m: metrics.New(),
		g: lifecycle.New(lifecycle.Component{Name: "redis", Stop: s.Redis.Close})}
	// Redis is open: the group holds it from now on, and stop closes it.
	if err := p.g.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// Fail stops what the process holds (Redis) after a failure to build it.
func (p *Process) Fail(err error) error { return errors.Join(err, p.g.Stop()) }

// Add appends parts to the process.
func (p *Process) Add(comps ...lifecycle.Component) { p.g.Add(comps...) }

// Run starts the parts, waits until ctx is done, and stops them.
func (p *Process) Run(ctx context.Context) error { return p.g.Run(ctx) }

// Ops adds the /metrics, /healthz and /readyz endpoint on addr ("": none). /readyz answers
// role's checks, then a write to Redis on one key per queue the process takes tasks from
// (see readiness).
func (p *Process) Ops(addr, role string, queues []string, checks ...func(context.Context) error) {
	if addr == "" {
		return
	}
	srv := &http.Server{Handler: p.m.Mux(readiness(role, p.rdb, queues, checks...)), ReadHeaderTimeout: readHeaderTimeout}
	p.Add(lifecycle.HTTP(lifecycle.Server{Name: "ops endpoint (--metrics-listen)", Addr: addr, Server: srv, Grace: 2 * time.Second,
		Listening: func(a net.Addr) { p.log.Info().Str("addr", a.String()).Msg("serving /metrics, /healthz, /readyz") },
		OnError:   func(err error) { p.log.Error().Err(err).Msg("ops endpoint stopped") }}))
}

// Webhooks adds the webhook receiver of the process's config, listening on
// Config.Webhooks.Listen, with its follow-ups (counted in the process's metrics).
func (p *Process) Webhooks(ctx context.Context) {
	var ws *Receiver
	fm := conversation.NewMetrics(nil)
	p.m.Register(fm.Replies)
	p.Add(lifecycle.Component{
		Name: "webhook receiver",
		Start: func() (err error) {
			ws, err = p.startReceiver(ctx, fm)
			return err
		},
		Stop: func() error { ws.Stop(); return nil },
	})
}

// Expansion adds an expansion server serving the expansion queue with
// Config.Scheduler.ExpandConcurrency (none when 0): it takes no more tasks with the intake,
// and lets expansions in flight stop at their next row when it stops.
func (p *Process) Expansion() {
	c := p.cfg
	if c.Scheduler.ExpandConcurrency <= 0 {
		return
	}
	rdb, log, m := p.rdb, p.log, p.m
	var exp *expand.Server
	p.Add(lifecycle.Component{
		Name: "expansion",
		Start: func() (err error) {
			exp, err = StartExpansion(c, rdb, log, c.Scheduler.ExpandConcurrency, m)
			return err
		},
		Quiesce: func() { exp.Stop() },
		Stop:    func() error { exp.Shutdown(); return nil },
	})
}

// Reclaimer adds putting the tasks of dead workers (send and expansion tasks held by an
// asynq server that stopped heartbeating) back in Herald's queues within seconds, instead of
// asynq's 60-120 s. Every worker and scheduler process runs one; they do not get in each
// other's way. It stops first, with the intake.
func (p *Process) Reclaimer() {
	var r *reclaim.Reclaimer
	p.Add(lifecycle.Component{
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
