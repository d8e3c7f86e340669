package main

import (
	"context"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/serve"
)

// setup opens the logger and Redis of config c for a long-running process (worker,
// scheduler, webhooks; see package serve) serving its ops endpoint on metricsListen ("":
// none). The process closes Redis when it stops.
func (a *app) setup(ctx context.Context, c config.Config, metricsListen string) (serve.Setup, error) {
	log, err := a.logger(c)
	if err != nil {
		return serve.Setup{}, err
	}
	rdb, err := a.redis(ctx, c)
	if err != nil {
		return serve.Setup{}, err
	}
	return serve.Setup{Config: c, Log: log, Redis: rdb, MetricsListen: metricsListen}, nil
}

// serve runs a long-running process of config c (serve.RunScheduler, serve.RunWebhooks) with
// its logger and Redis opened by setup, until ctx is done.
func (a *app) serve(ctx context.Context, c config.Config, metricsListen string, run func(context.Context, serve.Setup) error) error {
	s, err := a.setup(ctx, c, metricsListen)
	if err != nil {
		return err
	}
	return run(ctx, s)
}
