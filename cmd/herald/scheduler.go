package main

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/lifecycle"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/scheduler"
)

func (a *app) schedulerCmd() *cobra.Command {
	var (
		metricsListen string
		concurrency   int
		// changed says whether a flag was given: --expand-concurrency 0 means no expansion here.
		changed func(flag string) bool
	)
	cmd := a.configCmd("scheduler", "Run the scheduler: start runs of submitted campaigns on their cron or one-shot schedule",
		cobra.NoArgs, func(ctx context.Context, c config.Config, _ []string) error {
			if changed("expand-concurrency") {
				c.Scheduler.ExpandConcurrency = concurrency
			}
			return a.runScheduler(ctx, c, metricsListen)
		})
	changed = cmd.Flags().Changed
	cmd.Long = `Run the scheduler: every submitted campaign (herald campaign submit) with a schedule gets a
run per cron tick, or one at its one-shot time. Run as many replicas as you like: each tick
becomes one run, whichever replica fires it. By default this process also expands runs
(streams audiences into send tasks, a window at a time); the audience files must be readable
here at the paths they were submitted with.`
	cmd.Flags().StringVar(&metricsListen, "metrics-listen", "", "serve /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9091)")
	cmd.Flags().IntVar(&concurrency, "expand-concurrency", 0, "runs this process expands at once; 0 leaves expansion to other processes (default scheduler.expand_concurrency)")
	return cmd
}

func (a *app) runScheduler(ctx context.Context, c config.Config, metricsListen string) error {
	p, err := a.newProcess(ctx, c)
	if err != nil {
		return err
	}
	rdb, log, m := p.rdb, p.log, p.m
	sched := scheduler.New(scheduler.Config{Poll: c.Scheduler.Poll.D()}, scheduler.Deps{Redis: rdb, Logger: log,
		OnTick: func(campaign, result string) { m.SchedulerTicks.WithLabelValues(campaign, result).Inc() }})
	var running atomic.Bool
	if metricsListen != "" {
		in := asynq.NewInspectorFromRedisClient(rdb)
		m.RegisterQueues(in)
		m.Register(metrics.NewRunCollector(ledger.New(rdb, nil)))
		// Ready: ticking, the expansion server (if any) heartbeating, and Redis taking writes.
		checks := []func(context.Context) error{func(context.Context) error {
			if !running.Load() {
				return errors.New("scheduler not running")
			}
			return nil
		}}
		var queues []string
		if c.Scheduler.ExpandConcurrency > 0 {
			checks = append(checks, metrics.AsynqServerUp(in, campaigns.ExpandQueue))
			queues = []string{campaigns.ExpandQueue}
		}
		p.ops(metricsListen, "scheduler", queues, checks...)
	}
	p.expansion(c)
	// Shutdown order (the reverse): stop intake (no more ticks: cron stops and waits for a
	// tick being fired; the expansion server takes no more tasks), then let expansions in
	// flight stop at their next row (they resume elsewhere from the ledger's cursor), stop the
	// ops endpoint, and close Redis last.
	p.add(lifecycle.Component{
		Name: "scheduler",
		Start: func() error {
			if err := sched.Start(ctx); err != nil {
				return err
			}
			running.Store(true)
			return nil
		},
		Quiesce: func() {
			running.Store(false)
			sched.Stop()
		},
	})
	p.reclaimer()
	return p.run(ctx)
}
