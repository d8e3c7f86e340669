package expand_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
)

// runChain plays an expansion server over a run's expansion tasks until the run is expanded,
// sending every task as it goes (counted into sent), and fails when no task carries a run
// that is not expanded on.
func (b *testBundle) runChain(tb testing.TB, runID, queue string, cfg expand.Config, sent map[string]int) {
	tb.Helper()
	ctx := context.Background()
	h := b.handlerTime(cfg, &fakeTime{})
	b.sendAll(tb, queue, sent)
	for step := 0; !b.getRun(tb, runID).Expanded; step++ {
		var tasks []*asynq.TaskInfo
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			b.inspector.ListPendingTasks, b.inspector.ListScheduledTasks} {
			ts, err := list(campaigns.ExpandQueue)
			if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
				tb.Fatal(err)
			}
			tasks = append(tasks, ts...)
		}
		r := b.getRun(tb, runID)
		if len(tasks) == 0 || step > 100 {
			tb.Fatalf("run %s is %s, expanded to row %d, and no expansion task carries it on", r.ID, r.Status, r.QueuedTo)
		}
		for _, ti := range tasks {
			if err := b.inspector.DeleteTask(campaigns.ExpandQueue, ti.ID); err != nil {
				tb.Fatal(err)
			}
			if err := h.ProcessTask(ctx, asynq.NewTask(ti.Type, ti.Payload)); err != nil {
				tb.Fatalf("step %d: %v", step, err)
			}
		}
		b.sendAll(tb, queue, sent)
	}
}

// TestCampaignSendStoppedMidExpansionIsCarriedOn: `herald campaign send` (StartRun of a file,
// Bounded) is stopped (SIGTERM cancels its context; SIGKILL likewise stops it) after its first
// batch of send tasks reached Redis. Its next expansion step was enqueued before it expanded
// anything, so an expansion server carries the run to its end, every recipient once.
func TestCampaignSendStoppedMidExpansionIsCarriedOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	def := b.campaign(t, audienceCSV(300), "")
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	killed := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
	defer killed.Close()
	killed.AddHook(&killHook{n: 1, after: true, cancel: cancel})
	cfg := expand.Config{Task: campaigns.TaskOptions{MaxRetry: 10}, BatchSize: 10, MinBacklog: 1000, MaxBacklog: 1000}
	r := expand.NewRuns(cfg, expand.Deps{Redis: killed, Logger: zerolog.Nop(), Now: func() time.Time { return testNow },
		Sender: func(*campaigns.Definition) (string, error) { return "+14151111234", nil }})
	st, err := r.StartRun(kctx, expand.StartParams{Def: def, Bounded: true})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("StartRun: %v", err)
	}
	run := b.getRun(t, st.RunID)
	if run.Expanded {
		t.Fatal("run expanded although the command was stopped")
	}
	sent := map[string]int{}
	b.runChain(t, st.RunID, run.Queue, cfg, sent)
	if len(sent) != 300 {
		t.Fatalf("%d recipients sent, want 300", len(sent))
	}
	for i := range 300 {
		if k := fmt.Sprintf("%s +5511%09d", st.RunID, 900000000+i); sent[k] != 1 {
			t.Fatalf("%s sent %d times", k, sent[k])
		}
	}
	if c := b.counters(t, st.RunID); c.Sum() != 300 {
		t.Fatalf("states add up to %d, want 300", c.Sum())
	}
}

// failingEnqueuer refuses every task, as a Redis that went away does.
type failingEnqueuer struct{}

func (failingEnqueuer) EnqueueContext(context.Context, *asynq.Task, ...asynq.Option) (*asynq.TaskInfo, error) {
	return nil, errors.New("dial tcp: connection refused")
}

// TestCampaignSendWhoseExpansionTaskCannotBeEnqueued: the run's next expansion step is
// enqueued before the run is stored; when it cannot be, no run is created (nothing would
// carry it on), and the command fails saying so.
func TestCampaignSendWhoseExpansionTaskCannotBeEnqueued(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	def := b.campaign(t, audienceCSV(30), "")
	r := expand.NewRuns(expand.Config{BatchSize: 10}, expand.Deps{Redis: b.rdb, Logger: zerolog.Nop(), Now: func() time.Time { return testNow },
		Enqueuer: failingEnqueuer{}, Sender: func(*campaigns.Definition) (string, error) { return "+14151111234", nil }})
	_, err := r.StartRun(ctx, expand.StartParams{Def: def, Bounded: true})
	if err == nil || !strings.Contains(err.Error(), "not started") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("StartRun: %v", err)
	}
	if runs, err := b.ledger.RecentRuns(ctx, "", 10); err != nil || len(runs) != 0 {
		t.Fatalf("runs after a start whose expansion step could not be enqueued: %v, %v; want none", runs, err)
	}
}
