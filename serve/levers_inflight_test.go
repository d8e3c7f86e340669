package serve_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/serve"
	"github.com/heraldmsg/herald/tasks"
	"github.com/heraldmsg/herald/worker"
)

// heldSender passes each message to the fake, and, for the number it holds, once the fake has
// answered (taken it), says so on answered and keeps the answer from the worker until release
// is closed: a worker whose request is out, caught before it settles.
type heldSender struct {
	inner    worker.Sender
	hold     string
	answered chan string
	release  chan struct{}
}

func (s *heldSender) SendTemplate(ctx context.Context, msg connectly.TemplateMessage) (connectly.SendResult, error) {
	res, err := s.inner.SendTemplate(ctx, msg)
	if msg.Number == s.hold {
		s.answered <- msg.Number
		<-s.release
	}
	return res, err
}

// inflightBench is a run of campaign send on miniredis whose tasks a real asynq server runs
// one at a time, in their order, through a Herald worker that sends to the fake, recipient 1's
// answer held.
type inflightBench struct {
	*repairBundle
	fake *fakeconnectly.Server
	held *heldSender
	srv  *asynq.Server
	mux  *asynq.ServeMux
	rec  audit.Record
	// handled counts the send handlers that returned.
	handled atomic.Int64
	closed  sync.Once
}

func inflightSetup(t *testing.T, n int, extra ...string) *inflightBench {
	t.Helper()
	c := config.Default()
	b := repairSetupWith(t, c, n, extra...)
	const business, key = "biz-levers", "key-levers"
	fake, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: business, APIKey: key, RateLimit: -1})
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: business, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	h := &heldSender{inner: client, hold: number(1), answered: make(chan string, 1), release: make(chan struct{})}
	wc := serve.WorkerConfig(c)
	wc.Limits.PairInterval = -1
	w := worker.New(wc, worker.Deps{Redis: b.rdb, Sender: h, Logger: zerolog.Nop(), Tasks: asynqbatch.New(b.rdb)})
	ib := &inflightBench{repairBundle: b, fake: fake, held: h, rec: audit.Record{Redis: b.rdb, Actor: "ana", Reason: "test"}}
	ib.mux = asynq.NewServeMux()
	ib.mux.HandleFunc(campaigns.TypeSend, func(ctx context.Context, task *asynq.Task) error {
		defer ib.handled.Add(1)
		return w.HandleSend(ctx, task)
	})
	t.Cleanup(ib.releaseHeld)
	return ib
}

// startSending is inflightSetup with its server started.
func startSending(t *testing.T, n int, extra ...string) *inflightBench {
	t.Helper()
	ib := inflightSetup(t, n, extra...)
	ib.srv = ib.start(t)
	return ib
}

// start starts an asynq server that runs the run's tasks one at a time; it is shut down when
// the test ends.
func (ib *inflightBench) start(t *testing.T) *asynq.Server {
	t.Helper()
	srv := asynq.NewServerFromRedisClient(ib.rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{ib.run.Queue: 1},
		LogLevel: asynq.FatalLevel, TaskCheckInterval: 10 * time.Millisecond, ShutdownTimeout: 100 * time.Millisecond})
	if err := srv.Start(ib.mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

func (ib *inflightBench) releaseHeld() { ib.closed.Do(func() { close(ib.held.release) }) }

// waitAnswered waits until the fake has taken recipient 1 and the worker waits for its answer.
func (ib *inflightBench) waitAnswered(t *testing.T) {
	t.Helper()
	select {
	case <-ib.held.answered:
	case <-time.After(20 * time.Second):
		t.Fatal("recipient 1's request never reached the fake")
	}
	if got := ib.fake.AcceptedCount(number(1)); got != 1 {
		t.Fatalf("the fake took recipient 1 %d times before its answer, want 1", got)
	}
}

// waitSettled waits until recipient i is settled (neither planned, queued nor submitting).
func (ib *inflightBench) waitSettled(t *testing.T, i int) ledger.Entry {
	t.Helper()
	var e ledger.Entry
	testredis.WaitUntil(t, 20*time.Second, "the recipient settled", func() bool {
		e = ib.entry(t, i)
		return e.State != ledger.Planned && e.State != ledger.Queued && e.State != ledger.Submitting
	})
	return e
}

// wantTakenOnce checks the fake took each of recipients 1..n exactly once.
func (ib *inflightBench) wantTakenOnce(t *testing.T, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		if got := ib.fake.AcceptedCount(number(i)); got != 1 {
			t.Errorf("the fake took recipient %d %d times, want once", i, got)
		}
	}
}

// repairs runs k applied repairs at once and returns them.
func (ib *inflightBench) repairs(t *testing.T, k int) []serve.Repair {
	t.Helper()
	out := make([]serve.Repair, k)
	errs := make([]error, k)
	var wg sync.WaitGroup
	for j := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[j], errs[j] = serve.RepairRun(context.Background(), serve.RepairParams{Config: ib.config, Redis: ib.rdb,
				Log: zerolog.Nop(), Run: ib.run.ID, Apply: true, Audit: ib.rec})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("RepairRun: %v", err)
		}
	}
	return out
}

// While a live worker's request to recipient 1 is out (the fake took it, its answer not back),
// two repairs applied at once leave it alone, both with its task active and with its task's
// hash removed by hand (its lease and its server's list say a worker runs it), in an
// at-most-once and an at-least-once run; the worker's answer then settles it accepted, and the
// fake took every recipient once.
func TestRepairLeavesAClaimWhoseRequestIsOut(t *testing.T) {
	t.Parallel()
	for _, delivery := range []string{"at-most-once", "at-least-once"} {
		t.Run(delivery, func(t *testing.T) {
			t.Parallel()
			ib := startSending(t, 2, "delivery: "+delivery+"\n")
			ib.waitAnswered(t)
			if e := ib.entry(t, 1); e.State != ledger.Submitting {
				t.Fatalf("recipient 1 while its answer is held: %+v, want submitting", e)
			}
			for _, r := range ib.repairs(t, 2) {
				if len(r.Findings) != 0 {
					t.Fatalf("repair while the task is active: %s, want nothing", found(r))
				}
			}
			// The task's hash removed as redis-cli would; its id stays in the active list, its lease.
			id := ib.ids.TaskID(ib.run.ID, number(1))
			if n, err := ib.rdb.Del(context.Background(), rkeys.AsynqTask(ib.run.Queue, id)).Result(); err != nil || n != 1 {
				t.Fatalf("remove the task's hash: %d, %v", n, err)
			}
			for _, r := range ib.repairs(t, 2) {
				if len(r.Findings) != 0 || r.InFlight != 1 {
					t.Fatalf("repair with the task's hash gone: %s, in flight %d; want only in flight 1", found(r), r.InFlight)
				}
			}
			if e := ib.entry(t, 1); e.State != ledger.Submitting {
				t.Fatalf("recipient 1 after the repairs: %+v, want submitting", e)
			}
			ib.releaseHeld()
			if e := ib.waitSettled(t, 1); e.State != ledger.Accepted {
				t.Fatalf("recipient 1 after its answer: %+v, want accepted", e)
			}
			ib.waitSettled(t, 2)
			ib.wantTakenOnce(t, 2)
		})
	}
}

// A queue paused while a worker's request is out stops nobody mid-request and takes no task
// of the queue: the held recipient settles accepted once its answer is back, a recipient whose
// task waits is not sent while the queue is paused and is left alone by a repair (its task
// waits), and it is sent once after the resume.
func TestQueuePauseWithARequestOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ib := startSending(t, 2)
	ib.waitAnswered(t)
	if e := ib.entry(t, 2); e.State != ledger.Queued {
		t.Fatalf("recipient 2 while the worker holds 1: %+v, want queued", e)
	}
	if _, err := tasks.PauseQueue(ctx, ib.in, ib.run.Queue, ib.rec); err != nil {
		t.Fatal(err)
	}
	ib.releaseHeld()
	if e := ib.waitSettled(t, 1); e.State != ledger.Accepted {
		t.Fatalf("recipient 1 after its answer: %+v, want accepted", e)
	}
	for _, r := range ib.repairs(t, 2) {
		if len(r.Findings) != 0 || r.InFlight != 0 {
			t.Fatalf("repair of the paused queue's run: %s, in flight %d; want nothing", found(r), r.InFlight)
		}
	}
	id := ib.ids.TaskID(ib.run.ID, number(2))
	if info, err := ib.in.GetTaskInfo(ib.run.Queue, id); err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("recipient 2's task while paused: %+v, %v; want pending", info, err)
	}
	if got := ib.fake.AcceptedCount(number(2)); got != 0 {
		t.Fatalf("the fake took recipient 2 %d times while its queue was paused", got)
	}
	if _, err := tasks.ResumeQueue(ctx, ib.in, ib.run.Queue, ib.rec); err != nil {
		t.Fatal(err)
	}
	if e := ib.waitSettled(t, 2); e.State != ledger.Accepted {
		t.Fatalf("recipient 2 after the resume: %+v, want accepted", e)
	}
	ib.wantTakenOnce(t, 2)
}

// task delete of a send task whose worker's request is out: asynq refuses to delete the active
// task, and the ledger is left as it is; the worker's answer then settles it accepted, once.
func TestTaskDeleteOfAnActiveSendIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ib := startSending(t, 1)
	ib.waitAnswered(t)
	id := ib.ids.TaskID(ib.run.ID, number(1))
	res, err := tasks.ActOnTasks(ctx, tasks.TaskActionParams{Inspector: ib.in, Ledger: ib.l, Tasks: asynqbatch.New(ib.rdb),
		Action: "delete", Queue: ib.run.Queue, Task: id, Audit: ib.rec})
	if err == nil || res.Tasks != 0 {
		t.Fatalf("delete of the active task: %+v, %v; want refused", res, err)
	}
	if e := ib.entry(t, 1); e.State != ledger.Submitting {
		t.Fatalf("recipient 1 after the refused delete: %+v, want submitting", e)
	}
	ib.releaseHeld()
	if e := ib.waitSettled(t, 1); e.State != ledger.Accepted {
		t.Fatalf("recipient 1 after its answer: %+v, want accepted", e)
	}
	ib.wantTakenOnce(t, 1)
}

// A worker stopping (asynq's shutdown timeout ran out) puts its task back in the queue while its
// handler still waits for the answer of a request the fake took. task delete of that task then
// finds the claim with no task left. Under at-most-once the recipient becomes
// unknown(TASK_DELETED), never sent again, and the worker's late answer, an accept, settles it
// accepted (the message went) without sending it twice; under at-least-once the task is written again (a possible duplicate, as the policy
// allows).
func TestTaskDeleteWhileAStoppedWorkersRequestIsOut(t *testing.T) {
	t.Parallel()
	for _, delivery := range []string{"at-most-once", "at-least-once"} {
		t.Run(delivery, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			ib := startSending(t, 1, "delivery: "+delivery+"\n")
			ib.waitAnswered(t)
			ib.srv.Shutdown() // its handler still holds the answer
			id := ib.ids.TaskID(ib.run.ID, number(1))
			if info, err := ib.in.GetTaskInfo(ib.run.Queue, id); err != nil || info.State != asynq.TaskStatePending {
				t.Fatalf("the task after the shutdown: %+v, %v; want pending", info, err)
			}
			res, err := tasks.ActOnTasks(ctx, tasks.TaskActionParams{Inspector: ib.in, Ledger: ib.l, Tasks: asynqbatch.New(ib.rdb),
				Action: "delete", Queue: ib.run.Queue, Task: id, Audit: ib.rec})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: delete: %+v", delivery, res)
			ib.releaseHeld()
			testredis.WaitUntil(t, 20*time.Second, "the held handler returned", func() bool { return ib.handled.Load() == 1 })
			e := ib.entry(t, 1)
			t.Logf("recipient 1 after the late answer: %+v", e)
			if delivery == "at-most-once" {
				if e.State != ledger.Accepted || e.MessageID == "" || res.RecipientsUnknown != 1 {
					t.Fatalf("recipient 1: %+v (delete %+v); want unknown(TASK_DELETED), then accepted by the late answer", e, res)
				}
				if info, err := ib.in.GetTaskInfo(ib.run.Queue, id); err == nil {
					t.Fatalf("a task of recipient 1 after the delete: %+v", info)
				}
				ib.wantTakenOnce(t, 1)
				return
			}
			if res.RecipientsRequeued != 1 {
				t.Fatalf("delete: %+v; want the at-least-once task written again", res)
			}
			// The task written again runs on another worker after the answer settled the claim.
			ib.start(t)
			testredis.WaitUntil(t, 20*time.Second, "the task written again ran", func() bool { return ib.handled.Load() == 2 })
			if e := ib.entry(t, 1); e.State != ledger.Accepted {
				t.Fatalf("recipient 1: %+v, want accepted", e)
			}
			ib.wantTakenOnce(t, 1)
		})
	}
}

// Two repairs of an at-least-once run find the same claim a dead worker left (its task
// removed): the first writes the task again, and a worker sends it and settles it accepted;
// the second, caught between its look and its write, then finds the task's id taken (the
// completed task is kept) and sends nothing: the fake took the recipient once.
func TestTwoRepairsOfAnAtLeastOnceClaimSendItOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ib := inflightSetup(t, 1, "delivery: at-least-once\n")
	ib.held.hold = "" // nothing held: the server starts later
	ib.claim(t, 1)
	id := ib.removeTask(t, 1)
	// The first pipeline that writes the task (the one task writer's script) waits: a repair
	// caught between its look and its write.
	hook := struct{ held, release chan struct{} }{make(chan struct{}), make(chan struct{})}
	slow := redis.NewClient(ib.rdb.Options())
	t.Cleanup(func() { slow.Close() })
	slow.AddHook(onFirstScript(rkeys.AsynqTask(ib.run.Queue, id), func() error {
		close(hook.held)
		<-hook.release
		return nil
	}))
	type result struct {
		r   serve.Repair
		err error
	}
	second := make(chan result, 1)
	go func() {
		r, err := serve.RepairRun(ctx, serve.RepairParams{Config: ib.config, Redis: slow, Log: zerolog.Nop(), Run: ib.run.ID,
			Apply: true, Audit: ib.rec})
		second <- result{r, err}
	}()
	select {
	case <-hook.held:
	case <-time.After(20 * time.Second):
		t.Fatal("the second repair never came to write the task")
	}
	if r := ib.repair(t, true); found(r) != "stranded_claim_requeued 1/1 ********0001" {
		t.Fatalf("first repair: %q", found(r))
	}
	ib.srv = ib.start(t)
	if e := ib.waitSettled(t, 1); e.State != ledger.Accepted {
		t.Fatalf("recipient 1 after the task written again ran: %+v, want accepted", e)
	}
	testredis.WaitUntil(t, 20*time.Second, "the task completed", func() bool {
		info, err := ib.in.GetTaskInfo(ib.run.Queue, id)
		return err == nil && info.State == asynq.TaskStateCompleted
	})
	close(hook.release)
	res := <-second
	if res.err != nil || res.r.Moved != 1 {
		t.Fatalf("second repair: %s, moved %d, %v; want its write refused (moved 1)", found(res.r), res.r.Moved, res.err)
	}
	if info, err := ib.in.GetTaskInfo(ib.run.Queue, id); err != nil || info.State != asynq.TaskStateCompleted {
		t.Fatalf("recipient 1's task after the second repair: %+v, %v; want the completed one", info, err)
	}
	ib.wantTakenOnce(t, 1)
}
