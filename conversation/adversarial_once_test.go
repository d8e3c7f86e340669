package conversation_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/heraldmsg/herald/worker"
)

// Exactly one answer to one tap, counted where it matters: the requests the fake Connectly
// took as sent. advBench runs one campaign run end to end on one Redis: Herald's worker sends
// the run's template and the follow-ups through the fake, the fake calls Herald's webhook
// receiver (with on_reply's follow-ups installed) back with delivery events and the
// customer's taps, and the test moves the send tasks through the worker itself, so it decides
// when a retry runs.

const advSecret = "whsec-adv-0123456789"

// advYAML is a campaign whose "Yes, show me" button is answered by a session message,
// with the delivery policy filled in.
const advYAML = `
id: adv
template: {name: spring_promo, language: en_US}
audience: {file: audience.csv}
delivery: %s
on_reply:
  - name: interested
    button: "Yes, show me"
    message: {text: "Here it is"}
  - name: price
    keyword: "how much"
    message: {text: "From $9"}
`

type advBench struct {
	m *miniredis.Miniredis
	// outage, set by newAdvBench, stands between the bench's clients and m: a test cuts it to
	// play Redis down (closing m would free its port for another test process's server).
	outage *testredis.Outage
	rdb    *redis.Client
	l      *ledger.Ledger
	def    *campaigns.Definition
	runs   map[string]ledger.Run
	fu     *conversation.Followups
	rc     *webhooks.Receiver
	hook   string
	fake   *fakeconnectly.Server
	w      *worker.Worker
	insp   *asynq.Inspector
	policy ledger.Delivery
	// dropper, with advOpts.lossy, loses a reply to the receiver.
	dropper *testredis.ReplyDropper
	// refused counts the webhook calls the receiver did not answer 200.
	refused atomic.Int64
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// advOpts are what an advBench varies: the campaign's delivery policy, the worker's attempts
// at a transient failure, the fake's send rules, and whether it loses every delivery event.
type advOpts struct {
	policy       ledger.Delivery
	attempts     int
	rules        []fakeconnectly.Rule
	dropStatuses bool
	// lossy puts a testredis.ReplyDropper between the receiver (and its follow-ups) and
	// Redis: advBench.dropper.
	lossy bool
}

// newAdvBench starts the fake, the receiver and a worker as o says.
func newAdvBench(t *testing.T, o advOpts) *advBench {
	t.Helper()
	policy := o.policy
	const business, key = "biz-adv", "key-adv-0123456789abcdef"
	m, rdb, outage := testredis.MiniOutage(t)
	def, err := campaigns.Parse("adv.yaml", fmt.Appendf(nil, advYAML, policy))
	if err != nil {
		t.Fatal(err)
	}
	b := &advBench{m: m, outage: outage, rdb: rdb, l: ledger.New(rdb, nil), def: def, runs: map[string]ledger.Run{}, policy: policy,
		insp: asynq.NewInspectorFromRedisClient(rdb)}
	resolve := func(_ context.Context, id string) (conversation.RunInfo, bool, error) {
		r, ok := b.runs[id]
		return conversation.RunInfo{Run: r, Def: def}, ok, nil
	}
	receiving := rdb
	if o.lossy {
		if b.dropper, err = testredis.StartReplyDropper(outage.Addr()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.dropper.Close() })
		receiving = redis.NewClient(&redis.Options{Addr: b.dropper.Addr()})
		t.Cleanup(func() { receiving.Close() })
	}
	if b.fu, err = conversation.NewFollowups(conversation.FollowupConfig{Redis: receiving, Business: business, Resolve: resolve}); err != nil {
		t.Fatal(err)
	}
	if b.rc, err = webhooks.New(webhooks.Config{Secrets: []string{advSecret}, Business: business},
		webhooks.Deps{Redis: receiving, Logger: zerolog.Nop(), Replies: b.fu}); err != nil {
		t.Fatal(err)
	}
	b.serveHooks(t)
	fake, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: business, APIKey: key, RateLimit: -1, Rules: o.rules,
		Webhooks: fakeconnectly.WebhookConfig{URL: b.hook, Secret: advSecret, DropPercent: map[bool]float64{true: 100}[o.dropStatuses]}})
	b.fake = fake
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: business, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	b.w = worker.New(worker.Config{MaxAttempts: o.attempts, ResendSweepEvery: -1,
		Limits: limits.Config{BusinessID: business, BusinessRate: -1, DefaultSenderRate: 1e6, PairInterval: -1}},
		worker.Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop()})
	b.w.OnSending(conversation.SendRecorder(resolve, conversation.NewIndex(rdb, business, nil), conversation.NewColumns(rdb)))
	return b
}

// serveHooks serves b's receiver over HTTP for the fake's webhook calls (b.hook), counting
// the calls it did not answer 200 (b.refused).
func (b *advBench) serveHooks(t *testing.T) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &statusWriter{ResponseWriter: w}
		b.rc.ServeHTTP(rw, r)
		if rw.status != http.StatusOK {
			b.refused.Add(1)
		}
	}))
	t.Cleanup(srv.Close)
	b.hook = srv.URL + "/"
}

// startRun creates run id of the campaign for rcpts, planned and queued, with its send tasks
// written as the expander writes them (resendAfter: the campaign's unknown.resend_after).
func (b *advBench) startRun(t *testing.T, id string, resendAfter time.Duration, rcpts ...string) ledger.Run {
	t.Helper()
	run := b.createRun(t, ledger.Run{ID: id, Campaign: "adv", Template: "spring_promo", Language: "en_US",
		Queue: campaigns.QueueFor("marketing"), Delivery: b.policy, ResendAfter: resendAfter}, rcpts...)
	for _, r := range rcpts {
		b.enqueueSend(t, run, campaigns.SendPayload{Run: id, To: r, Bucket: 0, Campaign: "adv", Template: run.Template,
			Language: run.Language, Delivery: string(b.policy), Category: "marketing"})
	}
	return run
}

// createRun creates run (one bucket, started a minute ago) with rcpts planned and queued, and
// remembers it for the resolver.
func (b *advBench) createRun(t *testing.T, run ledger.Run, rcpts ...string) ledger.Run {
	t.Helper()
	ctx := context.Background()
	run.Buckets, run.Created = 1, time.Now().Add(-time.Minute)
	if err := b.l.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	entries := make([]ledger.PlanEntry, len(rcpts))
	for i, r := range rcpts {
		entries[i] = ledger.PlanEntry{Recipient: r, Bucket: 0, Row: i + 1}
	}
	if _, err := b.l.PlanQueued(ctx, ledger.Batch{Run: run.ID, From: 0, To: len(rcpts), Entries: entries}); err != nil {
		t.Fatal(err)
	}
	run, err := b.l.GetRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	b.runs[run.ID] = run
	return run
}

// enqueueSend writes p's send task in run's queue, under the task id the expander gives it.
func (b *advBench) enqueueSend(t *testing.T, run ledger.Run, p campaigns.SendPayload) {
	t.Helper()
	tid, err := b.l.TaskID(context.Background(), run.ID, p.To)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asynq.NewClientFromRedisClient(b.rdb).Enqueue(asynq.NewTask(campaigns.TypeSend, campaigns.EncodeSend(p)),
		asynq.TaskID(tid), asynq.Queue(run.Queue)); err != nil {
		t.Fatal(err)
	}
}

// pump runs every send task pending in Herald's send queues (or in queues, when given) once,
// as asynq would hand them to the worker: a task that ends (done, or not to be retried) is
// deleted, one that asks to be tried again stays for the next pump. It returns how many tasks
// it ran.
func (b *advBench) pump(t *testing.T, queues ...string) int {
	t.Helper()
	if len(queues) == 0 {
		queues = slices.Sorted(maps.Keys(campaigns.Queues))
	}
	n := 0
	for _, q := range queues {
		infos, err := b.insp.ListPendingTasks(q, asynq.PageSize(100))
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			t.Fatal(err)
		}
		for _, ti := range infos {
			n++
			err := b.w.HandleSend(context.Background(), asynq.NewTask(ti.Type, ti.Payload))
			if err == nil || errors.Is(err, asynq.SkipRetry) {
				if err := b.insp.DeleteTask(q, ti.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return n
}

// drain pumps until no task is left pending (each retry of a failed send runs at once), at
// most 20 rounds.
func (b *advBench) drain(t *testing.T) {
	t.Helper()
	for range 20 {
		if b.pump(t) == 0 {
			return
		}
	}
	t.Fatal("send tasks still pending after 20 rounds")
}

// settle waits until the fake has delivered every webhook it planned and the receiver has
// nothing parked it can apply.
func (b *advBench) settle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	testredis.WaitUntil(t, 20*time.Second, "webhooks delivered", func() bool {
		if b.fake.WebhookStats().Pending != 0 {
			return false
		}
		_, _, err := b.rc.RetryParked(ctx)
		return err == nil
	})
}

// answers returns the session messages (follow-ups) the fake took as sent to number: what
// the customer got, whatever Herald's own counters say.
func (b *advBench) answers(t *testing.T, number string) []fakeconnectly.SentMessage {
	t.Helper()
	c, err := b.fake.Conversation(number)
	if err != nil {
		t.Fatal(err)
	}
	var out []fakeconnectly.SentMessage
	for _, m := range c.Messages {
		if m.Kind == fakeconnectly.KindSession {
			out = append(out, m)
		}
	}
	return out
}

// templates returns how many template messages the fake took as sent to number.
func (b *advBench) templates(t *testing.T, number string) int {
	t.Helper()
	c, err := b.fake.Conversation(number)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range c.Messages {
		if m.Kind == fakeconnectly.KindTemplate {
			n++
		}
	}
	return n
}

// tap has number tap "Yes, show me" on the latest message the fake sent them, in shape, and
// waits until the receiver has taken it.
func (b *advBench) tap(t *testing.T, number, shape string) {
	t.Helper()
	b.inbound(t, number, fakeconnectly.Reply{Button: "Yes, show me", Payload: "YES", Shape: shape})
}

// inbound has number send r through the fake and waits until the receiver has taken it.
func (b *advBench) inbound(t *testing.T, number string, r fakeconnectly.Reply) {
	t.Helper()
	before := len(b.fake.RepliesFrom(number))
	if _, err := b.fake.Inbound(number, r); err != nil {
		t.Fatal(err)
	}
	testredis.WaitUntil(t, 20*time.Second, "the reply delivered", func() bool {
		rs := b.fake.RepliesFrom(number)
		return len(rs) > before && rs[len(rs)-1].Delivered
	})
	b.settle(t)
}

// entry returns run's entry for to.
func (b *advBench) entry(t *testing.T, run, to string) ledger.Entry {
	t.Helper()
	e, _, err := b.l.Entry(context.Background(), ledger.AddressIn(run, to, 1))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// texts lists the texts of msgs, for failure messages.
func texts(msgs []fakeconnectly.SentMessage) string {
	var s []string
	for _, m := range msgs {
		s = append(s, fmt.Sprintf("%q (%d, callbackData %s)", m.Text, m.Status, m.CallbackData))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// The bench itself: a tap on a message that went out plainly gets one answer, and a second
// tap on the same button (another inbound message) none more.
func TestAdversarialBaselineOneTapOneAnswer(t *testing.T) {
	t.Parallel()
	const ana = "+15550100001"
	b := newAdvBench(t, advOpts{policy: ledger.AtMostOnce, attempts: 3})
	b.startRun(t, "adv-1", 0, ana)
	if n := b.pump(t); n != 1 {
		t.Fatalf("%d tasks run, want the template's", n)
	}
	b.settle(t)
	b.tap(t, ana, fakeconnectly.ReplyButtonContext)
	b.pump(t)
	b.tap(t, ana, fakeconnectly.ReplyButtonLegacy)
	b.pump(t)
	if got := b.answers(t, ana); len(got) != 1 {
		t.Fatalf("answers the fake took for ana: %s, want one", texts(got))
	}
}

// A tap that comes while its message's request is still out: Connectly took the message
// and the customer tapped it before the worker had Connectly's answer (the entry submitting).
// The tap names the message, so its follow-up is created and goes out before the parent's
// accept is recorded; the parent's delivery events come after. One answer.
func TestAdversarialTapWhileTheTemplateRequestIsInFlight(t *testing.T) {
	t.Parallel()
	const ana = "+15550100011"
	ctx := context.Background()
	b := newAdvBench(t, advOpts{policy: ledger.AtMostOnce, attempts: 3, rules: []fakeconnectly.Rule{
		{Numbers: []string{ana}, Kind: fakeconnectly.KindTemplate, Latency: 3 * time.Second, Sent: true},
	}})
	run := b.startRun(t, "adv-1", 0, ana)
	infos, err := b.insp.ListPendingTasks(run.Queue)
	if err != nil || len(infos) != 1 {
		t.Fatalf("template tasks: %d, %v; want one", len(infos), err)
	}
	sent := make(chan error, 1)
	go func() { sent <- b.w.HandleSend(ctx, asynq.NewTask(infos[0].Type, infos[0].Payload)) }()
	testredis.WaitUntil(t, 10*time.Second, "Connectly took the template", func() bool { return b.fake.AcceptedCount(ana) == 1 })
	if e := b.entry(t, "adv-1", ana); e.State != ledger.Submitting {
		t.Fatalf("entry %+v, want its request still out", e)
	}
	b.tap(t, ana, fakeconnectly.ReplyButtonContext)
	b.pump(t, campaigns.QueueFor(campaigns.SessionOnlyCategory))
	if got := b.answers(t, ana); len(got) != 1 {
		t.Fatalf("answers while the template's request is out: %s, want one", texts(got))
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := b.insp.DeleteTask(run.Queue, infos[0].ID); err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	b.drain(t)
	if e := b.entry(t, "adv-1", ana); e.MessageID == "" {
		t.Fatalf("parent entry %+v, want its message recorded", e)
	}
	if got := b.answers(t, ana); len(got) != 1 {
		t.Fatalf("answers: %s, want one", texts(got))
	}
}

// Redis goes away as the tap comes in (the receiver answers 503), and comes back while
// Connectly is still trying the call again: the tap, in the shape with no message object
// (named by its body), gets one answer, not none.
func TestAdversarialTapWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	const ana = "+15550100012"
	b := newAdvBench(t, advOpts{policy: ledger.AtMostOnce, attempts: 3})
	b.startRun(t, "adv-1", 0, ana)
	b.pump(t)
	b.settle(t)
	b.outage.Cut()
	if _, err := b.fake.Inbound(ana, fakeconnectly.Reply{Button: "Yes, show me", Payload: "YES", Shape: fakeconnectly.ReplyButtonTop}); err != nil {
		t.Fatal(err)
	}
	testredis.WaitUntil(t, 10*time.Second, "the receiver answering 503", func() bool { return b.refused.Load() > 0 })
	b.outage.Restore()
	testredis.WaitUntil(t, 20*time.Second, "the tap delivered", func() bool {
		rs := b.fake.RepliesFrom(ana)
		return len(rs) == 1 && rs[0].Delivered
	})
	b.settle(t)
	b.drain(t)
	if got := b.answers(t, ana); len(got) != 1 {
		t.Fatalf("answers the fake took: %s, want one", texts(got))
	}
}

// Redis runs a step of the receiver's and the reply is lost on the way back (a read timeout,
// a failover cutting the connection): go-redis sends the command again, the receiver may
// answer 503 and Connectly deliver the tap again. Whichever step it is, the tap gets one
// answer.
func TestAdversarialTapWithALostRedisReply(t *testing.T) {
	t.Parallel()
	fuRun := ledger.FollowupRun("adv-1", "interested")
	outbox := rkeys.FollowupOutbox(fuRun)
	for _, tc := range []struct{ name, pattern string }{
		{"pinning the join", rkeys.Prefix + "conv:join:"},
		{"creating the follow-up entry", rkeys.Run(fuRun) + "\r\n"},
		{"writing the follow-up's task", rkeys.AsynqTask(campaigns.QueueFor(campaigns.SessionOnlyCategory), "")},
		{"taking the entry out of the outbox", fmt.Sprintf("hdel\r\n$%d\r\n%s", len(outbox), outbox)},
		{"recording the conversation", rkeys.Conversation("adv-1", "")},
		{"counting the reply", rkeys.Delivery("adv-1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const ana = "+15550100013"
			b := newAdvBench(t, advOpts{policy: ledger.AtMostOnce, attempts: 3, lossy: true})
			b.startRun(t, "adv-1", 0, ana)
			b.pump(t)
			b.settle(t)
			b.dropper.DropReplyTo([]byte(tc.pattern))
			b.tap(t, ana, fakeconnectly.ReplyButtonTop)
			if b.dropper.Dropped() != 1 {
				t.Fatalf("no reply lost: the case tests nothing")
			}
			b.drain(t)
			b.settle(t)
			if got := b.answers(t, ana); len(got) != 1 {
				t.Fatalf("answers the fake took: %s, want one", texts(got))
			}
		})
	}
}
