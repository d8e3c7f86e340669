package main

import (
	"context"
	"errors"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/backoff"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/lifecycle"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/worker"
)

func (a *app) workerCmd() *cobra.Command {
	var (
		concurrency   int
		metricsListen string
	)
	cmd := a.configCmd("worker", "Run a worker: take send tasks from Redis and deliver them through Connectly", cobra.NoArgs,
		func(ctx context.Context, c config.Config, _ []string) error {
			if err := c.RequireConnectly(); err != nil {
				return err
			}
			if concurrency > 0 {
				c.Worker.Concurrency = concurrency
			}
			return a.runWorker(ctx, c, metricsListen)
		})
	cmd.Flags().IntVar(&concurrency, "concurrency", 0, "sends in flight in this process (default worker.concurrency)")
	cmd.Flags().StringVar(&metricsListen, "metrics-listen", "", "serve /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9090)")
	return cmd
}

// workerConfig maps the config file onto the worker's typed config.
func workerConfig(c config.Config) worker.Config {
	return worker.Config{
		Concurrency:     c.Worker.Concurrency,
		MaxAttempts:     c.Retry.MaxAttempts,
		Backoff:         backoff.Backoff{Base: c.Retry.Base.D(), Cap: c.Retry.Cap.D()},
		ThrottleDelay:   c.Retry.ThrottleDelay.D(),
		RetryAfterHolds: limits.HoldScope(c.Retry.RetryAfterHolds),
		HoldDelay:       c.Retry.HoldDelay.D(),
		KeepPlaceFor:    c.Retry.KeepPlaceFor.D(),
		RequestTimeout:  c.Connectly.Timeout.D(),
		ShutdownTimeout: c.Worker.ShutdownTimeout.D(),
		Limits: limits.Config{
			BusinessID:        c.Connectly.BusinessID,
			BusinessRate:      c.Connectly.BusinessRate,
			SenderRates:       c.SenderRates(),
			DefaultSenderRate: limits.DefaultSenderRate,
			PairInterval:      c.Limits.PairInterval.D(),
			DailyTier:         int(c.Limits.MessagingTier),
			TierWindow:        c.Limits.TierWindow.D(),
			FrequencyCaps:     frequencyCaps(c),
			Adaptive:          c.Limits.Adaptive.Policy(),
			AdaptiveOff:       c.Limits.Adaptive.Off,
			MaxWait:           c.Retry.MaxPaceWait.D(),
		},
		BurstWindow:   int(c.StopRun.BurstWindow),
		BurstShare:    c.StopRun.BurstShare,
		TierRecheck:   c.Limits.TierRecheck.D(),
		AdaptiveCodes: c.Limits.Adaptive.Codes,
		ResendTask:    sendTaskOptions(c),
	}
}

func frequencyCaps(c config.Config) map[string]worker.FrequencyCap {
	m := make(map[string]worker.FrequencyCap, len(c.Limits.FrequencyCaps))
	for cat, fc := range c.Limits.FrequencyCaps {
		m[cat] = worker.FrequencyCap{Max: fc.Max, Window: fc.Window.D()}
	}
	return m
}

// limitsCollector reports the daily tier and the configured senders' adaptive rate.
func limitsCollector(c config.Config, rdb redis.UniversalClient) prometheus.Collector {
	var senders []limits.Control
	if !c.Limits.Adaptive.Off {
		for _, s := range c.Senders {
			senders = append(senders, report.SenderControl(c, s.Number))
		}
	}
	return metrics.NewLimitsCollector(metrics.LimitsSource{Limiter: limits.New(rdb), TierKey: rkeys.Tier(c.Connectly.BusinessID),
		TierLimit: int(c.Limits.MessagingTier), TierWindow: c.Limits.TierWindow.D(), Senders: senders})
}

func (a *app) runWorker(ctx context.Context, c config.Config, metricsListen string) error {
	p, err := a.newProcess(ctx, c)
	if err != nil {
		return err
	}
	rdb, log, m := p.rdb, p.log, p.m
	cc := clientConfig(c)
	cc.MaxConns = c.Worker.Concurrency
	client, err := connectly.NewClient(cc)
	if err != nil {
		return p.fail(err)
	}
	table, err := errorTable(c)
	if err != nil {
		return p.fail(err)
	}
	table.SetAmbiguousStatuses(c.Retry.AmbiguousStatuses)
	w := worker.New(workerConfig(c), worker.Deps{Redis: rdb, Sender: client, Table: table, Logger: log, Metrics: m})
	w.SetWindowMargin(c.Worker.WindowMargin.D())
	w.OnSending(sendRecorder(c, rdb, log))
	if metricsListen != "" {
		in := asynq.NewInspectorFromRedisClient(rdb)
		m.RegisterQueues(in)
		m.Register(metrics.NewRunCollector(ledger.New(rdb, nil)), limitsCollector(c, rdb))
		// Ready: taking tasks, asynq's server for the send queues (and the expansion server's)
		// heartbeating, and Redis taking writes on each of those queues' nodes.
		queues := w.Queues()
		checks := []func(context.Context) error{
			func(context.Context) error {
				if !w.Running() {
					return errors.New("worker not running")
				}
				return nil
			},
			metrics.AsynqServerUp(in, queues...),
		}
		if c.Scheduler.ExpandConcurrency > 0 {
			checks = append(checks, metrics.AsynqServerUp(in, campaigns.ExpandQueue))
			queues = append(queues, campaigns.ExpandQueue)
		}
		p.ops(metricsListen, "worker", queues, checks...)
	}
	if c.Webhooks.InWorker {
		if err := c.RequireWebhookSecret(); err != nil {
			return p.fail(err)
		}
		p.webhooks(ctx, c)
	}
	// Shutdown order (the reverse): stop reclaiming, expanding and taking tasks, let sends in
	// flight finish (up to the shutdown timeout; unstarted tasks go back to the queue), stop
	// the webhook receiver (webhooks in flight are recorded), stop the ops endpoint, then
	// close Redis.
	p.add(lifecycle.Component{Name: "worker", Start: w.Start, Quiesce: w.Stop, Stop: func() error { w.Shutdown(); return nil }})
	// Workers expand runs too (scheduled ones and `campaign run`), so expansion scales with them.
	p.expansion(c)
	p.reclaimer()
	return p.run(ctx)
}
