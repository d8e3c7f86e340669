package expand_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// errShardDown is what shardDown answers for a run's hash: a connection reset by the Redis
// node that holds it.
var errShardDown = &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}

// shardDown fails every read of one run's hash, as a Redis Cluster node down would; the
// queues' keys (another node) answer. It counts the reads it failed.
type shardDown struct {
	key   string
	reads atomic.Int32
}

func (s *shardDown) DialHook(next redis.DialHook) redis.DialHook { return next }
func (s *shardDown) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if a := cmd.Args(); cmd.Name() == "hgetall" && len(a) > 1 && a[1] == s.key {
			s.reads.Add(1)
			cmd.SetErr(errShardDown)
			return errShardDown
		}
		return next(ctx, cmd)
	}
}
func (s *shardDown) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// waitUntil waits up to 10 s for cond (testredis.WaitUntil).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testredis.WaitUntil(t, 10*time.Second, what, cond)
}

// TestExpansionOutlivesAPassingCause: an expansion server whose runs' Redis node is down fails
// each try of a run's expansion. The task must not use up its retries on that (it did: after
// 25 tries, some ten minutes, asynq archived it, and nothing enqueued the run's expansion
// again, so the run stayed running half sent): it is tried again a few seconds later, its
// retry count unchanged, as long as the cause lasts. Here the task may fail once; it fails
// twice, and is still waiting to be tried again, not archived.
func TestExpansionOutlivesAPassingCause(t *testing.T) {
	t.Parallel()
	b := setup(t)
	def := b.campaign(t, audienceCSV(10), "")
	sub := b.submit(t, def)
	runID := expand.TickRunID(def.ID, testNow)
	down := &shardDown{key: rkeys.Run(runID)}
	c := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
	t.Cleanup(func() { c.Close() })
	c.AddHook(down)
	srv := expand.NewServer(expand.ServerConfig{Concurrency: 1, TaskCheckInterval: 10 * time.Millisecond,
		DelayedTaskCheckInterval: time.Hour}, expand.Deps{Redis: c, Logger: zerolog.Nop(),
		Sender: func(*campaigns.Definition) (string, error) { return "+14151111234", nil }})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			srv.Stop()
			srv.Shutdown()
		}
	}
	t.Cleanup(stop)

	task := expandTask(t, campaigns.ExpandPayload{Run: runID, Campaign: def.ID, Version: sub.Version, Trigger: "cron"})
	if _, err := b.client.Enqueue(task, asynq.MaxRetry(1)); err != nil {
		t.Fatal(err)
	}
	info := func() *asynq.TaskInfo {
		ti, err := b.inspector.GetTaskInfo(campaigns.ExpandQueue, runID)
		if err != nil {
			t.Fatal(err)
		}
		return ti
	}
	tried := func(n int32) func() bool {
		return func() bool {
			s := info().State
			return down.reads.Load() >= n && (s == asynq.TaskStateRetry || s == asynq.TaskStateArchived)
		}
	}
	waitUntil(t, "the first try", tried(1))
	first := info()
	// The next try, now rather than PassingRetry on.
	if err := b.inspector.RunTask(campaigns.ExpandQueue, runID); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the second try", tried(2))
	stop()
	if ti := info(); ti.State != asynq.TaskStateRetry || ti.Retried != 0 || !strings.Contains(ti.LastErr, "connection reset") {
		t.Fatalf("after the second try: %s, retried %d (%s); want waiting to be tried again", ti.State, ti.Retried, ti.LastErr)
	}
	if first.Retried != 0 || first.NextProcessAt.Before(time.Now().Add(expand.PassingRetry-2*time.Second)) {
		t.Fatalf("after the first try: retried %d, next try in %s; want none used, and a try %s on",
			first.Retried, time.Until(first.NextProcessAt).Round(time.Second), expand.PassingRetry)
	}
}

// TestTickWhoseVersionCannotBeReadIsTriedAgain: the first task of a tick cannot read its
// campaign version because Redis fails. That is no reason to archive the task (it was: the
// tick's run was never created): it is tried again, and creates and expands the run once
// Redis answers. A version that does not exist is.
func TestTickWhoseVersionCannotBeReadIsTriedAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	def := b.campaign(t, audienceCSV(10), "")
	sub := b.submit(t, def)
	runID := expand.TickRunID(def.ID, testNow)
	task := expandTask(t, campaigns.ExpandPayload{Run: runID, Campaign: def.ID, Version: sub.Version, Trigger: "cron"})
	down := &shardDown{key: rkeys.DefinitionVersion(def.ID, sub.Version)}
	err := b.handler(b.faulty(t, down), expand.Config{}).ProcessTask(ctx, task)
	if err == nil || errors.Is(err, asynq.SkipRetry) || down.reads.Load() == 0 {
		t.Fatalf("first task whose version Redis could not read: %v; want an error asynq tries again", err)
	}
	if err := b.handler(nil, expand.Config{}).ProcessTask(ctx, task); err != nil {
		t.Fatalf("tried again: %v", err)
	}
	if run := b.getRun(t, runID); !run.Expanded {
		t.Fatalf("run %+v, want expanded", run)
	}
	gone := expandTask(t, campaigns.ExpandPayload{Run: runID + "-x", Campaign: def.ID, Version: sub.Version + 1, Trigger: "cron"})
	if err := b.handler(nil, expand.Config{}).ProcessTask(ctx, gone); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("first task of a version never submitted: %v; want SkipRetry", err)
	}
}
