package main

import (
	"context"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/serve"
)

// serve runs a long-running process of config c (serve.RunWorker, serve.RunScheduler,
// serve.RunWebhooks) until ctx is done, with the logger and Redis of the config, serving its
// ops endpoint on metricsListen ("": none). The process closes Redis when it stops.
func (a *app) serve(ctx context.Context, c config.Config, metricsListen string, run func(context.Context, serve.Setup) error) error {
	log, err := a.logger(c)
	if err != nil {
		return err
	}
	rdb, err := a.redis(ctx, c)
	if err != nil {
		return err
	}
	return run(ctx, serve.Setup{Config: c, Log: log, Redis: rdb, MetricsListen: metricsListen})
}
