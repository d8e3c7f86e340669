package expand_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/ledger"
)

// watchingEnqueuer enqueues through asynq and, for each step of a run it enqueues, records
// whether the run existed at that moment; after, when set, runs once the task is in Redis.
type watchingEnqueuer struct {
	enq     *asynq.Client
	l       *ledger.Ledger
	existed map[string]bool
	after   func()
}

func (w *watchingEnqueuer) EnqueueContext(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	p, err := campaigns.DecodeExpand(t.Payload())
	if err != nil {
		return nil, err
	}
	if _, ok := w.existed[p.Run]; !ok {
		_, gerr := w.l.GetRun(ctx, p.Run)
		w.existed[p.Run] = gerr == nil
	}
	info, err := w.enq.EnqueueContext(ctx, t, opts...)
	if err == nil && w.after != nil {
		w.after()
	}
	return info, err
}

// watching returns a watchingEnqueuer on b's Redis.
func (b *testBundle) watching(tb testing.TB) *watchingEnqueuer {
	client := asynq.NewClientFromRedisClient(b.rdb)
	tb.Cleanup(func() { client.Close() })
	return &watchingEnqueuer{enq: client, l: b.ledger, existed: map[string]bool{}}
}

// commandRuns is what a command starts and retries runs with: Runs on rdb, enqueuing through
// enq.
func commandRuns(cfg expand.Config, rdb redis.UniversalClient, enq expand.Enqueuer) *expand.Runs {
	return expand.NewRuns(cfg, expand.Deps{Redis: rdb, Logger: zerolog.Nop(), Now: func() time.Time { return testNow },
		Enqueuer: enq, Sender: func(*campaigns.Definition) (string, error) { return "+14151111234", nil }})
}

// TestRunsExistOnlyWithTheirNextStep: campaign send and run retry enqueue a run's next
// expansion step before they store the run, so a command stopped at any point leaves either
// no run, or a run with a step that carries it on (a run stored first and its step enqueued
// after would be left without one by a command killed in between).
func TestRunsExistOnlyWithTheirNextStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	def := b.campaign(t, audienceCSV(40), "")
	w := b.watching(t)
	r := commandRuns(expand.Config{BatchSize: 10}, b.rdb, w)
	st, err := r.StartRun(ctx, expand.StartParams{Def: def, Bounded: true})
	if err != nil {
		t.Fatal(err)
	}
	if existed, ok := w.existed[st.RunID]; !ok || existed {
		t.Fatalf("campaign send: run existed when its next step was enqueued: %v (enqueued: %v)", existed, ok)
	}
	b.finishAll(t, st.Run.Queue, func(string) string { return "HTTP_503" })
	res, err := r.RetryRun(ctx, expand.RetryParams{Parent: st.RunID, AnyClass: true})
	if err != nil {
		t.Fatal(err)
	}
	if existed, ok := w.existed[res.Child.ID]; !ok || existed {
		t.Fatalf("run retry: child existed when its next step was enqueued: %v (enqueued: %v)", existed, ok)
	}
}

// TestStepOfARunNotStoredYet: a command stopped right after it enqueued its run's next step
// leaves a step and no run. The step waits for the run while the command may still store it,
// and is archived (SkipRetry) once it cannot; a step whose run is stored meanwhile carries it
// on.
func TestStepOfARunNotStoredYet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	def := b.campaign(t, audienceCSV(40), "")
	// The command dies right after the enqueue: every later command of its Redis fails.
	dying := redis.NewClient(&redis.Options{Addr: b.mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { dying.Close() })
	dead := &deadHook{}
	dying.AddHook(dead)
	w := b.watching(t)
	w.after = func() { dead.on.Store(true) }
	r := commandRuns(expand.Config{BatchSize: 10}, dying, w)
	if _, err := r.StartRun(ctx, expand.StartParams{Def: def, Bounded: true}); !errors.Is(err, errDead) {
		t.Fatalf("StartRun of a command that died after its step was enqueued: %v", err)
	}
	if runs, err := b.ledger.RecentRuns(ctx, "", 10); err != nil || len(runs) != 0 {
		t.Fatalf("runs: %v, %v; want none", runs, err)
	}
	step := b.stepTask(t)
	ft := &fakeTime{}
	h := b.handlerTime(expand.Config{BatchSize: 10}, ft)
	err := h.ProcessTask(ctx, step)
	if err == nil || errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "not stored yet") {
		t.Fatalf("step of a run its command may still store: %v; want an error asynq retries", err)
	}
	ft.slept.Add(int64(11 * time.Minute))
	if err := h.ProcessTask(ctx, step); !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, ledger.ErrRunNotFound) {
		t.Fatalf("step of a run never stored, 11 minutes on: %v; want SkipRetry", err)
	}

	// A step that starts before its command stored the run waits, then carries it on.
	var early error
	h = b.handlerTime(expand.Config{BatchSize: 10}, &fakeTime{})
	w.after = func() { early = h.ProcessTask(ctx, b.peekStep(t)) } // asynq keeps a task that failed
	cfg := expand.Config{BatchSize: 10, MinBacklog: 10, MaxBacklog: 10}
	r = commandRuns(cfg, b.rdb, w)
	st, err := r.StartRun(ctx, expand.StartParams{Def: def, Bounded: true})
	if err != nil || !st.Continues {
		t.Fatalf("StartRun: continues %v, %v", st.Continues, err)
	}
	// The run keeps its audience's row count while its expansion has read only part of it:
	// what run show counts progress toward.
	if got, err := ledger.New(b.rdb, nil).GetRun(ctx, st.RunID); err != nil || got.Rows != 40 || got.Expanded {
		t.Fatalf("run as stored: rows %d, expanded %v, %v; want 40 rows kept before the expansion ends", got.Rows, got.Expanded, err)
	}
	if early == nil || !strings.Contains(early.Error(), "not stored yet") {
		t.Fatalf("step run before its run was stored: %v", early)
	}
	sent := map[string]int{}
	b.runChain(t, st.RunID, st.Run.Queue, cfg, sent)
	if len(sent) != 40 {
		t.Fatalf("%d sent, want 40", len(sent))
	}
}

// stepTask takes the one expansion step waiting in Redis (pending or scheduled) out of it.
func (b *testBundle) stepTask(tb testing.TB) *asynq.Task {
	tb.Helper()
	return b.step(tb, true)
}

// peekStep returns the one expansion step waiting in Redis and leaves it there.
func (b *testBundle) peekStep(tb testing.TB) *asynq.Task {
	tb.Helper()
	return b.step(tb, false)
}

func (b *testBundle) step(tb testing.TB, take bool) *asynq.Task {
	tb.Helper()
	var tasks []*asynq.TaskInfo
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		b.inspector.ListPendingTasks, b.inspector.ListScheduledTasks} {
		ts, err := list(campaigns.ExpandQueue)
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			tb.Fatal(err)
		}
		tasks = append(tasks, ts...)
	}
	if len(tasks) != 1 {
		tb.Fatalf("%d expansion steps waiting, want 1", len(tasks))
	}
	if take {
		if err := b.inspector.DeleteTask(campaigns.ExpandQueue, tasks[0].ID); err != nil {
			tb.Fatal(err)
		}
	}
	return asynq.NewTask(tasks[0].Type, tasks[0].Payload)
}

// errDead is what every command of a client with a deadHook that is on fails with.
var errDead = errors.New("the process is gone")

// deadHook fails every command once on is set: a process killed at that point.
type deadHook struct{ on atomic.Bool }

func (d *deadHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (d *deadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if d.on.Load() {
			return errDead
		}
		return next(ctx, cmd)
	}
}
func (d *deadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if d.on.Load() {
			return errDead
		}
		return next(ctx, cmds)
	}
}
