package serve_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/serve"
	"github.com/heraldmsg/herald/worker"
)

// countingSender accepts every template message and counts them by number.
type countingSender struct {
	mu    sync.Mutex
	calls map[string]int
}

func (s *countingSender) SendTemplate(_ context.Context, msg connectly.TemplateMessage) (connectly.SendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[msg.Number]++
	return connectly.SendResult{ID: "msg-" + msg.Number}, nil
}

func (s *countingSender) to(number string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[number]
}

// repairBundle is a run of campaign send on miniredis, the tools to break it as an operator's
// redis-cli would, and a worker to send what is left.
type repairBundle struct {
	mr     *miniredis.Miniredis
	rdb    *redis.Client
	l      *ledger.Ledger
	in     *asynq.Inspector
	run    ledger.Run
	ids    ledger.TaskIDs
	sender *countingSender
	worker *worker.Worker
	config config.Config
}

func repairSetup(t *testing.T, n int) *repairBundle {
	t.Helper()
	return repairSetupWith(t, config.Default(), n)
}

// repairSetupWith is repairSetup with config c, extra added to the campaign's YAML.
func repairSetupWith(t *testing.T, c config.Config, n int, extra ...string) *repairBundle {
	t.Helper()
	mr, rdb := testredis.Mini(t)
	sent := send(t, c, rdb, n, extra...)
	l := ledger.New(rdb, nil)
	ids, err := l.TaskIDs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	in := asynq.NewInspectorFromRedisClient(rdb)
	t.Cleanup(func() { in.Close() })
	s := &countingSender{}
	w := worker.New(serve.WorkerConfig(c), worker.Deps{Redis: rdb, Sender: s, Logger: zerolog.Nop()})
	return &repairBundle{mr: mr, rdb: rdb, l: l, in: in, run: sent.Run, ids: ids, sender: s, worker: w, config: c}
}

// number is recipient i's number in a run of campaignFile.
func number(i int) string { return fmt.Sprintf("+1201555%04d", i) }

func (b *repairBundle) addr(i int) ledger.Address {
	return ledger.AddressIn(b.run.ID, number(i), b.run.Buckets)
}

// claim claims recipient i as a worker does before its request.
func (b *repairBundle) claim(t *testing.T, i int) {
	t.Helper()
	if c, err := b.l.Claim(context.Background(), b.addr(i), b.run.Delivery); err != nil || c.Verdict != ledger.VerdictSend {
		t.Fatalf("claim %d: %+v, %v", i, c, err)
	}
}

// removeTask removes recipient i's send task the way redis-cli would: its hash and its id in
// the pending list, nothing else.
func (b *repairBundle) removeTask(t *testing.T, i int) string {
	t.Helper()
	ctx := context.Background()
	id := b.ids.TaskID(b.run.ID, number(i))
	if n, err := b.rdb.Del(ctx, rkeys.AsynqTask(b.run.Queue, id)).Result(); err != nil || n != 1 {
		t.Fatalf("remove the task of %d: %d, %v", i, n, err)
	}
	if err := b.rdb.LRem(ctx, rkeys.AsynqPending(b.run.Queue), 0, id).Err(); err != nil {
		t.Fatal(err)
	}
	return id
}

func (b *repairBundle) entry(t *testing.T, i int) ledger.Entry {
	t.Helper()
	e, _, err := b.l.Entry(context.Background(), b.addr(i))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (b *repairBundle) repair(t *testing.T, apply bool) serve.Repair {
	t.Helper()
	res, err := serve.RepairRun(context.Background(), serve.RepairParams{Config: b.config, Redis: b.rdb, Log: zerolog.Nop(),
		Run: b.run.ID, Apply: apply, Audit: audit.Record{Redis: b.rdb, Actor: "ana", Reason: "tasks deleted by hand"}})
	if err != nil {
		t.Fatalf("RepairRun(apply %v): %v", apply, err)
	}
	return res
}

// sendPending runs every pending send task of the run's queue through the worker's handler,
// as a worker would, and removes it.
func (b *repairBundle) sendPending(t *testing.T) int {
	t.Helper()
	ts, err := b.in.ListPendingTasks(b.run.Queue)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range ts {
		if err := b.worker.HandleSend(context.Background(), asynq.NewTask(ti.Type, ti.Payload)); err != nil {
			t.Fatalf("send %s: %v", ti.ID, err)
		}
		if err := b.in.DeleteTask(b.run.Queue, ti.ID); err != nil {
			t.Fatal(err)
		}
	}
	return len(ts)
}

// found returns the repair's findings as "kind found/repaired samples" lines.
func found(r serve.Repair) string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, fmt.Sprintf("%s %d/%d %s", f.Kind, f.Found, f.Repaired, strings.Join(f.Samples, ",")))
	}
	return strings.Join(out, "\n")
}

// A claim no task is left to settle becomes unknown(TASK_DELETED); a claim whose worker still
// holds the lease of its task, whose hash was removed, is left alone; a queued recipient whose
// task was removed gets it written again, and a worker sends it once; a recipient whose task
// is still queued is left to it. The look changes nothing; the repair is kept in the audit log;
// a second repair finds nothing; the run completes once its live worker and its tasks are done.
func TestRepairRunSettlesAndRequeues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := repairSetup(t, 4)
	b.claim(t, 1)
	b.removeTask(t, 1)
	b.claim(t, 2)
	live := b.removeTask(t, 2)
	// Recipient 2's worker runs on: asynq's lease on its task is a minute ahead.
	if err := b.rdb.ZAdd(ctx, rkeys.AsynqLease(b.run.Queue), redis.Z{Score: float64(time.Now().Add(time.Minute).Unix()), Member: live}).Err(); err != nil {
		t.Fatal(err)
	}
	b.removeTask(t, 3)

	before := b.mr.Dump()
	dry := b.repair(t, false)
	if b.mr.Dump() != before {
		t.Error("the look without --apply changed Redis")
	}
	want := "stranded_claim 1/0 ********0001\nlost_task 1/0 ********0003"
	if found(dry) != want || dry.InFlight != 1 || dry.Applied || dry.Status != ledger.RunRunning {
		t.Fatalf("look:\n%s\nin flight %d, applied %v, %s; want\n%s\nin flight 1", found(dry), dry.InFlight, dry.Applied, dry.Status, want)
	}
	wantLog(t, b.rdb)

	res := b.repair(t, true)
	if want := "stranded_claim 1/1 ********0001\nlost_task 1/1 ********0003"; found(res) != want || res.InFlight != 1 || res.Moved != 0 {
		t.Fatalf("repair:\n%s\nin flight %d, moved %d; want\n%s\nin flight 1", found(res), res.InFlight, res.Moved, want)
	}
	if e := b.entry(t, 1); e.State != ledger.Unknown || e.Code != ledger.CodeTaskDeleted || e.Attempts != 1 {
		t.Errorf("recipient 1: %+v, want unknown(%s) after 1 attempt", e, ledger.CodeTaskDeleted)
	}
	if e := b.entry(t, 2); e.State != ledger.Submitting {
		t.Errorf("recipient 2, whose worker holds its lease: %+v, want submitting", e)
	}
	info, err := b.in.GetTaskInfo(b.run.Queue, b.ids.TaskID(b.run.ID, number(3)))
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("recipient 3's task: %+v, %v; want pending", info, err)
	}
	wantLog(t, b.rdb, fmt.Sprintf("ana run repair %s: stranded_claim 1, lost_task 1", b.run.ID))

	again := b.repair(t, true)
	if len(again.Findings) != 0 || again.InFlight != 1 {
		t.Fatalf("second repair: %s, in flight %d; want nothing but the live worker's", found(again), again.InFlight)
	}
	wantLog(t, b.rdb, fmt.Sprintf("ana run repair %s: stranded_claim 1, lost_task 1", b.run.ID))

	if n := b.sendPending(t); n != 2 {
		t.Fatalf("%d tasks pending, want recipients 3 and 4", n)
	}
	for i := 3; i <= 4; i++ {
		if got := b.sender.to(number(i)); got != 1 {
			t.Errorf("recipient %d sent %d times, want once", i, got)
		}
	}
	if _, err := b.l.Finish(ctx, b.addr(2), ledger.Outcome{State: ledger.Accepted, MessageID: "m2", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if r, err := b.l.GetRun(ctx, b.run.ID); err != nil || r.Status != ledger.RunCompleted {
		t.Fatalf("run: %s, %v; want completed", r.Status, err)
	}
	if v, err := b.l.Verify(ctx, b.run.ID); err != nil || len(v.Mismatches) > 0 {
		t.Fatalf("counters: %+v, %v", v.Mismatches, err)
	}
}

// A claim whose task's hash was removed is left alone while an asynq server that beats lists
// its task as in progress, even with its lease run out; once no server lists it and its lease
// ran out, the claim is settled.
func TestRepairRunLeavesAClaimALiveServerRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := repairSetup(t, 1)
	b.claim(t, 1)
	id := b.removeTask(t, 1)
	old := float64(time.Now().Add(-time.Hour).Unix())
	if err := b.rdb.ZAdd(ctx, rkeys.AsynqLease(b.run.Queue), redis.Z{Score: old, Member: id}).Err(); err != nil {
		t.Fatal(err)
	}
	server := "host:1:abc"
	wkey, skey := rkeys.AsynqPrefix+"workers:{"+server+"}", rkeys.AsynqPrefix+"servers:{"+server+"}"
	for _, err := range []error{
		b.rdb.ZAdd(ctx, rkeys.AsynqWorkers(), redis.Z{Score: float64(time.Now().Add(10 * time.Second).Unix()), Member: wkey}).Err(),
		b.rdb.HSet(ctx, wkey, id, "x").Err(),
		b.rdb.Set(ctx, skey, "x", 0).Err(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if res := b.repair(t, true); len(res.Findings) != 0 || res.InFlight != 1 {
		t.Fatalf("repair while a live server lists the task: %s, in flight %d; want left alone", found(res), res.InFlight)
	}
	if e := b.entry(t, 1); e.State != ledger.Submitting {
		t.Fatalf("recipient 1: %+v, want submitting", e)
	}
	// The server stopped beating: its servers key expired.
	if err := b.rdb.Del(ctx, skey).Err(); err != nil {
		t.Fatal(err)
	}
	if res := b.repair(t, true); found(res) != "stranded_claim 1/1 ********0001" {
		t.Fatalf("repair once the server is gone: %s", found(res))
	}
	if r, err := b.l.GetRun(ctx, b.run.ID); err != nil || r.Status != ledger.RunCompleted {
		t.Fatalf("run: %s, %v; want completed", r.Status, err)
	}
}

// A queued recipient whose task cannot be written again, its audience file changed since the
// run started, is skipped(task_lost), and the repair says why.
func TestRepairRunSkipsATaskItCannotRebuild(t *testing.T) {
	t.Parallel()
	b := repairSetup(t, 2)
	b.removeTask(t, 2)
	if err := os.WriteFile(b.run.Audience, []byte("phone,name\n+12015550001,someone else\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dry := b.repair(t, false)
	if found(dry) != "lost_task_skipped 1/0 ********0002" || !strings.Contains(dry.NotRebuilt, "audience file changed") {
		t.Fatalf("look: %s (%s)", found(dry), dry.NotRebuilt)
	}
	if res := b.repair(t, true); found(res) != "lost_task_skipped 1/1 ********0002" {
		t.Fatalf("repair: %s", found(res))
	}
	if e := b.entry(t, 2); e.State != ledger.Skipped || e.Code != ledger.SkipTaskLost {
		t.Fatalf("recipient 2: %+v, want skipped(%s)", e, ledger.SkipTaskLost)
	}
	if b.sendPending(t) != 1 || b.sender.to(number(1)) != 1 {
		t.Fatal("recipient 1's task was not left to send")
	}
	if r, err := b.l.GetRun(context.Background(), b.run.ID); err != nil || r.Status != ledger.RunCompleted {
		t.Fatalf("run: %s, %v; want completed", r.Status, err)
	}
}

// A run whose every row is terminal, but which says running and counts a resend its resend
// set does not hold, is completed, and a run that needs nothing is left as it is.
func TestRepairRunCompletesAStalledRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := repairSetup(t, 2)
	if b.sendPending(t) != 2 {
		t.Fatal("want 2 tasks")
	}
	if res := b.repair(t, true); len(res.Findings) != 0 || res.Status != ledger.RunCompleted {
		t.Fatalf("repair of a completed run: %s, %s", found(res), res.Status)
	}
	wantLog(t, b.rdb)
	if err := b.rdb.HSet(ctx, rkeys.Run(b.run.ID), "status", "running").Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.rdb.HIncrBy(ctx, rkeys.Counts(b.run.ID), "resend_waiting", 1).Err(); err != nil {
		t.Fatal(err)
	}
	if dry := b.repair(t, false); found(dry) != "resend_counter 1/0 \ncompletion 1/0 " || dry.Status != ledger.RunRunning {
		t.Fatalf("look: %s, %s", found(dry), dry.Status)
	}
	if res := b.repair(t, true); found(res) != "resend_counter 1/1 \ncompletion 1/1 " || res.Status != ledger.RunCompleted {
		t.Fatalf("repair: %s, %s", found(res), res.Status)
	}
	if res := b.repair(t, true); len(res.Findings) != 0 {
		t.Fatalf("second repair: %s", found(res))
	}
}

// A run that does not exist is ErrRunNotFound.
func TestRepairRunOfNoRun(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	_, err := serve.RepairRun(context.Background(), serve.RepairParams{Config: config.Default(), Redis: rdb, Log: zerolog.Nop(), Run: "nope"})
	if !errors.Is(err, ledger.ErrRunNotFound) {
		t.Fatalf("RepairRun of no run: %v, want ErrRunNotFound", err)
	}
}

// In an at-least-once run a claim no task is left to settle is sent again, as after a dead
// worker's task is put back: its send task is written again under its id, the look changing
// nothing and a second repair finding it; the worker's claim sends it, and the run completes
// with nobody unknown.
func TestRepairRunSendsAnAtLeastOnceClaimAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := repairSetupWith(t, config.Default(), 3, "delivery: at-least-once\n")
	b.claim(t, 1)
	id := b.removeTask(t, 1)
	before := b.mr.Dump()
	if dry := b.repair(t, false); found(dry) != "stranded_claim_requeued 1/0 ********0001" {
		t.Fatalf("look: %q", found(dry))
	}
	if b.mr.Dump() != before {
		t.Error("the look without --apply changed Redis")
	}
	if res := b.repair(t, true); found(res) != "stranded_claim_requeued 1/1 ********0001" {
		t.Fatalf("repair: %q", found(res))
	}
	if info, err := b.in.GetTaskInfo(b.run.Queue, id); err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("recipient 1's task: %+v, %v; want it pending under its id", info, err)
	}
	if e := b.entry(t, 1); e.State != ledger.Submitting {
		t.Fatalf("recipient 1 before its task runs: %+v, want still submitting", e)
	}
	if again := b.repair(t, true); len(again.Findings) != 0 {
		t.Fatalf("second repair: %q, want nothing", found(again))
	}
	if n := b.sendPending(t); n != 3 {
		t.Fatalf("%d tasks sent, want 3", n)
	}
	for i := 1; i <= 3; i++ {
		if got := b.sender.to(number(i)); got != 1 {
			t.Errorf("recipient %d sent %d times, want once", i, got)
		}
	}
	if e := b.entry(t, 1); e.State != ledger.Accepted || e.Attempts != 2 {
		t.Errorf("recipient 1: %+v, want accepted on its second attempt", e)
	}
	c, err := b.l.Counters(ctx, b.run.ID)
	if err != nil || c.States[ledger.Accepted] != 3 || c.States[ledger.Unknown] != 0 {
		t.Fatalf("counters %+v, %v; want 3 accepted, none unknown", c.States, err)
	}
	if r, err := b.l.GetRun(ctx, b.run.ID); err != nil || r.Status != ledger.RunCompleted {
		t.Fatalf("run: %s, %v; want completed", r.Status, err)
	}
}

// An at-least-once claim whose task cannot be written again (the audience file changed), or
// in a cancelled run, which sends nothing more, becomes unknown(TASK_DELETED) as under
// at-most-once.
func TestRepairRunSettlesAnAtLeastOnceClaimItCannotSend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := repairSetupWith(t, config.Default(), 2, "delivery: at-least-once\n")
	b.claim(t, 1)
	b.removeTask(t, 1)
	if err := os.WriteFile(b.run.Audience, []byte("phone,name\n+12015550009,someone else\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := b.repair(t, true); found(res) != "stranded_claim 1/1 ********0001" || !strings.Contains(res.NotRebuilt, "audience file changed") {
		t.Fatalf("repair with the audience changed: %q (%s)", found(res), res.NotRebuilt)
	}
	if e := b.entry(t, 1); e.State != ledger.Unknown || e.Code != ledger.CodeTaskDeleted {
		t.Fatalf("recipient 1: %+v, want unknown(%s)", e, ledger.CodeTaskDeleted)
	}

	c := repairSetupWith(t, config.Default(), 2, "delivery: at-least-once\n")
	c.claim(t, 1)
	c.removeTask(t, 1)
	if _, err := serve.CancelRun(ctx, config.Config{}, c.rdb, c.run.ID, audit.Record{Redis: c.rdb, Actor: "ana"}); err != nil {
		t.Fatal(err)
	}
	if res := c.repair(t, true); found(res) != "stranded_claim 1/1 ********0001" || res.Status != ledger.RunCancelled {
		t.Fatalf("repair of the cancelled run: %q, %s", found(res), res.Status)
	}
	if e := c.entry(t, 1); e.State != ledger.Unknown || e.Code != ledger.CodeTaskDeleted {
		t.Fatalf("recipient 1 of the cancelled run: %+v, want unknown(%s)", e, ledger.CodeTaskDeleted)
	}
}

// A recipient queued for its one resend whose resend task is gone before it made a request
// (held by the paused run) has its resend withdrawn: unknown again with the code it had, its
// history saying why, counted neither as resent nor under a code of the deletion; run show's
// count of resent recipients says so, and the run completes.
func TestRepairRunWithdrawsALostResend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := repairSetupWith(t, config.Default(), 2, "delivery: at-most-once\nunknown: {resend_after: 1m}\n")
	// Recipient 1's answer was lost: unknown, its resend due a minute later; recipient 2 is sent.
	a := b.addr(1)
	id := b.ids.TaskID(b.run.ID, number(1))
	info, err := b.in.GetTaskInfo(b.run.Queue, id)
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.l.Claim(ctx, a, b.run.Delivery)
	if err != nil || c.Verdict != ledger.VerdictSend {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	if _, err := b.l.Finish(ctx, a, ledger.Outcome{State: ledger.Unknown, Code: "NO_RESPONSE", Attempt: c.Attempts, Payload: info.Payload}); err != nil {
		t.Fatal(err)
	}
	if err := b.in.DeleteTask(b.run.Queue, id); err != nil {
		t.Fatal(err)
	}
	if b.sendPending(t) != 1 {
		t.Fatal("want recipient 2's task")
	}
	later := ledger.New(b.rdb, func() time.Time { return time.Now().Add(2 * time.Minute) })
	members, _, err := later.LeaseUnknown(ctx, b.run.ID, 10, time.Minute)
	if err != nil || len(members) != 1 {
		t.Fatalf("lease: %v, %v", members, err)
	}
	if v, _, err := later.ReleaseForResend(ctx, b.run.ID, members[0]); err != nil || v != ledger.ResendEnqueue {
		t.Fatalf("release: %v, %v", v, err)
	}
	// The resend task was written, then removed while the paused run held it.
	if err := later.ResendEnqueued(ctx, b.run.ID, members[0]); err != nil {
		t.Fatal(err)
	}
	if got, err := b.l.Counters(ctx, b.run.ID); err != nil || got.ResentUnknown != 1 {
		t.Fatalf("counters %+v, %v; want 1 resent", got, err)
	}
	if res := b.repair(t, true); found(res) != "stranded_resend 1/1 ********0001" || res.Status != ledger.RunCompleted {
		t.Fatalf("repair: %q, %s", found(res), res.Status)
	}
	e := b.entry(t, 1)
	h, err := b.l.History(ctx, a)
	if err != nil || e.State != ledger.Unknown || e.Code != "NO_RESPONSE" || e.Attempts != c.Attempts ||
		len(h) == 0 || h[len(h)-1].Outcome != "resend_withdrawn" || h[len(h)-1].Code != ledger.CodeResendDeleted {
		t.Fatalf("recipient 1: %+v, history %+v, %v; want unknown(NO_RESPONSE), its resend withdrawn (%s)", e, h, err, ledger.CodeResendDeleted)
	}
	rep, err := report.ReadRun(ctx, b.l, b.run.ID, time.Now())
	if err != nil || rep.ResentUnknown != 0 || rep.Codes["unknown:"+ledger.CodeTaskDeleted] != 0 || rep.Codes["unknown:"+ledger.CodeResendDeleted] != 0 {
		t.Fatalf("run report %+v, %v; want no resend counted, no code of the deletion", rep, err)
	}
}

// A recipient of an at-least-once run queued for a retry after a 503 (the message may have
// gone), its task gone and not rebuildable, is not skipped(task_lost): its retry is withdrawn,
// it is unknown with the 503, and the repair counts it so (stranded_retry); a plain queued
// recipient beside it is skipped(task_lost) as before.
func TestRepairRunWithdrawsALostMaybeSentRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := repairSetupWith(t, config.Default(), 3, "delivery: at-least-once\n")
	c, err := b.l.Claim(ctx, b.addr(1), b.run.Delivery)
	if err != nil || c.Verdict != ledger.VerdictSend {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	if _, err := b.l.Finish(ctx, b.addr(1), ledger.Outcome{State: ledger.Queued, Code: "HTTP_503", Mode: ledger.ReleaseRetryMaybeSent,
		Attempt: c.Attempts}); err != nil {
		t.Fatal(err)
	}
	b.removeTask(t, 1)
	b.removeTask(t, 2)
	if err := os.WriteFile(b.run.Audience, []byte("phone,name\n+12015550009,someone else\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if dry := b.repair(t, false); found(dry) != "lost_task_skipped 1/0 ********0002\nstranded_retry 1/0 ********0001" {
		t.Fatalf("look: %q", found(dry))
	}
	if res := b.repair(t, true); found(res) != "lost_task_skipped 1/1 ********0002\nstranded_retry 1/1 ********0001" {
		t.Fatalf("repair: %q", found(res))
	}
	if e := b.entry(t, 1); e.State != ledger.Unknown || e.Code != "HTTP_503" || e.Attempts != 1 {
		t.Fatalf("recipient 1: %+v, want unknown(HTTP_503) with its attempt", e)
	}
	if e := b.entry(t, 2); e.State != ledger.Skipped || e.Code != ledger.SkipTaskLost {
		t.Fatalf("recipient 2: %+v, want skipped(%s)", e, ledger.SkipTaskLost)
	}
}
