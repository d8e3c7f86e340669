package report

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/testredis"
)

// queue stats' size leaves out the completed tasks, which asynq keeps for their retention and
// its own QueueInfo.Size counts: a queue with one task done and two waiting holds two.
func TestQueuesSizeLeavesOutCompletedTasks(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	const q = "herald:marketing"
	client := asynq.NewClientFromRedisClient(rdb)
	if _, err := client.Enqueue(asynq.NewTask("send", nil), asynq.Queue(q), asynq.Retention(time.Hour)); err != nil {
		t.Fatal(err)
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{q: 1}, LogLevel: asynq.FatalLevel})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
		t.Fatal(err)
	}
	in := asynq.NewInspectorFromRedisClient(rdb)
	testredis.WaitUntil(t, 10*time.Second, "the task completed", func() bool {
		info, err := in.GetQueueInfo(q)
		return err == nil && info.Completed == 1
	})
	srv.Shutdown()
	for range 2 {
		if _, err := client.Enqueue(asynq.NewTask("send", nil), asynq.Queue(q)); err != nil {
			t.Fatal(err)
		}
	}
	qs, err := Queues(in, []string{"herald:utility"})
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || qs[0].Queue != q || qs[0].Size != 2 || qs[0].Pending != 2 || qs[0].Completed != 1 {
		t.Fatalf("Queues = %+v, want %s with size 2 (2 pending, 1 completed) and herald:utility", qs, q)
	}
}
