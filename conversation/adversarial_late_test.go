package conversation_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/heraldmsg/herald/worker"
)

// The late fallback under attack: a session message Connectly accepted and then reported
// undelivered because the customer's window had closed gets its fallback template, exactly
// once; one that was delivered gets none; nobody gets two. Counted where it matters: the
// messages the fake Connectly took as sent to each customer (its Conversation), on the late
// bench of latefallback_test.go grown with the faults each case needs.

// lateAdvOpts vary an adversarial late bench.
type lateAdvOpts struct {
	// answer is the fake's WindowAnswer (default at-delivery).
	answer   string
	policy   ledger.Delivery
	attempts int
	rules    []fakeconnectly.Rule
	fates    []fakeconnectly.Fate
	// duplicates, reorder: the fake's DuplicatePercent and ReorderPercent.
	duplicates, reorder float64
	// serial has the fake make one webhook call at a time, so a message's events arrive in
	// the order its fate sends them.
	serial bool
	// lossy puts a testredis.ReplyDropper between the receiver (and its follow-ups) and Redis.
	lossy bool
	// replica adds a second receiver, with follow-ups of its own, on the same Redis: the
	// fake calls one or the other, a duplicate going to the other one.
	replica bool
	// echo is the fake's CallbackEcho.
	echo string
	// def is the campaign the runs resolve to (on_reply rules); empty without.
	def *campaigns.Definition
	// clock, when set, is what every part of Herald on the bench reads for the time (the
	// ledger, the follow-ups, the receiver, the worker, the index); nil leaves them on real
	// time.
	clock *lrClock
}

// lrClock is real time moved on by what a test added: every part of Herald on a bench given
// it reads it, so a test lets a quiet period pass at once. Safe for the receiver's goroutines.
type lrClock struct{ off atomic.Int64 }

func (c *lrClock) now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// advance moves the clock on by d.
func (c *lrClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// lateAdv is an advBench with the controls the late cases need.
type lateAdv struct {
	*advBench
	// clock is lateAdvOpts.clock (nil: real time).
	clock *lrClock
	// gate holds the webhook calls while hold has it (hold, release); failGate holds the
	// delivery failures' calls only (holdFailures, releaseFailures); sessionGate holds the
	// delivered and read calls of messages other than late fallbacks (holdSessionEvents,
	// releaseSessionEvents).
	gate, failGate, sessionGate sync.RWMutex
	// lose, while set, answers the calls about a late fallback (callbackData naming a
	// "~_fallback" run) 200 without handing them to the receiver: the events are lost on
	// the way, as a webhook Connectly never sends. lost counts them.
	lose atomic.Bool
	lost atomic.Int64
}

// holdFailures makes the receiver's calls of delivery_failed events wait until
// releaseFailures; the other calls go on.
func (b *lateAdv) holdFailures() { b.failGate.Lock() }

// releaseFailures lets the held failures through.
func (b *lateAdv) releaseFailures() { b.failGate.Unlock() }

// hold makes the receiver's webhook calls wait (the fake's calls are slow) until release.
func (b *lateAdv) hold() { b.gate.Lock() }

// release lets the held webhook calls through.
func (b *lateAdv) release() { b.gate.Unlock() }

// holdSessionEvents makes the receiver's delivered and read calls of messages other than late
// fallbacks wait until releaseSessionEvents.
func (b *lateAdv) holdSessionEvents() { b.sessionGate.Lock() }

// releaseSessionEvents lets them through.
func (b *lateAdv) releaseSessionEvents() { b.sessionGate.Unlock() }

// waitOpen returns once gate is not held for writing (a held gate holds back the webhook
// calls that wait at it), taking nothing with it.
func waitOpen(gate *sync.RWMutex) {
	gate.RLock()
	defer gate.RUnlock()
}

// serveHook is the bench's webhook handler: a call waits at its own gates first (failGate,
// sessionGate), holding no other, so hold() can still be taken while one is held; then at
// gate, which it holds while the receiver (or lose) answers it.
func (b *lateAdv) serveHook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	fallback := bytes.Contains(body, []byte("~_fallback"))
	if bytes.Contains(body, []byte(`"status":"delivery_failed"`)) {
		waitOpen(&b.failGate)
	}
	if !fallback && (bytes.Contains(body, []byte(`"status":"delivered"`)) || bytes.Contains(body, []byte(`"status":"read"`))) {
		waitOpen(&b.sessionGate)
	}
	b.gate.RLock()
	defer b.gate.RUnlock()
	if fallback && b.lose.Load() {
		b.lost.Add(1)
		w.WriteHeader(http.StatusOK)
		return
	}
	rw := &statusWriter{ResponseWriter: w}
	b.rc.ServeHTTP(rw, r)
	if rw.status != http.StatusOK {
		b.refused.Add(1)
	}
}

func newLateAdvBench(t *testing.T, o lateAdvOpts) *lateAdv {
	t.Helper()
	const business, key = "biz-late", "key-late-0123456789abcdef"
	if o.answer == "" {
		o.answer = fakeconnectly.WindowAnswerAtDelivery
	}
	if o.policy == "" {
		o.policy = ledger.AtMostOnce
	}
	if o.attempts == 0 {
		o.attempts = 3
	}
	def := o.def
	if def == nil {
		def = &campaigns.Definition{}
	}
	var now func() time.Time
	if o.clock != nil {
		now = o.clock.now
	}
	m, rdb := testredis.Mini(t)
	b := &advBench{m: m, rdb: rdb, l: ledger.New(rdb, now), def: def, runs: map[string]ledger.Run{}, policy: o.policy,
		insp: asynq.NewInspectorFromRedisClient(rdb)}
	la := &lateAdv{advBench: b, clock: o.clock}
	resolve := func(_ context.Context, id string) (conversation.RunInfo, bool, error) {
		r, ok := b.runs[id]
		return conversation.RunInfo{Run: r, Def: def}, ok, nil
	}
	receiving := rdb
	var err error
	if o.lossy {
		if b.dropper, err = testredis.StartReplyDropper(m.Addr()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.dropper.Close() })
		receiving = redis.NewClient(&redis.Options{Addr: b.dropper.Addr()})
		t.Cleanup(func() { receiving.Close() })
	}
	if b.fu, err = conversation.NewFollowups(conversation.FollowupConfig{Redis: receiving, Business: business, Resolve: resolve,
		LateFallbackAfter: -1, Now: now}); err != nil {
		t.Fatal(err)
	}
	if b.rc, err = webhooks.New(webhooks.Config{Secrets: []string{advSecret}, Business: business, Now: now},
		webhooks.Deps{Redis: receiving, Logger: zerolog.Nop(), Replies: b.fu, LateRefusals: b.fu}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(la.serveHook))
	t.Cleanup(srv.Close)
	b.hook = srv.URL + "/"
	hooks := fakeconnectly.WebhookConfig{URL: b.hook, Secret: advSecret, DuplicatePercent: o.duplicates, ReorderPercent: o.reorder,
		Fates: o.fates, CallbackEcho: o.echo}
	if o.serial {
		hooks.Concurrency = 1
	}
	if o.replica {
		fu2, err := conversation.NewFollowups(conversation.FollowupConfig{Redis: rdb, Business: business, Resolve: resolve,
			LateFallbackAfter: -1, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		rc2, err := webhooks.New(webhooks.Config{Secrets: []string{advSecret}, Business: business, Now: now},
			webhooks.Deps{Redis: rdb, Logger: zerolog.Nop(), Replies: fu2, LateRefusals: fu2})
		if err != nil {
			t.Fatal(err)
		}
		srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := &statusWriter{ResponseWriter: w}
			rc2.ServeHTTP(rw, r)
			if rw.status != http.StatusOK {
				b.refused.Add(1)
			}
		}))
		t.Cleanup(srv2.Close)
		hooks.URLs = []string{srv2.URL + "/"}
	}
	fake, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: business, APIKey: key, RateLimit: -1,
		WindowAnswer: o.answer, Rules: o.rules, Webhooks: hooks})
	b.fake = fake
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: business, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	b.w = worker.New(worker.Config{MaxAttempts: o.attempts, ResendSweepEvery: -1,
		Limits: limits.Config{BusinessID: business, BusinessRate: -1, DefaultSenderRate: 1e6, PairInterval: -1}},
		worker.Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop(), Now: now})
	b.w.OnSending(conversation.SendRecorder(resolve, conversation.NewIndex(rdb, business, now), conversation.NewColumns(rdb)))
	return la
}

// finish runs every task left and lets every webhook settle, twice over (a fallback's own
// events come after its task ran).
func (b *lateAdv) finish(t *testing.T) {
	t.Helper()
	for range 3 {
		b.settle(t)
		b.drain(t)
	}
	b.settle(t)
}

// closeHerald forgets the inbound messages Herald recorded from number: Herald's record
// says the window is closed (as when it expired).
func (b *lateAdv) closeHerald(t *testing.T, number string) {
	t.Helper()
	key, field := servicewindow.Locate("biz-late", number)
	if err := b.rdb.HDel(context.Background(), key, field).Err(); err != nil {
		t.Fatal(err)
	}
}

// lateFallback returns the late fallback entry of run's message to to, if there is one.
func (b *lateAdv) lateFallback(t *testing.T, run, to string) (ledger.Entry, bool) {
	t.Helper()
	_, parent, rule := ledger.LateFallbackRun(run)
	e, ok, err := b.l.Entry(context.Background(), ledger.FollowupAddress(parent, rule, to, 1))
	if err != nil {
		t.Fatal(err)
	}
	return e, ok
}

// tally reports what the fake took as sent to number.
func (b *lateAdv) tally(t *testing.T, number string) string {
	t.Helper()
	c, err := b.fake.Conversation(number)
	if err != nil {
		t.Fatal(err)
	}
	s := ""
	for _, m := range c.Messages {
		s += fmt.Sprintf("[%s %s status %d window-failure %q] ", m.Kind, m.MessageID, m.Status, m.WindowFailure)
	}
	return s
}

// taken returns how many session messages and templates the fake took as sent to number
// (given an id; a request it refused at once took nothing).
func (b *lateAdv) taken(t *testing.T, number string) (sessions, templates int) {
	t.Helper()
	c, err := b.fake.Conversation(number)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Messages {
		switch {
		case m.MessageID == "":
		case m.Kind == fakeconnectly.KindSession:
			sessions++
		case m.Kind == fakeconnectly.KindTemplate:
			templates++
		}
	}
	return sessions, templates
}

// expect checks the counts at the fake for number: session messages and templates taken.
func (b *lateAdv) expect(t *testing.T, number string, sessions, templates int) {
	t.Helper()
	if s, tp := b.taken(t, number); s != sessions || tp != templates {
		t.Errorf("%s: the fake took %d session messages and %d templates, want %d and %d: %s", number, s, tp, sessions, templates,
			b.tally(t, number))
	}
}

// 1. An at-least-once session campaign: the session request is answered 500 after the fake
// took it (reference 4.4: "duplicate risk"), the worker sends it again, and both copies are
// later reported undelivered as outside the window. One fallback template.
func TestAdversarialLateBothCopiesOfARetriedSessionFail(t *testing.T) {
	t.Parallel()
	const ana, ben = "+15550300001", "+15550300002"
	b := newLateAdvBench(t, lateAdvOpts{policy: ledger.AtLeastOnce, duplicates: 50, rules: []fakeconnectly.Rule{
		{Numbers: []string{ana, ben}, Kind: fakeconnectly.KindSession, Status: 500, Sent: true, Times: 1},
	}})
	b.startSessionRun(t, "late-1", false, ana, ben)
	b.pump(t)
	b.settle(t)
	for _, to := range []string{ana, ben} {
		if e := b.entry(t, "late-1", to); e.State != ledger.Queued {
			t.Fatalf("%s after the 500: entry %+v, want queued for a retry", to, e)
		}
	}
	b.finish(t)
	for _, to := range []string{ana, ben} {
		b.expect(t, to, 2, 1)
		if e, ok := b.lateFallback(t, "late-1", to); !ok || e.Code != ledger.SentFallback {
			t.Errorf("%s: late fallback entry %+v (%v), want it sent", to, e, ok)
		}
	}
}

// 1b. The same with every attempt answered 500 after the fake took it: the entry ends
// unknown, each copy's events come, both fail. One fallback template.
func TestAdversarialLateEveryAttemptAmbiguous(t *testing.T) {
	t.Parallel()
	const ana = "+15550300003"
	b := newLateAdvBench(t, lateAdvOpts{policy: ledger.AtLeastOnce, attempts: 2, rules: []fakeconnectly.Rule{
		{Numbers: []string{ana}, Kind: fakeconnectly.KindSession, Status: 500, Sent: true},
	}})
	b.startSessionRun(t, "late-1", false, ana)
	b.finish(t)
	b.expect(t, ana, 2, 1)
}

// 2. At-most-once: the session request is answered 500 after the fake took it, so the entry
// is unknown; then its delivery failure (callbackData names the entry) settles it. One
// fallback template, and no resend.
func TestAdversarialLateAmbiguousAtMostOnce(t *testing.T) {
	t.Parallel()
	const ana = "+15550300011"
	for _, answer := range []string{fakeconnectly.WindowAnswerAtDelivery, fakeconnectly.WindowAnswerAtDelivery131047} {
		t.Run(answer, func(t *testing.T) {
			t.Parallel()
			b := newLateAdvBench(t, lateAdvOpts{answer: answer, rules: []fakeconnectly.Rule{
				{Numbers: []string{ana}, Kind: fakeconnectly.KindSession, Status: 500, Sent: true, Times: 1},
			}})
			b.startSessionRun(t, "late-1", false, ana)
			b.pump(t)
			b.settle(t)
			if e := b.entry(t, "late-1", ana); e.State != ledger.Failed || e.MessageID == "" {
				t.Fatalf("entry %+v, want the unknown settled failed by its delivery failure", e)
			}
			b.finish(t)
			b.expect(t, ana, 1, 1)
			// A resend sweep finds nothing to send again.
			if n, err := b.w.SweepUnknown(context.Background()); err != nil || n != 0 {
				t.Fatalf("resend sweep: %d, %v; want nothing", n, err)
			}
			b.finish(t)
			b.expect(t, ana, 1, 1)
		})
	}
}

// secondAttemptSlowHooks runs the retry of to's send, whose request is answered 500 after the
// fake took it (the last attempt: the entry ends unknown), while the receiver is slow to take
// the webhook calls of that second message; the first message's events, parked while its
// entry waited for the retry, are tried again meanwhile (the receiver's loop), as they are
// every few seconds.
func (b *lateAdv) secondAttemptSlowHooks(t *testing.T, to string) {
	t.Helper()
	b.hold()
	held := true
	defer func() {
		if held {
			b.release()
		}
	}()
	if n := b.pump(t); n != 1 {
		t.Fatalf("%d tasks run, want the retry", n)
	}
	if e := b.entry(t, "late-1", to); e.State != ledger.Unknown {
		t.Fatalf("after the second 500: entry %+v, want unknown", e)
	}
	if _, _, err := b.rc.RetryParked(context.Background()); err != nil {
		t.Fatal(err)
	}
	held = false
	b.release()
}

// 8b. At-least-once: the first session request is answered 500 after the fake took it (a
// copy that will fail as outside the window); the retry is refused at once as outside the
// window and its fallback, sent at once under the same claim, is answered 500 after the fake
// took it (the entry ends unknown, the template read); the first copy's failure then settles
// the entry. The refusal dropped the kept fallback: no second template (the gate's fallback
// does not, adversarial_late_defect_test.go).
func TestAdversarialLateRefusedFallbackAfterAnAmbiguousSession(t *testing.T) {
	t.Parallel()
	const ana = "+15550300022"
	b := newLateAdvBench(t, lateAdvOpts{policy: ledger.AtLeastOnce, attempts: 2, rules: []fakeconnectly.Rule{
		{Numbers: []string{ana}, Kind: fakeconnectly.KindSession, Status: 500, Sent: true, Times: 1},
		{Numbers: []string{ana}, Kind: fakeconnectly.KindSession, Code: fakeconnectly.CodeOutsideWindow},
		{Numbers: []string{ana}, Kind: fakeconnectly.KindTemplate, Status: 500, Sent: true, Times: 1},
	}})
	b.startSessionRun(t, "late-1", false, ana)
	b.pump(t)
	b.settle(t)
	b.secondAttemptSlowHooks(t, ana)
	b.finish(t)
	b.expect(t, ana, 1, 1)
}

// pendingSend returns the pending send task of to in run and its queue; it fails the test
// when there is none.
func (b *lateAdv) pendingSend(t *testing.T, run, to string) (string, *asynq.TaskInfo) {
	t.Helper()
	for q := range campaigns.Queues {
		infos, err := b.insp.ListPendingTasks(q, asynq.PageSize(100))
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			t.Fatal(err)
		}
		for _, ti := range infos {
			if p, err := campaigns.DecodeSend(ti.Payload); err == nil && p.Run == run && p.To == to {
				return q, ti
			}
		}
	}
	t.Fatalf("no pending task of %s in %s", to, run)
	return "", nil
}

// pumpFor runs the pending send task of to in run once (the others wait), as pump does.
func (b *lateAdv) pumpFor(t *testing.T, run, to string) {
	t.Helper()
	q, ti := b.pendingSend(t, run, to)
	err := b.w.HandleSend(context.Background(), asynq.NewTask(ti.Type, ti.Payload))
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		if err := b.insp.DeleteTask(q, ti.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// sendWithTheReadParked holds the delivery failures' calls and runs task, the send of a
// session message whose fate is a read and then a failure and whose answer is slow: the read
// comes before the send is recorded and is parked. It returns once the send is done, the
// failure still held, with the function that lets the held failures through (the test's
// cleanup does, if it has not).
func (b *lateAdv) sendWithTheReadParked(t *testing.T, task *asynq.Task) (releaseFailures func()) {
	t.Helper()
	ctx := context.Background()
	b.holdFailures()
	var once sync.Once
	releaseFailures = func() { once.Do(b.releaseFailures) }
	t.Cleanup(releaseFailures)
	sent := make(chan error, 1)
	go func() { sent <- b.w.HandleSend(ctx, task) }()
	testredis.WaitUntil(t, 10*time.Second, "the read parked", func() bool {
		n, err := b.l.ParkedCount(ctx)
		return err == nil && n == 1
	})
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	return releaseFailures
}

// 3a. Every event twice and in shuffled order, callbackData echoed in each form the fake
// knows: one fallback each.
func TestAdversarialLateEventsTwiceOutOfOrder(t *testing.T) {
	t.Parallel()
	const ana, ben, cy = "+15550300031", "+15550300032", "+15550300033"
	for _, echo := range []string{"", fakeconnectly.CallbackString, fakeconnectly.CallbackReencoded} {
		t.Run("echo "+echo, func(t *testing.T) {
			t.Parallel()
			b := newLateAdvBench(t, lateAdvOpts{duplicates: 100, reorder: 100, echo: echo})
			b.startSessionRun(t, "late-1", false, ana, ben, cy)
			b.finish(t)
			for _, to := range []string{ana, ben, cy} {
				b.expect(t, to, 1, 1)
			}
			if n := b.refused.Load(); n != 0 {
				t.Errorf("the receiver refused %d calls", n)
			}
		})
	}
}

// 3c. Two receivers, each event going to one and its copy to the other at the same time:
// both handle the failure at once. One fallback each.
func TestAdversarialLateTwoReceivers(t *testing.T) {
	t.Parallel()
	rcpts := []string{"+15550300035", "+15550300036", "+15550300037", "+15550300038", "+15550300039"}
	b := newLateAdvBench(t, lateAdvOpts{duplicates: 100, reorder: 50, replica: true})
	b.startSessionRun(t, "late-1", false, rcpts...)
	b.finish(t)
	for _, to := range rcpts {
		b.expect(t, to, 1, 1)
	}
	if n := b.refused.Load(); n != 0 {
		t.Errorf("the receivers refused %d calls", n)
	}
}

// 3b. Contradictory events for one message, in the order given (one call at a time): a
// delivered after the window failure (at most one fallback: the failure came first), a copy
// of the failure after the delivered, and the delivered before the failure (none).
func TestAdversarialLateDeliveredAndFailed(t *testing.T) {
	t.Parallel()
	const ana = "+15550300034"
	failed, delivered, read, sent := fakeconnectly.HookDeliveryFailed, fakeconnectly.HookDelivered, fakeconnectly.HookRead, fakeconnectly.HookSent
	for _, tc := range []struct {
		name     string
		seq      []string
		min, max int
	}{
		{"delivered after the failure", []string{sent, failed, delivered}, 0, 1},
		{"the failure again after delivered", []string{sent, failed, delivered, failed}, 0, 1},
		{"read after the failure, twice", []string{sent, failed, read, failed, read}, 0, 1},
		{"delivered before the failure", []string{sent, delivered, failed}, 0, 0},
		{"read before the failure, failure twice", []string{read, failed, failed}, 0, 0},
		{"failure only, twice", []string{failed, failed}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newLateAdvBench(t, lateAdvOpts{serial: true, fates: []fakeconnectly.Fate{
				{Numbers: []string{ana}, Sequence: tc.seq, Code: fakeconnectly.CodeOutsideWindow},
			}})
			// The fake's window is open, so its fate decides the session message's events.
			if err := b.fake.OpenWindow(ana, time.Time{}); err != nil {
				t.Fatal(err)
			}
			b.startSessionRun(t, "late-1", false, ana)
			// The events come once the send is recorded (see the defect case for one that
			// comes before).
			b.hold()
			b.pump(t)
			// The fallback, if one goes, is read.
			if err := b.fake.SetFates(nil); err != nil {
				t.Fatal(err)
			}
			b.release()
			b.finish(t)
			s, tp := b.taken(t, ana)
			if s != 1 || tp < tc.min || tp > tc.max {
				t.Errorf("the fake took %d session messages and %d templates, want 1 and %d..%d: %s", s, tp, tc.min, tc.max, b.tally(t, ana))
			}
		})
	}
}

// 4. The receiver's Redis loses a reply at a step of the late refusal (go-redis sends the
// command again; the receiver may answer 503 and the fake call again); the outbox sweep runs
// as the receiver's loop runs it. One fallback.
func TestAdversarialLateLostRedisReply(t *testing.T) {
	t.Parallel()
	fuRun, _, _ := ledger.LateFallbackRun("late-1")
	outbox := rkeys.FollowupOutbox(fuRun)
	for _, tc := range []struct{ name, pattern string }{
		{"applying the failure", fakeconnectly.CodeOutsideWindow},
		{"reading the kept fallback", rkeys.KeptFallback("late-1", 0)},
		{"reading the run", rkeys.Run("late-1") + "\r\n"},
		{"creating the follow-up entry", rkeys.Run(fuRun) + "\r\n"},
		{"writing the fallback's task", rkeys.AsynqTask(campaigns.QueueFor("marketing"), "")},
		{"taking the entry out of the outbox", fmt.Sprintf("hdel\r\n$%d\r\n%s", len(outbox), outbox)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const ana = "+15550300041"
			b := newLateAdvBench(t, lateAdvOpts{lossy: true})
			b.startSessionRun(t, "late-1", false, ana)
			b.dropper.DropReplyTo([]byte(tc.pattern))
			b.pump(t)
			b.settle(t)
			if b.dropper.Dropped() != 1 {
				t.Fatalf("no reply lost: the case tests nothing")
			}
			if _, err := b.fu.Sweep(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
			b.finish(t)
			b.expect(t, ana, 1, 1)
		})
	}
}

// 5a. The run is paused when the failure arrives: the fallback is created and held with the
// run, and goes once the run is resumed.
func TestAdversarialLatePausedRun(t *testing.T) {
	t.Parallel()
	const ana, ben = "+15550300051", "+15550300052"
	ctx := context.Background()
	b := newLateAdvBench(t, lateAdvOpts{})
	b.startSessionRun(t, "late-1", false, ana, ben)
	b.hold()
	b.pumpFor(t, "late-1", ana)
	if ok, err := b.l.Pause(ctx, "late-1", "operator"); err != nil || !ok {
		t.Fatalf("pause: %v, %v", ok, err)
	}
	b.release()
	b.settle(t)
	for range 3 {
		b.pump(t)
		b.settle(t)
	}
	b.expect(t, ana, 1, 0)
	b.expect(t, ben, 0, 0)
	if _, ok := b.lateFallback(t, "late-1", ana); !ok {
		t.Fatalf("no late fallback entry for ana while the run is paused")
	}
	if ok, err := b.l.Resume(ctx, "late-1"); err != nil || !ok {
		t.Fatalf("resume: %v, %v", ok, err)
	}
	b.finish(t)
	b.expect(t, ana, 1, 1)
	b.expect(t, ben, 1, 1)
}

// 5b. The run is cancelled before the failure arrives, or after its fallback was created but
// before the fallback's task ran: no fallback.
func TestAdversarialLateCancelledRun(t *testing.T) {
	t.Parallel()
	const ana, ben = "+15550300053", "+15550300054"
	ctx := context.Background()
	for _, when := range []string{"before the failure", "before the fallback's task"} {
		t.Run(when, func(t *testing.T) {
			t.Parallel()
			b := newLateAdvBench(t, lateAdvOpts{})
			b.startSessionRun(t, "late-1", false, ana, ben)
			b.hold()
			b.pumpFor(t, "late-1", ana)
			if when == "before the failure" {
				if ok, _, err := b.l.Cancel(ctx, "late-1", "operator"); err != nil || !ok {
					t.Fatalf("cancel: %v, %v", ok, err)
				}
			}
			b.release()
			b.settle(t)
			if when != "before the failure" {
				if _, ok := b.lateFallback(t, "late-1", ana); !ok {
					t.Fatalf("no late fallback entry for ana")
				}
				if ok, _, err := b.l.Cancel(ctx, "late-1", "operator"); err != nil || !ok {
					t.Fatalf("cancel: %v, %v", ok, err)
				}
			}
			b.finish(t)
			b.expect(t, ana, 1, 0)
			b.expect(t, ben, 0, 0)
		})
	}
}

// lateReplyYAML is a template campaign whose "Yes, show me" is answered by a session message
// with a fallback template; %s is room for more of the campaign's keys (lines).
const lateReplyYAML = `
id: adv
template: {name: spring_promo, language: en_US}
audience: {file: audience.csv}
delivery: at-most-once
%son_reply:
  - name: interested
    button: "Yes, show me"
    message: {text: "Here it is"}
    template: {name: spring_promo}
`

// lateReplyCampaign parses lateReplyYAML with more (lines of campaign keys, or "").
func lateReplyCampaign(t *testing.T, more string) *campaigns.Definition {
	t.Helper()
	def, err := campaigns.Parse("adv.yaml", []byte(fmt.Sprintf(lateReplyYAML, more)))
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// tapWindowCloses sends run adv-1 of the bench's campaign (resend_after resendAfter) to
// number, lets number tap "Yes, show me" and closes number's window at the fake (Herald's
// record still says open): the session follow-up the tap asks for waits to go.
func (b *lateAdv) tapWindowCloses(t *testing.T, resendAfter time.Duration, number string) {
	t.Helper()
	b.startRun(t, "adv-1", resendAfter, number)
	b.pump(t)
	b.settle(t)
	b.tap(t, number, fakeconnectly.ReplyButtonContext)
	b.fake.ClearWindows()
}

// 6. An on_reply rule's follow-up is a session message with a fallback template; the
// customer's window closes at the fake (Herald's record still says open) before it goes, so
// it is accepted and then fails as outside the window: its fallback goes once, in
// RUN~_fallback-RULE.
func TestAdversarialLateFollowupSessionFails(t *testing.T) {
	t.Parallel()
	const ana = "+15550300061"
	b := newLateAdvBench(t, lateAdvOpts{def: lateReplyCampaign(t, ""), duplicates: 100})
	b.tapWindowCloses(t, 0, ana)
	b.finish(t)
	b.tap(t, ana, fakeconnectly.ReplyButtonLegacy)
	b.finish(t)
	// The campaign's template, the session follow-up, its fallback.
	b.expect(t, ana, 1, 2)
	fu := ledger.FollowupRun("adv-1", "interested")
	if run, _, rule := ledger.LateFallbackRun(fu); run != "adv-1~_fallback-interested" || rule != "_fallback-interested" {
		t.Fatalf("late fallback run of %s: %s", fu, run)
	}
	if e, ok, err := b.l.Entry(context.Background(), ledger.FollowupAddress("adv-1", "_fallback-interested", ana, 1)); err != nil || !ok ||
		e.Code != ledger.SentFallback {
		t.Fatalf("late fallback entry %+v, %v, %v; want it sent", e, ok, err)
	}
}

// 7. The fallback template itself fails at delivery with a window code (a fate forces it):
// no loop, no second template. Also for a fallback the gate sent (Herald's record said
// closed) and one sent at once after a refusal.
func TestAdversarialLateFallbackFailsWithAWindowCode(t *testing.T) {
	t.Parallel()
	const ana = "+15550300071"
	for _, tc := range []struct {
		name     string
		fate     fakeconnectly.Fate
		rules    []fakeconnectly.Rule
		closed   bool
		sessions int
	}{
		{name: "late fallback", sessions: 1,
			fate: fakeconnectly.Fate{Status: fakeconnectly.HookDeliveryFailed, Code: fakeconnectly.CodeOutsideWindow}},
		{name: "late fallback, Meta 131047", sessions: 1,
			fate: fakeconnectly.Fate{Status: fakeconnectly.HookDeliveryFailed, Code: "131047", NumericCode: true}},
		{name: "the gate's fallback", closed: true,
			fate: fakeconnectly.Fate{Status: fakeconnectly.HookDeliveryFailed, Code: fakeconnectly.CodeOutsideWindow}},
		{name: "the fallback after a refusal",
			rules: []fakeconnectly.Rule{{Kind: fakeconnectly.KindSession, Code: fakeconnectly.CodeOutsideWindow}},
			fate:  fakeconnectly.Fate{Status: fakeconnectly.HookDeliveryFailed, Code: fakeconnectly.CodeOutsideWindow}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fate.Numbers = []string{ana}
			b := newLateAdvBench(t, lateAdvOpts{duplicates: 100, rules: tc.rules, fates: []fakeconnectly.Fate{tc.fate}})
			b.startSessionRun(t, "late-1", false, ana)
			if tc.closed {
				b.closeHerald(t, ana)
			}
			b.finish(t)
			if _, err := b.fu.Sweep(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
			b.finish(t)
			b.expect(t, ana, tc.sessions, 1)
		})
	}
}

// 8d. At-least-once: the first session request is answered 500 after the fake took it (to
// fail late), the retry is refused at once as outside the window and its fallback goes at
// once; the first copy's failure comes after. One template.
func TestAdversarialLateFailureAfterARefusalsFallback(t *testing.T) {
	t.Parallel()
	const ana = "+15550300081"
	b := newLateAdvBench(t, lateAdvOpts{policy: ledger.AtLeastOnce, rules: []fakeconnectly.Rule{
		{Numbers: []string{ana}, Kind: fakeconnectly.KindSession, Status: 500, Sent: true, Times: 1},
		{Numbers: []string{ana}, Kind: fakeconnectly.KindSession, Code: fakeconnectly.CodeOutsideWindow},
	}})
	b.startSessionRun(t, "late-1", false, ana)
	b.hold()
	b.pump(t)
	b.pump(t)
	b.release()
	b.finish(t)
	b.expect(t, ana, 1, 1)
	// A failure for the entry with no message id (one that names the refused message) comes
	// anyway, twice: the fallback already went.
	ctx := context.Background()
	e := b.entry(t, "late-1", ana)
	for range 2 {
		ev := ledger.DeliveryEvent{Address: ledger.AddressIn("late-1", ana, 1), State: ledger.Failed, Code: fakeconnectly.CodeOutsideWindow}
		if _, _, err := b.l.ApplyDelivery(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if err := b.fu.HandleLateRefusal(ctx, ev); err != nil {
			t.Fatal(err)
		}
		ev.MessageID = e.MessageID
		if err := b.fu.HandleLateRefusal(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	b.finish(t)
	b.expect(t, ana, 1, 1)
}
