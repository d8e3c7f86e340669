package metrics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// asynq_queue_size leaves out the completed tasks, which asynq keeps for their retention and
// its own QueueInfo.Size counts: a queue with one task done and two waiting holds two.
func TestQueueSizeLeavesOutCompletedTasks(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
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
	waitFor(t, 10*time.Second, "the task completed", func() bool {
		info, err := in.GetQueueInfo(q)
		return err == nil && info.Completed == 1
	})
	srv.Shutdown()
	for range 2 {
		if _, err := client.Enqueue(asynq.NewTask("send", nil), asynq.Queue(q)); err != nil {
			t.Fatal(err)
		}
	}
	// The case at hand: asynq's own Size counts the completed task.
	if info, err := in.GetQueueInfo(q); err != nil || info.Size != 3 || info.Completed != 1 {
		t.Fatalf("GetQueueInfo = %+v, %v; want Size 3 with 1 completed", info, err)
	}
	want := `
# HELP asynq_queue_size Tasks in an asynq queue but the completed ones: pending, active, scheduled, retry, aggregating and archived.
# TYPE asynq_queue_size gauge
asynq_queue_size{queue="herald:marketing"} 2
`
	if err := testutil.CollectAndCompare(NewQueueCollector(in), strings.NewReader(want), "asynq_queue_size"); err != nil {
		t.Fatal(err)
	}
}
