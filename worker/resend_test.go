package worker

import (
	"context"
	"errors"
	"io"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
)

// testClock is a clock the resend tests move by hand; the worker and its ledger read it.
type testClock struct{ ms atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ms.Store(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).UnixMilli())
	return c
}

func (c *testClock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *testClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

const quietPeriod = 30 * time.Minute

// resendBundle is a testBundle whose worker runs on a test clock, with a way to list and run
// the send tasks that wait in the queue.
type resendBundle struct {
	*testBundle
	clock     *testClock
	inspector *asynq.Inspector
}

func setupResend(t *testing.T) *resendBundle {
	t.Helper()
	mr, rdb := testredis.Mini(t)
	b := setupResendWith(t, rdb)
	b.mr = mr
	return b
}

// setupResendWith is setupResend on rdb (its mr is nil).
func setupResendWith(t *testing.T, rdb *redis.Client) *resendBundle {
	t.Helper()
	clock := newTestClock()
	sender := &fakeSender{}
	w := New(testConfig(), Deps{Redis: rdb, Sender: sender, Logger: zerolog.Nop(), Now: clock.Now})
	insp := asynq.NewInspectorFromRedisClient(rdb)
	return &resendBundle{
		testBundle: &testBundle{rdb: rdb, ledger: ledger.New(rdb, clock.Now), sender: sender, worker: w},
		clock:      clock, inspector: insp,
	}
}

// secondWorker is another worker process on the same Redis and clock.
func (b *resendBundle) secondWorker() *Worker {
	return New(testConfig(), Deps{Redis: b.rdb, Sender: b.sender, Logger: zerolog.Nop(), Now: b.clock.Now})
}

// pending returns the ids of the send tasks waiting in the marketing queue.
func (b *resendBundle) pending(t *testing.T) []*asynq.TaskInfo {
	t.Helper()
	infos, err := b.inspector.ListPendingTasks(campaigns.QueueFor("marketing"), asynq.PageSize(1000))
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatal(err)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].ID < infos[j].ID })
	return infos
}

// runTask runs a queued task through the send handler, as asynq would, and deletes it.
func (b *resendBundle) runTask(t *testing.T, info *asynq.TaskInfo) error {
	t.Helper()
	err := b.worker.HandleSend(context.Background(), asynq.NewTask(info.Type, info.Payload))
	if derr := b.inspector.DeleteTask(info.Queue, info.ID); derr != nil {
		t.Fatal(derr)
	}
	return err
}

func (b *resendBundle) sweep(t *testing.T, w *Worker) int {
	t.Helper()
	n, err := w.SweepUnknown(context.Background())
	if err != nil {
		t.Fatalf("SweepUnknown: %v", err)
	}
	return n
}

// loseFirstAnswer makes the first request to each of the numbers go out with no answer (the
// message may have been sent); every later request is accepted.
func loseFirstAnswer(numbers ...string) func(context.Context, connectly.TemplateMessage) (connectly.SendResult, error) {
	var mu sync.Mutex
	seen := map[string]bool{}
	lose := map[string]bool{}
	for _, n := range numbers {
		lose[n] = true
	}
	return func(_ context.Context, msg connectly.TemplateMessage) (connectly.SendResult, error) {
		mu.Lock()
		first := !seen[msg.Number]
		seen[msg.Number] = true
		mu.Unlock()
		if first && lose[msg.Number] {
			return connectly.SendResult{}, &connectly.TransportError{Written: true, Err: io.ErrUnexpectedEOF}
		}
		return connectly.SendResult{ID: "msg-" + msg.Number}, nil
	}
}

func historyOf(t *testing.T, b *resendBundle, p campaigns.SendPayload) []string {
	t.Helper()
	hist, err := b.ledger.History(context.Background(), p.Address())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(hist))
	for i, h := range hist {
		out[i] = h.Outcome
	}
	return out
}

// TestResendUnknown covers the one resend of unknown recipients (unknown.resend_after) from
// the worker's side, on a clock the test moves.
func TestResendUnknown(t *testing.T) {
	t.Parallel()

	t.Run("LostAnswerIsResentOnceAfterTheQuietPeriod", func(t *testing.T) {
		t.Parallel()
		b := setupResend(t)
		const runID = "spring-sale/resend"
		ps := seedRunWith(t, b.testBundle, ledger.Run{ID: runID, Delivery: ledger.AtMostOnce, ResendAfter: quietPeriod}, "+1555", 2)
		lost, fine := ps[0], ps[1]
		b.sender.SendFunc = loseFirstAnswer(lost.To)
		for _, p := range ps {
			if err := handle(t, b.testBundle, p); err != nil {
				t.Fatalf("HandleSend(%s): %v", p.To, err)
			}
		}
		wantEntry(t, b.testBundle, lost, ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: "NO_RESPONSE"})

		b.clock.Advance(quietPeriod - time.Second)
		if n := b.sweep(t, b.worker); n != 0 || len(b.pending(t)) != 0 {
			t.Fatalf("swept %d before the quiet period ended (tasks %d)", n, len(b.pending(t)))
		}
		if got := runOf(t, b.testBundle, runID).Status; got != ledger.RunRunning {
			t.Fatalf("run %s while a recipient waits for its resend, want running", got)
		}
		b.clock.Advance(time.Second)
		if n := b.sweep(t, b.worker); n != 1 {
			t.Fatalf("swept %d after the quiet period, want 1", n)
		}
		tasks := b.pending(t)
		ids, err := b.ledger.TaskIDs(context.Background())
		if err != nil {
			t.Fatalf("TaskIDs: %v", err)
		}
		if len(tasks) != 1 || tasks[0].ID != ids.ResendTaskID(runID, lost.To) || tasks[0].ID == ids.TaskID(runID, lost.To) {
			t.Fatalf("tasks after the sweep: %v, want the one resend task %s", tasks, ids.ResendTaskID(runID, lost.To))
		}
		if n := b.sweep(t, b.worker); n != 0 {
			t.Fatalf("a second sweep resent %d more", n)
		}
		if err := b.runTask(t, tasks[0]); err != nil {
			t.Fatalf("resend task: %v", err)
		}
		wantEntry(t, b.testBundle, lost, ledger.Entry{State: ledger.Accepted, Attempts: 2, MessageID: "msg-" + lost.To})
		if n := b.sender.CallsTo(lost.To); n != 2 {
			t.Fatalf("%d requests to the lost recipient, want 2 (the send and its one resend)", n)
		}
		if n := b.sender.CallsTo(fine.To); n != 1 {
			t.Fatalf("%d requests to an accepted recipient, want 1", n)
		}
		if h := historyOf(t, b, lost); !slices.Equal(h, []string{"unknown", "resend", "accepted"}) {
			t.Fatalf("history %v, want unknown, resend, accepted", h)
		}
		c := countersOf(t, b.testBundle, runID)
		if c.ResentUnknown != 1 || c.ResendWaiting != 0 || c.States[ledger.Accepted] != 2 {
			t.Fatalf("counters: resent_unknown %d, waiting %d, states %v", c.ResentUnknown, c.ResendWaiting, c.States)
		}
		if got := runOf(t, b.testBundle, runID).Status; got != ledger.RunCompleted {
			t.Fatalf("run %s after the resend was accepted, want completed", got)
		}
		b.clock.Advance(24 * time.Hour)
		if n := b.sweep(t, b.worker); n != 0 || len(b.pending(t)) != 0 {
			t.Fatalf("a day later a sweep resent %d", n)
		}
	})

	t.Run("ResendAnsweredNoneIsNeverResentAgain", func(t *testing.T) {
		t.Parallel()
		b := setupResend(t)
		const runID = "spring-sale/twice"
		ps := seedRunWith(t, b.testBundle, ledger.Run{ID: runID, Delivery: ledger.AtMostOnce, ResendAfter: quietPeriod}, "+1555", 1)
		b.sender.SendFunc = answer(&connectly.TransportError{Written: true, Err: io.ErrUnexpectedEOF})
		if err := handle(t, b.testBundle, ps[0]); err != nil {
			t.Fatal(err)
		}
		b.clock.Advance(quietPeriod)
		if n := b.sweep(t, b.worker); n != 1 {
			t.Fatalf("swept %d, want 1", n)
		}
		if err := b.runTask(t, b.pending(t)[0]); err != nil {
			t.Fatal(err)
		}
		wantEntry(t, b.testBundle, ps[0], ledger.Entry{State: ledger.Unknown, Attempts: 2, Code: "NO_RESPONSE"})
		b.clock.Advance(10 * quietPeriod)
		if n := b.sweep(t, b.worker); n != 0 || len(b.pending(t)) != 0 {
			t.Fatalf("resent %d a second time", n)
		}
		if n := b.sender.CallsTo(ps[0].To); n != 2 {
			t.Fatalf("%d requests, want 2", n)
		}
		if got := runOf(t, b.testBundle, runID).Status; got != ledger.RunCompleted {
			t.Fatalf("run %s, want completed", got)
		}
	})

	t.Run("DeliveryWebhookInTheQuietPeriodPreventsIt", func(t *testing.T) {
		t.Parallel()
		b := setupResend(t)
		const runID = "spring-sale/settled"
		ps := seedRunWith(t, b.testBundle, ledger.Run{ID: runID, Delivery: ledger.AtMostOnce, ResendAfter: quietPeriod}, "+1555", 1)
		b.sender.SendFunc = loseFirstAnswer(ps[0].To)
		if err := handle(t, b.testBundle, ps[0]); err != nil {
			t.Fatal(err)
		}
		b.clock.Advance(quietPeriod / 2)
		v, _, err := b.ledger.ApplyDelivery(context.Background(), ledger.DeliveryEvent{Address: ps[0].Address(), State: ledger.Delivered, MessageID: "01JABCDEFGHJKMNPQRSTVWXYZ0"})
		if err != nil || v != ledger.DeliveryApplied {
			t.Fatalf("ApplyDelivery = %s, %v", v, err)
		}
		b.clock.Advance(quietPeriod)
		if n := b.sweep(t, b.worker); n != 0 || len(b.pending(t)) != 0 {
			t.Fatalf("resent %d whose delivery webhook arrived", n)
		}
		if n := b.sender.CallsTo(ps[0].To); n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
		if e := entryOf(t, b.testBundle, ps[0]); e.State != ledger.Delivered {
			t.Fatalf("entry %+v, want delivered", e)
		}
		if c := countersOf(t, b.testBundle, runID); c.ResentUnknown != 0 {
			t.Fatalf("resent_unknown %d, want 0", c.ResentUnknown)
		}
	})

	t.Run("TwoConcurrentSweepersResendOnce", func(t *testing.T) {
		t.Parallel()
		b := setupResend(t)
		const runID = "spring-sale/two"
		ps := seedRunWith(t, b.testBundle, ledger.Run{ID: runID, Delivery: ledger.AtMostOnce, ResendAfter: quietPeriod}, "+1555", 40)
		numbers := make([]string, len(ps))
		for i, p := range ps {
			numbers[i] = p.To
		}
		b.sender.SendFunc = loseFirstAnswer(numbers...)
		for _, p := range ps {
			if err := handle(t, b.testBundle, p); err != nil {
				t.Fatal(err)
			}
		}
		b.clock.Advance(quietPeriod)
		workers := []*Worker{b.worker, b.secondWorker()}
		var total atomic.Int64
		var wg sync.WaitGroup
		for _, w := range workers {
			for range 2 {
				wg.Go(func() {
					n, err := w.SweepUnknown(context.Background())
					if err != nil {
						t.Error(err)
					}
					total.Add(int64(n))
				})
			}
		}
		wg.Wait()
		tasks := b.pending(t)
		if total.Load() != int64(len(ps)) || len(tasks) != len(ps) {
			t.Fatalf("sweepers resent %d, %d tasks, want %d", total.Load(), len(tasks), len(ps))
		}
		// Every task runs, and each is delivered twice by a confused queue: one request each.
		for _, info := range tasks {
			task := asynq.NewTask(info.Type, info.Payload)
			for range 2 {
				if err := b.worker.HandleSend(context.Background(), task); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, p := range ps {
			if n := b.sender.CallsTo(p.To); n != 2 {
				t.Errorf("%s: %d requests, want 2 (the send and one resend)", p.To, n)
			}
		}
		if c := countersOf(t, b.testBundle, runID); c.ResentUnknown != int64(len(ps)) || c.States[ledger.Accepted] != int64(len(ps)) {
			t.Fatalf("resent_unknown %d, states %v", c.ResentUnknown, c.States)
		}
	})

	t.Run("EnqueueFailureBringsTheRecipientBackAfterTheLease", func(t *testing.T) {
		t.Parallel()
		b := setupResend(t)
		const runID = "spring-sale/crash"
		ps := seedRunWith(t, b.testBundle, ledger.Run{ID: runID, Delivery: ledger.AtMostOnce, ResendAfter: quietPeriod}, "+1555", 1)
		b.sender.SendFunc = loseFirstAnswer(ps[0].To)
		if err := handle(t, b.testBundle, ps[0]); err != nil {
			t.Fatal(err)
		}
		real := b.worker.tasks
		failing := &failingWriter{err: errors.New("connection reset")}
		b.worker.tasks = failing
		b.clock.Advance(quietPeriod)
		if n := b.sweep(t, b.worker); n != 0 || failing.calls.Load() != 1 {
			t.Fatalf("swept %d with a failing enqueue (%d calls)", n, failing.calls.Load())
		}
		// Released to queued for its resend, but no task exists: the recipient is not lost.
		if e := entryOf(t, b.testBundle, ps[0]); e.State != ledger.Queued {
			t.Fatalf("entry %+v, want queued for its resend", e)
		}
		b.worker.tasks = real
		if n := b.sweep(t, b.worker); n != 0 {
			t.Fatalf("swept %d while the failed sweep's lease lasts", n)
		}
		b.clock.Advance(time.Minute) // the lease ends
		if n := b.sweep(t, b.worker); n != 1 {
			t.Fatalf("swept %d after the lease, want 1", n)
		}
		tasks := b.pending(t)
		if len(tasks) != 1 {
			t.Fatalf("%d tasks, want 1", len(tasks))
		}
		if err := b.runTask(t, tasks[0]); err != nil {
			t.Fatal(err)
		}
		if n := b.sender.CallsTo(ps[0].To); n != 2 {
			t.Fatalf("%d requests, want 2", n)
		}
		if c := countersOf(t, b.testBundle, runID); c.ResentUnknown != 1 {
			t.Fatalf("resent_unknown %d, want 1 (the retried enqueue is the same resend)", c.ResentUnknown)
		}
	})

	t.Run("ClaimFoundAfterACrashIsResent", func(t *testing.T) {
		t.Parallel()
		b := setupResend(t)
		const runID = "spring-sale/found"
		ps := seedRunWith(t, b.testBundle, ledger.Run{ID: runID, Delivery: ledger.AtMostOnce, ResendAfter: quietPeriod}, "+1555", 1)
		// A worker claimed and died mid-request; asynq delivers the task again.
		if c, err := b.ledger.Claim(context.Background(), ledger.Address{Run: runID, Bucket: ps[0].Bucket, Recipient: ps[0].To}, ledger.AtMostOnce); err != nil || c.Verdict != ledger.VerdictSend {
			t.Fatalf("Claim = %+v, %v", c, err)
		}
		if err := handle(t, b.testBundle, ps[0]); err != nil {
			t.Fatal(err)
		}
		wantEntry(t, b.testBundle, ps[0], ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: ledger.CodeClaimFound})
		if n := len(b.sender.Calls()); n != 0 {
			t.Fatalf("%d requests on the redelivery, want none", n)
		}
		b.clock.Advance(quietPeriod)
		if n := b.sweep(t, b.worker); n != 1 {
			t.Fatalf("swept %d, want 1", n)
		}
		if err := b.runTask(t, b.pending(t)[0]); err != nil {
			t.Fatal(err)
		}
		wantEntry(t, b.testBundle, ps[0], ledger.Entry{State: ledger.Accepted, Attempts: 2, MessageID: "msg-" + ps[0].To})
	})

	t.Run("RunWithoutThePolicyIsNeverSwept", func(t *testing.T) {
		t.Parallel()
		b := setupResend(t)
		ps := seedRunWith(t, b.testBundle, ledger.Run{ID: "spring-sale/plain", Delivery: ledger.AtMostOnce}, "+1555", 1)
		b.sender.SendFunc = loseFirstAnswer(ps[0].To)
		if err := handle(t, b.testBundle, ps[0]); err != nil {
			t.Fatal(err)
		}
		b.clock.Advance(24 * time.Hour)
		if n := b.sweep(t, b.worker); n != 0 || len(b.pending(t)) != 0 {
			t.Fatalf("resent %d in a run without unknown.resend_after", n)
		}
		wantEntry(t, b.testBundle, ps[0], ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: "NO_RESPONSE"})
	})
}

// failingWriter fails every write, as when Redis drops the connection between the release and
// the enqueue.
type failingWriter struct {
	err   error
	calls atomic.Int64
}

func (f *failingWriter) Write(context.Context, []asynqbatch.Task, bool) ([]bool, error) {
	f.calls.Add(1)
	return nil, f.err
}
