package conversation_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/ulid"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// One inbound message, one join: copies of a webhook (Connectly's retries, a second receiver
// replica) delivered after the campaign's next run messaged the customer, or after a first
// copy failed part way.

// nextRun starts another run of the promo campaign wait after the clock, sends its message
// to to (messageID, "" to leave the request out) and records the send in the index of recent
// sends, as the worker does just before the request.
func (b *fuBundle) nextRun(t *testing.T, id string, wait time.Duration, to, messageID string) ledger.Run {
	t.Helper()
	ctx := context.Background()
	if wait != 0 {
		// Not written for no wait: replies may be reading the clock meanwhile
		// (TestFollowupsConcurrentCopiesJoinOnce).
		b.clock.t = b.clock.t.Add(wait)
	}
	run := b.run
	run.ID, run.Created = id, b.clock.t
	if err := b.l.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	pe := ledger.PlanEntry{Recipient: to, Bucket: ledger.BucketOf(to, run.Buckets), Row: 1}
	if _, err := b.l.PlanQueued(ctx, ledger.Batch{Run: run.ID, From: 0, To: 1, Entries: []ledger.PlanEntry{pe}}); err != nil {
		t.Fatal(err)
	}
	a := ledger.Address{Run: run.ID, Recipient: to, Bucket: pe.Bucket}
	if _, err := b.l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if err := b.fu.Index().Record(ctx, run.ID, pe.Bucket, to, run.Created.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if messageID != "" {
		b.accept(t, run, to, messageID)
	}
	run, err := b.l.GetRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// accept records run's message to to as accepted with messageID.
func (b *fuBundle) accept(t *testing.T, run ledger.Run, to, messageID string) {
	t.Helper()
	a := ledger.AddressIn(run.ID, to, run.Buckets)
	if _, err := b.l.Finish(context.Background(), a, ledger.Outcome{State: ledger.Accepted, MessageID: messageID, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
}

// replica returns follow-ups on rdb (nil: the bundle's client) that know runs besides the
// bundle's: a receiver that runs after them.
func (b *fuBundle) replica(t *testing.T, rdb redis.UniversalClient, runs ...ledger.Run) *conversation.Followups {
	t.Helper()
	if rdb == nil {
		rdb = b.rdb
	}
	resolve := func(ctx context.Context, id string) (conversation.RunInfo, bool, error) {
		for _, r := range runs {
			if r.ID == id {
				return conversation.RunInfo{Run: r, Def: b.def}, true, nil
			}
		}
		return b.resolve(ctx, id)
	}
	fu, err := conversation.NewFollowups(conversation.FollowupConfig{Redis: rdb, Business: "biz", Tasks: b.tasks,
		Resolve: resolve, Now: b.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	return fu
}

// followupTasks returns, for each run, whether a task was written for rule's follow-up of to
// (1) or not (0). A task is named by its follow-up entry (ledger.TaskIDs), and a task
// written again under its name is the same task: asynq keeps one per id, and the worker's
// claim sends the entry once.
func (b *fuBundle) followupTasks(rule, to string, runs ...string) []int {
	b.tasks.mu.Lock()
	defer b.tasks.mu.Unlock()
	out := make([]int, len(runs))
	for i, run := range runs {
		out[i] = min(1, len(b.tasks.tasks[b.taskID(ledger.FollowupRun(run, rule), to)]))
	}
	return out
}

// askPrice is ana's plain-text question, provider id id, written now.
func (b *fuBundle) askPrice(id string) conversation.Reply {
	return conversation.Reply{Kind: webhooks.ReplyText, From: webhooks.Customer{Phone: b.rcpts[0]}, At: b.clock.t,
		Text: "How much is it?", MessageID: id}
}

// ulidAt is a message id Connectly could have given a message created at t.
func ulidAt(t time.Time, n uint64) string {
	return ulid.Format(uint64(t.UnixMilli())<<16, n)
}

// The proven case: ana asks the price in reply to run promo-1, whose "price" follow-up is
// created; the next day's promo-2 messages her; the same webhook comes again. The copy joins
// promo-1, as the first did, and the message has one follow-up, not one from each run.
// promo-2's message id holds no time, so the join's lower bound cannot tell: the pin does.
func TestFollowupsCopyAfterANewerRunJoinsTheFirstRun(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	ana := b.rcpts[0]
	b.recordSend(t, ana)
	text := b.askPrice("wamid.inbound-1")
	first, err := b.fu.Reply(ctx, text)
	if err != nil || !first.Created || first.Entry.Run != b.run.ID || first.Repeat {
		t.Fatalf("first copy: %+v %v", first, err)
	}
	run2 := b.nextRun(t, "promo-2", 24*time.Hour, ana, "wamid.second")
	// Without the pin a copy now joins promo-2: the newest run that messaged ana.
	if e, ok, err := b.fu.Index().Join(ctx, conversation.Reply{Kind: webhooks.ReplyText, From: text.From}); err != nil || !ok || e.Run != run2.ID {
		t.Fatalf("a fresh join after promo-2: %+v %v %v, want promo-2 (the case is moot otherwise)", e, ok, err)
	}
	again, err := b.replica(t, nil, run2).Reply(ctx, text)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Repeat || again.Entry != first.Entry || again.Created || again.Verdict != ledger.FollowupQueuedBefore {
		t.Fatalf("copy: %+v, want promo-1's entry %+v again, nothing created", again, first.Entry)
	}
	if got := b.followupTasks("price", ana, b.run.ID, run2.ID); got[0] != 1 || got[1] != 0 {
		t.Fatalf("follow-up tasks in promo-1, promo-2: %v, want [1 0]", got)
	}
	if h, err := conversation.NewHistory(b.rdb, b.clock.now).Read(ctx, run2.ID, ana); err != nil || len(h) != 0 {
		t.Fatalf("promo-2's conversation with ana: %+v (%v), want none", h, err)
	}
}

// A message whose first copy joined no run stays joined to none: a copy after a run then
// messaged the customer does not join that run.
func TestFollowupsCopyOfAnUnjoinedMessageStaysUnjoined(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	ana := b.rcpts[0]
	text := b.askPrice("wamid.early")
	text.At = time.Time{} // no timestamp: only the pin keeps it off the later run
	if out, err := b.fu.Reply(ctx, text); err != nil || out.Entry.Run != "" {
		t.Fatalf("first copy, nothing recorded for ana: %+v %v", out, err)
	}
	run2 := b.nextRun(t, "promo-2", time.Hour, ana, "wamid.second")
	out, err := b.replica(t, nil, run2).Reply(ctx, text)
	if err != nil || out.Entry.Run != "" || !out.Repeat {
		t.Fatalf("copy: %+v %v, want joined to none again", out, err)
	}
	if got := b.followupTasks("price", ana, run2.ID); got[0] != 0 {
		t.Fatalf("%d follow-up tasks in promo-2, want 0", got[0])
	}
}

// Copies of one message racing a newer run's send, on two receiver replicas: whichever the
// first join finds, every copy takes it, and the message has one follow-up.
func TestFollowupsConcurrentCopiesJoinOnce(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	ana := b.rcpts[0]
	b.recordSend(t, ana)
	text := b.askPrice("wamid.raced")
	text.At = time.Time{} // no timestamp: the join's lower bound does not help
	run2 := b.run
	run2.ID, run2.Created = "promo-2", b.clock.t
	replicas := []*conversation.Followups{b.replica(t, nil, run2), b.replica(t, nil, run2)}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		outs []conversation.Outcome
	)
	for i := range 8 {
		wg.Go(func() {
			out, err := replicas[i%2].Reply(ctx, text)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			outs = append(outs, out)
			mu.Unlock()
		})
	}
	// Meanwhile promo-2 messages ana (the ledger's calls are its own; the index is recorded
	// among the copies).
	run2 = b.nextRun(t, run2.ID, 0, ana, "wamid.second")
	wg.Wait()
	if t.Failed() {
		return
	}
	first := 0
	for i, o := range outs {
		if o.Entry != outs[0].Entry {
			t.Fatalf("copy %d joined %+v, copy 0 %+v: one message, two joins", i, o.Entry, outs[0].Entry)
		}
		if !o.Repeat {
			first++
		}
	}
	if first != 1 {
		t.Fatalf("%d copies joined first, want 1", first)
	}
	got := b.followupTasks("price", ana, b.run.ID, run2.ID)
	if got[0]+got[1] != 1 {
		t.Fatalf("follow-up tasks in promo-1, promo-2: %v, want one in all", got)
	}
}

// failOnce is a go-redis hook that fails the first command (alone or in a pipeline) named
// cmd ("" for any) with an argument holding part, once a command on an inbound message's pin
// has been run: a receiver losing Redis part way through a reply it has already joined.
type failOnce struct {
	part, cmd string
	armed     atomic.Bool
	fired     atomic.Bool
}

var errInjected = errors.New("connection reset (injected)")

// names reports whether cmd has an argument holding part.
func names(cmd redis.Cmder, part string) bool {
	for _, a := range cmd.Args() {
		if strings.Contains(fmt.Sprint(a), part) {
			return true
		}
	}
	return false
}

// fail reports whether cmds must fail now, and spends the failure.
func (h *failOnce) fail(cmds ...redis.Cmder) bool {
	if h.part == "" || !h.armed.Load() || h.fired.Load() {
		return false
	}
	for _, c := range cmds {
		if (h.cmd == "" || c.Name() == h.cmd) && names(c, h.part) {
			return h.fired.CompareAndSwap(false, true)
		}
	}
	return false
}

func (h *failOnce) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *failOnce) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.fail(cmd) {
			cmd.SetErr(errInjected)
			return errInjected
		}
		err := next(ctx, cmd)
		if names(cmd, rkeys.Prefix+"conv:join:") {
			h.armed.Store(true)
		}
		return err
	}
}

func (h *failOnce) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.fail(cmds...) {
			for _, c := range cmds {
				c.SetErr(errInjected)
			}
			return errInjected
		}
		return next(ctx, cmds)
	}
}

// A copy delivered after the first failed part way, wherever it failed once joined, and after
// the next run messaged the customer, completes the first copy's follow-up: exactly one
// follow-up task, in the run the first copy joined, and one line in its conversation.
func TestFollowupsCopyAfterAPartialFailureCompletesTheFollowup(t *testing.T) {
	t.Parallel()
	ana := "+15550000001"
	anaBucket := rkeys.LedgerBucket("promo-1", ledger.BucketOf(ana, 2))
	for _, tc := range []struct {
		name string
		// part names the command that fails (a piece of its key) and cmd its name ("" for
		// any); part "" fails none
		part, cmd string
		// tasks makes the task write fail instead
		tasks bool
		// tap: ana taps Unsubscribe (suppress: true) instead of asking the price in text
		tap bool
	}{
		{name: "reading the run's entry", part: anaBucket},
		{name: "reading the suppression list", part: rkeys.Suppressed(), cmd: "hmget"},
		{name: "creating the follow-up entry", part: rkeys.Run(ledger.FollowupRun("promo-1", "price"))},
		{name: "writing the task", tasks: true},
		{name: "taking the entry out of the outbox", part: rkeys.FollowupOutbox(ledger.FollowupRun("promo-1", "price")), cmd: "hdel"},
		{name: "recording the conversation", part: rkeys.Conversation("promo-1", ana)},
		{name: "creating a suppressing rule's entry", part: rkeys.Run(ledger.FollowupRun("promo-1", "unsubscribe")), tap: true},
		{name: "suppressing", part: rkeys.Suppressed(), cmd: "evalsha", tap: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupFollowups(t)
			ctx := context.Background()
			if b.rcpts[0] != ana {
				t.Fatalf("the bundle's first recipient is %s, want %s", b.rcpts[0], ana)
			}
			if err := b.fu.Index().Record(ctx, b.run.ID, ledger.BucketOf(ana, 2), ana, b.clock.t.Add(72*time.Hour)); err != nil {
				t.Fatal(err)
			}
			rule, reply := "price", b.askPrice("wamid.partial")
			if tc.tap {
				rule, reply = "unsubscribe", b.tap(ana, "Unsubscribe")
				reply.MessageID = "wamid.partial"
			}
			hook := &failOnce{part: tc.part, cmd: tc.cmd}
			rdb := redis.NewClient(&redis.Options{Addr: b.m.Addr()})
			t.Cleanup(func() { rdb.Close() })
			rdb.AddHook(hook)
			b.tasks.fail = tc.tasks
			if _, err := b.replica(t, rdb).Reply(ctx, reply); err == nil {
				t.Fatal("the first copy did not fail: the case tests nothing")
			}
			if tc.part != "" && !hook.fired.Load() {
				t.Fatal("the failure was never injected")
			}
			b.tasks.fail = false
			run2 := b.nextRun(t, "promo-2", 24*time.Hour, ana, "wamid.second")
			out, err := b.replica(t, nil, run2).Reply(ctx, reply)
			if err != nil {
				t.Fatal(err)
			}
			if !out.Repeat || out.Entry.Run != b.run.ID || out.Rule != rule {
				t.Fatalf("copy: %+v, want promo-1's entry and rule %s", out, rule)
			}
			if got := b.followupTasks(rule, ana, b.run.ID, run2.ID); got[0] != 1 || got[1] != 0 {
				t.Fatalf("%s follow-up tasks in promo-1, promo-2: %v, want [1 0]", rule, got)
			}
			if h, err := conversation.NewHistory(b.rdb, b.clock.now).Read(ctx, b.run.ID, ana); err != nil || len(h) != 1 {
				t.Fatalf("promo-1's conversation with ana: %+v (%v), want the reply once", h, err)
			}
			if tc.tap {
				if sup, err := b.l.Suppressed(ctx, []string{ana}); err != nil || !sup[0] {
					t.Fatalf("ana suppressed: %v (%v)", sup, err)
				}
			}
		})
	}
}

// The join's lower bound: a reply with a time is not joined to a run whose message to the
// customer was sent after it (its provider id's time past the reply's second by more than
// ReplyClockSlack, or no message yet), whatever the order the reply and the run come in. Such
// replies carry no provider id here, so no pin is involved.
func TestJoinRefusesARunThatMessagedAfterTheReply(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	ana, bea := b.rcpts[0], b.rcpts[1]
	b.recordSend(t, ana)
	written := b.clock.t
	at := func(t time.Time) conversation.Reply {
		return conversation.Reply{Kind: webhooks.ReplyText, From: webhooks.Customer{Phone: ana}, At: t, Text: "How much is it?"}
	}
	join := func(name string, r conversation.Reply, wantRun, wantVia string) {
		t.Helper()
		e, ok, err := b.fu.Index().Join(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if (wantRun == "") == ok || e.Run != wantRun || e.Via != wantVia {
			t.Errorf("%s: Join = %+v, %v; want run %q via %q", name, e, ok, wantRun, wantVia)
		}
	}
	// promo-2 is recorded for ana ten minutes later; its request is still out.
	run2 := b.nextRun(t, "promo-2", 10*time.Minute, ana, "")
	join("request out, reply before", at(written), b.run.ID, conversation.ViaRecent)
	// Without a time too: promo-2's message is not known to have reached ana yet (it may
	// still be refused), and promo-1's did.
	join("request out, reply without a time", at(time.Time{}), b.run.ID, conversation.ViaRecent)
	// Connectly takes it.
	sent := b.clock.t.Add(300 * time.Millisecond)
	b.accept(t, run2, ana, ulidAt(sent, 7))
	join("reply before the message", at(written), b.run.ID, conversation.ViaRecent)
	join("reply after the message", at(sent.Add(time.Minute).Truncate(time.Second)), run2.ID, conversation.ViaRecent)
	join("reply without a time (as before)", at(time.Time{}), run2.ID, conversation.ViaRecent)
	// Within the clocks' slack of the message, the newest run still wins; past it, not.
	join("reply within the slack", at(sent.Add(-conversation.ReplyClockSlack).Truncate(time.Second)), run2.ID, conversation.ViaRecent)
	join("reply past the slack", at(sent.Add(-conversation.ReplyClockSlack-2*time.Second).Truncate(time.Second)), b.run.ID, conversation.ViaRecent)
	// A reply naming promo-2's message answers it, whatever the times.
	named := at(written)
	named.ReplyTo = ulidAt(sent, 7)
	join("reply naming the message", named, run2.ID, conversation.ViaReplyTo)
	// A customer whose only run messaged them after they wrote is joined to none.
	run3 := b.nextRun(t, "promo-3", time.Minute, bea, "")
	b.accept(t, run3, bea, ulidAt(b.clock.t, 9))
	early := at(written)
	early.From = webhooks.Customer{Phone: bea}
	join("only run after the reply", early, "", "")

	// And the follow-up: ana's question from before promo-2 gets promo-1's answer.
	out, err := b.replica(t, nil, run2, run3).Reply(ctx, at(written))
	if err != nil || out.Entry.Run != b.run.ID || !out.Created {
		t.Fatalf("reply before promo-2's message: %+v %v", out, err)
	}
	if got := b.followupTasks("price", ana, b.run.ID, run2.ID); got[0] != 1 || got[1] != 0 {
		t.Fatalf("follow-up tasks in promo-1, promo-2: %v, want [1 0]", got)
	}
}

// Through the receiver, as Connectly delivers it: the first delivery is joined and its
// follow-up created, then counting the reply fails and the receiver answers 503; the next
// day's run messages the customer; the delivery comes again. The message has one follow-up and
// one reply counted, both in the run the first delivery joined. Both shapes: a text with a
// message id, and a lone buttonResponse without a message object (named by its body).
func TestReceiverRedeliveryAfterA503FollowsUpOnce(t *testing.T) {
	t.Parallel()
	const secret = "whsec-test"
	for _, tc := range []struct {
		name, rule string
		body       func(from string, at time.Time) []byte
	}{
		{name: "text with a message id", rule: "price", body: func(from string, at time.Time) []byte {
			return fmt.Appendf(nil, `{"timestamp":"%d","sender":{"id":%q,"channelType":"whatsapp"},"message":{"id":"wamid.http-1","text":"how much?"}}`,
				at.Unix(), from)
		}},
		{name: "button without a message object", rule: "later", body: func(from string, at time.Time) []byte {
			return fmt.Appendf(nil, `{"timestamp":"%d","sender":{"id":%q,"channelType":"whatsapp"},"buttonResponse":{"text":"Not now","id":"b2"}}`,
				at.Unix(), from)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupFollowups(t)
			ctx := context.Background()
			ana := b.rcpts[0]
			if err := b.fu.Index().Record(ctx, b.run.ID, ledger.BucketOf(ana, 2), ana, b.clock.t.Add(72*time.Hour)); err != nil {
				t.Fatal(err)
			}
			body := tc.body(ana, b.clock.t)
			receiver := func(rdb redis.UniversalClient, runs ...ledger.Run) http.Handler {
				rc, err := webhooks.New(webhooks.Config{Secrets: []string{secret}, Now: b.clock.now, Business: "biz"},
					webhooks.Deps{Redis: rdb, Logger: zerolog.Nop(), Replies: b.replica(t, rdb, runs...)})
				if err != nil {
					t.Fatal(err)
				}
				return rc
			}
			post := func(h http.Handler) int {
				req := httptest.NewRequest(http.MethodPost, "/webhooks/connectly", bytes.NewReader(body))
				req.Header.Set("Content-Type", "text/plain; charset=utf-8")
				req.Header.Set(webhooks.SignatureHeader, webhooks.Sign(body, secret))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				return w.Code
			}
			// Counting the reply (the run's delivery statistics) fails once, which comes after
			// the reply handler.
			hook := &failOnce{part: rkeys.Delivery(b.run.ID)}
			hook.armed.Store(true)
			flaky := redis.NewClient(&redis.Options{Addr: b.m.Addr()})
			t.Cleanup(func() { flaky.Close() })
			flaky.AddHook(hook)
			if code := post(receiver(flaky)); code != http.StatusServiceUnavailable || !hook.fired.Load() {
				t.Fatalf("first delivery: %d (failure injected: %v), want 503", code, hook.fired.Load())
			}
			if got := b.followupTasks(tc.rule, ana, b.run.ID); got[0] != 1 {
				t.Fatalf("first delivery wrote no %s follow-up", tc.rule)
			}
			run2 := b.nextRun(t, "promo-2", 24*time.Hour, ana, "wamid.second")
			for i := range 2 {
				if code := post(receiver(b.rdb, run2)); code != http.StatusOK {
					t.Fatalf("delivery %d: %d, want 200", i+2, code)
				}
			}
			if got := b.followupTasks(tc.rule, ana, b.run.ID, run2.ID); got[0] != 1 || got[1] != 0 {
				t.Fatalf("%s follow-up tasks in promo-1, promo-2: %v, want [1 0]", tc.rule, got)
			}
			for run, want := range map[string]int64{b.run.ID: 1, run2.ID: 0} {
				d, err := b.l.DeliveryStats(ctx, run)
				if err != nil || d.Replies != want {
					t.Errorf("replies counted in %s: %d (%v), want %d", run, d.Replies, err, want)
				}
			}
		})
	}
}

// A reply that comes while its run's entry is still submitting (Connectly took the message,
// the worker has not recorded the accept yet: its finish is in flight or retried through a
// failover) is joined to that run: the run was created before the reply, so its message may be
// what the reply answers. Before, the entry's state alone refused the run, and the refusal was
// pinned, so no copy of the reply, even after the accept, got its follow-up.
func TestJoinTakesARunWhoseAcceptIsNotRecordedYet(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	dan := b.rcpts[3] // still submitting in promo-1
	b.recordSend(t, dan)
	b.clock.t = b.clock.t.Add(3 * time.Second)
	text := conversation.Reply{Kind: webhooks.ReplyText, From: webhooks.Customer{Phone: dan}, At: b.clock.t,
		Text: "How much is it?", MessageID: "wamid.dan-1"}
	out, err := b.fu.Reply(ctx, text)
	if err != nil || out.Entry.Run != b.run.ID || !out.Created {
		t.Fatalf("reply while the entry is submitting: %+v, %v; want promo-1's follow-up created", out, err)
	}
	b.accept(t, b.run, dan, ulidAt(b.clock.t.Add(-3*time.Second), 7))
	again, err := b.fu.Reply(ctx, text)
	if err != nil || !again.Repeat || again.Entry.Run != b.run.ID || again.Created {
		t.Fatalf("the copy after the accept: %+v, %v; want a repeat of promo-1's join", again, err)
	}
	if got := b.followupTasks("price", dan, b.run.ID); got[0] != 1 {
		t.Fatalf("follow-up tasks in promo-1: %v, want [1]", got)
	}
}

// recordSend records in the index of recent sends that the bundle's run messaged rcpt, as the
// worker does just before the request, answerable for three days.
func (b *fuBundle) recordSend(t *testing.T, rcpt string) {
	t.Helper()
	if err := b.fu.Index().Record(context.Background(), b.run.ID, ledger.BucketOf(rcpt, 2), rcpt, b.clock.t.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
}

// A newer run whose message never reached the customer does not take their typed answer to
// an older run's message: promo-2's send to ana is in the index (it is recorded just before
// its request), then refused, left waiting for a retry, or failed in delivery; ana's question
// still gets promo-1's answer, once.
func TestUnreachedNewerRunDoesNotTakeTheReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		event *ledger.DeliveryEvent
		out   ledger.Outcome
	}{
		{name: "refused", out: ledger.Outcome{State: ledger.Failed, Code: "ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID", Attempt: 1}},
		{name: "waiting for a retry", out: ledger.Outcome{State: ledger.Queued, Mode: ledger.ReleaseRetry, Code: "HTTP_503", Attempt: 1}},
		{name: "failed in delivery", event: &ledger.DeliveryEvent{State: ledger.Failed, Code: "131049"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupFollowups(t)
			ctx := context.Background()
			ana := b.rcpts[0]
			b.recordSend(t, ana)
			mid := ""
			if tc.event != nil {
				mid = ulidAt(b.clock.t.Add(time.Hour), 1)
			}
			run2 := b.nextRun(t, "promo-2", time.Hour, ana, mid)
			a := ledger.AddressIn(run2.ID, ana, run2.Buckets)
			if tc.event != nil {
				ev := *tc.event
				ev.Address, ev.MessageID = a, mid
				if v, _, err := b.l.ApplyDelivery(ctx, ev); err != nil || v != ledger.DeliveryApplied {
					t.Fatal(v, err)
				}
			} else if _, err := b.l.Finish(ctx, a, tc.out); err != nil {
				t.Fatal(err)
			}
			b.clock.t = b.clock.t.Add(time.Minute)
			text := conversation.Reply{Kind: webhooks.ReplyText, From: webhooks.Customer{Phone: ana}, At: b.clock.t,
				Text: "How much is it?", MessageID: "wamid.ana-price"}
			for range 2 {
				out, err := b.replica(t, nil, run2).Reply(ctx, text)
				if err != nil {
					t.Fatal(err)
				}
				if out.Entry.Run != b.run.ID {
					t.Fatalf("joined %+v, want promo-1's entry", out.Entry)
				}
			}
			if got := b.followupTasks("price", ana, b.run.ID, run2.ID); got[0] != 1 || got[1] != 0 {
				t.Fatalf("follow-up tasks in promo-1, promo-2: %v; want promo-1's answer, once", got)
			}
		})
	}
}

// A typed reply that comes while a newer run's request to the customer is still out is not
// joined to that run, whose message may yet be refused: the newest run that did reach them
// answers it. The exact sequence: promo-1 reached ana; promo-2's send to her is recorded and
// its request is out (submitting); her question arrives; promo-2's send is then refused; the
// same webhook is delivered again. promo-1 answers, once, and the reply is counted there
// only. Before, the question was joined to promo-2 while it was submitting, the join was
// pinned for every copy, and once promo-2 was refused nobody answered.
func TestReplyWhileANewerRunIsSendingJoinsTheRunThatReachedThem(t *testing.T) {
	t.Parallel()
	const secret = "whsec-test"
	b := setupFollowups(t)
	ctx := context.Background()
	ana := b.rcpts[0]
	b.recordSend(t, ana)
	run2 := b.nextRun(t, "promo-2", time.Hour, ana, "") // recorded, its request out
	b.clock.t = b.clock.t.Add(time.Second)
	body := fmt.Appendf(nil, `{"timestamp":"%d","sender":{"id":%q,"channelType":"whatsapp"},"message":{"id":"wamid.ana-q","text":"how much is it?"}}`,
		b.clock.t.Unix(), ana)
	rc, err := webhooks.New(webhooks.Config{Secrets: []string{secret}, Now: b.clock.now, Business: "biz"},
		webhooks.Deps{Redis: b.rdb, Logger: zerolog.Nop(), Replies: b.replica(t, nil, run2)})
	if err != nil {
		t.Fatal(err)
	}
	post := func() {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/webhooks/connectly", bytes.NewReader(body))
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		req.Header.Set(webhooks.SignatureHeader, webhooks.Sign(body, secret))
		w := httptest.NewRecorder()
		rc.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("webhook: %d, want 200", w.Code)
		}
	}
	post()
	a := ledger.AddressIn(run2.ID, ana, run2.Buckets)
	refused := ledger.Outcome{State: ledger.Failed, Code: "ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID", Attempt: 1, Permanent: true}
	if _, err := b.l.Finish(ctx, a, refused); err != nil {
		t.Fatal(err)
	}
	post()
	if got := b.followupTasks("price", ana, b.run.ID, run2.ID); got[0] != 1 || got[1] != 0 {
		t.Fatalf("follow-up tasks in promo-1, promo-2: %v; want promo-1's answer, once", got)
	}
	for run, want := range map[string]int64{b.run.ID: 1, run2.ID: 0} {
		d, err := b.l.DeliveryStats(ctx, run)
		if err != nil || d.Replies != want {
			t.Errorf("replies counted in %s: %d (%v), want %d", run, d.Replies, err, want)
		}
	}
}
