package expand_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/ledger"
)

// audienceCSV returns a name,phone audience of n distinct valid Brazilian mobiles.
func audienceCSV(n int) string {
	var b strings.Builder
	b.WriteString("name,phone\n")
	for i := range n {
		fmt.Fprintf(&b, "user%d,+5511%09d\n", i, 900000000+i)
	}
	return b.String()
}

// submit stores the bundle's campaign file in the definition store.
func (b *testBundle) submit(tb testing.TB, def *campaigns.Definition) defstore.Submitted {
	tb.Helper()
	data, err := os.ReadFile(def.Path)
	if err != nil {
		tb.Fatal(err)
	}
	store := defstore.New(b.rdb, nil)
	v, _, err := store.Submit(context.Background(), def.ID, def.Path, data)
	if err != nil {
		tb.Fatal(err)
	}
	sub, err := store.Version(context.Background(), def.ID, v)
	if err != nil {
		tb.Fatal(err)
	}
	return sub
}

func (b *testBundle) handler(rdb redis.UniversalClient, cfg expand.Config) *expand.Handler {
	return b.handlerAt(rdb, cfg, testNow)
}

func (b *testBundle) handlerAt(rdb redis.UniversalClient, cfg expand.Config, now time.Time) *expand.Handler {
	return b.handlerClock(rdb, cfg, func() time.Time { return now }, nil)
}

// fakeTime is a handler's clock and its sleep: the clock reads testNow plus the time slept,
// and a sleep returns at once, having moved the clock by its duration. onSleep, when set, is
// called after each sleep with the number of sleeps so far (to free room in a run's backlog).
type fakeTime struct {
	slept   atomic.Int64
	sleeps  atomic.Int32
	onSleep func(n int)
}

func (f *fakeTime) Now() time.Time { return testNow.Add(time.Duration(f.slept.Load())) }

func (f *fakeTime) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.slept.Add(int64(d))
	n := f.sleeps.Add(1)
	if f.onSleep != nil {
		f.onSleep(int(n))
	}
	return nil
}

// handlerTime returns a handler on a fakeTime.
func (b *testBundle) handlerTime(cfg expand.Config, ft *fakeTime) *expand.Handler {
	return b.handlerClock(nil, cfg, ft.Now, ft.Sleep)
}

func (b *testBundle) handlerClock(rdb redis.UniversalClient, cfg expand.Config, now func() time.Time,
	sleep func(context.Context, time.Duration) error) *expand.Handler {
	if rdb == nil {
		rdb = b.rdb
	}
	cfg.Task = campaigns.TaskOptions{MaxRetry: 25}
	return expand.NewHandler(cfg, expand.Deps{
		Redis: rdb, Logger: zerolog.Nop(), Now: now, Sleep: sleep,
		Sender: func(*campaigns.Definition) (string, error) { return "+14151111234", nil },
	})
}

func expandTask(tb testing.TB, p campaigns.ExpandPayload) *asynq.Task {
	tb.Helper()
	task, err := campaigns.NewExpandTask(p, 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return task
}

// sendAll plays a worker: every pending send task of the queue is claimed, accepted and
// deleted. It returns how many it sent, counting per recipient into sent.
func (b *testBundle) sendAll(tb testing.TB, queue string, sent map[string]int) int {
	tb.Helper()
	ctx := context.Background()
	n := 0
	for id, p := range b.pending(tb, queue) {
		c, err := b.ledger.Claim(ctx, p.Address(), ledger.AtMostOnce)
		if err != nil {
			tb.Fatal(err)
		}
		if c.Verdict == ledger.VerdictSend {
			if _, err := b.ledger.Finish(ctx, p.Address(), ledger.Outcome{State: ledger.Accepted, MessageID: "m", Attempt: c.Attempts}); err != nil {
				tb.Fatal(err)
			}
			sent[p.Run+" "+p.To]++
			n++
		}
		if err := b.inspector.DeleteTask(queue, id); err != nil {
			tb.Fatal(err)
		}
	}
	return n
}

// continuation returns the continuation task of an expansion, deleting it from the queue so
// the test can run it (nil when there is none). It is scheduled TopUp later, or pending when
// TopUp had passed by the time asynq's client read its clock (asynq turns a ProcessIn into a
// time when the task is enqueued, and enqueues it at once if that time has passed: a machine
// under load, or a short TopUp).
func (b *testBundle) continuation(tb testing.TB) *asynq.Task {
	tb.Helper()
	tasks := b.expansionTasks(tb)
	if len(tasks) == 0 {
		return nil
	}
	if len(tasks) > 1 {
		tb.Fatalf("%d continuation tasks, want at most one", len(tasks))
	}
	if err := b.inspector.DeleteTask(campaigns.ExpandQueue, tasks[0].ID); err != nil {
		tb.Fatal(err)
	}
	return asynq.NewTask(tasks[0].Type, tasks[0].Payload)
}

// expansionTasks lists the expansion tasks waiting to run: scheduled, or pending once their
// delay had passed when they were enqueued (see continuation).
func (b *testBundle) expansionTasks(tb testing.TB) []*asynq.TaskInfo {
	tb.Helper()
	var tasks []*asynq.TaskInfo
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		b.inspector.ListScheduledTasks, b.inspector.ListPendingTasks} {
		found, err := list(campaigns.ExpandQueue)
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			tb.Fatal(err)
		}
		tasks = append(tasks, found...)
	}
	return tasks
}

// TestExpandTaskKeepsBacklog expands a 600-row run with a backlog of 100 tasks: the first task
// stops at the backlog and hands over to a continuation; as sends complete, continuations top
// the backlog up, never above it, until every recipient got exactly one send.
func TestExpandTaskKeepsBacklog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	def := b.campaign(t, audienceCSV(600), "")
	sub := b.submit(t, def)
	h := b.handlerTime(expand.Config{MinBacklog: 100, MaxBacklog: 100, BatchSize: 40, TopUp: time.Microsecond,
		Hold: 20 * time.Millisecond}, &fakeTime{})
	if got := h.BacklogFor(80); got != 100 {
		t.Fatalf("BacklogFor = %d, want the bounds' 100", got)
	}
	queue := campaigns.QueueFor("marketing")
	runID := expand.TickRunID(def.ID, testNow)
	task := expandTask(t, campaigns.ExpandPayload{Run: runID, Campaign: def.ID, Version: sub.Version, Trigger: "cron"})
	sent := map[string]int{}
	for step := 0; ; step++ {
		if step > 100 {
			t.Fatal("expansion did not finish in 100 steps")
		}
		if err := h.ProcessTask(ctx, task); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if n := len(b.pending(t, queue)); n > 100 {
			t.Fatalf("step %d: %d send tasks queued, backlog 100", step, n)
		}
		run := b.getRun(t, runID)
		if run.Version != sub.Version {
			t.Fatalf("run version %d, want %d", run.Version, sub.Version)
		}
		b.sendAll(t, queue, sent)
		if run.Expanded {
			if next := b.continuation(t); next != nil {
				t.Fatal("a continuation was left after the run was expanded")
			}
			break
		}
		if task = b.continuation(t); task == nil {
			t.Fatalf("step %d: run not expanded and no continuation task", step)
		}
	}
	b.sendAll(t, queue, sent)
	if len(sent) != 600 {
		t.Fatalf("%d recipients sent, want 600", len(sent))
	}
	for k, n := range sent {
		if n != 1 {
			t.Fatalf("%s sent %d times", k, n)
		}
	}
	run := b.getRun(t, runID)
	c := b.counters(t, runID)
	if run.Status != ledger.RunCompleted || c.Sum() != 600 || c.States[ledger.Accepted] != 600 {
		t.Fatalf("run %s, counters %+v", run.Status, c.States)
	}
}

// killHook cancels the handler's context around the nth pipeline of task writes: before it is
// sent (the batch is planned, no task written) or after (tasks written, not marked queued).
type killHook struct {
	n      int32
	after  bool
	cancel context.CancelFunc
	seen   atomic.Int32
}

func (k *killHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (k *killHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (k *killHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "evalsha" {
			return next(ctx, cmds)
		}
		if k.seen.Add(1) == k.n && !k.after {
			k.cancel()
			return context.Canceled
		}
		err := next(ctx, cmds)
		if k.seen.Load() == k.n && k.after {
			k.cancel()
		}
		return err
	}
}

// TestExpandTaskResumesAfterKill kills an expansion task in the middle (its context is
// cancelled before or after a batch's tasks reach Redis), runs the task again as asynq would
// after a crash, and checks that the run's states add up to the audience with exactly one task
// per recipient.
func TestExpandTaskResumesAfterKill(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		n     int32
		after bool
	}{
		{"BeforeTasksWritten", 3, false},
		{"AfterTasksWritten", 3, true},
		{"FirstBatch", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			// 1,000 rows, a few invalid and duplicate: the states must still add up.
			csv := audienceCSV(1000) + "dup,+5511900000007\nbad,+55\n"
			def := b.campaign(t, csv, "")
			sub := b.submit(t, def)
			runID := expand.TickRunID(def.ID, testNow)
			task := expandTask(t, campaigns.ExpandPayload{Run: runID, Campaign: def.ID, Version: sub.Version, Trigger: "cron"})
			cfg := expand.Config{MinBacklog: 5000, MaxBacklog: 5000, BatchSize: 100}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			killed := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
			defer killed.Close()
			killed.AddHook(&killHook{n: tc.n, after: tc.after, cancel: cancel})
			err := b.handler(killed, cfg).ProcessTask(ctx, task)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("killed task returned %v, want context.Canceled", err)
			}
			if run := b.getRun(t, runID); run.Expanded {
				t.Fatal("run expanded although its task was killed")
			}

			if err := b.handler(nil, cfg).ProcessTask(context.Background(), task); err != nil {
				t.Fatalf("resumed task: %v", err)
			}
			run := b.getRun(t, runID)
			c := b.counters(t, runID)
			if !run.Expanded || run.Total != 1002 || c.Sum() != 1002 {
				t.Fatalf("expanded %v total %d, states add up to %d: %+v", run.Expanded, run.Total, c.Sum(), c.States)
			}
			if c.States[ledger.Queued] != 1000 || c.Codes["skipped:duplicate"] != 1 || c.Codes["skipped:invalid_phone"] != 1 {
				t.Fatalf("counters %+v %+v", c.States, c.Codes)
			}
			pending := b.pending(t, campaigns.QueueFor("marketing"))
			seen := map[string]bool{}
			for _, p := range pending {
				if seen[p.To] {
					t.Fatalf("two tasks for %s", p.To)
				}
				seen[p.To] = true
			}
			if len(pending) != 1000 {
				t.Fatalf("%d send tasks, want 1000", len(pending))
			}
		})
	}
}

// TestExpandTaskSendWindowAndExpiry expands a run outside its send window: every task is
// scheduled for the window's next opening in the recipient's zone, and recipients whose
// window opens only after the run expires are skipped(expired) without a task.
func TestExpandTaskSendWindowAndExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A Wednesday in the future (asynq promotes scheduled tasks by the real clock), 09:30 UTC:
	// 05:30 in New York (EDT), 10:30 in Berlin (CET), 06:30 in São Paulo.
	now := time.Date(2030, 3, 20, 9, 30, 0, 0, time.UTC)
	csv := "name,phone,tz\nny,+12125550100,\nberlin,+4915112345678,\nsp,+5511987654321,\ntokyo,+12125550101,Asia/Tokyo\n"
	b.campaign(t, csv, "")
	yaml := "id: window-test\ntemplate: {name: spring_sale, language: en}\nparameters:\n  body_1: \"{{.name}}\"\n" +
		"audience: {file: audience.csv, timezone: tz}\nsend_window: {from: \"09:00\", to: \"17:00\"}\nexpire_after: 4h\n"
	path := filepath.Join(b.dir, "window.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	def, err := campaigns.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sub := b.submit(t, def)
	runID := expand.TickRunID(def.ID, now)
	task := expandTask(t, campaigns.ExpandPayload{Run: runID, Campaign: def.ID, Version: sub.Version, Trigger: "cron"})
	if err := b.handlerAt(nil, expand.Config{}, now).ProcessTask(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	queue := campaigns.QueueFor("marketing")
	var sched []*asynq.TaskInfo
	sched, err = b.inspector.ListScheduledTasks(queue)
	if err != nil {
		t.Fatal(err)
	}
	at := map[string]time.Time{}
	for _, ti := range sched {
		p, err := campaigns.DecodeSend(ti.Payload)
		if err != nil {
			t.Fatal(err)
		}
		at[p.To] = ti.NextProcessAt.UTC()
		if p.SendHours == "" || p.Expires != now.Add(4*time.Hour).Unix() {
			t.Errorf("%s: payload window %q expires %d", p.To, p.SendHours, p.Expires)
		}
	}
	pending := b.pending(t, queue)
	// Berlin is inside its window (10:30): sent now. New York opens at 13:00Z and São Paulo
	// at 12:00Z, both before the run expires at 13:30Z. Tokyo (18:30 local) opens tomorrow
	// 00:00Z, after the expiry: skipped.
	if len(pending) != 1 {
		t.Fatalf("pending %v, want Berlin only", pending)
	}
	for _, p := range pending {
		if p.To != "+4915112345678" || p.Zone != "Europe/Berlin" {
			t.Fatalf("pending %+v", p)
		}
	}
	want := map[string]time.Time{
		"+12125550100":   time.Date(2030, 3, 20, 13, 0, 0, 0, time.UTC),
		"+5511987654321": time.Date(2030, 3, 20, 12, 0, 0, 0, time.UTC),
	}
	if len(at) != len(want) {
		t.Fatalf("scheduled %v, want %v", at, want)
	}
	for to, w := range want {
		if !at[to].Equal(w) {
			t.Errorf("%s scheduled at %s, want %s", to, at[to], w)
		}
	}
	c := b.counters(t, runID)
	if c.Codes["skipped:expired"] != 1 || c.States[ledger.Queued] != 3 || c.Sum() != 4 {
		t.Fatalf("counters %+v %+v", c.States, c.Codes)
	}
	// No worker sees a scheduled task before its opening: the expansion notes on the run that
	// its sends wait for the first one (São Paulo's), so run show gives no time left till then.
	run := b.getRun(t, runID)
	if got := run.WaitingNow(now); got != "send hours: sends resume at 2030-03-20T12:00:00Z" || !run.WaitingUntil.Equal(want["+5511987654321"]) {
		t.Fatalf("waiting note %q until %s, want the sends resuming at São Paulo's opening", got, run.WaitingUntil)
	}
}

// TestExpandTaskCancelledMidway cancels a run whose expansion stopped at its window: the next
// expansion step plans every remaining row as skipped(cancelled) without a task, so the run's
// states add up to the audience.
func TestExpandTaskCancelledMidway(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	def := b.campaign(t, audienceCSV(600), "")
	sub := b.submit(t, def)
	h := b.handlerTime(expand.Config{MinBacklog: 100, MaxBacklog: 100, BatchSize: 40, TopUp: 5 * time.Millisecond,
		Hold: 20 * time.Millisecond}, &fakeTime{})
	queue := campaigns.QueueFor("marketing")
	runID := expand.TickRunID(def.ID, testNow)
	task := expandTask(t, campaigns.ExpandPayload{Run: runID, Campaign: def.ID, Version: sub.Version, Trigger: "cron"})
	if err := h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	queued := len(b.pending(t, queue))
	if run := b.getRun(t, runID); run.Expanded || queued == 0 || queued > 100 {
		t.Fatalf("after the first step: expanded %v, %d queued", run.Expanded, queued)
	}
	if _, _, err := ledger.New(b.rdb, nil).Cancel(ctx, runID, "wrong audience"); err != nil {
		t.Fatal(err)
	}
	next := b.continuation(t)
	if next == nil {
		t.Fatal("no continuation task")
	}
	if err := h.ProcessTask(ctx, next); err != nil {
		t.Fatal(err)
	}
	run := b.getRun(t, runID)
	c := b.counters(t, runID)
	if !run.Expanded || run.Status != ledger.RunCancelled || c.Sum() != 600 || c.States[ledger.Skipped] != 600 {
		t.Fatalf("run expanded %v status %s, states %v (sum %d), want 600 skipped", run.Expanded, run.Status, c.States, c.Sum())
	}
	if n := len(b.pending(t, queue)); n != queued {
		t.Fatalf("%d tasks queued after the cancel, want the %d from before it (their sends skip themselves)", n, queued)
	}
}

// TestExpandTaskHoldEndsByItsClock: a task held in place for room (Config.Hold) waits through
// the handler's sleep (Deps.Sleep) and hands over once the handler's clock (Deps.Now), not the
// machine's, passes the hold; room freed during the hold is filled by the same task. An hour's
// hold in minute steps takes milliseconds.
func TestExpandTaskHoldEndsByItsClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	def := b.campaign(t, audienceCSV(300), "")
	sub := b.submit(t, def)
	queue := campaigns.QueueFor("marketing")
	sent := map[string]int{}
	ft := &fakeTime{}
	ft.onSleep = func(n int) {
		if n == 3 {
			b.sendAll(t, queue, sent) // the workers empty the backlog three minutes in
		}
	}
	h := b.handlerTime(expand.Config{MinBacklog: 100, MaxBacklog: 100, BatchSize: 50, TopUp: time.Minute,
		Hold: time.Hour}, ft)
	runID := expand.TickRunID(def.ID, testNow)
	task := expandTask(t, campaigns.ExpandPayload{Run: runID, Campaign: def.ID, Version: sub.Version, Trigger: "cron"})
	if err := h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if n := ft.sleeps.Load(); n != 60 {
		t.Fatalf("%d sleeps of TopUp, want the hour's 60", n)
	}
	if len(sent) != 100 || len(b.pending(t, queue)) != 100 {
		t.Fatalf("%d sent and %d queued, want the first backlog sent and the second queued", len(sent), len(b.pending(t, queue)))
	}
	if run := b.getRun(t, runID); run.Expanded {
		t.Fatal("run expanded; want it held by its full backlog")
	}
	if next := b.continuation(t); next == nil {
		t.Fatal("the hold ended without a continuation")
	}
}

// TestExpandTaskHandsOverAtOnce: with the default Hold a task whose window is full does not
// wait in place (a process killed meanwhile would hold the run's expansion hostage): it
// returns at once with a continuation that knows the window, and a continuation that finds
// the window still full only hands over again, writing nothing.
func TestExpandTaskHandsOverAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	def := b.campaign(t, audienceCSV(300), "")
	sub := b.submit(t, def)
	h := b.handler(nil, expand.Config{MinBacklog: 100, MaxBacklog: 100, BatchSize: 50, TopUp: time.Hour})
	queue := campaigns.QueueFor("marketing")
	runID := expand.TickRunID(def.ID, testNow)
	task := expandTask(t, campaigns.ExpandPayload{Run: runID, Campaign: def.ID, Version: sub.Version, Trigger: "cron"})
	began := time.Now()
	if err := h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if n := len(b.pending(t, queue)); n != 100 {
		t.Fatalf("%d send tasks, want the window's 100", n)
	}
	next := b.continuation(t)
	if next == nil {
		t.Fatal("no continuation")
	}
	p, err := campaigns.DecodeExpand(next.Payload())
	if err != nil || p.Seq != 1 || p.Backlog != 100 {
		t.Fatalf("continuation %+v, %v; want seq 1 carrying window 100", p, err)
	}
	// Still full: hands over again, nothing written.
	if err := h.ProcessTask(ctx, next); err != nil {
		t.Fatal(err)
	}
	if n := len(b.pending(t, queue)); n != 100 {
		t.Fatalf("%d send tasks after a full-window continuation, want 100", n)
	}
	if next = b.continuation(t); next == nil {
		t.Fatal("a full-window continuation did not hand over")
	}
	if p, _ := campaigns.DecodeExpand(next.Payload()); p.Seq != 2 || p.Backlog != 100 {
		t.Fatalf("second continuation %+v", p)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("took %s: a full window must not be waited for in place", d)
	}
	// Room again: the chain carries on to the end.
	sent := map[string]int{}
	for step := 0; ; step++ {
		if step > 20 {
			t.Fatal("expansion did not finish")
		}
		b.sendAll(t, queue, sent)
		if err := h.ProcessTask(ctx, next); err != nil {
			t.Fatal(err)
		}
		if b.getRun(t, runID).Expanded {
			break
		}
		if next = b.continuation(t); next == nil {
			t.Fatal("no continuation")
		}
	}
	b.sendAll(t, queue, sent)
	if len(sent) != 300 {
		t.Fatalf("%d recipients sent, want 300", len(sent))
	}
}
