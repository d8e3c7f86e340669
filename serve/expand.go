package serve

import (
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/sendpolicy"
)

// SendTaskOptions are the asynq options of send tasks under config c.
func SendTaskOptions(c config.Config) campaigns.TaskOptions {
	return campaigns.TaskOptions{
		// asynq's budget stays above Herald's attempts: see campaigns.TaskOptions.MaxRetry.
		MaxRetry: sendpolicy.MaxRetry(c.Retry.MaxAttempts),
		// A handler may wait for a pacing permit, keep its place, then make the request.
		Timeout:   sendpolicy.TaskTimeout(c.Connectly.Timeout.D(), c.Retry.MaxPaceWait.D(), c.Retry.KeepPlaceFor.D()),
		Retention: sendpolicy.Retention,
	}
}

// ExpandTaskOptions are the send task options of runs expanded from submitted campaigns.
// Unlike `campaign send`'s, completed tasks are not retained: the ledger, not a retained
// TaskID, keeps a recipient single, and a million retained tasks would cost Redis about as
// much memory as a million pending ones.
func ExpandTaskOptions(c config.Config) campaigns.TaskOptions {
	o := SendTaskOptions(c)
	o.Retention = 0
	return o
}

// SenderOf picks the sender of a run of def under config c: the campaign's, else the only
// configured one ("" when the config lists none: the business's only number).
func SenderOf(def *campaigns.Definition, c config.Config) (string, error) {
	sender, err := c.SenderFor(def.Sender)
	if err != nil {
		return "", fmt.Errorf("%s: %w", def.Path, err)
	}
	return sender, nil
}

// ExpandServerConfig maps the config file onto the expansion server's typed config. The
// server waits for its expansions as long as the process's workers wait for their sends
// (worker.shutdown_timeout, which the config's Validate makes positive).
func ExpandServerConfig(c config.Config, concurrency int) expand.ServerConfig {
	return expand.ServerConfig{
		Concurrency:     concurrency,
		ShutdownTimeout: c.Worker.ShutdownTimeout.D(),
		Expand:          BacklogConfig(c, ExpandTaskOptions(c)),
	}
}

// BacklogConfig maps the config file's expansion keys (scheduler.backlog, min_backlog,
// max_backlog: the backlog of tasks a run keeps ahead of the workers) onto expand.Config, with
// send tasks written with opts.
func BacklogConfig(c config.Config, opts campaigns.TaskOptions) expand.Config {
	return expand.Config{Backlog: c.Scheduler.Backlog.D(), MinBacklog: c.Scheduler.MinBacklog, MaxBacklog: c.Scheduler.MaxBacklog,
		Task: opts}
}

// Runs returns the one way a process starts runs, sending tasks written with opts.
func Runs(c config.Config, rdb redis.UniversalClient, log zerolog.Logger, opts campaigns.TaskOptions) *expand.Runs {
	return expand.NewRuns(BacklogConfig(c, opts), ExpandDeps(c, rdb, log, nil))
}

// ExpandDeps are what expansion needs from the process: Redis, the logger, and the sender
// choice and rates from the config. m counts the tasks expanded; it may be nil.
func ExpandDeps(c config.Config, rdb redis.UniversalClient, log zerolog.Logger, m *metrics.Metrics) expand.Deps {
	var onEnqueued func(string, int)
	if m != nil {
		onEnqueued = func(campaign string, n int) { m.ExpandedTasks.WithLabelValues(campaign).Add(float64(n)) }
	}
	return expand.Deps{
		Redis: rdb, Logger: log, OnEnqueued: onEnqueued,
		Sender:     func(def *campaigns.Definition) (string, error) { return SenderOf(def, c) },
		SenderRate: c.SenderRate,
	}
}

// StartExpansion starts an expansion server in this process (a scheduler's, or a worker's)
// serving the expansion queue with the given concurrency. Stop it with Stop then Shutdown.
// m counts the tasks expanded; it may be nil.
func StartExpansion(c config.Config, rdb redis.UniversalClient, log zerolog.Logger, concurrency int, m *metrics.Metrics) (*expand.Server, error) {
	srv := expand.NewServer(ExpandServerConfig(c, concurrency), ExpandDeps(c, rdb, log, m))
	if err := srv.Start(); err != nil {
		return nil, err
	}
	return srv, nil
}
