// Package reclaim puts the tasks of dead asynq servers back in their queues, sooner than asynq.
//
// asynq recovers a task whose server died only after the task's lease has run out (30 s,
// internal/rdb LeaseDuration), 30 s more allowed for clock skew, and its recoverer's next
// one-minute poll: 60 to 120 s after the crash, and it then counts a failure and waits the
// retry delay. Until then the task sits in the queue's active list, so a killed worker's sends
// (and any run expansion it held) wait that long while the living carry on without them.
//
// A Reclaimer looks every second at the leases of the queues it is given, and at asynq's
// servers: one is beating while its `asynq:servers:{host:pid:id}` key lives (asynq's heartbeat
// rewrites it every 5 s with a 10 s expiry, together with the `asynq:workers:{...}` hash of the
// tasks it runs). A task no beating server lists is put back at the head of its queue when
//   - its lease has run out, LeaseGrace ago: whoever held it has lost it, as asynq's own
//     recoverer would judge (a server whose lease runs out cancels the handler on its next
//     heartbeat and writes nothing for the task); or
//   - its lease has not been extended for Grace and every server that may hold it is beating:
//     its server lives and no longer runs it (asynq lost the acknowledgement, see below).
//
// A server that stopped beating may be dead or only cut off from Redis (a failover, a
// partition: Redis keeps no heartbeat for 10 s, while the server's handlers run on for as
// long as their 30 s leases); the two look alike until the lease runs out, so such a
// server's tasks are left alone until then. Which server holds a task is not written down: a
// server that stopped beating is taken to hold every unlisted task whose lease was set before
// it went quiet, or within Grace after. asynq v0.26 loses the acknowledgement of a task when
// marking it done or retried fails (it retries the move on a context already cancelled), which
// leaves a task that no server runs in the active list until the recoverer: a lost
// acknowledgement of a beating server is put back Grace after its last lease extension,
// a dead server's task LeaseGrace after its lease ran out (35 to 40 s after the crash by
// default). Only a heartbeat that hangs (its calls waiting out their dial timeouts on
// connections nobody answers) makes a server notice its lost lease later than LeaseGrace, and
// its handler may then still run when the task is put back; asynq's recoverer, 30 s past the
// lease, has the same limit.
//
// Both are read from asynq's own keys, and the move is asynq's requeue (the one its server
// makes on shutdown) written against asynq v0.26's key layout: see reclaim_test.go, which runs
// real asynq servers on it, so an asynq upgrade that changes the layout fails a test rather
// than production.
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
	"math"
	"strings"
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

// asynqBeatTTL is how long asynq v0.26's servers and workers keys outlive the heartbeat that
// wrote them: twice its 5 s interval (heartbeat.go, WriteServerState).
const asynqBeatTTL = 10 * time.Second

// Defaults of Config.
const (
	// DefaultEvery is the time between sweeps.
	DefaultEvery = time.Second
	// DefaultGrace is how long a lease must have gone without extension before an unlisted
	// task of beating servers is put back: a beating server wrote its list less than asynq's
	// 10 s heartbeat expiry ago, so a task of its that it does not list is younger than that;
	// 5 s more for a slow heartbeat, the lease's whole seconds and clock skew.
	DefaultGrace = 15 * time.Second
	// DefaultLeaseGrace is how long past the end of its lease a task that a quiet server may
	// hold is left: two of asynq's 5 s heartbeats, on the first of which a server whose lease
	// ran out cancels the handler.
	DefaultLeaseGrace = 10 * time.Second
)

// Config configures a Reclaimer. Zero values take the defaults shown.
type Config struct {
	// Queues are the asynq queues to watch (required).
	Queues []string
	// Every is the time between sweeps. Default DefaultEvery; negative: off (Start sweeps
	// nothing; Sweep still runs one pass).
	Every time.Duration
	// Grace is how long a task's lease must have gone without being extended before the task
	// is put back while every server that may hold it is beating and none lists it. It must
	// exceed asynq's 10 s heartbeat expiry (New panics otherwise). Default DefaultGrace.
	Grace time.Duration
	// LeaseGrace is how long past the end of its lease a task is left when a server that is
	// not beating (dead, or cut off from Redis) may hold it. Negative panics. Default
	// DefaultLeaseGrace.
	LeaseGrace time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
}

// mustValidate panics on a Config no Reclaimer can run safely with (a programmer's error).
func (c Config) mustValidate() {
	if c.Grace <= asynqBeatTTL {
		panic(fmt.Sprintf("reclaim: Grace %v must exceed asynq's heartbeat expiry of %v", c.Grace, asynqBeatTTL))
	}
	if c.LeaseGrace < 0 {
		panic(fmt.Sprintf("reclaim: negative LeaseGrace %v", c.LeaseGrace))
	}
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
	cfg.LeaseGrace = cmp.Or(cfg.LeaseGrace, DefaultLeaseGrace)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.mustValidate()
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

// Sweep requeues, once, every watched task that no beating server lists and whose lease has
// either run out LeaseGrace ago, or gone Grace without extension while no server that may hold
// it has stopped beating; it returns how many it moved.
func (r *Reclaimer) Sweep(ctx context.Context) (int, error) {
	now := r.cfg.Now()
	srv, err := r.servers(ctx, now)
	if err != nil {
		return 0, err
	}
	// A lease scored at or below stale was last set (taken or extended) Grace ago or earlier;
	// one scored at or below expired ran out LeaseGrace ago or earlier.
	stale := now.Add(asynqLease - r.cfg.Grace).Unix()
	expired := now.Add(-r.cfg.LeaseGrace).Unix()
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
			lease := int64(z.Score)
			if srv.held[id] {
				continue
			}
			why := "its lease ran out"
			if lease > expired {
				if srv.mayHold(lease, r.cfg.Grace) {
					continue // perhaps a live server's, cut off from Redis: wait for its lease
				}
				why = "no live server runs it"
			}
			n, err := requeueCmd.Run(ctx, r.rdb, []string{rkeys.AsynqActive(q), rkeys.AsynqLease(q), rkeys.AsynqPending(q), rkeys.AsynqTask(q, id)},
				id, lease, now.UnixNano()).Int()
			if err != nil {
				return moved, fmt.Errorf("reclaim: requeue %s: %w", id, err)
			}
			if n == 1 {
				moved++
				r.log.Info().Str(logx.KeyTaskID, id).Str("queue", q).Str("reason", why).
					Time("lease_until", time.Unix(lease, 0)).Msg("task of a dead worker put back in its queue")
			}
		}
	}
	return moved, nil
}

// serverView is what the servers asynq lists say, read by servers.
type serverView struct {
	// held are the ids of the tasks beating servers list as in progress.
	held map[string]bool
	// quiet is the latest expiry (unix s, the server's clock) of the heartbeats of servers
	// that stopped beating; math.MinInt64 when there are none.
	quiet int64
}

// mayHold says whether a server that stopped beating may hold a task with this lease score:
// one whose last heartbeat expired no more than grace before the lease was last set.
func (v serverView) mayHold(lease int64, grace time.Duration) bool {
	return v.quiet != math.MinInt64 && v.quiet+int64(grace/time.Second) >= lease-int64(asynqLease/time.Second)
}

// servers reads every asynq server that beat recently enough to matter: asynq keeps each one's
// workers key in asynq:workers, scored by its heartbeat's expiry, and leaves a killed server's
// there. A server whose heartbeat expired longer ago than a lease, LeaseGrace and Grace
// together can no longer hold a task that Sweep would leave alone, and is not looked at.
func (r *Reclaimer) servers(ctx context.Context, now time.Time) (serverView, error) {
	v := serverView{held: map[string]bool{}, quiet: math.MinInt64}
	since := now.Add(-(asynqLease + r.cfg.LeaseGrace + r.cfg.Grace + time.Second)).Unix()
	members, err := r.rdb.ZRangeByScoreWithScores(ctx, rkeys.AsynqWorkers(), &redis.ZRangeBy{Min: fmt.Sprint(since), Max: "+inf"}).Result()
	if err != nil {
		return v, fmt.Errorf("reclaim: list servers: %w", err)
	}
	var calls [][]string
	var expiry []int64
	for _, m := range members {
		wkey, _ := m.Member.(string)
		tag, ok := strings.CutPrefix(wkey, rkeys.AsynqPrefix+"workers:")
		if !ok {
			// Not asynq's layout: count it as a server that stopped beating.
			v.quiet = max(v.quiet, int64(m.Score))
			continue
		}
		calls = append(calls, []string{wkey, rkeys.AsynqPrefix + "servers:" + tag})
		expiry = append(expiry, int64(m.Score))
	}
	// Each server's keys have their own hash tag: a pipeline of one script call per server
	// (Cluster routes each), each reading its two keys at one instant.
	replies, err := runEach(ctx, r.rdb, workersCmd, calls)
	if err != nil {
		return v, fmt.Errorf("reclaim: read servers: %w", err)
	}
	for i, rep := range replies {
		ids, beating := rep.([]any)
		if !beating {
			v.quiet = max(v.quiet, expiry[i])
			continue
		}
		for _, id := range ids {
			if s, ok := id.(string); ok {
				v.held[s] = true
			}
		}
	}
	return v, nil
}

// runEach runs script once for each set of keys, all in one pipeline, and returns the
// replies in order. A NOSCRIPT (the script did not run) loads the script and runs the
// calls again, once.
func runEach(ctx context.Context, rdb redis.UniversalClient, script *redis.Script, keys [][]string) ([]any, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	for pass := 0; ; pass++ {
		cmds := make([]*redis.Cmd, len(keys))
		_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				cmds[i] = script.EvalSha(ctx, p, k)
			}
			return nil
		})
		out := make([]any, len(keys))
		noscript := false
		for i, c := range cmds {
			v, err := c.Result()
			switch {
			case err == nil:
				out[i] = v
			case redis.HasErrorPrefix(err, "NOSCRIPT") && pass == 0:
				noscript = true
			default:
				return nil, err
			}
		}
		if !noscript {
			return out, nil
		}
		if err := script.Load(ctx, rdb).Err(); err != nil {
			return nil, fmt.Errorf("load script: %w", err)
		}
	}
}

//go:embed lua/workers.lua
var workersLua string

// workersCmd reads whether one asynq server is beating and, if so, the task ids it lists. Its
// KEYS, ARGV and reply are documented at the top of lua/workers.lua.
var workersCmd = redis.NewScript(workersLua)

//go:embed lua/requeue.lua
var requeueLua string

// requeueCmd is asynq's requeue guarded by the lease's score: a task whose lease a live server
// extended since it was judged stale stays where it is. Its KEYS, ARGV and reply are documented
// at the top of lua/requeue.lua.
var requeueCmd = redis.NewScript(requeueLua)
