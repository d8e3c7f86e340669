package reclaim

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// killSwitch makes every command of a client fail once set: to Redis, its asynq server is
// then exactly a process killed with SIGKILL (no more heartbeats, lease extensions or acks).
type killSwitch struct{ dead atomic.Bool }

var errKilled = errors.New("killed")

func (k *killSwitch) DialHook(next redis.DialHook) redis.DialHook { return next }
func (k *killSwitch) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if k.dead.Load() {
			cmd.SetErr(errKilled)
			return errKilled
		}
		return next(ctx, cmd)
	}
}
func (k *killSwitch) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if k.dead.Load() {
			for _, c := range cmds {
				c.SetErr(errKilled)
			}
			return errKilled
		}
		return next(ctx, cmds)
	}
}

func enqueue(t *testing.T, rdb redis.UniversalClient, queue string, ids ...string) {
	t.Helper()
	c := asynq.NewClientFromRedisClient(rdb)
	for _, id := range ids {
		if _, err := c.Enqueue(asynq.NewTask("t", []byte(id)), asynq.TaskID(id), asynq.Queue(queue), asynq.MaxRetry(3)); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, ch <-chan string, within time.Duration) string {
	t.Helper()
	select {
	case id := <-ch:
		return id
	case <-time.After(within):
		t.Fatal("no task taken in time")
		return ""
	}
}

// TestReclaimDeadServerTask: a real asynq server takes a task and dies; the task is not
// touched while its lease runs (the server might only be cut off from Redis), is put back
// once the lease ran out LeaseGrace ago, and a second real asynq server then runs it to
// completion (asynq reads the requeued task and acks it, so the keys are as asynq's own).
func TestReclaimDeadServerTask(t *testing.T) {
	t.Parallel()
	const q = "herald:test"
	h := holdTask(t, q)
	mr, ks, rdb := h.mr, h.ks, h.rdb
	ctx := context.Background()
	ks.dead.Store(true)
	enqueue(t, rdb, q, "b") // a task queued behind it is not the reclaimer's business

	var offset atomic.Int64
	r := New(rdb, Config{Queues: []string{q, "other"}, Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }}, zerolog.Nop())
	if n, err := r.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep with a fresh lease: moved %d, %v; want 0", n, err)
	}
	// 25 s later the server has not beaten for 10 s and more, but its lease still runs: it
	// may be alive and cut off from Redis.
	mr.FastForward(25 * time.Second)
	offset.Store(int64(25 * time.Second))
	if n, err := r.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep while the quiet server's lease runs: moved %d, %v; want 0", n, err)
	}
	// 41 s after it took the task its lease (30 s) ran out more than LeaseGrace (10 s) ago.
	mr.FastForward(16 * time.Second)
	offset.Store(int64(41 * time.Second))
	if n, err := r.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after the server died: moved %d, %v; want 1", n, err)
	}
	if n, err := r.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("second sweep: moved %d, %v; want 0", n, err)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	info, err := insp.GetTaskInfo(q, "a")
	if err != nil || info.State != asynq.TaskStatePending || info.Retried != 0 {
		t.Fatalf("requeued task: %+v, %v; want pending, not counted as a retry", info, err)
	}
	if p, _ := rdb.LRange(ctx, rkeys.AsynqPending(q), -1, -1).Result(); len(p) != 1 || p[0] != "a" {
		t.Fatalf("pending %v: the requeued task should be taken next", p)
	}

	var (
		mu   sync.Mutex
		ran  []string
		done = make(chan struct{})
	)
	live := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{q: 1},
		LogLevel: asynq.FatalLevel, TaskCheckInterval: 10 * time.Millisecond})
	mux := asynq.NewServeMux()
	mux.HandleFunc("t", func(_ context.Context, task *asynq.Task) error {
		mu.Lock()
		defer mu.Unlock()
		ran = append(ran, string(task.Payload()))
		if len(ran) == 2 {
			close(done)
		}
		return nil
	})
	if err := live.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer live.Shutdown()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("live server ran %v", ran)
	}
	if ran[0] != "a" {
		t.Fatalf("ran %v, want the requeued task first", ran)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		qi, err := insp.GetQueueInfo(q)
		if err == nil && qi.Active == 0 && qi.Pending == 0 && qi.Size == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue after the run: %+v, %v; want empty", qi, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReclaimLeavesLiveServersTasks: a task a live asynq server lists in its workers hash is
// never put back, however old its lease looks (a heartbeat may be late).
func TestReclaimLeavesLiveServersTasks(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	const q = "herald:test"
	enqueue(t, rdb, q, "c")
	started, release := make(chan string, 4), make(chan struct{})
	srv := testredis.BlockingServer(t, rdb, q, started, release)
	t.Cleanup(func() { close(release); srv.Shutdown() })
	waitFor(t, started, 10*time.Second)
	// asynq lists the task on its next heartbeat (every 5 s).
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := New(rdb, Config{Queues: []string{q}}, zerolog.Nop())
		v, err := r.servers(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if v.held["c"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the live server never listed its task")
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := New(rdb, Config{Queues: []string{q}, Now: func() time.Time { return time.Now().Add(time.Minute) }}, zerolog.Nop())
	if n, err := r.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("moved %d, %v; want the live server's task left alone", n, err)
	}
	info, err := asynq.NewInspectorFromRedisClient(rdb).GetTaskInfo(q, "c")
	if err != nil || info.State != asynq.TaskStateActive {
		t.Fatalf("task %+v, %v; want active", info, err)
	}
}

// heldTask is a real asynq server on miniredis that has taken task "a" of its queue and holds
// it (its handler blocks until Release), reaching Redis through a client ks can cut off, as a
// process dies or loses Redis.
type heldTask struct {
	mr      *miniredis.Miniredis
	ks      *killSwitch
	rdb     *redis.Client
	started chan string
	release func()
}

// holdTask starts a heldTask on queue q; the test's end releases the task and stops the server.
func holdTask(t *testing.T, q string) *heldTask {
	t.Helper()
	h := &heldTask{mr: miniredis.RunT(t), ks: &killSwitch{}, started: make(chan string, 4)}
	server := redis.NewClient(&redis.Options{Addr: h.mr.Addr(), MaxRetries: -1})
	server.AddHook(h.ks)
	h.rdb = redis.NewClient(&redis.Options{Addr: h.mr.Addr()})
	t.Cleanup(func() { server.Close(); h.rdb.Close() })
	enqueue(t, h.rdb, q, "a")
	release := make(chan struct{})
	h.release = sync.OnceFunc(func() { close(release) })
	srv := testredis.BlockingServer(t, server, q, h.started, release)
	t.Cleanup(func() { h.release(); srv.Shutdown() })
	if id := waitFor(t, h.started, 10*time.Second); id != "a" {
		t.Fatalf("the server took %q, want a", id)
	}
	return h
}
