package expand_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// replayHook plays what go-redis does when the connection drops after a script ran but before
// its reply was read (an EOF is retried: go-redis shouldRetry): the script runs a second time
// and the caller sees only the second reply. It does so once, for the nth script call that
// match accepts.
type replayHook struct {
	match func(args []any) bool
	n     int32
	seen  atomic.Int32
}

func (h *replayHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *replayHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *replayHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !((cmd.Name() == "evalsha" || cmd.Name() == "eval") && h.match(cmd.Args())) {
			return next(ctx, cmd)
		}
		err := next(ctx, cmd)
		if err != nil || h.seen.Add(1) != h.n {
			return err // NOSCRIPT (go-redis then sends EVAL) or not the call to replay
		}
		return next(ctx, cmd) // the first reply was lost; the command is sent again
	}
}

// TestLostScriptReplyDoesNotStallTheRun: one lost reply of the script that marks a batch's
// tasks written (queued.lua) or of the one that plans a batch (plan.lua), which go-redis
// sends again, must neither stop the expansion part way nor send anyone twice: the second
// run of the script finds its own batch applied.
func TestLostScriptReplyDoesNotStallTheRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		match func(runID string) func(args []any) bool
	}{
		// MarkQueuedRows: one key, the run hash, and four arguments.
		{"MarkQueued", func(runID string) func([]any) bool {
			return func(a []any) bool { return len(a) == 8 && fmt.Sprint(a[2]) == "1" && a[3] == rkeys.Run(runID) }
		}},
		// PlanQueued: the run hash, its counts, its codes and its buckets.
		{"Plan", func(runID string) func([]any) bool {
			return func(a []any) bool {
				return len(a) > 6 && a[3] == rkeys.Run(runID) && a[4] == rkeys.Counts(runID) && a[5] == rkeys.Codes(runID)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx := context.Background()
			def := b.campaign(t, audienceCSV(1000), "")
			sub := b.submit(t, def)
			runID := expand.TickRunID(def.ID, testNow)
			task := expandTask(t, campaigns.ExpandPayload{Run: runID, Campaign: def.ID, Version: sub.Version, Trigger: "cron"})
			cfg := expand.Config{MinBacklog: 5000, MaxBacklog: 5000, BatchSize: 100}

			flaky := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
			defer flaky.Close()
			hook := &replayHook{match: tc.match(runID), n: 2}
			flaky.AddHook(hook)
			if err := b.handler(flaky, cfg).ProcessTask(ctx, task); err != nil {
				t.Fatalf("ProcessTask: %v", err)
			}
			if hook.seen.Load() < 2 {
				t.Fatalf("the script to replay ran %d times", hook.seen.Load())
			}
			run := b.getRun(t, runID)
			pending := b.pending(t, campaigns.QueueFor("marketing"))
			t.Logf("expanded=%v planned_to=%d queued_to=%d, %d send tasks", run.Expanded, run.PlannedTo, run.QueuedTo, len(pending))
			if !run.Expanded {
				t.Fatalf("the expansion task succeeded, yet the run is not expanded (%d of 1000 rows have a send task)", len(pending))
			}
			var want []string
			for i := range 1000 {
				want = append(want, fmt.Sprintf("+5511%09d", 900000000+i))
			}
			b.checkConsistent(t, runID, 1000, want)
		})
	}
}

// gate holds the nth script call of a client that match accepts until released: arrived is
// closed when the call comes, done once it has run.
type gate struct {
	n                      int32
	arrived, release, done chan struct{}
}

// gateHook applies gates to the script calls of one kind (match) on one client.
type gateHook struct {
	rdb   *redis.Client
	match func(args []any) bool
	seen  atomic.Int32
	gates []*gate
}

func newGate(n int32) *gate {
	return &gate{n: n, arrived: make(chan struct{}), release: make(chan struct{}), done: make(chan struct{})}
}

func (h *gateHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *gateHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *gateHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !((cmd.Name() == "evalsha" || cmd.Name() == "eval") && h.match(cmd.Args())) {
			return next(ctx, cmd)
		}
		if cmd.Name() == "evalsha" {
			// An EVALSHA of a script not loaded yet is answered NOSCRIPT, and go-redis sends
			// EVAL: only the call that runs counts.
			if ok, err := h.rdb.ScriptExists(ctx, fmt.Sprint(cmd.Args()[1])).Result(); err != nil || !ok[0] {
				return next(ctx, cmd)
			}
		}
		n := h.seen.Add(1)
		for _, g := range h.gates {
			if g.n == n {
				close(g.arrived)
				<-g.release
				err := next(ctx, cmd)
				close(g.done)
				return err
			}
		}
		return next(ctx, cmd)
	}
}

// wait waits for c, failing the test after a while.
func wait(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestRacingExpansionsBothHandOver: two expansions of one run race (a task put back while its
// old holder still ran), each moving a cursor past the other's next batch. Each finds its
// batch applied or moved past; neither may just stop (so did both, leaving the run half
// expanded with no task): the one that finds its own batch done goes on, the one moved past
// hands over to a continuation, and the run ends expanded with one task per recipient.
func TestRacingExpansionsBothHandOver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	def := b.campaign(t, audienceCSV(600), "")
	run := b.createRun(t, b.expander(nil, 0), def)
	cfg := expand.Config{MinBacklog: 5000, MaxBacklog: 5000, BatchSize: 50}
	step := expandTask(t, campaigns.ExpandPayload{Run: run.ID, Campaign: def.ID, Trigger: "send", Seq: 1})
	plans := func(a []any) bool { return len(a) > 6 && a[3] == rkeys.Run(run.ID) && a[4] == rkeys.Counts(run.ID) }
	marks := func(a []any) bool { return len(a) == 8 && fmt.Sprint(a[2]) == "1" && a[3] == rkeys.Run(run.ID) }
	client := func(hooks ...redis.Hook) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
		t.Cleanup(func() { c.Close() })
		for _, h := range hooks {
			c.AddHook(h)
		}
		return c
	}
	// A plans rows 1-50 and holds its mark of them (g1) and its next two plans (g2, g4).
	g1, g2, g4 := newGate(1), newGate(2), newGate(3)
	a := client(&gateHook{rdb: b.rdb, match: marks, gates: []*gate{g1}}, &gateHook{rdb: b.rdb, match: plans, gates: []*gate{g2, g4}})
	// B holds its first plan (g3).
	g3 := newGate(1)
	bc := client(&gateHook{rdb: b.rdb, match: plans, gates: []*gate{g3}})
	errs := make(chan error, 2)
	go func() { errs <- b.handler(a, cfg).ProcessTask(ctx, step) }()
	wait(t, g1.arrived, "A's first mark")
	wait(t, g2.arrived, "A's second plan")
	// B starts from the cursors: it writes rows 1-50 again, marks them, and comes to plan 51-100.
	go func() { errs <- b.handler(bc, cfg).ProcessTask(ctx, step) }()
	wait(t, g3.arrived, "B's first plan")
	close(g2.release) // A plans rows 51-100
	wait(t, g4.arrived, "A's third plan")
	close(g1.release) // A marks rows 1-50, which B marked already
	wait(t, g1.done, "A's first mark")
	close(g3.release) // B plans rows 51-100, which A planned already
	wait(t, g3.done, "B's first plan")
	close(g4.release)
	for range 2 {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("ProcessTask: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("an expansion did not return")
		}
	}
	// Whatever is left of the chains runs to the end.
	for i := 0; !b.getRun(t, run.ID).Expanded; i++ {
		r := b.getRun(t, run.ID)
		tasks := b.expansionTasks(t)
		if len(tasks) == 0 || i > 10 {
			t.Fatalf("run half expanded (planned_to %d, queued_to %d) and no expansion task carries it on", r.PlannedTo, r.QueuedTo)
		}
		for _, ti := range tasks {
			if err := b.inspector.DeleteTask(campaigns.ExpandQueue, ti.ID); err != nil {
				t.Fatal(err)
			}
			if err := b.handler(nil, cfg).ProcessTask(ctx, asynq.NewTask(ti.Type, ti.Payload)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var want []string
	for i := range 600 {
		want = append(want, fmt.Sprintf("+5511%09d", 900000000+i))
	}
	b.checkConsistent(t, run.ID, 600, want)
}
