package worker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/metrics"
)

// A recipient of an at-least-once run whose first attempt was answered by a 503 (which may
// follow a message that went out) and whose last attempt then gets an answer that says
// nothing went (a 408, a refused connection, a 5xx the config reads as not sent) may hold the
// message from the first: the retries end with the recipient unknown with the 503, never
// failed, counted as unknown in the metrics. A recipient whose answers all said nothing went,
// or whose last answer is a permanent refusal, fails as before.
func TestRetriesExhaustedAfterAMaybeSentAnswer(t *testing.T) {
	eachTier(t, exhaustedStories, func(s exhaustedStory) string { return s.name }, func(t *testing.T, rdb *redis.Client, s exhaustedStory) {
		b := setupTwoAttempts(t, rdb, s.ambiguous, s.faults)
		s.run(t, b, withMetrics(b.testBundle))
	})
}

const exhaustedRun = "spring-sale/retries-exhausted"

// exhaustedStory is a story of TestRetriesExhaustedAfterAMaybeSentAnswer.
type exhaustedStory struct {
	name string
	// ambiguous, when set, is the config's retry.ambiguous_statuses.
	ambiguous []int
	// faults, when not nil, is the config's retry.request_faults.
	faults []string
	run    func(t *testing.T, b *resendBundle, m *metrics.Metrics)
}

var exhaustedStories = []exhaustedStory{
	{name: "A503ThenA408", run: func(t *testing.T, b *resendBundle, m *metrics.Metrics) {
		p := seedRun(t, b.testBundle, exhaustedRun, ledger.AtLeastOnce, 1)[0]
		answerInTurn(b, apiError(503, ""), apiError(408, ""))
		wantLastAttempt(t, b, p, 2)
		wantMaybeSentExhausted(t, b, p, "HTTP_408", 2)
		wantExhaustedExplained(t, b, p, "HTTP_408")
		wantSends(t, m, metrics.OutcomeRetried, "transient", 1)
		wantSends(t, m, metrics.OutcomeUnknown, "transient", 1)
		wantSends(t, m, metrics.OutcomeFailed, "transient", 0)
		// asynq would not deliver the task again; if it did, nothing is sent.
		if err := handle(t, b.testBundle, p); err != nil {
			t.Fatalf("the task again: %v", err)
		}
		if n := b.sender.CallsTo(p.To); n != 2 {
			t.Fatalf("%d requests after the task came again, want 2", n)
		}
	}},
	{name: "A503ThenARefusedConnection", run: func(t *testing.T, b *resendBundle, m *metrics.Metrics) {
		p := seedRun(t, b.testBundle, exhaustedRun, ledger.AtLeastOnce, 1)[0]
		answerInTurn(b, apiError(503, ""), &connectly.TransportError{Written: false, Err: errors.New("connection refused")})
		wantLastAttempt(t, b, p, 2)
		wantMaybeSentExhausted(t, b, p, "NOT_SENT", 2)
		wantSends(t, m, metrics.OutcomeUnknown, "transient", 1)
		wantSends(t, m, metrics.OutcomeFailed, "transient", 0)
	}},
	{name: "A503ThenA502TheConfigReadsAsNotSent", ambiguous: []int{503}, run: func(t *testing.T, b *resendBundle, m *metrics.Metrics) {
		p := seedRun(t, b.testBundle, exhaustedRun, ledger.AtLeastOnce, 1)[0]
		answerInTurn(b, apiError(503, ""), apiError(502, ""))
		wantLastAttempt(t, b, p, 2)
		wantMaybeSentExhausted(t, b, p, "HTTP_502", 2)
		wantSends(t, m, metrics.OutcomeUnknown, "transient", 1)
		wantSends(t, m, metrics.OutcomeFailed, "transient", 0)
	}},
	{name: "A503ThenAThrottleThenA408", run: func(t *testing.T, b *resendBundle, m *metrics.Metrics) {
		// The 429 gives its attempt back: the 408 is the second attempt, and the last.
		p := seedRun(t, b.testBundle, exhaustedRun, ledger.AtLeastOnce, 1)[0]
		answerInTurn(b, apiError(503, ""), apiError(429, ""), apiError(408, ""))
		wantLastAttempt(t, b, p, 3)
		wantMaybeSentExhausted(t, b, p, "HTTP_408", 3, "throttle HTTP_429")
		wantSends(t, m, metrics.OutcomeThrottled, "throttle", 1)
		wantSends(t, m, metrics.OutcomeUnknown, "transient", 1)
		wantSends(t, m, metrics.OutcomeFailed, "transient", 0)
	}},
	{name: "NothingWasEverSent", run: func(t *testing.T, b *resendBundle, m *metrics.Metrics) {
		// Two 408s: Connectly took neither request, and the recipient fails as before.
		p := seedRun(t, b.testBundle, exhaustedRun, ledger.AtLeastOnce, 1)[0]
		answerInTurn(b, apiError(408, ""), apiError(408, ""))
		wantLastAttempt(t, b, p, 2)
		wantEntry(t, b.testBundle, p, ledger.Entry{State: ledger.Failed, Attempts: 2, Code: "HTTP_408"})
		wantStory(t, b, p, "retry HTTP_408", "failed HTTP_408")
		c := countersOf(t, b.testBundle, exhaustedRun)
		if c.States[ledger.Failed] != 1 || c.States[ledger.Unknown] != 0 || c.Codes["failed:HTTP_408"] != 1 {
			t.Fatalf("states %v, codes %v; want one failed(HTTP_408)", c.States, c.Codes)
		}
		wantSends(t, m, metrics.OutcomeFailed, "transient", 1)
		wantSends(t, m, metrics.OutcomeUnknown, "transient", 0)
	}},
	{name: "A503ThenARefusalOfTheNumber", run: func(t *testing.T, b *resendBundle, m *metrics.Metrics) {
		// The retry is refused for good because the number is invalid, which the first
		// request, the same, was too: nothing went, and the recipient fails as before.
		p := refusedAfterA503(t, b, apiError(400, invalidNumber))
		wantEntry(t, b.testBundle, p, ledger.Entry{State: ledger.Failed, Attempts: 2, Code: invalidNumber})
		wantStory(t, b, p, "retry_maybe_sent HTTP_503", "failed "+invalidNumber)
		c := countersOf(t, b.testBundle, exhaustedRun)
		if c.States[ledger.Failed] != 1 || c.States[ledger.Unknown] != 0 || c.Codes["failed:"+invalidNumber] != 1 || c.Codes["unknown:HTTP_503"] != 0 {
			t.Fatalf("states %v, codes %v; want one failed(%s)", c.States, c.Codes, invalidNumber)
		}
		wantSends(t, m, metrics.OutcomeFailed, "permanent", 1)
		wantSends(t, m, metrics.OutcomeUnknown, "transient", 0)
	}},
	{name: "A503ThenAnOptOut", run: func(t *testing.T, b *resendBundle, m *metrics.Metrics) {
		// The retry is refused because the customer opted out, which may have come after the
		// first message reached them: they may hold it, so they are unknown with the 503,
		// never failed, and the number is suppressed all the same.
		p := refusedAfterA503(t, b, apiError(400, optedOut))
		wantRefusedAfterMaybeSent(t, b, m, p, optedOut)
		wantExplained(t, b, p, "State      unknown\n", "Last code  HTTP_503 (transient", "attempt 1: retry_maybe_sent HTTP_503 (transient)\n",
			"attempt 2: "+ledger.EventRetryRefused+" "+optedOut+" (permanent)\n",
			"Unknown    an earlier attempt may have delivered the message, and Connectly refused a later one ("+optedOut+")")
		if !suppressedOf(t, b.testBundle, p.To) {
			t.Fatal("the number is not suppressed")
		}
	}},
	{name: "A503ThenARefusalTheConfigDoesNotListAsTheRequests", faults: []string{}, run: func(t *testing.T, b *resendBundle, m *metrics.Metrics) {
		// retry.request_faults: [] says no refusal proves the first request was refused too:
		// the invalid number leaves the recipient unknown.
		p := refusedAfterA503(t, b, apiError(400, invalidNumber))
		wantRefusedAfterMaybeSent(t, b, m, p, invalidNumber)
	}},
}

// invalidNumber is a refusal of the request itself.
const invalidNumber = "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"

// refusedAfterA503 seeds one recipient of an at-least-once run, answers its first request
// with a 503 and its second with refusal, and runs its task twice: the first run retries, the
// second ends the task.
func refusedAfterA503(t *testing.T, b *resendBundle, refusal error) campaigns.SendPayload {
	t.Helper()
	p := seedRun(t, b.testBundle, exhaustedRun, ledger.AtLeastOnce, 1)[0]
	answerInTurn(b, apiError(503, ""), refusal)
	if err := handle(t, b.testBundle, p); err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("first attempt: %v, want an error the task retries after", err)
	}
	if err := handle(t, b.testBundle, p); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("second attempt: %v, want the task ended", err)
	}
	return p
}

// wantRefusedAfterMaybeSent checks that p, answered by a 503 and then refused for good with
// code, is unknown with the 503: history the 503's retry and the refusal (retry_refused),
// counted once under unknown:HTTP_503 and never as failed, in the metrics as unknown; the run
// completed and its counters agreeing with its ledger.
func wantRefusedAfterMaybeSent(t *testing.T, b *resendBundle, m *metrics.Metrics, p campaigns.SendPayload, code string) {
	t.Helper()
	wantEntry(t, b.testBundle, p, ledger.Entry{State: ledger.Unknown, Attempts: 2, Code: "HTTP_503"})
	wantStory(t, b, p, "retry_maybe_sent HTTP_503", ledger.EventRetryRefused+" "+code)
	c := countersOf(t, b.testBundle, exhaustedRun)
	if c.States[ledger.Unknown] != 1 || c.States[ledger.Failed] != 0 || c.Codes["unknown:HTTP_503"] != 1 || c.Codes["failed:"+code] != 0 {
		t.Fatalf("states %v, codes %v; want one unknown(HTTP_503), no failure", c.States, c.Codes)
	}
	wantSends(t, m, metrics.OutcomeUnknown, "permanent", 1)
	wantSends(t, m, metrics.OutcomeFailed, "permanent", 0)
	if r := runOf(t, b.testBundle, p.Run); r.Status != ledger.RunCompleted {
		t.Fatalf("run %s, want completed", r.Status)
	}
	if v, err := b.ledger.Verify(context.Background(), p.Run); err != nil || len(v.Mismatches) > 0 {
		t.Fatalf("Verify: %+v, %v", v.Mismatches, err)
	}
}

// setupTwoAttempts is setupResendWith with a worker that gives up after two attempts, reading
// only the ambiguous 5xx statuses as maybe sent, and only faults as refusals of the request
// itself, when given.
func setupTwoAttempts(t *testing.T, rdb *redis.Client, ambiguous []int, faults []string) *resendBundle {
	t.Helper()
	cfg := testConfig()
	cfg.MaxAttempts = 2
	table, err := connectly.NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	table.SetAmbiguousStatuses(ambiguous)
	table.SetRequestFaults(faults)
	clock := newTestClock()
	sender := &fakeSender{}
	w := New(cfg, Deps{Redis: rdb, Sender: sender, Logger: zerolog.Nop(), Now: clock.Now, Table: table})
	return &resendBundle{
		testBundle: &testBundle{rdb: rdb, ledger: ledger.New(rdb, clock.Now), sender: sender, worker: w},
		clock:      clock, inspector: asynq.NewInspectorFromRedisClient(rdb),
	}
}

// answerInTurn makes b's sender answer the requests to any number with answers in turn (a
// nil answer accepts), and accept every request after them.
func answerInTurn(b *resendBundle, answers ...error) {
	var mu sync.Mutex
	n := map[string]int{}
	b.sender.SendFunc = func(_ context.Context, msg connectly.TemplateMessage) (connectly.SendResult, error) {
		mu.Lock()
		i := n[msg.Number]
		n[msg.Number]++
		mu.Unlock()
		if i < len(answers) && answers[i] != nil {
			return connectly.SendResult{}, answers[i]
		}
		return connectly.SendResult{ID: "msg-" + msg.Number}, nil
	}
}

// wantLastAttempt runs p's task until it ends (asynq.SkipRetry), at most tasks times, each
// run before the last answered with an error the task retries after, and checks that it
// ended on the last and that each run made one request.
func wantLastAttempt(t *testing.T, b *resendBundle, p campaigns.SendPayload, tasks int) {
	t.Helper()
	for i := 1; i <= tasks; i++ {
		err := handle(t, b.testBundle, p)
		if last := i == tasks; errors.Is(err, asynq.SkipRetry) != last || err == nil {
			t.Fatalf("run %d of the task: %v; want an error, the task ended only on run %d", i, err, tasks)
		}
	}
	if n := b.sender.CallsTo(p.To); n != tasks {
		t.Fatalf("%d requests to %s, want %d", n, p.To, tasks)
	}
}

// wantStory checks p's history, as "outcome code" events.
func wantStory(t *testing.T, b *resendBundle, p campaigns.SendPayload, events ...string) {
	t.Helper()
	hist, err := b.ledger.History(context.Background(), p.Address())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hist {
		got = append(got, h.Outcome+" "+h.Code)
	}
	if g, w := strings.Join(got, ", "), strings.Join(events, ", "); g != w {
		t.Fatalf("history %q, want %q", g, w)
	}
}

// wantMaybeSentExhausted checks that p, answered by a 503 and retried, then answered last
// with code, which says nothing went, is unknown with the 503 after attempts attempts: its
// history the 503's retry, any events between, and the last answer ending the retries;
// counted once under unknown:HTTP_503 and never as failed; not waiting for a resend; the run
// completed, its counters agreeing with its ledger.
func wantMaybeSentExhausted(t *testing.T, b *resendBundle, p campaigns.SendPayload, code string, requests int, between ...string) {
	t.Helper()
	wantEntry(t, b.testBundle, p, ledger.Entry{State: ledger.Unknown, Attempts: 2, Code: "HTTP_503"})
	if n := b.sender.CallsTo(p.To); n != requests {
		t.Fatalf("%d requests to %s, want %d", n, p.To, requests)
	}
	story := append(append([]string{"retry_maybe_sent HTTP_503"}, between...), ledger.EventRetriesExhausted+" "+code)
	wantStory(t, b, p, story...)
	c := countersOf(t, b.testBundle, p.Run)
	if c.States[ledger.Unknown] != 1 || c.States[ledger.Failed] != 0 || c.Codes["unknown:HTTP_503"] != 1 || c.Codes["failed:"+code] != 0 ||
		c.Codes["unknown:"+code] != 0 || c.ResendWaiting != 0 {
		t.Fatalf("states %v, codes %v, resend waiting %d; want one unknown, unknown:HTTP_503 once, no failure, none waiting",
			c.States, c.Codes, c.ResendWaiting)
	}
	if r := runOf(t, b.testBundle, p.Run); r.Status != ledger.RunCompleted {
		t.Fatalf("run %s, want completed", r.Status)
	}
	if v, err := b.ledger.Verify(context.Background(), p.Run); err != nil || len(v.Mismatches) > 0 {
		t.Fatalf("Verify: %+v, %v", v.Mismatches, err)
	}
}

// wantExhaustedExplained checks what `recipient explain` says of p after its retries ran out
// on code: unknown, the 503 its last code, and both answers in its history with their class.
func wantExhaustedExplained(t *testing.T, b *resendBundle, p campaigns.SendPayload, code string) {
	t.Helper()
	wantExplained(t, b, p, "State      unknown\n", "Attempts   2\n", "Last code  HTTP_503 (transient", "attempt 1: retry_maybe_sent HTTP_503 (transient)\n",
		"attempt 2: "+ledger.EventRetriesExhausted+" "+code+" (transient)\n",
		"Unknown    an earlier attempt may have delivered the message; the later ones were not taken (last: "+code+")")
}
