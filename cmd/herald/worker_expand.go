package main

import (
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/serve"
)

// runs returns the one way this process starts runs, sending tasks written with opts (see
// serve.Runs).
func runs(c config.Config, rdb redis.UniversalClient, log zerolog.Logger, opts campaigns.TaskOptions) *expand.Runs {
	return serve.Runs(c, rdb, log, opts)
}

// expandTaskOptions are the send task options of runs expanded from submitted campaigns (see
// serve.ExpandTaskOptions).
func expandTaskOptions(c config.Config) campaigns.TaskOptions { return serve.ExpandTaskOptions(c) }

// expandDeps are what expansion needs from the process (see serve.ExpandDeps).
func expandDeps(c config.Config, rdb redis.UniversalClient, log zerolog.Logger, m *metrics.Metrics) expand.Deps {
	return serve.ExpandDeps(c, rdb, log, m)
}

// startExpansion starts an expansion server in this process (see serve.StartExpansion).
func startExpansion(c config.Config, rdb redis.UniversalClient, log zerolog.Logger, concurrency int, m *metrics.Metrics) (*expand.Server, error) {
	return serve.StartExpansion(c, rdb, log, concurrency, m)
}
