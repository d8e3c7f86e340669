package asynqbatch_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// TestWriteMatchesAsynqClient writes the same tasks once through asynq's Client and
// once through RedisWriter, each into its own Redis, and requires byte-identical task hashes
// (message encoding, state, queue membership), so asynq reads batch tasks exactly as its own.
func TestWriteMatchesAsynqClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	open := func() (*miniredis.Miniredis, *redis.Client) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { rdb.Close() })
		return mr, rdb
	}
	_, viaClient := open()
	_, viaBatch := open()
	client := asynq.NewClientFromRedisClient(viaClient)
	later := time.Now().Add(time.Hour).Truncate(time.Second)
	specs := []asynqbatch.Task{
		{Type: "message:send", Payload: []byte(`{"run":"r","to":"+14155552671"}`), ID: "r/aaa", Queue: "herald:marketing", MaxRetry: 25,
			Timeout: 41 * time.Second},
		{Type: "message:send", Payload: []byte(`{"run":"r","to":"+14155552672"}`), ID: "r/bbb", Queue: "herald:utility", MaxRetry: 3,
			Retention: time.Hour},
		{Type: "message:send", Payload: []byte(`{}`), ID: "r/ccc", Queue: "herald:marketing", ProcessAt: later, Timeout: time.Minute},
		{Type: "run:expand", ID: "r", Queue: "herald:expand"},
	}
	for _, s := range specs {
		opts := []asynq.Option{asynq.TaskID(s.ID), asynq.Queue(s.Queue), asynq.MaxRetry(s.MaxRetry)}
		if s.Timeout > 0 {
			opts = append(opts, asynq.Timeout(s.Timeout))
		}
		if s.Retention > 0 {
			opts = append(opts, asynq.Retention(s.Retention))
		}
		if !s.ProcessAt.IsZero() {
			opts = append(opts, asynq.ProcessAt(s.ProcessAt))
		}
		if _, err := client.EnqueueContext(ctx, asynq.NewTask(s.Type, s.Payload), opts...); err != nil {
			t.Fatal(err)
		}
	}
	created, err := asynqbatch.New(viaBatch).Write(ctx, specs, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range created {
		if !c {
			t.Errorf("task %d not created", i)
		}
	}
	for _, s := range specs {
		key := rkeys.AsynqTask(s.Queue, s.ID)
		a, err := viaClient.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		b, err := viaBatch.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal([]byte(a["msg"]), []byte(b["msg"])) {
			t.Errorf("%s: message differs:\nclient %x\nbatch  %x", s.ID, a["msg"], b["msg"])
		}
		if a["state"] != b["state"] || (a["pending_since"] == "") != (b["pending_since"] == "") {
			t.Errorf("%s: client %v, batch %v", s.ID, a, b)
		}
	}
	for _, key := range []string{rkeys.AsynqQueues()} {
		a, _ := viaClient.SMembers(ctx, key).Result()
		b, _ := viaBatch.SMembers(ctx, key).Result()
		if len(a) != len(b) {
			t.Errorf("%s: client %v, batch %v", key, a, b)
		}
	}
	for _, q := range []string{"herald:marketing", "herald:utility", "herald:expand"} {
		a, _ := viaClient.LRange(ctx, rkeys.AsynqPending(q), 0, -1).Result()
		b, _ := viaBatch.LRange(ctx, rkeys.AsynqPending(q), 0, -1).Result()
		if len(a) != len(b) {
			t.Errorf("%s pending: client %v, batch %v", q, a, b)
		}
	}
	as, _ := viaClient.ZRangeWithScores(ctx, rkeys.AsynqScheduled("herald:marketing"), 0, -1).Result()
	bs, _ := viaBatch.ZRangeWithScores(ctx, rkeys.AsynqScheduled("herald:marketing"), 0, -1).Result()
	if len(as) != 1 || len(bs) != 1 || as[0] != bs[0] {
		t.Errorf("scheduled: client %v, batch %v", as, bs)
	}

	// The Inspector reads batch tasks like its own.
	insp := asynq.NewInspectorFromRedisClient(viaBatch)
	info, err := insp.GetTaskInfo("herald:marketing", "r/aaa")
	if err != nil {
		t.Fatal(err)
	}
	if info.Type != "message:send" || info.MaxRetry != 25 || info.Timeout != 41*time.Second || info.State != asynq.TaskStatePending {
		t.Errorf("inspector sees %+v", info)
	}

	// A second write of the same ids creates nothing.
	created, err = asynqbatch.New(viaBatch).Write(ctx, specs, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range created {
		if c {
			t.Errorf("task %d created twice", i)
		}
	}
}

// TestWriteServerRunsTasks checks that an asynq Server processes batch-written tasks,
// also after the scripts were flushed from Redis (NOSCRIPT fallback).
func TestWriteServerRunsTasks(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	be := asynqbatch.New(rdb)
	var specs []asynqbatch.Task
	for i := range 50 {
		specs = append(specs, asynqbatch.Task{Type: "t", Payload: []byte{byte(i)}, ID: string(rune('A' + i)), Queue: "q", MaxRetry: 1})
	}
	if _, err := be.Write(ctx, specs[:25], true); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Write(ctx, specs[25:], false); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen = map[byte]int{}
		done = make(chan struct{})
	)
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 4, Queues: map[string]int{"q": 1},
		LogLevel: asynq.FatalLevel, TaskCheckInterval: 10 * time.Millisecond})
	mux := asynq.NewServeMux()
	mux.HandleFunc("t", func(_ context.Context, task *asynq.Task) error {
		mu.Lock()
		defer mu.Unlock()
		seen[task.Payload()[0]]++
		if len(seen) == 50 {
			select {
			case <-done:
			default:
				close(done)
			}
		}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("processed %d of 50 tasks", len(seen))
	}
}
