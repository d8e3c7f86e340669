package tasks_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/tasks"
)

// TestSkipDeletedReturnsLedgerErrors deletes send tasks' recipients from the ledger's view:
// they become skipped(deleted); when Redis fails the error comes back instead of a count
// that silently left recipients waiting.
func TestSkipDeletedReturnsLedgerErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.start(t, 12)
	pending, err := b.inspector.ListPendingTasks(st.Run.Queue)
	if err != nil {
		t.Fatal(err)
	}
	other := &asynq.TaskInfo{ID: "x", Type: campaigns.TypeExpand, Payload: []byte(`{}`)}
	n, err := tasks.SkipDeleted(ctx, b.ledger, b.inspector, asynqbatch.New(b.rdb), append(pending[:2:2], other))
	if err != nil || n != (tasks.Settled{Skipped: 2}) {
		t.Fatalf("SkipDeleted = %+v, %v; want 2 skipped", n, err)
	}
	if c := b.counters(t, st.RunID); c.Codes["skipped:deleted"] != 2 {
		t.Fatalf("codes %v", c.Codes)
	}
	// Not READONLY: go-redis retries that one with backoff, which only makes the test slow.
	b.mr.SetError("ERR injected ledger failure")
	defer b.mr.SetError("")
	n, err = tasks.SkipDeleted(ctx, b.ledger, b.inspector, asynqbatch.New(b.rdb), pending[2:])
	if err == nil || n != (tasks.Settled{}) {
		t.Fatalf("SkipDeleted with Redis failing = %+v, %v; want the error", n, err)
	}
}

// payloadOf decodes a send task's payload.
func payloadOf(t *testing.T, ti *asynq.TaskInfo) campaigns.SendPayload {
	t.Helper()
	p, err := campaigns.DecodeSend(ti.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// entryOf reads a recipient's ledger entry.
func (b *bundle) entryOf(t *testing.T, p campaigns.SendPayload) ledger.Entry {
	t.Helper()
	e, ok, err := b.ledger.Entry(context.Background(), p.Address())
	if err != nil || !ok {
		t.Fatalf("entry of %s: %v, %v", p.To, ok, err)
	}
	return e
}

// A worker died mid-request (its claim is in the entry, submitting) and its task was put back;
// the operator deletes the task. No task is left to settle the claim, and the request may have
// gone: the recipient becomes unknown(TASK_DELETED), counted apart from the skipped ones, and
// once the other recipients are settled the run completes.
func TestDeleteSettlesADeadWorkersClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st, pending := b.startPending(t, 3)
	q := st.Run.Queue
	dead := payloadOf(t, pending[0])
	if c, err := b.ledger.Claim(ctx, dead.Address(), ledger.AtMostOnce); err != nil || c.Verdict != ledger.VerdictSend {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	act := func(task string, all bool, state string) tasks.TaskActed {
		t.Helper()
		res, err := tasks.ActOnTasks(ctx, tasks.TaskActionParams{Inspector: b.inspector, Ledger: b.ledger,
			Action: "delete", Queue: q, Task: task, All: all, State: state, Audit: audit.Record{Redis: b.rdb, Actor: "ana"}})
		if err != nil {
			t.Fatalf("delete %s: %v", task, err)
		}
		return res
	}
	res := act(pending[0].ID, false, "")
	if res.RecipientsSkipped != 0 || res.RecipientsUnknown != 1 {
		t.Fatalf("delete of the dead worker's task: %+v; want 1 recipient unknown, none skipped", res)
	}
	wantDetail := "0 recipients skipped(deleted) in the ledger, 1 unknown(TASK_DELETED): a worker died sending to them, so the message may have gone"
	if res.Detail() != wantDetail {
		t.Errorf("detail %q, want %q", res.Detail(), wantDetail)
	}
	if e := b.entryOf(t, dead); e.State != ledger.Unknown || e.Code != ledger.CodeTaskDeleted || e.Attempts != 1 {
		t.Fatalf("entry %+v; want unknown(%s) with its one attempt", e, ledger.CodeTaskDeleted)
	}
	if es, err := audit.List(ctx, b.rdb, 1); err != nil || len(es) != 1 || es[0].Detail != wantDetail {
		t.Fatalf("audit log %+v, %v; want the delete with %q", es, err, wantDetail)
	}

	res = act("", true, "pending")
	if res.Tasks != 2 || res.RecipientsSkipped != 2 || res.RecipientsUnknown != 0 {
		t.Fatalf("delete --all: %+v; want 2 tasks, 2 recipients skipped", res)
	}
	run, err := b.ledger.GetRun(ctx, st.RunID)
	if err != nil || run.Status != ledger.RunCompleted {
		t.Fatalf("run %+v, %v; want completed", run.Status, err)
	}
	c := b.counters(t, st.RunID)
	if c.States[ledger.Unknown] != 1 || c.States[ledger.Skipped] != 2 || c.States[ledger.Submitting] != 0 ||
		c.Codes["unknown:"+ledger.CodeTaskDeleted] != 1 || c.Codes["skipped:deleted"] != 2 {
		t.Fatalf("counters %+v", c)
	}
	if v, err := b.ledger.Verify(ctx, st.RunID); err != nil || len(v.Mismatches) != 0 {
		t.Fatalf("verify: %+v, %v", v, err)
	}
}

// A submitting recipient whose claim another task of it may still settle is left to that
// task: its resend, active in a worker (in another of Herald's queues) or waiting; only once
// no such task is left (the last one deleted, or the other completed) does a delete settle it.
func TestDeleteLeavesAClaimAnotherTaskHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.start(t, 3)
	q := st.Run.Queue
	const other = "herald:utility"
	if q == other {
		t.Fatalf("the run's queue is %s: the test needs another", q)
	}
	pending, err := b.inspector.ListPendingTasks(q)
	if err != nil || len(pending) != 3 {
		t.Fatalf("%d pending tasks, %v", len(pending), err)
	}
	ids, err := b.ledger.TaskIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClientFromRedisClient(b.rdb)
	del := func(queue, task string) tasks.TaskActed {
		t.Helper()
		res, err := tasks.ActOnTasks(ctx, tasks.TaskActionParams{Inspector: b.inspector, Ledger: b.ledger,
			Action: "delete", Queue: queue, Task: task, Audit: audit.Record{Redis: b.rdb}})
		if err != nil {
			t.Fatalf("delete %s/%s: %v", queue, task, err)
		}
		return res
	}
	claim := func(p campaigns.SendPayload) {
		t.Helper()
		if c, err := b.ledger.Claim(ctx, p.Address(), ledger.AtMostOnce); err != nil || c.Verdict != ledger.VerdictSend {
			t.Fatalf("claim: %+v, %v", c, err)
		}
	}

	// The first recipient's resend runs in a worker, which claimed the recipient and is
	// sending it now.
	live := payloadOf(t, pending[0])
	claim(live)
	resend := ids.ResendTaskID(live.Run, live.To)
	if _, err := client.Enqueue(asynq.NewTask("t", pending[0].Payload), asynq.TaskID(resend), asynq.Queue(other),
		asynq.Retention(time.Hour)); err != nil {
		t.Fatal(err)
	}
	started, release := make(chan string, 1), make(chan struct{})
	srv := testredis.BlockingServer(t, b.rdb, other, started, release)
	defer srv.Shutdown()
	if id := <-started; id != resend {
		t.Fatalf("the worker took %s, want the resend", id)
	}
	// Deleting the original task, or another recipient's, leaves the live claim alone.
	if res := del(q, pending[0].ID); res.RecipientsSkipped != 0 || res.RecipientsUnknown != 0 {
		t.Fatalf("delete of the original task: %+v; want nothing settled", res)
	}
	if res := del(q, pending[1].ID); res.RecipientsSkipped != 1 || res.RecipientsUnknown != 0 {
		t.Fatalf("delete of another recipient's task: %+v; want it skipped", res)
	}
	if e := b.entryOf(t, live); e.State != ledger.Submitting {
		t.Fatalf("entry %+v; want it still submitting, left to its worker", e)
	}
	// The resend completes (this worker settles nothing); a redelivered copy of the original
	// task is then the last task of the recipient that could, and its delete settles it.
	close(release)
	testredis.WaitUntil(t, 10*time.Second, "the resend completed", func() bool {
		info, err := b.inspector.GetTaskInfo(other, resend)
		return err == nil && info.State == asynq.TaskStateCompleted
	})
	srv.Shutdown()
	if _, err := client.Enqueue(asynq.NewTask(campaigns.TypeSend, pending[0].Payload), asynq.TaskID(pending[0].ID), asynq.Queue(q)); err != nil {
		t.Fatal(err)
	}
	if res := del(q, pending[0].ID); res.RecipientsUnknown != 1 {
		t.Fatalf("delete of the last task that could settle the claim: %+v; want 1 unknown", res)
	}

	// The last recipient's resend waits in the run's queue: deleting the original leaves the
	// claim to it; deleting the resend too settles it.
	waiting := payloadOf(t, pending[2])
	claim(waiting)
	resend = ids.ResendTaskID(waiting.Run, waiting.To)
	if _, err := client.Enqueue(asynq.NewTask(campaigns.TypeSend, pending[2].Payload), asynq.TaskID(resend), asynq.Queue(q)); err != nil {
		t.Fatal(err)
	}
	if res := del(q, pending[2].ID); res.RecipientsUnknown != 0 || res.RecipientsSkipped != 0 {
		t.Fatalf("delete of the original while its resend waits: %+v; want nothing settled", res)
	}
	if res := del(q, resend); res.RecipientsUnknown != 1 {
		t.Fatalf("delete of the resend: %+v; want 1 unknown", res)
	}
	if run, err := b.ledger.GetRun(ctx, st.RunID); err != nil || run.Status != ledger.RunCompleted {
		t.Fatalf("run %+v, %v; want completed", run.Status, err)
	}
}

// An unknown recipient whose one resend was released is queued again, but its first message
// may have gone: deleting its original task (say with the completed ones) leaves it to its
// resend task, which sends it; deleting the resend too, held before it made a request (a
// paused run, a worker not there yet), withdraws it: the recipient is unknown again with the
// code it had, never skipped(deleted), no longer counted as resent nor blamed on a dead worker,
// and the text says so.
func TestDeleteLeavesAReleasedResendToItsTask(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st, pending := b.startPending(t, 1, "delivery: at-most-once\nunknown: {resend_after: 1m}\n")
	q := st.Run.Queue
	p := payloadOf(t, pending[0])
	if c, err := b.ledger.Claim(ctx, p.Address(), ledger.AtMostOnce); err != nil || c.Verdict != ledger.VerdictSend {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	if _, err := b.ledger.Finish(ctx, p.Address(), ledger.Outcome{State: ledger.Unknown, Code: "NO_RESPONSE", Attempt: 1,
		Payload: pending[0].Payload}); err != nil {
		t.Fatal(err)
	}
	// The quiet period has passed: the sweep releases the recipient and queues its resend.
	later := ledger.New(b.rdb, func() time.Time { return testNow.Add(2 * time.Minute) })
	members, _, err := later.LeaseUnknown(ctx, st.RunID, 10, time.Minute)
	if err != nil || len(members) != 1 {
		t.Fatalf("lease: %v, %v", members, err)
	}
	if v, _, err := later.ReleaseForResend(ctx, st.RunID, members[0]); err != nil || v != ledger.ResendEnqueue {
		t.Fatalf("release: %v, %v", v, err)
	}
	ids, err := b.ledger.TaskIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resend := ids.ResendTaskID(p.Run, p.To)
	client := asynq.NewClientFromRedisClient(b.rdb)
	if _, err := client.Enqueue(asynq.NewTask(campaigns.TypeSend, pending[0].Payload), asynq.TaskID(resend), asynq.Queue(q)); err != nil {
		t.Fatal(err)
	}
	if err := later.ResendEnqueued(ctx, st.RunID, members[0]); err != nil {
		t.Fatal(err)
	}
	del := func(task string) tasks.TaskActed {
		t.Helper()
		res, err := tasks.ActOnTasks(ctx, tasks.TaskActionParams{Inspector: b.inspector, Ledger: b.ledger,
			Action: "delete", Queue: q, Task: task, Audit: audit.Record{Redis: b.rdb}})
		if err != nil {
			t.Fatalf("delete %s: %v", task, err)
		}
		return res
	}
	if res := del(pending[0].ID); res.RecipientsSkipped != 0 || res.RecipientsUnknown != 0 {
		t.Fatalf("delete of the original while its resend waits: %+v; want nothing settled", res)
	}
	if e := b.entryOf(t, p); e.State != ledger.Queued {
		t.Fatalf("entry %+v; want it queued for its resend", e)
	}
	res := del(resend)
	want := "0 recipients skipped(deleted) in the ledger, 1 resend withdrawn: never sent (held by a paused run, or waiting for a worker), so unknown again with the code they had"
	if res.RecipientsSkipped != 0 || res.RecipientsUnknown != 0 || res.ResendsWithdrawn != 1 || res.Detail() != want {
		t.Fatalf("delete of the resend: %+v (%q); want %q", res, res.Detail(), want)
	}
	if e := b.entryOf(t, p); e.State != ledger.Unknown || e.Code != "NO_RESPONSE" {
		t.Fatalf("entry %+v; want unknown(NO_RESPONSE), as before its resend", e)
	}
	h, err := b.ledger.History(ctx, p.Address())
	if err != nil || len(h) != 3 || h[2].Outcome != "resend_withdrawn" || h[2].Code != ledger.CodeResendDeleted {
		t.Fatalf("history %+v, %v; want its resend withdrawn (%s)", h, err, ledger.CodeResendDeleted)
	}
	if c := b.counters(t, st.RunID); c.ResentUnknown != 0 || c.Codes["unknown:"+ledger.CodeTaskDeleted] != 0 {
		t.Fatalf("counters %+v; want nobody counted resent, nor unknown(%s)", c, ledger.CodeTaskDeleted)
	}
	if run, err := b.ledger.GetRun(ctx, st.RunID); err != nil || run.Status != ledger.RunCompleted {
		t.Fatalf("run %+v, %v; want completed", run.Status, err)
	}
}

// In an at-least-once run, a deleted task whose recipient a dead worker left mid-send is
// written again as it was, under its id, and its claim sends again, as after the dead worker's
// task is put back: sent again rather than left unknown. The output counts it apart; with no task writer the
// delete says so rather than settle it otherwise. A recipient queued is skipped(deleted) as in
// any run.
func TestDeleteSendsAnAtLeastOnceClaimAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st, pending := b.startPending(t, 3, "delivery: at-least-once\n")
	q := st.Run.Queue
	dead := payloadOf(t, pending[0])
	if c, err := b.ledger.Claim(ctx, dead.Address(), ledger.AtLeastOnce); err != nil || c.Verdict != ledger.VerdictSend {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	del := func(task string, w asynqbatch.Writer) (tasks.TaskActed, error) {
		return tasks.ActOnTasks(ctx, tasks.TaskActionParams{Inspector: b.inspector, Ledger: b.ledger, Tasks: w,
			Action: "delete", Queue: q, Task: task, Audit: audit.Record{Redis: b.rdb, Actor: "ana"}})
	}
	res, err := del(pending[0].ID, asynqbatch.New(b.rdb))
	want := "0 recipients skipped(deleted) in the ledger, 1 sent again: a worker died sending to them, and their run is at-least-once, so their task was written again"
	if err != nil || res.RecipientsRequeued != 1 || res.RecipientsUnknown != 0 || res.Detail() != want {
		t.Fatalf("delete of the dead worker's task: %+v (%q), %v; want %q", res, res.Detail(), err, want)
	}
	info, err := b.inspector.GetTaskInfo(q, pending[0].ID)
	if err != nil || info.State != asynq.TaskStatePending || string(info.Payload) != string(pending[0].Payload) ||
		info.MaxRetry != pending[0].MaxRetry || info.Timeout != pending[0].Timeout {
		t.Fatalf("the task written again: %+v, %v; want it pending as it was", info, err)
	}
	if e := b.entryOf(t, dead); e.State != ledger.Submitting {
		t.Fatalf("entry %+v, want submitting until its task runs", e)
	}
	if c, err := b.ledger.Claim(ctx, dead.Address(), ledger.AtLeastOnce); err != nil || c.Verdict != ledger.VerdictSend || c.Attempts != 2 {
		t.Fatalf("the claim of the task written again: %+v, %v; want it sent again, attempt 2", c, err)
	}

	again := payloadOf(t, pending[1])
	if c, err := b.ledger.Claim(ctx, again.Address(), ledger.AtLeastOnce); err != nil || c.Verdict != ledger.VerdictSend {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	if res, err := del(pending[1].ID, nil); err == nil || res.RecipientsRequeued != 0 {
		t.Fatalf("delete with no task writer: %+v, %v; want an error", res, err)
	}
	if res, err := del(pending[2].ID, asynqbatch.New(b.rdb)); err != nil || res.RecipientsSkipped != 1 {
		t.Fatalf("delete of a queued recipient's task: %+v, %v; want it skipped", res, err)
	}
	if c := b.counters(t, st.RunID); c.States[ledger.Unknown] != 0 || c.States[ledger.Skipped] != 1 {
		t.Fatalf("counters %+v; want none unknown, one skipped", c.States)
	}
}

// An at-least-once recipient queued for a retry after an answer that may follow a message
// that went out (a 503) is never skipped(deleted) when its task is deleted: the retry is
// withdrawn, the recipient unknown with the 503, and the text and the counts say a retry was
// withdrawn, not a resend.
func TestDeleteWithdrawsAMaybeSentRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st, pending := b.startPending(t, 2, "delivery: at-least-once\n")
	q := st.Run.Queue
	// The first recipient's send was answered 503 (maybe sent), the second's 429 (not taken):
	// both are queued for their retry.
	for i, o := range []ledger.Outcome{
		{State: ledger.Queued, Code: "HTTP_503", Mode: ledger.ReleaseRetryMaybeSent},
		{State: ledger.Queued, Code: "HTTP_429", Mode: ledger.ReleaseThrottle},
	} {
		p := payloadOf(t, pending[i])
		if c, err := b.ledger.Claim(ctx, p.Address(), ledger.AtLeastOnce); err != nil || c.Verdict != ledger.VerdictSend {
			t.Fatalf("claim %d: %+v, %v", i, c, err)
		}
		o.Attempt = 1
		if _, err := b.ledger.Finish(ctx, p.Address(), o); err != nil {
			t.Fatal(err)
		}
	}
	var res tasks.TaskActed
	for _, task := range pending {
		r, err := tasks.ActOnTasks(ctx, tasks.TaskActionParams{Inspector: b.inspector, Ledger: b.ledger,
			Action: "delete", Queue: q, Task: task.ID, Audit: audit.Record{Redis: b.rdb}})
		if err != nil {
			t.Fatalf("delete %s: %v", task.ID, err)
		}
		res.RecipientsSkipped += r.RecipientsSkipped
		res.ResendsWithdrawn += r.ResendsWithdrawn
		res.RetriesWithdrawn += r.RetriesWithdrawn
		if i := r.RetriesWithdrawn; i == 1 {
			want := "0 recipients skipped(deleted) in the ledger, 1 retry withdrawn: retried after an answer that may have followed a message that went out, never sent again, so unknown with that answer's code"
			if r.Detail() != want {
				t.Errorf("detail %q, want %q", r.Detail(), want)
			}
		}
	}
	if res.RecipientsSkipped != 1 || res.RetriesWithdrawn != 1 || res.ResendsWithdrawn != 0 {
		t.Fatalf("deletes: %+v; want 1 skipped (the 429's) and 1 retry withdrawn (the 503's)", res)
	}
	if e := b.entryOf(t, payloadOf(t, pending[0])); e.State != ledger.Unknown || e.Code != "HTTP_503" {
		t.Fatalf("the 503's entry %+v; want unknown(HTTP_503)", e)
	}
	if e := b.entryOf(t, payloadOf(t, pending[1])); e.State != ledger.Skipped || e.Code != ledger.SkipDeleted {
		t.Fatalf("the 429's entry %+v; want skipped(deleted)", e)
	}
}
