package main

import (
	"context"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/serve"
)

// startRun starts a run of def from sender and expands its whole audience, as herald demo
// does, through the one way every command starts a run.
func startRun(ctx context.Context, rdb redis.UniversalClient, def *campaigns.Definition, sender string,
	opts campaigns.TaskOptions, log zerolog.Logger, progress func(done, estimate int)) (ledger.Run, expand.Stats, error) {
	c := config.Default()
	deps := serve.ExpandDeps(c, rdb, log, nil)
	deps.Sender = func(*campaigns.Definition) (string, error) { return sender, nil }
	st, err := expand.NewRuns(serve.BacklogConfig(c, opts), deps).StartRun(ctx, expand.StartParams{Def: def, Progress: progress})
	return st.Run, st.Stats, err
}
