package conversation_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/heraldmsg/herald/worker"
)

// lossySender is the worker's client: the first request to each number goes out with no
// answer (the message may have been sent: unknown under at-most-once); every later one is
// accepted.
type lossySender struct {
	mu    sync.Mutex
	calls []string
}

func (s *lossySender) answer(to string) (connectly.SendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := !slices.Contains(s.calls, to)
	s.calls = append(s.calls, to)
	if first {
		return connectly.SendResult{}, &connectly.TransportError{Written: true, Err: io.ErrUnexpectedEOF}
	}
	return connectly.SendResult{ID: "msg-" + to}, nil
}

func (s *lossySender) SendTemplate(_ context.Context, m connectly.TemplateMessage) (connectly.SendResult, error) {
	return s.answer(m.Number)
}

func (s *lossySender) SendSession(_ context.Context, m connectly.SessionMessage) (connectly.SendResult, error) {
	return s.answer(m.To)
}

func (s *lossySender) callsTo(to string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c == to {
			n++
		}
	}
	return n
}

// resendBench is a run of a campaign with unknown.resend_after whose recipient ana tapped a
// button with a session follow-up, the receiver's follow-ups and a worker, on one clock.
type resendBench struct {
	rdb      *redis.Client
	l        *ledger.Ledger
	clock    *clock
	sender   *lossySender
	worker   *worker.Worker
	insp     *asynq.Inspector
	fu       *conversation.Followups
	run      ledger.Run
	followup ledger.Address
}

const resendYAML = `
id: promo
template: {name: spring_promo, language: en_US}
audience: {file: audience.csv}
delivery: at-most-once
unknown: {resend_after: 1m}
on_reply:
  - name: yes
    button: "Yes"
    message: {text: "Here it is"}
`

// newResendBench returns the bench once ana's tap has created the follow-up and its task. With
// hook set, the receiver that handles the tap runs on a client with hook, which makes it fail
// part way: the follow-up's task is then left to the outbox sweep, which a receiver runs a
// minute later.
func newResendBench(t *testing.T, hook redis.Hook) *resendBench {
	t.Helper()
	ctx := context.Background()
	m, rdb := testredis.Mini(t)
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	m.SetTime(c.t)
	def, err := campaigns.Parse("promo.yaml", []byte(resendYAML))
	if err != nil {
		t.Fatal(err)
	}
	l := ledger.New(rdb, c.now)
	ana := "+15550000001"
	run := ledger.Run{ID: "promo-1", Campaign: "promo", Template: "spring_promo", Language: "en_US", Queue: campaigns.QueueFor("marketing"),
		Delivery: ledger.AtMostOnce, ResendAfter: time.Minute, Buckets: 1, Created: c.t}
	if err := l.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	a := ledger.Address{Run: run.ID, Recipient: ana}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: run.ID, From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: ana, Row: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: "msg-parent", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if run, err = l.GetRun(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	resolve := func(_ context.Context, id string) (conversation.RunInfo, bool, error) {
		return conversation.RunInfo{Run: run, Def: def}, id == run.ID, nil
	}
	fu, err := conversation.NewFollowups(conversation.FollowupConfig{Redis: rdb, Business: "biz", Resolve: resolve, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	sender := &lossySender{}
	w := worker.New(worker.Config{MaxAttempts: 3, ResendSweepEvery: -1,
		Limits: limits.Config{BusinessID: "biz", BusinessRate: -1, DefaultSenderRate: 1e6, PairInterval: -1}},
		worker.Deps{Redis: rdb, Sender: sender, Logger: zerolog.Nop(), Now: c.now})
	// The tap opens ana's window (the receiver records it before the follow-ups see it).
	if _, err := servicewindow.New(rdb, c.now).Touch(ctx, "biz", []string{ana}, c.t); err != nil {
		t.Fatal(err)
	}
	cb := ledger.AddressIn(run.ID, ana, run.Buckets)
	tap := conversation.Reply{Kind: webhooks.ReplyButton, From: webhooks.Customer{Phone: ana}, At: c.t,
		Callback: &cb, ButtonText: "Yes", MessageID: "wamid.tap"}
	if hook == nil {
		if out, err := fu.Reply(ctx, tap); err != nil || !out.Created {
			t.Fatalf("tap: %+v, %v; want the follow-up created", out, err)
		}
	} else {
		flaky := redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { flaky.Close() })
		flaky.AddHook(hook)
		dying, err := conversation.NewFollowups(conversation.FollowupConfig{Redis: flaky, Business: "biz", Resolve: resolve, Now: c.now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dying.Reply(ctx, tap); err == nil {
			t.Fatal("tap: the failure was not seen")
		}
		c.t = c.t.Add(time.Minute)
		if n, err := fu.Sweep(ctx, conversation.DefaultSweepAfter); err != nil || n != 1 {
			t.Fatalf("outbox sweep: %d tasks, %v; want the follow-up's", n, err)
		}
	}
	return &resendBench{rdb: rdb, l: l, clock: c, sender: sender, worker: w, insp: asynq.NewInspectorFromRedisClient(rdb),
		fu: fu, run: run, followup: ledger.FollowupAddress(run.ID, "yes", ana, run.Buckets)}
}

// failListing fails the first command that lists a run for the resend sweep: a receiver that
// stops after the follow-up's entry, before its task.
type failListing struct{ done bool }

func (h *failListing) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *failListing) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); !h.done && len(args) > 1 && cmd.Name() == "sadd" && args[1] == rkeys.ResendRuns() {
			h.done = true
			return errors.New("connection reset")
		}
		return next(ctx, cmd)
	}
}

func (h *failListing) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// tasks returns the send tasks waiting in queue.
func (b *resendBench) tasks(t *testing.T, queue string) []*asynq.TaskInfo {
	t.Helper()
	infos, err := b.insp.ListPendingTasks(queue, asynq.PageSize(100))
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatal(err)
	}
	return infos
}

// runOnly runs the one task waiting in the utility queue (none in the marketing queue) as
// resendAccepted lets the quiet period pass, sweeps (one resend) and runs the resend, which
// is accepted: two requests in all.
func (b *resendBench) resendAccepted(t *testing.T) {
	t.Helper()
	b.clock.t = b.clock.t.Add(time.Minute)
	if n := b.sweep(t); n != 1 {
		t.Fatalf("resent %d after the quiet period, want 1", n)
	}
	b.runOnly(t)
	if e := b.entry(t); e.State != ledger.Accepted || b.sender.callsTo(b.followup.Recipient) != 2 {
		t.Fatalf("follow-up %+v, %d requests; want accepted by its one resend", e, b.sender.callsTo(b.followup.Recipient))
	}
}

// asynq would, and deletes it; it returns the task's id.
func (b *resendBench) runOnly(t *testing.T) string {
	t.Helper()
	if ts := b.tasks(t, campaigns.QueueFor("marketing")); len(ts) != 0 {
		t.Fatalf("%d follow-up tasks in the marketing queue, want none", len(ts))
	}
	ts := b.tasks(t, campaigns.QueueFor(campaigns.SessionOnlyCategory))
	if len(ts) != 1 {
		t.Fatalf("%d tasks in the utility queue, want 1", len(ts))
	}
	if err := b.worker.HandleSend(context.Background(), asynq.NewTask(ts[0].Type, ts[0].Payload)); err != nil {
		t.Fatalf("task %s: %v", ts[0].ID, err)
	}
	if err := b.insp.DeleteTask(ts[0].Queue, ts[0].ID); err != nil {
		t.Fatal(err)
	}
	return ts[0].ID
}

func (b *resendBench) entry(t *testing.T) ledger.Entry {
	t.Helper()
	e, ok, err := b.l.Entry(context.Background(), b.followup)
	if err != nil || !ok {
		t.Fatalf("follow-up entry: %v (found %v)", err, ok)
	}
	return e
}

func (b *resendBench) sweep(t *testing.T) int {
	t.Helper()
	n, err := b.worker.SweepUnknown(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// listed reports whether the follow-up run is where the resend sweep looks.
func (b *resendBench) listed(t *testing.T) bool {
	t.Helper()
	ok, err := b.rdb.SIsMember(context.Background(), rkeys.ResendRuns(), b.followup.Run).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// A follow-up of a run whose campaign resends unknown recipients (delivery: at-most-once,
// unknown.resend_after) is resent as the run's own recipients are: once, after the quiet
// period, when its request went out unanswered or its worker died holding the claim, in the
// follow-up's queue (utility, for a session message), with the window checked again.
// Before, the follow-up run did not carry the policy and stayed unknown for good.
func TestFollowupUnknownIsResentOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("RequestUnanswered", func(t *testing.T) {
		t.Parallel()
		b := newResendBench(t, nil)
		to := b.followup.Recipient
		if fr, err := b.l.GetRun(ctx, b.followup.Run); err != nil || fr.ResendAfter != time.Minute {
			t.Fatalf("follow-up run: %+v (%v); want the parent's resend_after", fr, err)
		}
		first := b.runOnly(t)
		if e := b.entry(t); e.State != ledger.Unknown {
			t.Fatalf("follow-up %+v after an unanswered request, want unknown", e)
		}
		b.clock.t = b.clock.t.Add(30 * time.Second)
		if n := b.sweep(t); n != 0 {
			t.Fatalf("resent %d within the quiet period", n)
		}
		b.clock.t = b.clock.t.Add(30 * time.Second)
		if n := b.sweep(t); n != 1 {
			t.Fatalf("resent %d after the quiet period, want 1", n)
		}
		if again := b.runOnly(t); again != first+":r1" {
			t.Fatalf("resend task %s, want %s:r1", again, first)
		}
		if e := b.entry(t); e.State != ledger.Accepted || e.Attempts != 2 {
			t.Fatalf("follow-up %+v after its resend, want accepted at attempt 2", e)
		}
		b.clock.t = b.clock.t.Add(24 * time.Hour)
		if n := b.sweep(t); n != 0 || b.sender.callsTo(to) != 2 {
			t.Fatalf("later sweep resent %d; %d requests, want 2 (the send and its one resend)", n, b.sender.callsTo(to))
		}
		if b.listed(t) {
			t.Fatal("the follow-up run is still swept with nothing of it left to resend")
		}
	})

	t.Run("ParentCancelled", func(t *testing.T) {
		// A follow-up of a run cancelled since is not resent: it stays unknown (a later
		// delivery event settles it), as the cancelled run's own unknown recipients do,
		// rather than being released, counted as resent and then skipped(cancelled).
		t.Parallel()
		b := newResendBench(t, nil)
		b.runOnly(t)
		parent, _, _ := ledger.FollowupOf(b.followup.Run)
		if _, _, err := b.l.Cancel(ctx, parent, "wrong audience"); err != nil {
			t.Fatal(err)
		}
		b.clock.t = b.clock.t.Add(time.Minute)
		if n := b.sweep(t); n != 0 {
			t.Fatalf("resent %d after the run it follows was cancelled, want 0", n)
		}
		if e := b.entry(t); e.State != ledger.Unknown {
			t.Fatalf("follow-up %+v, want it still unknown", e)
		}
		c, err := b.l.Counters(ctx, b.followup.Run)
		if err != nil || c.ResendWaiting != 0 || c.ResentUnknown != 0 {
			t.Fatalf("counters %+v (%v): want nothing waiting and nothing counted resent", c, err)
		}
	})

	t.Run("WorkerDiedHoldingTheClaim", func(t *testing.T) {
		t.Parallel()
		b := newResendBench(t, nil)
		if _, err := b.l.Claim(ctx, b.followup, ledger.AtMostOnce); err != nil {
			t.Fatal(err)
		}
		b.sender.calls = append(b.sender.calls, b.followup.Recipient) // its request went out
		b.runOnly(t)                                                  // the task again, after the worker's death
		if e := b.entry(t); e.State != ledger.Unknown {
			t.Fatalf("follow-up %+v after the claim was found, want unknown", e)
		}
		b.resendAccepted(t)
	})

	t.Run("TaskLeftToTheOutboxSweep", func(t *testing.T) {
		t.Parallel()
		b := newResendBench(t, &failListing{})
		b.runOnly(t)
		b.resendAccepted(t)
	})

	t.Run("WindowClosedByTheResend", func(t *testing.T) {
		t.Parallel()
		b := newResendBench(t, nil)
		b.runOnly(t)
		b.clock.t = b.clock.t.Add(25 * time.Hour)
		if n := b.sweep(t); n != 1 {
			t.Fatalf("resent %d, want 1", n)
		}
		b.runOnly(t)
		// The resend is withdrawn, not skipped: the first message may have gone, so the
		// follow-up stays unknown with its code, and no second request is made.
		if e := b.entry(t); e.State != ledger.Unknown || e.Code != "NO_RESPONSE" || b.sender.callsTo(b.followup.Recipient) != 1 {
			t.Fatalf("follow-up %+v, %d requests; want unknown NO_RESPONSE (its resend withdrawn as the window closed) with no second request",
				e, b.sender.callsTo(b.followup.Recipient))
		}
	})
}
