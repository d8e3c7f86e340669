package serve

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/lifecycle"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/scheduler"
)

// RunScheduler runs the scheduler process of s (herald scheduler) until ctx is done: the
// scheduler starting runs on their schedule, the expansion server
// (Config.Scheduler.ExpandConcurrency; none when 0), the reclaimer, and the ops endpoint on
// MetricsListen.
func RunScheduler(ctx context.Context, s Setup) error {
	p, err := New(s)
	if err != nil {
		return err
	}
	c, rdb, log, m := s.Config, p.rdb, p.log, p.m
	sched := scheduler.New(scheduler.Config{Poll: c.Scheduler.Poll.D()}, scheduler.Deps{Redis: rdb, Logger: log,
		OnTick: func(campaign, result string) { m.SchedulerTicks.WithLabelValues(campaign, result).Inc() },
		// Each tick checks its campaign's on_reply rules against the templates as Connectly
		// has them now: a template edited since the submit may have lost the buttons the
		// rules answer.
		Check: func(ctx context.Context, def *campaigns.Definition) error {
			notes, err := RefuseOnReply(ctx, c, def)
			for _, n := range notes {
				log.Warn().Str(logx.KeyCampaign, def.ID).Msg("on_reply " + n)
			}
			return err
		}})
	var running atomic.Bool
	if s.MetricsListen != "" {
		in := asynq.NewInspectorFromRedisClient(rdb)
		m.RegisterQueues(in)
		m.Register(RunCollector(rdb))
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
		p.Ops(s.MetricsListen, "scheduler", queues, checks...)
	}
	p.Expansion()
	// Shutdown order (the reverse): stop intake (no more ticks: cron stops and waits for a
	// tick being fired; the expansion server takes no more tasks), then let expansions in
	// flight stop at their next row (they resume elsewhere from the ledger's cursor), stop the
	// ops endpoint, and close Redis last.
	p.Add(lifecycle.Component{
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
	p.Reclaimer()
	return p.Run(ctx)
}
