package main

import (
	"maps"
	"slices"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/reclaim"
)

// startReclaimer starts putting the tasks of dead workers (send and expansion tasks held by an
// asynq server that stopped heartbeating) back in Herald's queues within seconds, instead of
// asynq's 60-120 s. Every worker and scheduler process runs one; they do not get in each
// other's way. Stop it before closing Redis.
func startReclaimer(rdb redis.UniversalClient, log zerolog.Logger) *reclaim.Reclaimer {
	queues := append(slices.Sorted(maps.Keys(campaigns.Queues)), campaigns.ExpandQueue)
	r := reclaim.New(rdb, reclaim.Config{Queues: queues}, log)
	r.Start()
	return r
}
