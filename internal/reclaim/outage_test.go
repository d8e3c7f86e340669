package reclaim

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// TestReclaimSparesServerCutOff: a live asynq server that cannot reach Redis for longer than
// its heartbeat's 10 s expiry (a Sentinel failover, a partition) still runs its task, whose
// lease runs for 30 s: the reclaimer must not put the task back, or a second server would run
// it while the first still does. Once the server reaches Redis again it lists the task, and
// finishes it as its own.
func TestReclaimSparesServerCutOff(t *testing.T) {
	t.Parallel()
	const q = "herald:test"
	h := holdTask(t, q)
	mr, ks, rdb, started := h.mr, h.ks, h.rdb, h.started
	ctx := context.Background()

	var offset time.Duration
	r := New(rdb, Config{Queues: []string{q}, Now: func() time.Time { return time.Now().Add(offset) }}, zerolog.Nop())
	// listed waits for the server's heartbeat to list the task.
	listed := func() {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			v, err := r.servers(ctx, r.cfg.Now())
			if err != nil {
				t.Fatal(err)
			}
			if v.held["a"] {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the server never listed its task")
			}
		}
	}
	listed()

	ks.dead.Store(true) // Redis away for the server; its handler runs on
	for _, at := range []time.Duration{11 * time.Second, 25 * time.Second} {
		mr.FastForward(at - offset)
		offset = at
		if n, err := r.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("%v into the outage: moved %d, %v; want the task of the live server left alone", at, n, err)
		}
	}
	ks.dead.Store(false) // Redis back: the server beats again and lists its task
	listed()
	if n, err := r.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("after the outage: moved %d, %v; want 0", n, err)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	t.Cleanup(func() { insp.Close() })
	if info, err := insp.GetTaskInfo(q, "a"); err != nil || info.State != asynq.TaskStateActive {
		t.Fatalf("task %+v, %v; want still active in its server", info, err)
	}
	if p, _ := rdb.LLen(ctx, rkeys.AsynqPending(q)).Result(); p != 0 {
		t.Fatalf("%d tasks pending, want none", p)
	}

	h.release()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		qi, err := insp.GetQueueInfo(q)
		if err == nil && qi.Active == 0 && qi.Pending == 0 && qi.Size == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue after the handler returned: %+v, %v; want it acknowledged by its server", qi, err)
		}
	}
	select {
	case id := <-started:
		t.Fatalf("task %s ran a second time", id)
	default:
	}
}

// TestSweepRules plays the reclaimer's rules on asynq's keys as a heartbeat and a dequeue
// leave them, at a fixed time T: which unlisted task goes back, by its lease score, and the
// servers that beat (asynq:servers key alive) or went quiet (their member in asynq:workers,
// scored by when their last heartbeat expired).
func TestSweepRules(t *testing.T) {
	t.Parallel()
	const T = 1767258000
	type server struct {
		expiry  int64 // the heartbeat's expiry, as asynq scores it
		beating bool
		lists   []string
	}
	idle := server{expiry: T + 8, beating: true}
	busy := server{expiry: T + 6, beating: true, lists: []string{"other"}}
	for _, tc := range []struct {
		name    string
		servers []server
		lease   int64 // the task's lease score: it was last set at lease - 30
		want    int
	}{
		{"orphan of beating servers, lease set 16 s ago", []server{idle, busy}, T + 14, 1},
		{"orphan of beating servers, lease set 14 s ago", []server{idle, busy}, T + 16, 0},
		{"listed by a beating server", []server{idle, {expiry: T + 6, beating: true, lists: []string{"x"}}}, T - 100, 0},
		{"a server quiet for 5 s, the lease runs", []server{busy, {expiry: T - 5}}, T + 10, 0},
		{"every server quiet for 2 s, the lease runs", []server{{expiry: T - 2}, {expiry: T - 3}}, T + 15, 0},
		{"a quiet server, its lease ran out 5 s ago", []server{busy, {expiry: T - 25}}, T - 5, 0},
		{"a quiet server, its lease ran out 11 s ago", []server{busy, {expiry: T - 31}}, T - 11, 1},
		{"a server gone quiet 14 s before the lease was set", []server{busy, {expiry: T - 30}}, T + 14, 0},
		{"a server gone quiet 24 s before the lease was set", []server{busy, {expiry: T - 40}}, T + 14, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mr := miniredis.RunT(t)
			rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { rdb.Close() })
			ctx := context.Background()
			const q = "herald:test"
			for i, s := range tc.servers {
				tag := "{host:" + string(rune('1'+i)) + ":id}"
				wkey := rkeys.AsynqPrefix + "workers:" + tag
				mr.ZAdd(rkeys.AsynqWorkers(), float64(s.expiry), wkey)
				if !s.beating {
					continue
				}
				if err := rdb.Set(ctx, rkeys.AsynqPrefix+"servers:"+tag, "info", 10*time.Second).Err(); err != nil {
					t.Fatal(err)
				}
				for _, id := range s.lists {
					mr.HSet(wkey, id, "w")
				}
			}
			mr.Lpush(rkeys.AsynqActive(q), "x")
			mr.ZAdd(rkeys.AsynqLease(q), float64(tc.lease), "x")
			mr.HSet(rkeys.AsynqTask(q, "x"), "msg", "m", "state", "active")

			r := New(rdb, Config{Queues: []string{q}, Now: func() time.Time { return time.Unix(T, 0) }}, zerolog.Nop())
			n, err := r.Sweep(ctx)
			if err != nil || n != tc.want {
				t.Fatalf("moved %d, %v; want %d", n, err, tc.want)
			}
		})
	}
}
