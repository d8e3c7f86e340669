package expand_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// badZoneWindow is send hours in a zone spelled another way than its own: time.LoadLocation
// takes "Asia/./Tokyo", campaigns.LoadZone (the one zone reader) does not.
const badZoneWindow = "send_window: {from: \"00:00\", to: \"23:59\", timezone: \"Asia/./Tokyo\"}\n"

// TestRunWhoseCampaignCannotExpandIsPausedNotRetried: a run of `campaign send` whose campaign,
// as the run keeps it, cannot be expanded (its send hours name a zone in a spelling no longer
// taken, as an older Herald let through) is paused with the reason, and its expansion step
// ends without an error, so asynq does not try it again. While the run stays paused the next
// step only looks at its status; once resumed it tries again, and pauses again; once cancelled
// it closes the run at the rows it had read, and the chain ends.
func TestRunWhoseCampaignCannotExpandIsPausedNotRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.startContinuing(t, 300)
	// The campaign as the run keeps it, as a Herald that read zones with time.LoadLocation kept it.
	kept := rkeys.DefinitionFile(st.Run.Campaign, st.Run.Source)
	yaml, err := b.rdb.HGet(ctx, kept, "yaml").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.rdb.HSet(ctx, kept, "yaml", yaml+badZoneWindow).Err(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := expand.NewHandler(expand.Config{MinBacklog: 100, MaxBacklog: 100, Task: campaigns.TaskOptions{MaxRetry: 25}}, expand.Deps{
		Redis: b.rdb, Logger: zerolog.New(&logs), Now: (&fakeTime{}).Now,
		Sender: func(*campaigns.Definition) (string, error) { return "+14151111234", nil },
	})
	attempts := func() int { return strings.Count(logs.String(), "its expansion cannot go on") }
	step := func(what string) {
		t.Helper()
		task := b.continuation(t)
		if task == nil {
			t.Fatalf("%s: the run has no expansion step", what)
		}
		if err := h.ProcessTask(ctx, task); err != nil {
			t.Fatalf("%s: the step failed (asynq would try it again): %v", what, err)
		}
	}

	step("first step")
	run := b.getRun(t, st.RunID)
	if run.Status != ledger.RunPaused || !strings.Contains(run.PauseReason, "expansion stopped: ") ||
		!strings.Contains(run.PauseReason, `send_window.timezone: "Asia/./Tokyo"`) || !strings.Contains(run.PauseReason, `write "Asia/Tokyo"`) {
		t.Fatalf("run %s (%q); want paused with the reason and what to write instead", run.Status, run.PauseReason)
	}
	if attempts() != 1 {
		t.Fatalf("%d attempts logged, want 1", attempts())
	}

	step("while paused")
	if attempts() != 1 {
		t.Fatalf("a step of a run paused for its expansion tried again (%d attempts)", attempts())
	}

	if _, err := b.ledger.Resume(ctx, st.RunID); err != nil {
		t.Fatal(err)
	}
	step("after the resume")
	if run := b.getRun(t, st.RunID); run.Status != ledger.RunPaused || attempts() != 2 {
		t.Fatalf("resumed run: %s after %d attempts; want tried once more and paused again", run.Status, attempts())
	}

	if _, _, err := b.ledger.Cancel(ctx, st.RunID, "given up"); err != nil {
		t.Fatal(err)
	}
	step("after the cancel")
	run, c := b.getRun(t, st.RunID), b.counters(t, st.RunID)
	if run.Status != ledger.RunCancelled || !run.Expanded || run.Total != 100 || c.Sum() != 100 || run.Finished.IsZero() {
		t.Fatalf("cancelled run: %s, expanded %v, total %d, states add up to %d; want closed at the 100 rows it had read",
			run.Status, run.Expanded, run.Total, c.Sum())
	}
	if next := b.continuation(t); next != nil {
		t.Fatal("a closed run still has an expansion step")
	}
}

// TestCampaignSendPausesARunItCannotExpand: `campaign send` given a definition whose send
// hours do not load (built in memory here; validation refuses such a file) pauses the run it
// created with the reason, and says so, instead of leaving it running for its expansion task
// to fail on forever.
func TestCampaignSendPausesARunItCannotExpand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	def := b.campaign(t, audienceCSV(50), "")
	def.SendHoursSpec = campaigns.SendHoursSpec{From: "00:00", To: "23:59", Timezone: "America/./New_York"}
	st, err := b.runs(expand.Config{}).StartRun(ctx, expand.StartParams{Def: def, Bounded: true})
	if err == nil || !expand.Permanent(err) || !strings.Contains(err.Error(), "paused") {
		t.Fatalf("StartRun: %v; want a permanent error saying the run is paused", err)
	}
	run := b.getRun(t, st.RunID)
	if run.Status != ledger.RunPaused || !strings.Contains(run.PauseReason, `"America/./New_York"`) {
		t.Fatalf("run %s (%q); want paused with the zone in the reason", run.Status, run.PauseReason)
	}
}

// failFirstScript fails the first script call it sees once armed with an error that is
// neither a passing cause nor a permanent one: asynq would count it as a failure.
type failFirstScript struct {
	armed, done atomic.Bool
}

var errUnexpected = errors.New("ERR unexpected reply")

func (f *failFirstScript) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *failFirstScript) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f.armed.Load() && strings.HasPrefix(cmd.Name(), "eval") && f.done.CompareAndSwap(false, true) {
			cmd.SetErr(errUnexpected)
			return errUnexpected
		}
		return next(ctx, cmd)
	}
}
func (f *failFirstScript) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestCancelledRunStepFailureClosesIt: a step of a cancelled run that fails (in a way asynq
// would count and try again) closes the run at the rows it had read and ends without an
// error: nothing of a cancelled run is tried again.
func TestCancelledRunStepFailureClosesIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.startContinuing(t, 300)
	if _, _, err := b.ledger.Cancel(ctx, st.RunID, "wrong audience"); err != nil {
		t.Fatal(err)
	}
	fault := &failFirstScript{}
	rdb := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	rdb.AddHook(fault)
	h := b.handlerClock(rdb, expand.Config{MinBacklog: 100, MaxBacklog: 100}, (&fakeTime{}).Now, nil)
	task := b.continuation(t)
	if task == nil {
		t.Fatal("no expansion step")
	}
	fault.armed.Store(true)
	if err := h.ProcessTask(ctx, task); err != nil {
		t.Fatalf("the step of a cancelled run failed (asynq would try it again): %v", err)
	}
	if !fault.done.Load() {
		t.Fatal("the fault was not met")
	}
	run := b.getRun(t, st.RunID)
	if run.Status != ledger.RunCancelled || !run.Expanded || run.Finished.IsZero() {
		t.Fatalf("cancelled run: %s, expanded %v; want closed", run.Status, run.Expanded)
	}
	if next := b.continuation(t); next != nil {
		t.Fatal("a closed run still has an expansion step")
	}
	tasks, err := b.inspector.ListPendingTasks(campaigns.ExpandQueue)
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatal(err)
	}
	if len(tasks) != 0 {
		t.Fatalf("%d expansion tasks pending, want none", len(tasks))
	}
}
