package reclaim

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/luacheck"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// scripts is every redis.NewScript variable of the package (luacheck.Files checks the list).
var scripts = []string{"requeueCmd", "workersCmd"}

// TestScriptFiles pins the layout of the package's Lua: one lua/*.lua file per script, its
// contract at its top, none written as a Go string.
func TestScriptFiles(t *testing.T) {
	luacheck.Files(t, "", scripts)
}

// requeue runs requeueCmd for task id of queue q, judged stale at lease score stale, and
// returns an error unless its reply is want.
func requeue(ctx context.Context, rdb redis.UniversalClient, q, id string, stale int64, want int) error {
	n, err := requeueCmd.Run(ctx, rdb, []string{rkeys.AsynqActive(q), rkeys.AsynqLease(q), rkeys.AsynqPending(q), rkeys.AsynqTask(q, id)},
		id, stale, 77).Int()
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("requeue %s judged at %d: %d, want %d", id, stale, n, want)
	}
	return nil
}

// queueState is what a case reads back of its queue.
type queueState struct {
	active, pending []string
	lease           []redis.Z
	task            map[string]string
}

func readQueue(ctx context.Context, rdb redis.UniversalClient, q, id string) (queueState, error) {
	var s queueState
	var err error
	if s.active, err = rdb.LRange(ctx, rkeys.AsynqActive(q), 0, -1).Result(); err != nil {
		return s, err
	}
	if s.pending, err = rdb.LRange(ctx, rkeys.AsynqPending(q), 0, -1).Result(); err != nil {
		return s, err
	}
	if s.lease, err = rdb.ZRangeWithScores(ctx, rkeys.AsynqLease(q), 0, -1).Result(); err != nil {
		return s, err
	}
	s.task, err = rdb.HGetAll(ctx, rkeys.AsynqTask(q, id)).Result()
	return s, err
}

func (s queueState) String() string {
	return fmt.Sprintf("active %v, pending %v, lease %v, task %v", s.active, s.pending, s.lease, s.task)
}

// seedQueue puts task id in queue q as asynq holds a task being worked on: its hash, in active
// after another task, its lease at score lease; one more task waits in pending. Without task
// or inActive the hash or the active entry is left out; lease 0 leaves the lease out.
func seedQueue(ctx context.Context, rdb redis.UniversalClient, q, id string, lease float64, task, inActive bool) error {
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if task {
			p.HSet(ctx, rkeys.AsynqTask(q, id), "msg", "m", "state", "active")
		}
		p.LPush(ctx, rkeys.AsynqActive(q), "other")
		if inActive {
			p.LPush(ctx, rkeys.AsynqActive(q), id)
		}
		if lease > 0 {
			p.ZAdd(ctx, rkeys.AsynqLease(q), redis.Z{Score: lease, Member: id})
		}
		p.LPush(ctx, rkeys.AsynqPending(q), "waiting")
		return nil
	})
	return err
}

// untouched plays a requeue that must answer 0 and change nothing.
func untouched(ctx context.Context, rdb redis.UniversalClient, q, id string, stale int64) error {
	before, err := readQueue(ctx, rdb, q, id)
	if err != nil {
		return err
	}
	if err := requeue(ctx, rdb, q, id, stale, 0); err != nil {
		return err
	}
	after, err := readQueue(ctx, rdb, q, id)
	if err != nil {
		return err
	}
	if after.String() != before.String() {
		return fmt.Errorf("a requeue that answered 0 changed the queue: %s -> %s", before, after)
	}
	return nil
}

var scriptCases = []luacheck.Case{
	{Script: "requeueCmd", Name: "stale lease", Play: func(ctx context.Context, rdb redis.UniversalClient, q string) error {
		const id = "x"
		if err := seedQueue(ctx, rdb, q, id, 2000, true, true); err != nil {
			return err
		}
		// A lease extended since it was judged (scored after the stale score) keeps its task.
		if err := untouched(ctx, rdb, q, id, 1999); err != nil {
			return err
		}
		if err := requeue(ctx, rdb, q, id, 2000, 1); err != nil {
			return err
		}
		s, err := readQueue(ctx, rdb, q, id)
		if err != nil {
			return err
		}
		// The right end of pending is its head: asynq takes tasks from there.
		if !slices.Equal(s.active, []string{"other"}) || !slices.Equal(s.pending, []string{"waiting", id}) ||
			len(s.lease) != 0 || len(s.task) != 3 || s.task["state"] != "pending" || s.task["pending_since"] != "77" ||
			s.task["msg"] != "m" {
			return fmt.Errorf("after the requeue: %s", s)
		}
		// Again: the task is no longer leased.
		return untouched(ctx, rdb, q, id, 2000)
	}},
	{Script: "requeueCmd", Name: "no lease", Play: func(ctx context.Context, rdb redis.UniversalClient, q string) error {
		if err := seedQueue(ctx, rdb, q, "x", 0, true, true); err != nil {
			return err
		}
		return untouched(ctx, rdb, q, "x", 2000)
	}},
	{Script: "requeueCmd", Name: "task deleted", Play: func(ctx context.Context, rdb redis.UniversalClient, q string) error {
		if err := seedQueue(ctx, rdb, q, "x", 1000, false, true); err != nil {
			return err
		}
		return untouched(ctx, rdb, q, "x", 2000)
	}},
	{Script: "requeueCmd", Name: "not active", Play: func(ctx context.Context, rdb redis.UniversalClient, q string) error {
		if err := seedQueue(ctx, rdb, q, "x", 1000, true, false); err != nil {
			return err
		}
		return untouched(ctx, rdb, q, "x", 2000)
	}},
}

// serverKeys returns the workers and servers keys of an asynq server whose id holds id.
func serverKeys(id string) []string {
	tag := "{" + id + ":1:s}"
	return []string{rkeys.AsynqPrefix + "workers:" + tag, rkeys.AsynqPrefix + "servers:" + tag}
}

// readServer runs workersCmd on the server of id and returns its reply: the sorted task ids
// of a beating server, or nil and false.
func readServer(ctx context.Context, rdb redis.UniversalClient, id string) ([]string, bool, error) {
	v, err := workersCmd.Run(ctx, rdb, serverKeys(id)).Result()
	if err != nil {
		return nil, false, err
	}
	switch v := v.(type) {
	case int64:
		if v != 0 {
			return nil, false, fmt.Errorf("reply %d, want 0 or an array", v)
		}
		return nil, false, nil
	case []any:
		ids := []string{}
		for _, x := range v {
			ids = append(ids, fmt.Sprint(x))
		}
		slices.Sort(ids)
		return ids, true, nil
	}
	return nil, false, fmt.Errorf("reply %#v, want 0 or an array", v)
}

var workersCases = []luacheck.Case{
	{Script: "workersCmd", Name: "beating with tasks", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		k := serverKeys(id)
		if err := rdb.Set(ctx, k[1], "info", 10*time.Second).Err(); err != nil {
			return err
		}
		if err := rdb.HSet(ctx, k[0], "b", "w", "a", "w").Err(); err != nil {
			return err
		}
		ids, beating, err := readServer(ctx, rdb, id)
		if err != nil || !beating || !slices.Equal(ids, []string{"a", "b"}) {
			return fmt.Errorf("got %v beating=%v (%v), want [a b] beating", ids, beating, err)
		}
		return nil
	}},
	{Script: "workersCmd", Name: "beating idle", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		// asynq writes no workers hash for a server without tasks.
		if err := rdb.Set(ctx, serverKeys(id)[1], "info", 10*time.Second).Err(); err != nil {
			return err
		}
		ids, beating, err := readServer(ctx, rdb, id)
		if err != nil || !beating || len(ids) != 0 {
			return fmt.Errorf("got %v beating=%v (%v), want none beating", ids, beating, err)
		}
		return nil
	}},
	{Script: "workersCmd", Name: "not beating", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		if ids, beating, err := readServer(ctx, rdb, id); err != nil || beating {
			return fmt.Errorf("no keys: got %v beating=%v (%v), want not beating", ids, beating, err)
		}
		// A workers hash without its servers key: the server is not beating, whatever it lists.
		if err := rdb.HSet(ctx, serverKeys(id)[0], "a", "w").Err(); err != nil {
			return err
		}
		if ids, beating, err := readServer(ctx, rdb, id); err != nil || beating {
			return fmt.Errorf("hash alone: got %v beating=%v (%v), want not beating", ids, beating, err)
		}
		return nil
	}},
}

// TestScriptCases plays each script's cases on miniredis, and on real Redis when
// HERALD_TEST_REDIS is set. The queue is named by the case's id, so its keys hold it.
func TestScriptCases(t *testing.T) {
	luacheck.RunCases(t, scripts, append(scriptCases, workersCases...))
}
