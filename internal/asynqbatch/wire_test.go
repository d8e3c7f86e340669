package asynqbatch_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/rkeys"
)

var update = flag.Bool("update", false, "rewrite testdata/wire.golden from the writer's output")

// wireTasks are the tasks whose encoding the golden pins: every field the writer sets.
var wireTasks = []asynqbatch.Task{
	{Type: "message:send", Payload: []byte(`{"run":"r","to":"+14155552671"}`), ID: "r/0123456789ab", Queue: "herald:marketing",
		MaxRetry: 28, Timeout: 41 * time.Second, Retention: 24 * time.Hour},
	{Type: "message:send", Payload: []byte(`{}`), ID: "r/scheduled", Queue: "herald:utility", MaxRetry: 3},
	{Type: "run:expand", ID: "r", Queue: "herald:expand"},
}

// messages returns the encoded message of every task in wireTasks, as stored in Redis.
func messages(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	var sb strings.Builder
	for _, task := range wireTasks {
		msg, err := rdb.HGet(context.Background(), rkeys.AsynqTask(task.Queue, task.ID), "msg").Result()
		if err != nil {
			t.Fatalf("task %s: %v", task.ID, err)
		}
		fmt.Fprintf(&sb, "%s %s\n", task.ID, hex.EncodeToString([]byte(msg)))
	}
	return sb.String()
}

func openRedis(t *testing.T) *redis.Client {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// TestWireFormatGolden pins asynq's task message format: the writer's encoding and the one
// asynq's own Client writes for the same tasks must both equal testdata/wire.golden. An
// asynq upgrade that changes its format fails here (the Client's line), before the writer
// puts tasks into a queue that the new asynq reads differently.
func TestWireFormatGolden(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	viaWriter, viaClient := openRedis(t), openRedis(t)
	if _, err := asynqbatch.New(viaWriter).Write(ctx, wireTasks, true); err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClientFromRedisClient(viaClient)
	for _, task := range wireTasks {
		opts := []asynq.Option{asynq.TaskID(task.ID), asynq.Queue(task.Queue), asynq.MaxRetry(task.MaxRetry)}
		if task.Timeout > 0 {
			opts = append(opts, asynq.Timeout(task.Timeout))
		}
		if task.Retention > 0 {
			opts = append(opts, asynq.Retention(task.Retention))
		}
		if _, err := client.EnqueueContext(ctx, asynq.NewTask(task.Type, task.Payload), opts...); err != nil {
			t.Fatal(err)
		}
	}
	got := messages(t, viaWriter)
	path := filepath.Join("testdata", "wire.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the writer's messages changed:\n got %s\nwant %s", got, want)
	}
	if fromClient := messages(t, viaClient); fromClient != string(want) {
		t.Errorf("asynq's Client now encodes tasks differently from the golden: update the writer's encoding "+
			"(asynqbatch.encodeTaskMessage) and its script to the new asynq first.\nclient %s\ngolden %s", fromClient, want)
	}
}

// TestWireFormatReadBack writes tasks with the writer and reads them back through asynq:
// its Inspector sees every field as written, and a Server runs the pending one with the same
// type, payload, id, queue, retry budget and deadline, then keeps it for its retention.
func TestWireFormatReadBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := openRedis(t)
	now := time.Now()
	at := now.Add(time.Hour).Truncate(time.Second)
	tasks := append([]asynqbatch.Task(nil), wireTasks...)
	tasks[1].ProcessAt = at
	if _, err := asynqbatch.New(rdb).Write(ctx, tasks, false); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	t.Cleanup(func() { insp.Close() })
	for i, task := range tasks {
		info, err := insp.GetTaskInfo(task.Queue, task.ID)
		if err != nil {
			t.Fatalf("task %s: %v", task.ID, err)
		}
		timeout := task.Timeout
		if timeout == 0 {
			timeout = 30 * time.Minute // asynq's default, written as asynq's Client does
		}
		state := asynq.TaskStatePending
		if i == 1 {
			state = asynq.TaskStateScheduled
		}
		if info.ID != task.ID || info.Queue != task.Queue || info.Type != task.Type || !bytes.Equal(info.Payload, task.Payload) ||
			info.MaxRetry != task.MaxRetry || info.Retried != 0 || info.Timeout != timeout || !info.Deadline.IsZero() ||
			info.Retention != task.Retention || info.State != state {
			t.Errorf("task %s: the inspector reads %+v", task.ID, info)
		}
		if i == 1 && !info.NextProcessAt.Equal(at) {
			t.Errorf("scheduled task due %v, want %v", info.NextProcessAt, at)
		}
	}

	want := tasks[0]
	type seen struct {
		typ, id, queue string
		payload        []byte
		maxRetry       int
		deadline       time.Time
	}
	got := make(chan seen, 1)
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{want.Queue: 1},
		LogLevel: asynq.FatalLevel, TaskCheckInterval: 10 * time.Millisecond})
	mux := asynq.NewServeMux()
	mux.HandleFunc(want.Type, func(ctx context.Context, task *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		q, _ := asynq.GetQueueName(ctx)
		mr, _ := asynq.GetMaxRetry(ctx)
		dl, _ := ctx.Deadline()
		got <- seen{typ: task.Type(), id: id, queue: q, payload: task.Payload(), maxRetry: mr, deadline: dl}
		return nil
	})
	started := time.Now()
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	var s seen
	select {
	case s = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not run the task")
	}
	if s.typ != want.Type || s.id != want.ID || s.queue != want.Queue || !bytes.Equal(s.payload, want.Payload) || s.maxRetry != want.MaxRetry {
		t.Errorf("the handler saw %+v, want the task as written %+v", s, want)
	}
	if lo, hi := started.Add(want.Timeout), time.Now().Add(want.Timeout); s.deadline.Before(lo.Add(-time.Second)) || s.deadline.After(hi.Add(time.Second)) {
		t.Errorf("handler deadline %v, want about %v after it started", s.deadline, want.Timeout)
	}
	// The completed task is kept for its retention.
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := insp.GetTaskInfo(want.Queue, want.ID)
		if err == nil && info.State == asynq.TaskStateCompleted {
			if info.Retention != want.Retention {
				t.Errorf("completed task retention %v, want %v", info.Retention, want.Retention)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task not completed: %+v, %v", info, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// DecodeTask reads back the type and payload of messages asynq's own Client wrote (and of
// an archived task, whose message asynq rewrites with its error), and refuses what does not
// parse.
func TestDecodeTask(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := openRedis(t)
	client := asynq.NewClientFromRedisClient(rdb)
	for _, task := range wireTasks {
		if _, err := client.EnqueueContext(ctx, asynq.NewTask(task.Type, task.Payload), asynq.TaskID(task.ID), asynq.Queue(task.Queue)); err != nil {
			t.Fatal(err)
		}
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	t.Cleanup(func() { insp.Close() })
	if err := insp.ArchiveTask(wireTasks[0].Queue, wireTasks[0].ID); err != nil {
		t.Fatal(err)
	}
	for _, task := range wireTasks {
		msg, err := rdb.HGet(ctx, rkeys.AsynqTask(task.Queue, task.ID), "msg").Bytes()
		if err != nil {
			t.Fatal(err)
		}
		typ, payload, ok := asynqbatch.DecodeTask(msg)
		if !ok || typ != task.Type || !bytes.Equal(payload, task.Payload) {
			t.Errorf("task %s: DecodeTask = %q %q %v, want %q %q", task.ID, typ, payload, ok, task.Type, task.Payload)
		}
	}
	for _, bad := range [][]byte{nil, {0x0a}, {0x0a, 0x05, 'a'}, {0xff, 0xff, 0xff}} {
		if typ, _, ok := asynqbatch.DecodeTask(bad); ok {
			t.Errorf("DecodeTask(%x) = %q, true; want not ok", bad, typ)
		}
	}
}
