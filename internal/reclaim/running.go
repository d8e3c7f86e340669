package reclaim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// Running reports which of ids an asynq server may be running now in one of queues, as Sweep
// judges it: one a beating server lists as in progress, or one leased in one of queues whose
// lease has not run out DefaultLeaseGrace ago (a server cut off from Redis may still run it).
// It reads only asynq's lists of servers and leases, not the tasks themselves, so it also finds
// a task whose hash was removed while a worker ran it: its handler may still settle what it
// holds. An id no server may be running is in the map as false.
func Running(ctx context.Context, rdb redis.UniversalClient, queues, ids []string, now time.Time) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	r := New(rdb, Config{Queues: queues, Every: -1, Now: func() time.Time { return now }}, zerolog.Nop())
	srv, err := r.servers(ctx, now)
	if err != nil {
		return nil, err
	}
	leases := make([]*redis.FloatCmd, 0, len(queues)*len(ids))
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, q := range queues {
			for _, id := range ids {
				leases = append(leases, p.ZScore(ctx, rkeys.AsynqLease(q), id))
			}
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("reclaim: read leases: %w", err)
	}
	expired := now.Add(-r.cfg.LeaseGrace).Unix()
	for i, c := range leases {
		id := ids[i%len(ids)]
		lease, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, fmt.Errorf("reclaim: read leases: %w", err)
		case int64(lease) > expired:
			out[id] = true
		}
		out[id] = out[id] || srv.held[id]
	}
	return out, nil
}
