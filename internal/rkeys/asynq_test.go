package rkeys_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// TestAsynqKeysAreAsynqs checks the asynq keys against the ones asynq itself writes (its key
// builders are internal to its module): its Client enqueues a task now and one later, its
// Server takes the first, and each key must then hold what asynq put there. An asynq
// upgrade that moves a key fails here, before Herald writes where asynq no longer reads.
func TestAsynqKeysAreAsynqs(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	const q = "herald:keys"

	c := asynq.NewClientFromRedisClient(rdb)
	if _, err := c.Enqueue(asynq.NewTask("t", nil), asynq.TaskID("now"), asynq.Queue(q)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enqueue(asynq.NewTask("t", nil), asynq.TaskID("later"), asynq.Queue(q), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := rdb.SIsMember(ctx, rkeys.AsynqQueues(), q).Result(); !ok {
		t.Errorf("%s does not list the queue", rkeys.AsynqQueues())
	}
	if p, _ := rdb.LRange(ctx, rkeys.AsynqPending(q), 0, -1).Result(); len(p) != 1 || p[0] != "now" {
		t.Errorf("%s = %v, want [now]", rkeys.AsynqPending(q), p)
	}
	if s, _ := rdb.ZRange(ctx, rkeys.AsynqScheduled(q), 0, -1).Result(); len(s) != 1 || s[0] != "later" {
		t.Errorf("%s = %v, want [later]", rkeys.AsynqScheduled(q), s)
	}
	for _, id := range []string{"now", "later"} {
		if m, _ := rdb.HGet(ctx, rkeys.AsynqTask(q, id), "msg").Result(); m == "" {
			t.Errorf("%s holds no task message", rkeys.AsynqTask(q, id))
		}
	}
	// An archived task's id is in the archived set (asynq's Inspector archives "later").
	if err := asynq.NewInspectorFromRedisClient(rdb).ArchiveTask(q, "later"); err != nil {
		t.Fatal(err)
	}
	if a, _ := rdb.ZRange(ctx, rkeys.AsynqArchived(q), 0, -1).Result(); len(a) != 1 || a[0] != "later" {
		t.Errorf("%s = %v, want [later]", rkeys.AsynqArchived(q), a)
	}

	// A server takes "now" and holds it: the task is active, leased, and the server's
	// workers are registered.
	started, release := make(chan string, 1), make(chan struct{})
	srv := testredis.BlockingServer(t, rdb, q, started, release)
	t.Cleanup(srv.Shutdown)
	defer close(release)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the server took no task within 10s")
	}
	if a, _ := rdb.LRange(ctx, rkeys.AsynqActive(q), 0, -1).Result(); len(a) != 1 || a[0] != "now" {
		t.Errorf("%s = %v, want [now]", rkeys.AsynqActive(q), a)
	}
	if err := rdb.ZScore(ctx, rkeys.AsynqLease(q), "now").Err(); err != nil {
		t.Errorf("%s has no lease of the active task: %v", rkeys.AsynqLease(q), err)
	}
	// The server registers its workers when it starts, which may follow the task's start.
	for deadline := time.Now().Add(10 * time.Second); ; {
		n, err := rdb.ZCard(ctx, rkeys.AsynqWorkers()).Result()
		if err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d servers' workers (%v), want 1", rkeys.AsynqWorkers(), n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
