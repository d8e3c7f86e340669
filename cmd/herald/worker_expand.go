package main

import (
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/metrics"
)

// expandConfig maps the config file onto the expansion server's typed config.
func expandConfig(c config.Config, concurrency int) expand.ServerConfig {
	return expand.ServerConfig{
		Concurrency:     concurrency,
		ShutdownTimeout: c.Worker.ShutdownTimeout.D(),
		Expand:          backlogConfig(c, expandTaskOptions(c)),
	}
}

// backlogConfig maps the config file's expansion keys (scheduler.backlog, min_backlog,
// max_backlog: the backlog of tasks a run keeps ahead of the workers) onto expand.Config, with
// send tasks written with opts.
func backlogConfig(c config.Config, opts campaigns.TaskOptions) expand.Config {
	return expand.Config{Backlog: c.Scheduler.Backlog.D(), MinBacklog: c.Scheduler.MinBacklog, MaxBacklog: c.Scheduler.MaxBacklog,
		Task: opts}
}

// runs returns the one way this process starts runs, sending tasks written with opts.
func runs(c config.Config, rdb redis.UniversalClient, log zerolog.Logger, opts campaigns.TaskOptions) *expand.Runs {
	return expand.NewRuns(backlogConfig(c, opts), expandDeps(c, rdb, log, nil))
}

// expandTaskOptions are the send task options of runs expanded from submitted campaigns.
// Unlike `campaign send`'s, completed tasks are not retained: the ledger, not a retained
// TaskID, keeps a recipient single, and a million retained tasks would cost Redis about as
// much memory as a million pending ones.
func expandTaskOptions(c config.Config) campaigns.TaskOptions {
	o := sendTaskOptions(c)
	o.Retention = 0
	return o
}

// expandDeps are what expansion needs from the process: Redis, the logger, and the sender
// choice and rates from the config.
func expandDeps(c config.Config, rdb redis.UniversalClient, log zerolog.Logger, m *metrics.Metrics) expand.Deps {
	var onEnqueued func(string, int)
	if m != nil {
		onEnqueued = func(campaign string, n int) { m.ExpandedTasks.WithLabelValues(campaign).Add(float64(n)) }
	}
	return expand.Deps{
		Redis: rdb, Logger: log, OnEnqueued: onEnqueued,
		Sender:     func(def *campaigns.Definition) (string, error) { return resolveSender(def, c) },
		SenderRate: c.SenderRate,
	}
}

// startExpansion starts an expansion server in this process (a scheduler's, or a worker's)
// serving the expansion queue with the given concurrency. Stop it with Stop then Shutdown.
//
// A worker process serves expansion tasks too once cmd/herald/worker.go's runWorker calls
// this after w.Start() (and stops it before w.Stop()):
//
//	exp, err := startExpansion(c, rdb, log, c.Scheduler.ExpandConcurrency, m)
func startExpansion(c config.Config, rdb redis.UniversalClient, log zerolog.Logger, concurrency int, m *metrics.Metrics) (*expand.Server, error) {
	srv := expand.NewServer(expandConfig(c, concurrency), expandDeps(c, rdb, log, m))
	if err := srv.Start(); err != nil {
		return nil, err
	}
	return srv, nil
}
