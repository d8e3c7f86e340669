package metrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// ReadyWriter is the one Redis command the readiness probe sends.
type ReadyWriter interface {
	Set(ctx context.Context, key string, value any, expiration time.Duration) *redis.StatusCmd
}

// ReadinessConfig configures a Readiness.
type ReadinessConfig struct {
	// Redis takes the write probe. Required.
	Redis ReadyWriter
	// Keys are the keys every probe writes (SET with KeyTTL), built with rkeys.ReadyProbe:
	// one per queue the process takes tasks from, or one untagged key. At least one.
	Keys []string
	// KeyTTL is how long a probe key lives after the last probe. Default 10 s.
	KeyTTL time.Duration
	// Checks run before the write, in order; the first error is the answer. A process
	// adds its own ("the worker runs", "its asynq server's heartbeat is in Redis").
	Checks []func(context.Context) error
	// CacheFor is how long an answer is reused, so a storm of scrapes costs one probe.
	// Default 1 s; negative: every call probes (callers at the same moment still share one).
	CacheFor time.Duration
	// Timeout bounds one probe, whoever waits for it. Default 2 s.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Readiness answers "can this process do its work": its own checks pass and Redis takes a
// write. A Redis that answers PING but refuses writes (maxmemory reached with noeviction:
// "OOM command not allowed"; a read-only replica: "READONLY") makes it unready, because
// nothing can be dequeued, claimed or recorded then.
type Readiness struct {
	cfg ReadinessConfig

	mu   sync.Mutex
	last *probe // the latest probe, finished or under way
}

// probe is one run of the checks; err is set before done is closed.
type probe struct {
	done chan struct{}
	at   time.Time // when it finished
	err  error
}

// NewReadiness returns a Readiness. It panics when Redis or Keys is missing.
func NewReadiness(cfg ReadinessConfig) *Readiness {
	if cfg.Redis == nil || len(cfg.Keys) == 0 {
		panic("metrics: NewReadiness needs Redis and at least one key")
	}
	cfg.KeyTTL = cmp.Or(cfg.KeyTTL, 10*time.Second)
	cfg.CacheFor = cmp.Or(cfg.CacheFor, time.Second)
	cfg.Timeout = cmp.Or(cfg.Timeout, 2*time.Second)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Readiness{cfg: cfg}
}

// Check returns nil when the process is ready, else an error saying why. The answer of a
// probe that finished less than CacheFor ago is reused, and callers arriving while a probe is
// under way wait for that one instead of starting another. A caller whose ctx ends first gets
// ctx's error; the probe itself runs on (bounded by Timeout) and its answer is kept.
func (r *Readiness) Check(ctx context.Context) error {
	r.mu.Lock()
	p := r.last
	fresh := false
	if p != nil {
		select {
		case <-p.done:
			fresh = r.cfg.Now().Sub(p.at) < r.cfg.CacheFor
		default:
			fresh = true // under way: share it
		}
	}
	if !fresh {
		p = &probe{done: make(chan struct{})}
		r.last = p
		go r.run(p)
	}
	r.mu.Unlock()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run performs one probe and publishes its answer.
func (r *Readiness) run(p *probe) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
	defer cancel()
	err := r.probe(ctx)
	r.mu.Lock()
	p.err, p.at = err, r.cfg.Now()
	r.mu.Unlock()
	close(p.done)
}

func (r *Readiness) probe(ctx context.Context) error {
	for _, c := range r.cfg.Checks {
		if err := c(ctx); err != nil {
			return err
		}
	}
	stamp := strconv.FormatInt(r.cfg.Now().UnixMilli(), 10)
	for _, k := range r.cfg.Keys {
		if err := r.cfg.Redis.Set(ctx, k, stamp, r.cfg.KeyTTL).Err(); err != nil {
			return fmt.Errorf("redis takes no write: %w", err)
		}
	}
	return nil
}

// ProcessName names this process for probe keys: role, host and pid.
func ProcessName(role string) string {
	return role + ":" + hostname() + ":" + strconv.Itoa(os.Getpid())
}

// hostname is the host name as asynq records it in its server heartbeats.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown-host"
	}
	return h
}

// ServerLister lists the asynq servers whose heartbeats are live in Redis; asynq's Inspector
// is one.
type ServerLister interface {
	Servers() ([]*asynq.ServerInfo, error)
}

// ErrNoServer is wrapped by the error of AsynqServerUp's check when this process's asynq
// server is not seen active in Redis.
var ErrNoServer = errors.New("asynq server not active")

// AsynqServerUp returns a readiness check that passes while an asynq server of this process
// (same host and pid) that takes every one of queues reports itself active in Redis. asynq
// servers write that heartbeat every 5 seconds with a 10-second lifetime, through asynq's own
// scripts on asynq's keys, so the check fails when the server has stopped, when its
// heartbeats no longer land, or within 10 seconds of Redis refusing its writes.
func AsynqServerUp(in ServerLister, queues ...string) func(context.Context) error {
	host, pid := hostname(), os.Getpid()
	return func(context.Context) error {
		servers, err := in.Servers()
		if err != nil {
			return fmt.Errorf("list asynq servers: %w", err)
		}
		status := ""
		for _, s := range servers {
			if s.Host != host || s.PID != pid || !takesAll(s.Queues, queues) {
				continue
			}
			if s.Status == "active" {
				return nil
			}
			status = s.Status
		}
		if status != "" {
			return fmt.Errorf("%w: the server of queues %v is %s", ErrNoServer, queues, status)
		}
		return fmt.Errorf("%w: no heartbeat in Redis from the server of queues %v", ErrNoServer, queues)
	}
}

func takesAll(have map[string]int, want []string) bool {
	return !slices.ContainsFunc(want, func(q string) bool { _, ok := have[q]; return !ok })
}
