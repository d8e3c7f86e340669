// Package reclaim puts the tasks of dead asynq servers back in their queues within seconds.
//
// asynq recovers a task whose server died only after the task's lease has run out (30 s,
// internal/rdb LeaseDuration), 30 s more allowed for clock skew, and its recoverer's next
// one-minute poll: 60 to 120 s after the crash. Until then the task sits in the queue's active
// list, so a killed worker's sends (and any run expansion it held) wait that long while the
// living carry on without them.
//
// A Reclaimer looks every second at the leases of the queues it is given. A task is put back
// at the head of its queue when no live asynq server lists it among its workers (asynq's
// heartbeat rewrites `asynq:workers:{host:pid:id}` every 5 s with a 10 s expiry, so a dead
// server's list is gone at most 10 s after its last beat) and its lease has not been extended
// for Grace (a live server extends it on every beat, and lists a task it took on its next
// beat). Both are read from asynq's own keys, and the move is asynq's requeue (the one its
// server makes on shutdown) written against asynq v0.26's key layout: see reclaim_test.go,
// which runs real asynq servers on it, so an asynq upgrade that changes the layout fails a
// test rather than production.
//
// The move is one script on the queue's keys that applies only while the lease still has the
// score that was judged stale, so any number of processes may run a Reclaimer, and a server
// that extends the lease in the meantime keeps its task. What a task finds when it runs again
// is the ledger's business: a send whose entry the dead worker had claimed is settled by the
// claim rules of the run's delivery policy (unknown under at-most-once), never sent twice.
package reclaim

import (
	"cmp"
	"context"
	_ "embed"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/tick"
)

// asynq v0.26's lease duration (internal/rdb LeaseDuration): a lease's score is the Unix second
// it runs out, set to now + this when a task is taken and on every heartbeat.
const asynqLease = 30 * time.Second

// Defaults of Config.
const (
	// DefaultEvery is the time between sweeps.
	DefaultEvery = time.Second
	// DefaultGrace is how long past its lease a task is left to its server: two of asynq's
	// 5 s lease extensions.
	DefaultGrace = 10 * time.Second
)

// Config configures a Reclaimer. Zero values take the defaults shown.
type Config struct {
	// Queues are the asynq queues to watch (required).
	Queues []string
	// Every is the time between sweeps. Default DefaultEvery; negative: off (Start sweeps
	// nothing; Sweep still runs one pass).
	Every time.Duration
	// Grace is how long a task's lease must have gone without being extended. asynq extends
	// the leases of live servers every 5 s. Default DefaultGrace.
	Grace time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
}

// Reclaimer requeues the tasks of dead asynq servers; see the package comment.
type Reclaimer struct {
	rdb  redis.UniversalClient
	cfg  Config
	log  zerolog.Logger
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New returns a Reclaimer; Start runs it in the background, Sweep runs one pass.
func New(rdb redis.UniversalClient, cfg Config, log zerolog.Logger) *Reclaimer {
	cfg.Every = cmp.Or(cfg.Every, DefaultEvery)
	cfg.Grace = cmp.Or(cfg.Grace, DefaultGrace)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Reclaimer{rdb: rdb, cfg: cfg, log: log.With().Str(logx.KeyComponent, "reclaim").Logger()}
}

// Start sweeps every Every until Stop.
func (r *Reclaimer) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		failing := false
		tick.Every(ctx, r.cfg.Every, func(ctx context.Context) {
			if _, err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
				// Redis away: say so once, not every second.
				if !failing {
					r.log.Warn().Err(err).Msg("could not look for tasks of dead servers")
				}
				failing = true
				return
			}
			failing = false
		})
	}()
}

// Stop ends the sweeps and waits for the one running.
func (r *Reclaimer) Stop() {
	if r.stop != nil {
		r.stop()
		r.wg.Wait()
	}
}

// Sweep requeues, once, every watched task no live server holds whose lease went stale, and
// returns how many it moved.
func (r *Reclaimer) Sweep(ctx context.Context) (int, error) {
	now := r.cfg.Now()
	held, err := r.heldByLiveServers(ctx, now)
	if err != nil {
		return 0, err
	}
	// A lease scored at or below this was last set (taken or extended) Grace ago or earlier.
	stale := now.Add(asynqLease - r.cfg.Grace).Unix()
	leases := make([]*redis.ZSliceCmd, len(r.cfg.Queues))
	if _, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, q := range r.cfg.Queues {
			leases[i] = p.ZRangeByScoreWithScores(ctx, rkeys.AsynqLease(q), &redis.ZRangeBy{Min: "-inf", Max: fmt.Sprint(stale)})
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("reclaim: read leases: %w", err)
	}
	moved := 0
	for i, q := range r.cfg.Queues {
		for _, z := range leases[i].Val() {
			id, _ := z.Member.(string)
			if held[id] {
				continue
			}
			n, err := requeueCmd.Run(ctx, r.rdb, []string{rkeys.AsynqActive(q), rkeys.AsynqLease(q), rkeys.AsynqPending(q), rkeys.AsynqTask(q, id)},
				id, int64(z.Score), now.UnixNano()).Int()
			if err != nil {
				return moved, fmt.Errorf("reclaim: requeue %s: %w", id, err)
			}
			if n == 1 {
				moved++
				r.log.Info().Str(logx.KeyTaskID, id).Str("queue", q).
					Time("lease_until", time.Unix(int64(z.Score), 0)).Msg("task of a dead worker put back in its queue")
			}
		}
	}
	return moved, nil
}

// heldByLiveServers returns the ids of the tasks live asynq servers list as in progress: the
// fields of every `asynq:workers:{...}` hash that still exists (a dead server's expires).
// asynq leaves a killed server's member in asynq:workers, scored by its hash's expiry: those
// that expired more than a minute ago (far beyond any clock skew) are not looked at.
func (r *Reclaimer) heldByLiveServers(ctx context.Context, now time.Time) (map[string]bool, error) {
	keys, err := r.rdb.ZRangeByScore(ctx, rkeys.AsynqWorkers(), &redis.ZRangeBy{Min: fmt.Sprint(now.Add(-time.Minute).Unix()), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("reclaim: list servers: %w", err)
	}
	cmds := make([]*redis.StringSliceCmd, len(keys))
	if len(keys) > 0 {
		// Each hash has its own hash tag: a pipeline, not a script (Cluster routes each).
		if _, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				cmds[i] = p.HKeys(ctx, k)
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("reclaim: read servers' workers: %w", err)
		}
	}
	held := map[string]bool{}
	for _, c := range cmds {
		for _, id := range c.Val() {
			held[id] = true
		}
	}
	return held, nil
}

//go:embed lua/requeue.lua
var requeueLua string

// requeueCmd is asynq's requeue guarded by the lease's score: a task whose lease a live server
// extended since it was judged stale stays where it is. Its KEYS, ARGV and reply are documented
// at the top of lua/requeue.lua.
var requeueCmd = redis.NewScript(requeueLua)
