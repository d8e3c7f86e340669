package testredis

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// BlockingServer starts an asynq server on rdb for queue whose handler (task type "t") sends
// the id of each task it takes on started, then holds the task until release is closed or its
// context ends: a worker caught mid-task, for tests of what asynq keeps about active tasks.
// The caller shuts it down.
func BlockingServer(t testing.TB, rdb redis.UniversalClient, queue string, started chan<- string, release <-chan struct{}) *asynq.Server {
	t.Helper()
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{queue: 1},
		LogLevel: asynq.FatalLevel, TaskCheckInterval: 10 * time.Millisecond, ShutdownTimeout: 100 * time.Millisecond})
	mux := asynq.NewServeMux()
	mux.HandleFunc("t", func(ctx context.Context, _ *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		started <- id
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	return srv
}

// QueueWithCompleted fills queue with one completed task (kept an hour: asynq's retention) and
// pending more tasks, for tests of what counts the completed ones: asynq's QueueInfo.Size does.
func QueueWithCompleted(t testing.TB, rdb redis.UniversalClient, queue string, pending int) {
	t.Helper()
	client := asynq.NewClientFromRedisClient(rdb)
	if _, err := client.Enqueue(asynq.NewTask("send", nil), asynq.Queue(queue), asynq.Retention(time.Hour)); err != nil {
		t.Fatal(err)
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{queue: 1}, LogLevel: asynq.FatalLevel})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
		t.Fatal(err)
	}
	in := asynq.NewInspectorFromRedisClient(rdb)
	WaitUntil(t, 10*time.Second, "the task completed", func() bool {
		info, err := in.GetQueueInfo(queue)
		return err == nil && info.Completed == 1
	})
	srv.Shutdown()
	for range pending {
		if _, err := client.Enqueue(asynq.NewTask("send", nil), asynq.Queue(queue)); err != nil {
			t.Fatal(err)
		}
	}
}
