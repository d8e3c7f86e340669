package main

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/scheduler"
)

func (a *app) schedulerCmd() *cobra.Command {
	var (
		metricsListen string
		concurrency   int
	)
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Run the scheduler: start runs of submitted campaigns on their cron or one-shot schedule",
		Long: `Run the scheduler: every submitted campaign (herald campaign submit) with a schedule gets a
run per cron tick, or one at its one-shot time. Run as many replicas as you like: each tick
becomes one run, whichever replica fires it. By default this process also expands runs
(streams audiences into send tasks, a window at a time); the audience files must be readable
here at the paths they were submitted with.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.config()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("expand-concurrency") {
				c.Scheduler.ExpandConcurrency = concurrency
			}
			return a.runScheduler(cmd.Context(), c, metricsListen)
		},
	}
	cmd.Flags().StringVar(&metricsListen, "metrics-listen", "", "serve /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9091)")
	cmd.Flags().IntVar(&concurrency, "expand-concurrency", 0, "runs this process expands at once; 0 leaves expansion to other processes (default scheduler.expand_concurrency)")
	return cmd
}

func (a *app) runScheduler(ctx context.Context, c config.Config, metricsListen string) error {
	log, err := a.logger(c)
	if err != nil {
		return err
	}
	rdb, err := a.redis(ctx, c)
	if err != nil {
		return err
	}
	m := metrics.New()
	sched := scheduler.New(scheduler.Config{Poll: c.Scheduler.Poll.D()}, scheduler.Deps{Redis: rdb, Logger: log,
		OnTick: func(campaign, result string) { m.SchedulerTicks.WithLabelValues(campaign, result).Inc() }})
	var exp *expand.Server
	if c.Scheduler.ExpandConcurrency > 0 {
		if exp, err = startExpansion(c, rdb, log, c.Scheduler.ExpandConcurrency, m); err != nil {
			rdb.Close()
			return err
		}
	}
	var running atomic.Bool
	var ops *http.Server
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
		ready := readiness("scheduler", rdb, queues, checks...)
		if ops, err = serveOps(metricsListen, m, ready, log); err != nil {
			if exp != nil {
				exp.Stop()
				exp.Shutdown()
			}
			rdb.Close()
			return err
		}
	}
	if err := sched.Start(ctx); err != nil {
		if exp != nil {
			exp.Stop()
			exp.Shutdown()
		}
		rdb.Close()
		return err
	}
	running.Store(true)
	rc := startReclaimer(rdb, log)
	<-ctx.Done()
	rc.Stop()
	// Shutdown order: stop intake (no more ticks: cron stops and waits for a tick being
	// fired; the expansion server takes no more tasks), then let expansions in flight stop at
	// their next row (they resume elsewhere from the ledger's cursor), stop the ops endpoint,
	// and close Redis last.
	running.Store(false)
	sched.Stop()
	if exp != nil {
		exp.Stop()
		exp.Shutdown()
	}
	if ops != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = ops.Shutdown(sctx)
		cancel()
	}
	return rdb.Close()
}
