package serve

import (
	"context"
	"errors"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/backoff"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/lifecycle"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/worker"
)

// RunWorker runs the worker process of s (herald worker) until ctx is done: the worker taking
// send tasks through a Connectly client of the config's business (ConnectlyClient, one
// connection per send in flight) with the configured table of Connectly's codes
// (ErrorTable), the expansion server (Config.Scheduler.ExpandConcurrency), the reclaimer, the
// webhook receiver when Config.Webhooks.InWorker, and the ops endpoint on MetricsListen.
func RunWorker(ctx context.Context, s Setup) error {
	client, err := ConnectlyClient(s.Config, s.Config.Worker.Concurrency)
	if err != nil {
		return s.Fail(err)
	}
	table, err := ErrorTable(s.Config)
	if err != nil {
		return s.Fail(err)
	}
	p, err := New(s)
	if err != nil {
		return err
	}
	c, rdb, log, m := s.Config, p.rdb, p.log, p.m
	table.SetAmbiguousStatuses(c.Retry.AmbiguousStatuses)
	table.SetRequestFaults(c.Retry.RequestFaults)
	w := worker.New(WorkerConfig(c), worker.Deps{Redis: rdb, Sender: client, Table: table, Logger: log, Metrics: m})
	w.SetWindowMargin(c.Worker.WindowMargin.D())
	w.OnSending(SendRecorder(c, rdb, log))
	if s.MetricsListen != "" {
		in := asynq.NewInspectorFromRedisClient(rdb)
		m.RegisterQueues(in)
		m.Register(RunCollector(rdb), LimitsCollector(c, rdb))
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
		p.Ops(s.MetricsListen, "worker", queues, checks...)
	}
	if c.Webhooks.InWorker {
		if err := c.RequireWebhookSecret(); err != nil {
			return p.Fail(err)
		}
		p.Webhooks(ctx)
	}
	// Shutdown order (the reverse): stop reclaiming, expanding and taking tasks, let sends in
	// flight finish (up to the shutdown timeout; unstarted tasks go back to the queue), stop
	// the webhook receiver (webhooks in flight are recorded), stop the ops endpoint, then
	// close Redis.
	p.Add(lifecycle.Component{Name: "worker", Start: w.Start, Quiesce: w.Stop, Stop: func() error { w.Shutdown(); return nil }})
	// Workers expand runs too (scheduled ones and `campaign run`), so expansion scales with them.
	p.Expansion()
	p.Reclaimer()
	return p.Run(ctx)
}

// WorkerConfig maps the config file onto the worker's typed config.
func WorkerConfig(c config.Config) worker.Config {
	return worker.Config{
		Concurrency:     c.Worker.Concurrency,
		MaxAttempts:     c.Retry.MaxAttempts,
		Backoff:         backoff.Backoff{Base: c.Retry.Base.D(), Cap: c.Retry.Cap.D()},
		ThrottleDelay:   c.Retry.ThrottleDelay.D(),
		RetryAfterHolds: limits.HoldScope(c.Retry.RetryAfterHolds),
		HoldDelay:       c.Retry.HoldDelay.D(),
		KeepPlaceFor:    c.Retry.KeepPlaceFor.D(),
		LateFallbackFor: c.Windows.LateFallbackFor.D(),
		RequestTimeout:  c.Connectly.Timeout.D(),
		ShutdownTimeout: c.Worker.ShutdownTimeout.D(),
		Limits: limits.Config{
			BusinessID:    c.Connectly.BusinessID,
			BusinessRate:  c.Connectly.BusinessRate,
			SenderRates:   c.SenderRates(),
			PairInterval:  c.Limits.PairInterval.D(),
			DailyTier:     int(c.Limits.MessagingTier),
			TierPeriod:    c.Limits.TierPeriod.D(),
			FrequencyCaps: frequencyCaps(c),
			Adaptive:      c.Limits.Adaptive.Policy(),
			MaxWait:       c.Retry.MaxPaceWait.D(),
		},
		BurstSample:   int(c.StopRun.BurstSample),
		BurstShare:    c.StopRun.BurstShare,
		TierRecheck:   c.Limits.TierRecheck.D(),
		AdaptiveCodes: c.Limits.Adaptive.Codes,
		ResendTask:    SendTaskOptions(c),
		Windows:       c.WindowPolicy(),
		// Expansion plans no session message skipped for a marketing-only opt-out: the worker
		// alone decides, so this reaches the worker only.
		CampaignSessionsNotMarketing: c.Suppression.SessionsNotMarketing(),
	}
}

func frequencyCaps(c config.Config) map[string]worker.FrequencyCap {
	m := make(map[string]worker.FrequencyCap, len(c.Limits.FrequencyCaps))
	for cat, fc := range c.Limits.FrequencyCaps {
		m[cat] = worker.FrequencyCap{Max: fc.Max, Period: fc.Period.D()}
	}
	return m
}

// RunCollector reports the runs' progress and pauses (metrics.NewRunCollector), a completed
// run whose follow-ups are paused included, however old: a delayed follow-up may still be held
// long after its run's on_reply.until and delay.
func RunCollector(rdb redis.UniversalClient) prometheus.Collector {
	return metrics.NewRunCollector(ledger.New(rdb, nil))
}

// LimitsCollector reports the daily tier and the configured senders' adaptive rate.
func LimitsCollector(c config.Config, rdb redis.UniversalClient) prometheus.Collector {
	var senders []limits.Control
	if !c.Limits.Adaptive.Off {
		for _, s := range c.Senders {
			senders = append(senders, report.SenderControl(c, s.Number))
		}
	}
	return metrics.NewLimitsCollector(metrics.LimitsSource{Limiter: limits.New(rdb), Business: c.Connectly.BusinessID,
		TierLimit: int(c.Limits.MessagingTier), TierPeriod: c.Limits.TierPeriod.D(), Senders: senders})
}
