package asynqbatch

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/luacheck"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// scripts is every redis.NewScript variable of the package (luacheck.Files checks the list).
var scripts = []string{"asynqBatchCmd"}

// TestScriptFiles pins the layout of the package's Lua: one lua/*.lua file per script, its
// contract at its top, none written as a Go string.
func TestScriptFiles(t *testing.T) {
	luacheck.Files(t, "", scripts)
}

// batchNow is the pending_since the cases write (unix ns).
const batchNow int64 = 1767258000123456789

// batchTask is one task of a case: its id and when to process it (0: pending now).
type batchTask struct {
	id string
	at int64
}

// runBatch runs asynqBatchCmd on queue q for the tasks and returns its flags.
func runBatch(ctx context.Context, rdb redis.UniversalClient, q string, tasks []batchTask) ([]int64, error) {
	keys := []string{rkeys.AsynqPending(q), rkeys.AsynqScheduled(q)}
	args := []any{batchNow}
	for _, t := range tasks {
		keys = append(keys, rkeys.AsynqTask(q, t.id))
		args = append(args, batchMessage(q, t.id), t.id, t.at)
	}
	return asynqBatchCmd.Run(ctx, rdb, keys, args...).Int64Slice()
}

// batchMessage is the encoded message of a case's task: binary protobuf, as asynq stores it.
func batchMessage(q, id string) []byte {
	return encodeTaskMessage(Task{Type: "message:send", Payload: []byte(`{"to":"` + id + `"}`), ID: id, Queue: q, MaxRetry: 5})
}

// wantTask returns an error unless task id of queue q holds its message and exactly the
// fields want besides.
func wantTask(ctx context.Context, rdb redis.UniversalClient, q, id string, want map[string]string) error {
	got, err := rdb.HGetAll(ctx, rkeys.AsynqTask(q, id)).Result()
	if err != nil {
		return err
	}
	if got["msg"] != string(batchMessage(q, id)) {
		return fmt.Errorf("task %s: msg %q, want its encoded message", id, got["msg"])
	}
	delete(got, "msg")
	return luacheck.SameHash("task "+id, got, want)
}

var pendingNow = map[string]string{"state": "pending", "pending_since": strconv.FormatInt(batchNow, 10)}

var scriptCases = []luacheck.Case{
	{Script: "asynqBatchCmd", Name: "pending scheduled and existing", Play: func(ctx context.Context, rdb redis.UniversalClient, q string) error {
		if err := rdb.HSet(ctx, rkeys.AsynqTask(q, "c"), "msg", "old", "state", "completed").Err(); err != nil {
			return err
		}
		flags, err := runBatch(ctx, rdb, q, []batchTask{{"a", 0}, {"b", 1767261600}, {"c", 0}, {"d", 0}})
		if err != nil {
			return err
		}
		if !slices.Equal(flags, []int64{1, 1, 0, 1}) {
			return fmt.Errorf("flags %v, want [1 1 0 1]", flags)
		}
		if err := wantTask(ctx, rdb, q, "a", pendingNow); err != nil {
			return err
		}
		if err := wantTask(ctx, rdb, q, "b", map[string]string{"state": "scheduled"}); err != nil {
			return err
		}
		if c, _ := rdb.HGetAll(ctx, rkeys.AsynqTask(q, "c")).Result(); len(c) != 2 || c["msg"] != "old" || c["state"] != "completed" {
			return fmt.Errorf("the existing task c was touched: %v", c)
		}
		if p, _ := rdb.LRange(ctx, rkeys.AsynqPending(q), 0, -1).Result(); !slices.Equal(p, []string{"d", "a"}) {
			return fmt.Errorf("pending %v, want [d a]", p)
		}
		s, _ := rdb.ZRangeWithScores(ctx, rkeys.AsynqScheduled(q), 0, -1).Result()
		if len(s) != 1 || s[0].Member != "b" || s[0].Score != 1767261600 {
			return fmt.Errorf("scheduled %v, want b at 1767261600", s)
		}
		return nil
	}},
	{Script: "asynqBatchCmd", Name: "a second run writes nothing", Play: func(ctx context.Context, rdb redis.UniversalClient, q string) error {
		// The same call twice, as go-redis sends it again when its reply was lost; in between
		// a worker took task a.
		batch := []batchTask{{"a", 0}, {"b", 0}, {"c", 1767261600}}
		if flags, err := runBatch(ctx, rdb, q, batch); err != nil || !slices.Equal(flags, []int64{1, 1, 1}) {
			return fmt.Errorf("first run: flags %v (%v), want [1 1 1]", flags, err)
		}
		if err := rdb.LRem(ctx, rkeys.AsynqPending(q), 0, "a").Err(); err != nil {
			return err
		}
		if err := rdb.HSet(ctx, rkeys.AsynqTask(q, "a"), "state", "active").Err(); err != nil {
			return err
		}
		flags, err := runBatch(ctx, rdb, q, batch)
		if err != nil || !slices.Equal(flags, []int64{0, 0, 0}) {
			return fmt.Errorf("second run: flags %v (%v), want [0 0 0]", flags, err)
		}
		if p, _ := rdb.LRange(ctx, rkeys.AsynqPending(q), 0, -1).Result(); !slices.Equal(p, []string{"b"}) {
			return fmt.Errorf("pending %v, want [b]: no id queued again", p)
		}
		if s, _ := rdb.ZRange(ctx, rkeys.AsynqScheduled(q), 0, -1).Result(); !slices.Equal(s, []string{"c"}) {
			return fmt.Errorf("scheduled %v, want [c]", s)
		}
		if err := wantTask(ctx, rdb, q, "a", map[string]string{"state": "active", "pending_since": pendingNow["pending_since"]}); err != nil {
			return fmt.Errorf("the taken task was written again: %w", err)
		}
		return wantTask(ctx, rdb, q, "b", pendingNow)
	}},
	// Through go-redis: a lost reply of a fresh batch (replay_test.go).
	{Script: "asynqBatchCmd", Name: "lost reply", Play: playLostReply},
	{Script: "asynqBatchCmd", Name: "pending order across chunks", Play: func(ctx context.Context, rdb redis.UniversalClient, q string) error {
		// More tasks than one LPUSH chunk (1000) takes, twice over: the list must read as one
		// LPUSH a task would leave it, newest at the left.
		tasks := make([]batchTask, 2345)
		want := make([]string, len(tasks))
		for i := range tasks {
			tasks[i] = batchTask{id: fmt.Sprintf("t%04d", i)}
			want[len(tasks)-1-i] = tasks[i].id
		}
		flags, err := runBatch(ctx, rdb, q, tasks)
		if err != nil {
			return err
		}
		if len(flags) != len(tasks) || slices.Contains(flags, 0) {
			return fmt.Errorf("%d flags, some 0: %v", len(flags), flags)
		}
		p, err := rdb.LRange(ctx, rkeys.AsynqPending(q), 0, -1).Result()
		if err != nil || !slices.Equal(p, want) {
			return fmt.Errorf("pending holds %d ids (%v), not the tasks newest first", len(p), err)
		}
		return wantTask(ctx, rdb, q, tasks[1000].id, pendingNow)
	}},
}

// TestScriptCases plays each script's cases on miniredis, and on real Redis when
// HERALD_TEST_REDIS is set. The queue is named by the case's id, so its keys hold it.
func TestScriptCases(t *testing.T) {
	luacheck.RunCases(t, scripts, scriptCases)
}
