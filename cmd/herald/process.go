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
