package serve_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/serve"
)

// expansionSetup is a run of campaign send to n recipients (more than the 500 rows of one
// expansion batch) with a backlog of 10: the command plans the first batch, and the run's next
// expansion step waits in the expansion queue for the rest.
func expansionSetup(t *testing.T, n int) *repairBundle {
	t.Helper()
	c := config.Default()
	c.Scheduler.MinBacklog, c.Scheduler.MaxBacklog = 10, 10
	b := repairSetupWith(t, c, n)
	r, err := b.l.GetRun(context.Background(), b.run.ID)
	if err != nil || r.Expanded || r.QueuedTo != 500 {
		t.Fatalf("run %+v, %v; want its first 500 rows queued, not expanded", r, err)
	}
	if info, err := b.in.GetTaskInfo(campaigns.ExpandQueue, b.step(1)); err != nil || info.State != asynq.TaskStateScheduled {
		t.Fatalf("the run's next expansion step: %+v, %v; want it scheduled", info, err)
	}
	return b
}

// step is the id of expansion step seq of the run.
func (b *repairBundle) step(seq int) string { return campaigns.ExpandTaskID(b.run.ID, seq) }

// expandAll takes every pending or scheduled expansion task off the expansion queue and runs
// them all at once through h, as expansion servers would; it returns how many ran.
func (b *repairBundle) expandAll(t *testing.T, h *expand.Handler) int {
	t.Helper()
	var ts []*asynq.TaskInfo
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){b.in.ListPendingTasks, b.in.ListScheduledTasks} {
		got, err := list(campaigns.ExpandQueue)
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			t.Fatal(err)
		}
		ts = append(ts, got...)
	}
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, ti := range ts {
		if err := b.in.DeleteTask(campaigns.ExpandQueue, ti.ID); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.ProcessTask(context.Background(), asynq.NewTask(ti.Type, ti.Payload))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("expansion steps: %v", err)
	}
	return len(ts)
}

// settlePending takes every pending send task of the run's queue off it and settles its
// recipient as a worker whose every send is accepted would (the ledger's claim, then its
// outcome), counting a send for each claim that said to send; it returns how many ran. It is
// the worker's ledger steps without its pacing, which would make a run of a thousand take
// seconds.
func (b *repairBundle) settlePending(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	ts, err := b.in.ListPendingTasks(b.run.Queue, asynq.PageSize(1000))
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatal(err)
	}
	for _, ti := range ts {
		p, err := campaigns.DecodeSend(ti.Payload)
		if err != nil {
			t.Fatal(err)
		}
		c, err := b.l.Claim(ctx, p.Address(), b.run.Delivery)
		if err != nil {
			t.Fatal(err)
		}
		if c.Verdict == ledger.VerdictSend {
			b.sender.mu.Lock()
			if b.sender.calls == nil {
				b.sender.calls = map[string]int{}
			}
			b.sender.calls[p.To]++
			b.sender.mu.Unlock()
			if _, err := b.l.Finish(ctx, p.Address(), ledger.Outcome{State: ledger.Accepted, MessageID: "m" + p.To, Attempt: c.Attempts}); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.in.DeleteTask(b.run.Queue, ti.ID); err != nil {
			t.Fatal(err)
		}
	}
	return len(ts)
}

// drive runs the run's expansion steps and settles its send tasks, round after round, until
// neither is left, as an expansion server and a worker would.
func (b *repairBundle) drive(t *testing.T) {
	t.Helper()
	h := expand.NewHandler(serve.BacklogConfig(b.config, serve.ExpandTaskOptions(b.config)), serve.ExpandDeps(b.config, b.rdb, zerolog.Nop(), nil))
	for range 50 {
		if b.expandAll(t, h)+b.settlePending(t) == 0 {
			return
		}
	}
	t.Fatal("the run still expands or sends after 50 rounds")
}

// wantEverySentOnce checks that each of the run's n recipients was sent exactly once, and the
// run completed with its n rows, its counters agreeing with its ledger.
func (b *repairBundle) wantEverySentOnce(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 1; i <= n; i++ {
		if got := b.sender.to(number(i)); got != 1 {
			t.Fatalf("recipient %d sent %d times, want once", i, got)
		}
	}
	r, err := b.l.GetRun(ctx, b.run.ID)
	if err != nil || r.Status != ledger.RunCompleted || !r.Expanded || r.Total != n {
		t.Fatalf("run %s, expanded %v, %d rows, %v; want completed with %d rows", r.Status, r.Expanded, r.Total, err, n)
	}
	if v, err := b.l.Verify(ctx, b.run.ID); err != nil || len(v.Mismatches) > 0 || v.Entries != int64(n) {
		t.Fatalf("counters: %+v (%d entries), %v", v.Mismatches, v.Entries, err)
	}
}

// A run whose expansion task is gone (deleted, or removed outside Herald) would never plan
// the rows not read yet: the look finds it and changes nothing; the repair enqueues a new
// expansion step, which carries the run on from its cursors; a second repair finds that step
// and does nothing; every recipient is then sent once and the run completes.
func TestRepairRunRestartsALostExpansion(t *testing.T) {
	t.Parallel()
	b := expansionSetup(t, 600)
	if err := b.in.DeleteTask(campaigns.ExpandQueue, b.step(1)); err != nil {
		t.Fatal(err)
	}
	before := b.mr.Dump()
	if dry := b.repair(t, false); found(dry) != "lost_expansion 1/0 " {
		t.Fatalf("look: %q, want the lost expansion", found(dry))
	}
	if b.mr.Dump() != before {
		t.Error("the look without --apply changed Redis")
	}
	if res := b.repair(t, true); found(res) != "lost_expansion 1/1 " || res.Status != ledger.RunRunning {
		t.Fatalf("repair: %q, %s", found(res), res.Status)
	}
	info, err := b.in.GetTaskInfo(campaigns.ExpandQueue, b.step(1))
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("the new expansion step: %+v, %v; want it pending", info, err)
	}
	p, err := campaigns.DecodeExpand(info.Payload)
	if err != nil || p.Run != b.run.ID || p.Campaign != b.run.Campaign || p.Version != b.run.Version || p.Seq != 1 || p.Trigger != "repair" {
		t.Fatalf("the new step's payload %+v, %v", p, err)
	}
	if again := b.repair(t, true); len(again.Findings) != 0 {
		t.Fatalf("second repair: %q, want nothing", found(again))
	}
	wantLog(t, b.rdb, fmt.Sprintf("ana run repair %s: lost_expansion 1", b.run.ID))
	b.drive(t)
	b.wantEverySentOnce(t, 600)
}

// A second chain beside one the look missed (its step moving between asynq's lists as the
// repair looked, here put back under a later step once the repair had enqueued its own) plans
// no row twice: both carry on from the run's cursors, their steps running at once, until one
// has expanded the run.
func TestRepairRunSecondExpansionIsSafe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := expansionSetup(t, 1400)
	old, err := b.in.GetTaskInfo(campaigns.ExpandQueue, b.step(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.in.DeleteTask(campaigns.ExpandQueue, b.step(1)); err != nil {
		t.Fatal(err)
	}
	if res := b.repair(t, true); found(res) != "lost_expansion 1/1 " {
		t.Fatalf("repair: %q", found(res))
	}
	p, err := campaigns.DecodeExpand(old.Payload)
	if err != nil {
		t.Fatal(err)
	}
	p.Seq = 5
	if err := expand.EnqueueContinuation(ctx, asynq.NewClientFromRedisClient(b.rdb), p, 0); err != nil {
		t.Fatal(err)
	}
	if again := b.repair(t, true); len(again.Findings) != 0 {
		t.Fatalf("repair with two steps live: %q, want nothing", found(again))
	}
	b.drive(t)
	b.wantEverySentOnce(t, 1400)
}

// A cancelled run whose expansion task is gone never accounts for the rows it did not read:
// cancel says its expansion stopped and names the repair, which starts the expansion again;
// the expansion plans every row not read as skipped(cancelled), with no task, and the run's
// states add up to its audience.
func TestRepairRunClosesACancelledRunsLostExpansion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := expansionSetup(t, 600)
	if err := b.in.DeleteTask(campaigns.ExpandQueue, b.step(1)); err != nil {
		t.Fatal(err)
	}
	res, err := serve.CancelRun(ctx, config.Config{}, b.rdb, b.run.ID, audit.Record{Redis: b.rdb, Actor: "ana"})
	want := fmt.Sprintf("500 recipients skipped, and the 100 rows not read yet once its expansion runs again: it stopped (herald run repair %s)", b.run.ID)
	if err != nil || !res.Changed || res.Detail != want {
		t.Fatalf("CancelRun = %+v, %v; want %q", res, err, want)
	}
	if fix := b.repair(t, true); found(fix) != "lost_expansion 1/1 " || fix.Status != ledger.RunCancelled {
		t.Fatalf("repair: %q, %s", found(fix), fix.Status)
	}
	b.drive(t)
	r, err := b.l.GetRun(ctx, b.run.ID)
	if err != nil || r.Status != ledger.RunCancelled || !r.Expanded || r.Total != 600 || r.Finished.IsZero() {
		t.Fatalf("run %s, expanded %v, %d rows, finished %v, %v; want cancelled, expanded with 600 rows, finished", r.Status, r.Expanded, r.Total, r.Finished, err)
	}
	c, err := b.l.Counters(ctx, b.run.ID)
	if err != nil || c.Sum() != 600 || c.States[ledger.Skipped] != 600 || c.Codes["skipped:cancelled"] != 600 {
		t.Fatalf("counters %+v, %v; want the 600 rows skipped(cancelled)", c, err)
	}
	if b.sender.to(number(1)) != 0 || b.sender.to(number(600)) != 0 {
		t.Fatal("a recipient of the cancelled run was sent")
	}
	if again := b.repair(t, true); len(again.Findings) != 0 {
		t.Fatalf("second repair: %q, want nothing", found(again))
	}
}

// A run whose expansion task was archived (its retries used up) is reported as such, and the
// repair retries that task rather than enqueue another.
func TestRepairRunRetriesAnArchivedExpansion(t *testing.T) {
	t.Parallel()
	b := expansionSetup(t, 600)
	if err := b.in.ArchiveTask(campaigns.ExpandQueue, b.step(1)); err != nil {
		t.Fatal(err)
	}
	if dry := b.repair(t, false); found(dry) != "expansion_archived 1/0 " {
		t.Fatalf("look: %q", found(dry))
	}
	if res := b.repair(t, true); found(res) != "expansion_archived 1/1 " {
		t.Fatalf("repair: %q", found(res))
	}
	if info, err := b.in.GetTaskInfo(campaigns.ExpandQueue, b.step(1)); err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("the archived step: %+v, %v; want it pending again", info, err)
	}
	if again := b.repair(t, true); len(again.Findings) != 0 {
		t.Fatalf("second repair: %q, want nothing", found(again))
	}
	b.drive(t)
	b.wantEverySentOnce(t, 600)
}
