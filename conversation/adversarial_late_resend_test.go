package conversation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/testredis"
)

// The late fallback's own send answered ambiguously, in an at-most-once campaign with
// unknown.resend_after: the fallback's entry (RUN~_fallback) becomes unknown, and the resend
// sweep may send the fallback once more. Counted at the fake Connectly (what it took as sent
// to each customer, and the requests it got), never at Herald's counters: at most one
// fallback when the first went and a webhook for it came before the quiet period ended;
// exactly one more when the first did not go and no webhook came; never a third; none at all
// once the session message read as delivered (or read), nor once the run was cancelled; held
// while it is paused. The bench is adversarial_late_test.go's late bench given one clock for
// every part of Herald (the quiet period passes without a sleep), using two of its controls
// on the webhook calls: the session message's delivered and read calls can be held
// (holdSessionEvents), and the late fallback's own calls can be lost between Connectly and
// Herald (lose).

// lateResendAfter is the campaign's unknown.resend_after.
const lateResendAfter = 30 * time.Minute

// lateResendOpts vary a late resend bench: lateAdvOpts, the clock set by newLateResendBench
// when not given.
type lateResendOpts = lateAdvOpts

// lateResend is a lateAdv whose Herald runs on its clock, with the resend cases' helpers.
type lateResend struct{ *lateAdv }

func newLateResendBench(t *testing.T, o lateResendOpts) *lateResend {
	t.Helper()
	if o.clock == nil {
		o.clock = &lrClock{}
	}
	return &lateResend{newLateAdvBench(t, o)}
}

// newLateFailedBench is a late resend bench on o with run late-1 started for rcpts
// (startResendSessionRun) and the first one's session message failed late (sessionFailsLate):
// its late fallback waits to go.
func newLateFailedBench(t *testing.T, o lateResendOpts, rcpts ...string) *lateResend {
	t.Helper()
	b := newLateResendBench(t, o)
	b.startResendSessionRun(t, "late-1", rcpts...)
	b.sessionFailsLate(t, "late-1", rcpts[0])
	return b
}

// startResendSessionRun creates run id of an at-most-once session campaign with
// unknown.resend_after for rcpts: one session send task each with a fallback template,
// each customer's window open in Herald's record (the fake's is closed: the message is
// accepted and fails at delivery).
func (b *lateResend) startResendSessionRun(t *testing.T, id string, rcpts ...string) {
	t.Helper()
	ctx := context.Background()
	run := b.createRun(t, ledger.Run{ID: id, Campaign: "late", Template: "spring_promo", Language: "en_US",
		Queue: campaigns.QueueFor("marketing"), Delivery: ledger.AtMostOnce, ResendAfter: lateResendAfter}, rcpts...)
	if run.ResendAfter != lateResendAfter {
		t.Fatalf("run %+v: want resend_after %s", run, lateResendAfter)
	}
	// The expansion has read the whole audience: the run completes once every recipient is
	// settled.
	if _, err := b.l.FinishExpansion(ctx, id, len(rcpts)); err != nil {
		t.Fatal(err)
	}
	windows := servicewindow.New(b.rdb, b.clock.now)
	session, err := json.Marshal(map[string]string{"text": "Your order shipped"})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rcpts {
		if _, err := windows.Touch(ctx, "biz-late", []string{r}, b.clock.now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		b.enqueueSend(t, run, campaigns.SendPayload{Run: id, To: r, Bucket: 0, Row: i + 1, Campaign: "late", Template: "spring_promo",
			Language: "en_US", Delivery: string(ledger.AtMostOnce), Category: "marketing", Kind: campaigns.KindSession, Session: session})
	}
}

// sessionFailsLate sends the session message of run to to (and only it) and lets its events
// come: it is accepted, then fails as outside the window, and its late fallback's entry and
// task are written.
func (b *lateResend) sessionFailsLate(t *testing.T, run, to string) {
	t.Helper()
	b.pumpFor(t, run, to)
	b.settle(t)
	if e := b.entry(t, run, to); e.State != ledger.Failed {
		t.Fatalf("session message: entry %+v, want failed outside the window", e)
	}
	if e, ok := b.lateFallback(t, run, to); !ok || e.State != ledger.Queued {
		t.Fatalf("late fallback entry %+v (%v), want queued", e, ok)
	}
}

// fallbackGoes runs the late fallback's task of run to to once with the webhook calls held
// (until the caller's release), and checks its entry is then in state want.
func (b *lateResend) fallbackGoes(t *testing.T, run, to string, want ledger.State) {
	t.Helper()
	fu, _, _ := ledger.LateFallbackRun(run)
	b.hold()
	b.pumpFor(t, fu, to)
	if e, _ := b.lateFallback(t, run, to); e.State != want {
		b.release()
		t.Fatalf("late fallback entry %+v after its send, want %s", e, want)
	}
}

// requests returns how many requests of kind the fake got for number, taken or not.
func (b *lateResend) requests(t *testing.T, number, kind string) int {
	t.Helper()
	n := 0
	for _, r := range b.fake.Received() {
		if r.Number == number && r.Kind == kind {
			n++
		}
	}
	return n
}

// expectTemplates checks what the fake got for number's fallback: template requests, and
// templates it took as sent (one session message taken, always).
func (b *lateResend) expectTemplates(t *testing.T, number string, requests, taken int) {
	t.Helper()
	b.expect(t, number, 1, taken)
	if n := b.requests(t, number, fakeconnectly.KindTemplate); n != requests {
		t.Errorf("%s: the fake got %d template requests, want %d: %s", number, n, requests, b.tally(t, number))
	}
}

// sweep lets d pass and runs the resend sweep once; it returns how many resends it enqueued.
func (b *lateResend) sweep(t *testing.T, d time.Duration) int {
	t.Helper()
	b.clock.advance(d)
	n, err := b.w.SweepUnknown(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// expectSweep lets d pass, runs the resend sweep once and stops the test unless it enqueued
// want resends; when says which sweep it was.
func (b *lateResend) expectSweep(t *testing.T, d time.Duration, want int, when string) {
	t.Helper()
	if n := b.sweep(t, d); n != want {
		t.Fatalf("%s: %d resent, want %d", when, n, want)
	}
}

// finishAfterADay runs what is left, lets a day pass for one more resend sweep, and runs what
// that left.
func (b *lateResend) finishAfterADay(t *testing.T) {
	t.Helper()
	b.finish(t)
	b.sweep(t, 25*time.Hour)
	b.finish(t)
}

// expectSettled checks the end of run's late fallback to number: the fake got requests
// template requests and took taken templates, the fallback run's report counts resent
// resends and no unknown or waiting one, and the resend sweep no longer looks at it.
func (b *lateResend) expectSettled(t *testing.T, run, number string, requests, taken int, resent int64) {
	t.Helper()
	b.expectTemplates(t, number, requests, taken)
	b.expectReport(t, run, 0, resent, 0)
	if b.listedForResends(t, run) {
		t.Errorf("the late fallback run is still swept with nothing of it left to resend")
	}
}

// fallbackReport is `herald run show`'s reading of run's late fallback run.
func (b *lateResend) fallbackReport(t *testing.T, run string) report.Run {
	t.Helper()
	fu, _, _ := ledger.LateFallbackRun(run)
	rep, err := report.ReadRun(context.Background(), b.l, fu, b.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// expectReport checks the late fallback run's report: unknown recipients, resent, waiting.
func (b *lateResend) expectReport(t *testing.T, run string, unknown, resent, waiting int64) {
	t.Helper()
	rep := b.fallbackReport(t, run)
	if rep.States[string(ledger.Unknown)] != unknown || rep.ResentUnknown != resent || rep.ResendWaiting != waiting {
		t.Errorf("run show %s: unknown %d, resent_unknown %d, resend_waiting %d; want %d, %d, %d (states %v)", rep.Run,
			rep.States[string(ledger.Unknown)], rep.ResentUnknown, rep.ResendWaiting, unknown, resent, waiting, rep.States)
	}
}

// expectLateFallbacks checks `herald run show RUN`'s late fallback line: one fallback
// created, unknown of them unknown, read of them read, none counted twice.
func (b *lateResend) expectLateFallbacks(t *testing.T, run string, unknown, read int64) {
	t.Helper()
	fr, err := report.LateFallbacks(context.Background(), b.l, run)
	if err != nil || fr == nil {
		t.Fatalf("late fallbacks of %s: %+v, %v", run, fr, err)
	}
	if fr.Created != 1 || fr.Unknown != unknown || fr.Read != read || fr.Sent > 1 || fr.Pending != 0 {
		t.Errorf("run show %s: late fallbacks %+v; want 1 created, %d unknown, %d read, none pending", run, *fr, unknown, read)
	}
}

// listedForResends reports whether run's late fallback run is where the resend sweep looks.
func (b *lateResend) listedForResends(t *testing.T, run string) bool {
	t.Helper()
	fu, _, _ := ledger.LateFallbackRun(run)
	ok, err := b.rdb.SIsMember(context.Background(), rkeys.ResendRuns(), fu).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// fallbackSent is true of a late fallback entry whose template was accepted (or further).
func fallbackSent(e ledger.Entry) bool {
	switch e.State {
	case ledger.Accepted, ledger.Sent, ledger.Delivered, ledger.Read:
		return e.Code == ledger.SentFallback
	}
	return false
}

// A. The fallback's request went (the fake took it) but its answer was a 503 or was lost: the
// entry is unknown and waits for its resend; the template's events come before the quiet
// period ends and settle it. One template, no resend.
func TestAdversarialLateResendFirstWentWebhookInTime(t *testing.T) {
	t.Parallel()
	const ana = "+15550310001"
	for _, tc := range []struct {
		name string
		rule fakeconnectly.Rule
		// duplicates is the fake's DuplicatePercent: every event twice at 100.
		duplicates float64
	}{
		{"503 after the fake took it", fakeconnectly.Rule{Status: 503, Sent: true}, 0},
		{"answer lost after the fake took it", fakeconnectly.Rule{LoseResponse: true}, 0},
		{"503 after the fake took it, every event twice", fakeconnectly.Rule{Status: 503, Sent: true}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.rule.Numbers, tc.rule.Kind, tc.rule.Times = []string{ana}, fakeconnectly.KindTemplate, 1
			b := newLateFailedBench(t, lateResendOpts{rules: []fakeconnectly.Rule{tc.rule}, duplicates: tc.duplicates}, ana)
			b.fallbackGoes(t, "late-1", ana, ledger.Unknown)
			b.expectTemplates(t, ana, 1, 1)
			b.expectReport(t, "late-1", 1, 0, 1)
			b.release()
			// The template's events (sent, delivered, read) come within the quiet period.
			b.settle(t)
			if e, _ := b.lateFallback(t, "late-1", ana); e.State != ledger.Read {
				t.Fatalf("late fallback entry %+v after its events, want read", e)
			}
			b.expectReport(t, "late-1", 0, 0, 0)
			b.expectSweep(t, lateResendAfter+time.Minute, 0, "resend sweep after the quiet period")
			if _, err := b.fu.Sweep(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
			b.finish(t)
			b.expectSweep(t, 24*time.Hour, 0, "a later resend sweep")
			b.finish(t)
			b.expectSettled(t, "late-1", ana, 1, 1, 0)
		})
	}
}

// B. The fallback's request did not go (the fake did not take it: a 503 before the message
// was taken, or the connection dropped before it was) and no webhook came: the entry is
// unknown, and once the quiet period has passed, and not before, the fallback goes exactly
// once more; never again after.
func TestAdversarialLateResendFirstNotTaken(t *testing.T) {
	t.Parallel()
	const ana = "+15550310011"
	for _, tc := range []struct {
		name string
		rule fakeconnectly.Rule
	}{
		{"503, not taken", fakeconnectly.Rule{Status: 503}},
		{"502, not taken", fakeconnectly.Rule{Status: 502, NotSent: true}},
		{"connection dropped before the message was taken", fakeconnectly.Rule{LoseResponse: true, NotSent: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.rule.Numbers, tc.rule.Kind, tc.rule.Times = []string{ana}, fakeconnectly.KindTemplate, 1
			b := newLateFailedBench(t, lateResendOpts{rules: []fakeconnectly.Rule{tc.rule}}, ana)
			b.fallbackGoes(t, "late-1", ana, ledger.Unknown)
			b.release()
			b.finish(t)
			b.expectTemplates(t, ana, 1, 0)
			b.expectReport(t, "late-1", 1, 0, 1)
			b.expectLateFallbacks(t, "late-1", 1, 0)
			// The run itself has completed (its one recipient failed): its late fallback
			// still waits for its resend.
			if rep, err := report.ReadRun(context.Background(), b.l, "late-1", b.clock.now()); err != nil || !rep.Ended() {
				t.Fatalf("run late-1: %+v, %v; want completed", rep, err)
			}
			if !b.listedForResends(t, "late-1") {
				t.Fatalf("the late fallback run is not where the resend sweep looks")
			}
			b.expectSweep(t, lateResendAfter-time.Minute, 0, "resend sweep within the quiet period")
			b.finish(t)
			b.expectTemplates(t, ana, 1, 0)
			b.expectSweep(t, 2*time.Minute, 1, "resend sweep after the quiet period")
			b.expectReport(t, "late-1", 0, 1, 0)
			b.finish(t)
			b.expectTemplates(t, ana, 2, 1)
			if e, _ := b.lateFallback(t, "late-1", ana); !fallbackSent(e) || e.Attempts != 2 {
				t.Errorf("late fallback entry %+v, want sent as the fallback at attempt 2", e)
			}
			if _, err := b.fu.Sweep(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
			b.expectSweep(t, 25*time.Hour, 0, "a later resend sweep")
			b.finish(t)
			b.expectSettled(t, "late-1", ana, 2, 1, 1)
			b.expectLateFallbacks(t, "late-1", 0, 1)
		})
	}
}

// pendingTaskOf returns the pending send task of run to to, to run it again later as asynq
// would redeliver it.
func (b *lateResend) pendingTaskOf(t *testing.T, run, to string) *asynq.Task {
	t.Helper()
	_, ti := b.pendingSend(t, run, to)
	return asynq.NewTask(ti.Type, ti.Payload)
}

// C. Never a third fallback: the resend is the last, whatever its answer, and a redelivery
// of the first task beside the resend makes one request between them.
func TestAdversarialLateResendNeverAThird(t *testing.T) {
	t.Parallel()
	const ana = "+15550310021"
	for _, tc := range []struct {
		name string
		rule fakeconnectly.Rule
		// lose loses the fallback's webhook calls; redeliver runs the first task again
		// beside the resend.
		lose, redeliver bool
		// taken is how many templates the fake takes; unknown whether the entry ends unknown.
		taken   int
		unknown bool
	}{
		{name: "every request 503, none taken", rule: fakeconnectly.Rule{Status: 503}, unknown: true},
		{name: "every request 503 after the fake took it, events lost", rule: fakeconnectly.Rule{Status: 503, Sent: true},
			lose: true, taken: 2, unknown: true},
		{name: "every answer lost after the fake took it, events lost", rule: fakeconnectly.Rule{LoseResponse: true},
			lose: true, taken: 2, unknown: true},
		{name: "first 503 after the fake took it, events lost, first task redelivered",
			rule: fakeconnectly.Rule{Status: 503, Sent: true, Times: 1}, lose: true, redeliver: true, taken: 2},
		{name: "first 503 not taken, first task redelivered", rule: fakeconnectly.Rule{Status: 503, Times: 1},
			redeliver: true, taken: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.rule.Numbers, tc.rule.Kind = []string{ana}, fakeconnectly.KindTemplate
			b := newLateResendBench(t, lateResendOpts{rules: []fakeconnectly.Rule{tc.rule}})
			b.lose.Store(tc.lose)
			b.startResendSessionRun(t, "late-1", ana)
			b.sessionFailsLate(t, "late-1", ana)
			fu, _, _ := ledger.LateFallbackRun("late-1")
			first := b.pendingTaskOf(t, fu, ana)
			// redeliverThenFinish runs the first task again (with tc.redeliver), as asynq
			// would redeliver it, then what is left.
			redeliverThenFinish := func() {
				if tc.redeliver {
					if err := b.w.HandleSend(context.Background(), first); err != nil && !errors.Is(err, asynq.SkipRetry) {
						t.Logf("the first task again: %v", err)
					}
				}
				b.finish(t)
			}
			b.fallbackGoes(t, "late-1", ana, ledger.Unknown)
			b.release()
			b.finish(t)
			b.expectSweep(t, lateResendAfter+time.Minute, 1, "resend sweep after the quiet period")
			redeliverThenFinish()
			for _, d := range []time.Duration{lateResendAfter + time.Minute, time.Hour, 25 * time.Hour} {
				b.expectSweep(t, d, 0, fmt.Sprintf("resend sweep %s later", d))
				redeliverThenFinish()
			}
			b.expectTemplates(t, ana, 2, tc.taken)
			e, _ := b.lateFallback(t, "late-1", ana)
			if tc.unknown != (e.State == ledger.Unknown) {
				t.Errorf("late fallback entry %+v, want unknown %v", e, tc.unknown)
			}
			var unknown int64
			if tc.unknown {
				unknown = 1
			}
			b.expectReport(t, "late-1", unknown, 1, 0)
			if tc.lose && b.lost.Load() == 0 {
				t.Errorf("no fallback event lost: the case tests nothing")
			}
		})
	}
}

// waitHooks waits until the fake has no webhook call left to make, without retrying the
// parked events (settle would).
func (b *lateResend) waitHooks(t *testing.T) {
	t.Helper()
	testredis.WaitUntil(t, 20*time.Second, "webhooks delivered", func() bool { return b.fake.WebhookStats().Pending == 0 })
}

// E. The first fallback did not go (the fake did not take it) and the session message then
// reads as delivered or read, in each order the events can take: the read parked while the
// session's send was being recorded (and applied only after the fallback's first attempt),
// a delivered held until the fallback's first attempt ended unknown, a read held until the
// sweep queued the resend. The resend must not go: no template at all.
func TestAdversarialLateResendAfterTheSessionDelivered(t *testing.T) {
	t.Parallel()
	const ana = "+15550310041"
	notTaken := fakeconnectly.Rule{Numbers: []string{ana}, Kind: fakeconnectly.KindTemplate, Status: 503, Times: 1}

	t.Run("read parked before the failure", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		b := newLateResendBench(t, lateResendOpts{serial: true, rules: []fakeconnectly.Rule{
			{Numbers: []string{ana}, Kind: fakeconnectly.KindSession, Latency: 2 * time.Second, Sent: true}, notTaken},
			fates: []fakeconnectly.Fate{{Numbers: []string{ana}, Sequence: []string{fakeconnectly.HookRead, fakeconnectly.HookDeliveryFailed},
				Code: fakeconnectly.CodeOutsideWindow}}})
		if err := b.fake.OpenWindow(ana, time.Time{}); err != nil {
			t.Fatal(err)
		}
		b.startResendSessionRun(t, "late-1", ana)
		releaseFailures := b.sendWithTheReadParked(t, b.pendingTaskOf(t, "late-1", ana))
		if err := b.insp.DeleteTask(b.runs["late-1"].Queue, b.pendingTaskID(t, "late-1", ana)); err != nil {
			t.Fatal(err)
		}
		if err := b.fake.SetFates(nil); err != nil {
			t.Fatal(err)
		}
		releaseFailures()
		b.waitHooks(t)
		if e, ok := b.lateFallback(t, "late-1", ana); !ok || e.State != ledger.Queued {
			t.Fatalf("late fallback entry %+v (%v), want queued", e, ok)
		}
		// The fallback's first attempt, before the parked read is tried again.
		b.fallbackGoes(t, "late-1", ana, ledger.Unknown)
		b.release()
		if n, err := b.l.ParkedCount(ctx); err != nil || n != 1 {
			t.Fatalf("parked events: %d, %v; want the read still parked", n, err)
		}
		b.settle(t)
		if e := b.entry(t, "late-1", ana); e.State != ledger.Read {
			t.Fatalf("session message: entry %+v, want read", e)
		}
		if n := b.sweep(t, lateResendAfter+time.Minute); n > 1 {
			t.Fatalf("resend sweep: %d resent", n)
		}
		b.finishAfterADay(t)
		b.expectTemplates(t, ana, 1, 0)
		b.expectReport(t, "late-1", 1, 0, 0)
	})

	for _, tc := range []struct {
		name string
		// status is the session message's last event, held; afterRelease lets it through
		// only once the sweep queued the resend.
		status       string
		afterRelease bool
	}{
		{"delivered after the first attempt", fakeconnectly.HookDelivered, false},
		{"read after the first attempt", fakeconnectly.HookRead, false},
		{"delivered after the resend was queued", fakeconnectly.HookDelivered, true},
		{"read after the resend was queued", fakeconnectly.HookRead, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newLateResendBench(t, lateResendOpts{serial: true, rules: []fakeconnectly.Rule{notTaken},
				fates: []fakeconnectly.Fate{{Numbers: []string{ana}, Code: fakeconnectly.CodeOutsideWindow,
					Sequence: []string{fakeconnectly.HookSent, fakeconnectly.HookDeliveryFailed, tc.status}}}})
			if err := b.fake.OpenWindow(ana, time.Time{}); err != nil {
				t.Fatal(err)
			}
			b.startResendSessionRun(t, "late-1", ana)
			b.holdSessionEvents()
			held := true
			defer func() {
				if held {
					b.releaseSessionEvents()
				}
			}()
			// The fate stays (the fake may plan the events after it answered): the fallback's
			// first request is not taken, so no event of it follows.
			b.pumpFor(t, "late-1", ana)
			// The sent and the failure may come while the send is being recorded: the
			// receiver's loop tries parked events again.
			testredis.WaitUntil(t, 20*time.Second, "the late fallback created", func() bool {
				if _, _, err := b.rc.RetryParked(context.Background()); err != nil {
					return false
				}
				_, ok := b.lateFallback(t, "late-1", ana)
				return ok
			})
			b.fallbackGoes(t, "late-1", ana, ledger.Unknown)
			b.release()
			if e := b.entry(t, "late-1", ana); e.State != ledger.Failed {
				t.Fatalf("session message: entry %+v, want failed with its %s held", e, tc.status)
			}
			if tc.afterRelease {
				b.expectSweep(t, lateResendAfter+time.Minute, 1, "resend sweep after the quiet period")
			}
			held = false
			b.releaseSessionEvents()
			b.settle(t)
			if e := b.entry(t, "late-1", ana); e.State != ledger.State(tc.status) {
				t.Fatalf("session message: entry %+v, want %s", e, tc.status)
			}
			if !tc.afterRelease {
				if n := b.sweep(t, lateResendAfter+time.Minute); n > 1 {
					t.Fatalf("resend sweep: %d resent", n)
				}
			}
			b.finishAfterADay(t)
			b.expectTemplates(t, ana, 1, 0)
			if e, _ := b.lateFallback(t, "late-1", ana); e.State == ledger.Queued {
				t.Errorf("late fallback entry %+v: still queued", e)
			}
			b.expectReport(t, "late-1", 1, 0, 0)
		})
	}
}

// pendingTaskID returns the id of the pending send task of run to to.
func (b *lateResend) pendingTaskID(t *testing.T, run, to string) string {
	t.Helper()
	_, ti := b.pendingSend(t, run, to)
	return ti.ID
}

// F. The run is cancelled, or paused, while the fallback waits unknown for its resend, or
// once the sweep queued the resend: a cancelled run's fallback is never resent (the entry
// stays unknown), a paused one's waits for the resume and then goes once. Also for a
// completed run whose follow-ups an operator cancelled or paused, and for the late fallback
// run paused itself.
func TestAdversarialLateResendCancelledOrPaused(t *testing.T) {
	t.Parallel()
	const ana, ben = "+15550310051", "+15550310052"
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// completed: ben is not in the run, which completes with ana's failure.
		completed bool
		// afterRelease acts once the sweep queued the resend, else before the sweep.
		afterRelease bool
		act          func(b *lateResend) error
		// resume, when set, lifts the pause: the fallback then goes once.
		resume func(b *lateResend) error
	}{
		{name: "run cancelled before the sweep", act: func(b *lateResend) error { return changed3(b.l.Cancel(ctx, "late-1", "operator")) }},
		{name: "run cancelled after the resend was queued", afterRelease: true,
			act: func(b *lateResend) error { return changed3(b.l.Cancel(ctx, "late-1", "operator")) }},
		{name: "completed run's follow-ups cancelled before the sweep", completed: true,
			act: func(b *lateResend) error { return changed3(b.l.CancelFollowups(ctx, "late-1", "operator")) }},
		{name: "completed run's follow-ups cancelled after the resend was queued", completed: true, afterRelease: true,
			act: func(b *lateResend) error { return changed3(b.l.CancelFollowups(ctx, "late-1", "operator")) }},
		{name: "run paused before the sweep",
			act:    func(b *lateResend) error { return changed(b.l.Pause(ctx, "late-1", "operator")) },
			resume: func(b *lateResend) error { return changed(b.l.Resume(ctx, "late-1")) }},
		{name: "run paused after the resend was queued", afterRelease: true,
			act:    func(b *lateResend) error { return changed(b.l.Pause(ctx, "late-1", "operator")) },
			resume: func(b *lateResend) error { return changed(b.l.Resume(ctx, "late-1")) }},
		{name: "completed run's follow-ups paused", completed: true,
			act:    func(b *lateResend) error { return changed3(b.l.PauseFollowups(ctx, "late-1", "operator")) },
			resume: func(b *lateResend) error { return changed(b.l.Resume(ctx, "late-1")) }},
		{name: "the late fallback run paused", completed: true,
			act:    func(b *lateResend) error { return changed(b.l.Pause(ctx, "late-1~_fallback", "operator")) },
			resume: func(b *lateResend) error { return changed(b.l.Resume(ctx, "late-1")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rcpts := []string{ana, ben}
			if tc.completed {
				rcpts = rcpts[:1]
			}
			b := newLateFailedBench(t, lateResendOpts{rules: []fakeconnectly.Rule{
				{Numbers: []string{ana}, Kind: fakeconnectly.KindTemplate, Status: 503, Times: 1}}}, rcpts...)
			if r, err := b.l.GetRun(ctx, "late-1"); err != nil || (r.Status == ledger.RunCompleted) != tc.completed {
				t.Fatalf("run %+v, %v; want completed %v", r, err, tc.completed)
			}
			b.fallbackGoes(t, "late-1", ana, ledger.Unknown)
			b.release()
			b.settle(t)
			n := 0
			if tc.afterRelease {
				n = b.sweep(t, lateResendAfter+time.Minute)
			}
			if err := tc.act(b); err != nil {
				t.Fatal(err)
			}
			if !tc.afterRelease {
				n = b.sweep(t, lateResendAfter+time.Minute)
			}
			t.Logf("resends enqueued: %d", n)
			// What the workers would do meanwhile: ana's tasks, held ones tried again.
			fu, _, _ := ledger.LateFallbackRun("late-1")
			workers := func() {
				for range 3 {
					b.pump(t, b.runs["late-1"].Queue)
					b.settle(t)
				}
				b.expectTemplates(t, ana, 1, 0)
			}
			workers()
			b.sweep(t, 25*time.Hour)
			workers()
			e, _ := b.lateFallback(t, "late-1", ana)
			if tc.resume == nil {
				if e.State != ledger.Unknown {
					t.Errorf("late fallback entry %+v, want it left unknown", e)
				}
				b.expectReport(t, "late-1", 1, 0, 0)
				return
			}
			if err := tc.resume(b); err != nil {
				t.Fatal(err)
			}
			b.finishAfterADay(t)
			b.expectTemplates(t, ana, 2, 1)
			if e, _ := b.lateFallback(t, "late-1", ana); !fallbackSent(e) {
				t.Errorf("late fallback entry %+v of %s, want sent", e, fu)
			}
			b.expectReport(t, "late-1", 0, 1, 0)
		})
	}
}

// changed turns a run control's answer into an error when it changed nothing.
func changed(ok bool, err error) error {
	if err == nil && !ok {
		return errors.New("the run control changed nothing")
	}
	return err
}

// changed3 is changed for the controls that also say how much they changed.
func changed3[T any](ok bool, _ T, err error) error { return changed(ok, err) }

// G. An on_reply rule's session follow-up fails late (the window closed at the fake before it
// went), so its fallback goes in RUN~_fallback-RULE; that fallback's request is answered 503
// and not taken. It becomes unknown in the follow-up's late fallback run and goes once more
// after the quiet period: the campaign's template and one fallback, never more.
func TestAdversarialLateResendFollowupsFallback(t *testing.T) {
	t.Parallel()
	const ana = "+15550310061"
	// The campaign of lateReplyYAML with unknown.resend_after.
	def := lateReplyCampaign(t, "unknown: {resend_after: 30m}\n")
	if def.ResendAfter() != lateResendAfter {
		t.Fatalf("campaign unknown.resend_after %v, want %s", def.Unknown.ResendAfter, lateResendAfter)
	}
	b := newLateResendBench(t, lateResendOpts{def: def})
	b.tapWindowCloses(t, lateResendAfter, ana)
	b.fake.SetRules([]fakeconnectly.Rule{{Numbers: []string{ana}, Kind: fakeconnectly.KindTemplate, Status: 503, Times: 1}})
	fu := ledger.FollowupRun("adv-1", "interested")
	b.sessionFailsLate(t, fu, ana)
	b.fallbackGoes(t, fu, ana, ledger.Unknown)
	b.release()
	b.finish(t)
	b.expectTemplates(t, ana, 2, 1)
	b.expectReport(t, fu, 1, 0, 1)
	b.expectSweep(t, lateResendAfter-time.Minute, 0, "resend sweep within the quiet period")
	b.expectSweep(t, 2*time.Minute, 1, "resend sweep after the quiet period")
	b.finishAfterADay(t)
	// The campaign's template, the session follow-up, its fallback once.
	b.expectTemplates(t, ana, 3, 2)
	if e, _ := b.lateFallback(t, fu, ana); !fallbackSent(e) || e.Attempts != 2 {
		t.Errorf("late fallback entry %+v, want sent as the fallback at attempt 2", e)
	}
	b.expectReport(t, fu, 0, 1, 0)
}
