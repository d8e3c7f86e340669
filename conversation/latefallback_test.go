package conversation_test

import (
	"cmp"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/heraldmsg/herald/worker"
)

// A session message Connectly accepts and then reports undelivered because the customer's
// window had closed reached nobody: its fallback template goes then, once. Counted where it
// matters: the messages the fake Connectly took as sent to the customer.

// lateOpts vary a late-refusal bench.
type lateOpts struct {
	answer string
	// noFallback sends session messages without a fallback template.
	noFallback bool
	// keep is the worker's LateFallbackFor (0: its default).
	keep time.Duration
	// duplicates is the fake's DuplicatePercent of webhook events.
	duplicates float64
	// after is the follow-ups' LateFallbackAfter (0: due at once, -1).
	after time.Duration
}

// lateBench is an advBench for a session campaign: Herald's record says the customer's window
// is open, the fake's says it is closed, and the fake answers as o.answer says.
func newLateBench(t *testing.T, o lateOpts) *advBench {
	t.Helper()
	const business, key = "biz-late", "key-late-0123456789abcdef"
	m, rdb := testredis.Mini(t)
	b := &advBench{m: m, rdb: rdb, l: ledger.New(rdb, nil), runs: map[string]ledger.Run{}, policy: ledger.AtMostOnce,
		insp: asynq.NewInspectorFromRedisClient(rdb)}
	def := &campaigns.Definition{}
	resolve := func(_ context.Context, id string) (conversation.RunInfo, bool, error) {
		r, ok := b.runs[id]
		return conversation.RunInfo{Run: r, Def: def}, ok, nil
	}
	var err error
	if b.fu, err = conversation.NewFollowups(conversation.FollowupConfig{Redis: rdb, Business: business, Resolve: resolve,
		LateFallbackAfter: cmp.Or(o.after, -1)}); err != nil {
		t.Fatal(err)
	}
	if b.rc, err = webhooks.New(webhooks.Config{Secrets: []string{advSecret}, Business: business},
		webhooks.Deps{Redis: rdb, Logger: zerolog.Nop(), Replies: b.fu, LateRefusals: b.fu}); err != nil {
		t.Fatal(err)
	}
	b.serveHooks(t)
	fake, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: business, APIKey: key, RateLimit: -1, WindowAnswer: o.answer,
		Webhooks: fakeconnectly.WebhookConfig{URL: b.hook, Secret: advSecret, DuplicatePercent: o.duplicates}})
	b.fake = fake
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: business, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	b.w = worker.New(worker.Config{MaxAttempts: 3, ResendSweepEvery: -1, LateFallbackFor: o.keep,
		Limits: limits.Config{BusinessID: business, BusinessRate: -1, DefaultSenderRate: 1e6, PairInterval: -1}},
		worker.Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop()})
	return b
}

// startSessionRun creates run id for rcpts with one session send task each (a fallback
// template unless noFallback), and records each customer's window as open in Herald's record.
func (b *advBench) startSessionRun(t *testing.T, id string, noFallback bool, rcpts ...string) {
	t.Helper()
	ctx := context.Background()
	tpl := "spring_promo"
	if noFallback {
		tpl = ""
	}
	run := b.createRun(t, ledger.Run{ID: id, Campaign: "late", Template: tpl, Language: "en_US",
		Queue: campaigns.QueueFor("marketing"), Delivery: b.policy}, rcpts...)
	windows := servicewindow.New(b.rdb, nil)
	session, err := json.Marshal(map[string]string{"text": "Your order shipped"})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rcpts {
		if _, err := windows.Touch(ctx, "biz-late", []string{r}, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		b.enqueueSend(t, run, campaigns.SendPayload{Run: id, To: r, Bucket: 0, Row: i + 1, Campaign: "late", Template: tpl,
			Language: "en_US", Delivery: string(b.policy), Category: "marketing", Kind: campaigns.KindSession, Session: session})
	}
}

// sessions returns how many session messages the fake took as sent to number.
func (b *advBench) sessions(t *testing.T, number string) int {
	t.Helper()
	return len(b.answers(t, number))
}

func TestLateWindowRefusalSendsTheFallbackOnce(t *testing.T) {
	t.Parallel()
	const ana, ben = "+15550200001", "+15550200002"
	for _, tc := range []struct {
		name       string
		o          lateOpts
		wantTpl    int
		wantCode   string
		wantFollow bool
	}{
		{name: "reference body", o: lateOpts{answer: fakeconnectly.WindowAnswerAtDelivery}, wantTpl: 1,
			wantCode: "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW", wantFollow: true},
		{name: "Meta 131047 as a number", o: lateOpts{answer: fakeconnectly.WindowAnswerAtDelivery131047}, wantTpl: 1,
			wantCode: "131047", wantFollow: true},
		{name: "Meta 131047 as a string, every event twice", o: lateOpts{answer: fakeconnectly.WindowAnswerAtDelivery131047String, duplicates: 100},
			wantTpl: 1, wantCode: "131047", wantFollow: true},
		{name: "every event twice", o: lateOpts{answer: fakeconnectly.WindowAnswerAtDelivery, duplicates: 100}, wantTpl: 1,
			wantCode: "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW", wantFollow: true},
		{name: "no fallback template", o: lateOpts{answer: fakeconnectly.WindowAnswerAtDelivery, noFallback: true}, wantTpl: 0,
			wantCode: "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"},
		{name: "late fallbacks off", o: lateOpts{answer: fakeconnectly.WindowAnswerAtDelivery, keep: -1}, wantTpl: 0,
			wantCode: "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newLateBench(t, tc.o)
			b.startSessionRun(t, "late-1", tc.o.noFallback, ana, ben)
			if n := b.pump(t); n != 2 {
				t.Fatalf("%d tasks run, want the two session messages", n)
			}
			b.settle(t)
			b.drain(t)
			b.settle(t)
			for _, to := range []string{ana, ben} {
				if n := b.sessions(t, to); n != 1 {
					t.Errorf("%s: the fake took %d session messages, want 1", to, n)
				}
				if n := b.templates(t, to); n != tc.wantTpl {
					t.Errorf("%s: the fake took %d templates, want %d", to, n, tc.wantTpl)
				}
				if e := b.entry(t, "late-1", to); e.State != ledger.Failed || e.Code != tc.wantCode {
					t.Errorf("%s: run entry %+v, want failed(%s)", to, e, tc.wantCode)
				}
				fu, _, _ := ledger.LateFallbackRun("late-1")
				e, ok, err := b.l.Entry(context.Background(), ledger.FollowupAddress("late-1", "_fallback", to, 1))
				if err != nil {
					t.Fatal(err)
				}
				if ok != tc.wantFollow {
					t.Fatalf("%s: a late fallback entry in %s: %v, want %v", to, fu, ok, tc.wantFollow)
				}
				if tc.wantFollow && (e.State != ledger.Accepted && e.State != ledger.Sent && e.State != ledger.Delivered && e.State != ledger.Read ||
					e.Code != ledger.SentFallback) {
					t.Errorf("%s: late fallback entry %+v, want it sent as the fallback", to, e)
				}
			}
			if n := b.refused.Load(); n != 0 {
				t.Errorf("the receiver refused %d webhook calls", n)
			}
			// run show says what went.
			rep, err := report.ShowRun(context.Background(), b.l, b.rdb, report.ShowParams{Run: "late-1", Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			report.PrintRun(&out, rep)
			switch lf := rep.LateFallbacks; {
			case !tc.wantFollow && lf != nil:
				t.Errorf("run show: late fallbacks %+v, want none", lf)
			case tc.wantFollow && (lf == nil || lf.Created != 2 || lf.Sent != 2 || lf.Rule != "late-1~_fallback"):
				t.Errorf("run show: late fallbacks %+v, want 2 created and sent in late-1~_fallback", lf)
			case tc.wantFollow && !strings.Contains(out.String(), "fallback templates 2 created"):
				t.Errorf("run show printed:\n%s\nwant the late fallbacks' line", out.String())
			}
			// recipient explain tells the recipient's story: the session message failed, the
			// fallback went as a follow-up.
			x, err := report.Explain(context.Background(), b.l, b.rdb, report.ExplainParams{Run: "late-1", Recipient: ana, Shown: ana,
				Business: "biz-late", Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(x.Followups); tc.wantFollow && (got != 1 || x.Followups[0].Rule != "_fallback" || x.Followups[0].SentAs != ledger.SentFallback) ||
				!tc.wantFollow && got != 0 {
				t.Errorf("recipient explain: follow-ups %+v, want the late fallback: %v", x.Followups, tc.wantFollow)
			}
		})
	}
}

// A copy of the failure handled again, after the fallback went, sends nothing more; a
// failure whose entry a later delivered replaced sends nothing.
func TestLateRefusalHandledTwiceCreatesOneFollowup(t *testing.T) {
	t.Parallel()
	const ana = "+15550200011"
	b := newLateBench(t, lateOpts{answer: fakeconnectly.WindowAnswerAtDelivery})
	b.startSessionRun(t, "late-2", false, ana)
	b.pump(t)
	b.settle(t)
	b.drain(t)
	b.settle(t)
	e := b.entry(t, "late-2", ana)
	ev := ledger.DeliveryEvent{Address: ledger.AddressIn("late-2", ana, 1), State: ledger.Failed, Code: e.Code, MessageID: e.MessageID}
	for range 3 {
		if err := b.fu.HandleLateRefusal(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	b.drain(t)
	b.settle(t)
	if n := b.templates(t, ana); n != 1 {
		t.Errorf("the fake took %d templates, want 1", n)
	}
	// Another message id (an earlier message's failure): not this entry's to answer.
	other := ev
	other.MessageID = "01JOTHERMESSAGE0000000000"
	other.Address = ledger.AddressIn("late-2", "+15550200012", 1)
	if err := b.fu.HandleLateRefusal(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	if n := b.pump(t); n != 0 {
		t.Errorf("%d tasks written for a failure that is not the entry's", n)
	}
}

// The fallback's task is due LateFallbackAfter after the failure, so that events of the same
// message that contradict it (one parked while the send was being recorded) apply first.
func TestLateFallbackDueAfterADelay(t *testing.T) {
	t.Parallel()
	const ana = "+15550200021"
	b := newLateBench(t, lateOpts{answer: fakeconnectly.WindowAnswerAtDelivery, after: time.Minute})
	b.startSessionRun(t, "late-3", false, ana)
	start := time.Now()
	b.pump(t)
	b.settle(t)
	fu, _, _ := ledger.LateFallbackRun("late-3")
	var due time.Time
	testredis.WaitUntil(t, 10*time.Second, "the fallback's task scheduled", func() bool {
		infos, err := b.insp.ListScheduledTasks(campaigns.QueueFor("marketing"))
		if err != nil || len(infos) != 1 {
			return false
		}
		p, err := campaigns.DecodeSend(infos[0].Payload)
		if err != nil || p.Run != fu || p.Kind != campaigns.KindFallback {
			t.Fatalf("scheduled %s (%v), want the late fallback of %s", infos[0].Payload, err, fu)
		}
		due = infos[0].NextProcessAt
		return true
	})
	// asynq keeps a task's time in whole seconds.
	if due.Before(start.Add(time.Minute).Truncate(time.Second)) || due.After(time.Now().Add(time.Minute)) {
		t.Errorf("due %v, want a minute after the failure (%v..%v)", due, start.Add(time.Minute), time.Now().Add(time.Minute))
	}
	if n := b.pump(t); n != 0 {
		t.Errorf("%d tasks run before the fallback was due", n)
	}
}
