package worker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// standardBody is Connectly's error body when nothing is more specific (reference 4.1).
const standardBody = `{"message":"Internal server error","type":"ERROR_TYPE_UNSPECIFIED","code":"ERROR_CODE_UNSPECIFIED","userTitle":"","userMessage":"","cntTraceId":"7","details":{}}`

// sentThen500 is a Connectly stand-in that accepts every message, records it, and answers the
// first request for each number with a 500 and Connectly's standard error body, as if the
// answer failed after the message went out. Later requests get the normal success answer.
type sentThen500 struct {
	mu       sync.Mutex
	accepted map[string]int
}

func (s *sentThen500) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg connectly.TemplateMessage
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.accepted[msg.Number]++
	n := s.accepted[msg.Number]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if n == 1 {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, standardBody)
		return
	}
	_, _ = io.WriteString(w, `{"id":"msg-`+msg.Number+`"}`)
}

func (s *sentThen500) Accepted(number string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted[number]
}

// realClientBundle is a worker on miniredis whose Sender is the real Connectly client talking
// to h over HTTP on 127.0.0.1.
func realClientBundle(t *testing.T, h http.Handler) *testBundle {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: srv.URL, BusinessID: "biz-1", APIKey: "key-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, testConfig())
	b.worker.client = clientOf(client)
	return b
}

// deliverUntilSettled hands p's task to the handler as asynq would: again after every error
// that asks for a retry, until the task ends (nil or SkipRetry), at most limit times.
func deliverUntilSettled(t *testing.T, b *testBundle, p campaigns.SendPayload, limit int) (deliveries int) {
	t.Helper()
	for deliveries < limit {
		deliveries++
		err := handle(t, b, p)
		if err == nil || errors.Is(err, asynq.SkipRetry) {
			return deliveries
		}
		if !isFailure(err) {
			t.Fatalf("delivery %d: %v, want a retryable failure or the end", deliveries, err)
		}
	}
	return deliveries
}

// A 500 with Connectly's JSON error body can follow a message that went out (reference 4.4,
// 10). Under at-most-once the recipient becomes unknown and nothing is sent again; under
// at-least-once it is sent again.
func TestStandardBody500AfterSend(t *testing.T) {
	t.Parallel()
	const runID = "spring-sale/20260101T0900Z"

	t.Run("AtMostOnceIsUnknownAndNotResent", func(t *testing.T) {
		t.Parallel()
		fake := &sentThen500{accepted: map[string]int{}}
		b := realClientBundle(t, fake)
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 1)

		deliverUntilSettled(t, b, ps[0], 5)
		// A duplicate delivery of the task (asynq redelivers after a lost lease) sends nothing.
		if err := handle(t, b, ps[0]); err != nil {
			t.Fatalf("redelivery: %v", err)
		}
		if n := fake.Accepted(ps[0].To); n != 1 {
			t.Fatalf("accepted %d times, want once", n)
		}
		wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: "ERROR_CODE_UNSPECIFIED"})
		if c := countersOf(t, b, runID); c.States[ledger.Unknown] != 1 || c.Retries != 0 {
			t.Fatalf("counters %+v, want one unknown and no retry", c)
		}
	})

	t.Run("AtLeastOnceRetries", func(t *testing.T) {
		t.Parallel()
		fake := &sentThen500{accepted: map[string]int{}}
		b := realClientBundle(t, fake)
		ps := seedRun(t, b, runID, ledger.AtLeastOnce, 1)

		if n := deliverUntilSettled(t, b, ps[0], 5); n != 2 {
			t.Fatalf("%d deliveries, want 2 (the 500, then the retry)", n)
		}
		if n := fake.Accepted(ps[0].To); n != 2 {
			t.Fatalf("accepted %d times, want 2 (the price of at-least-once)", n)
		}
		wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Accepted, Attempts: 2, MessageID: "msg-" + ps[0].To})
		if c := countersOf(t, b, runID); c.Retries != 1 || c.Codes["retried:ERROR_CODE_UNSPECIFIED"] != 1 {
			t.Fatalf("retries %d codes %v, want one retry on ERROR_CODE_UNSPECIFIED", c.Retries, c.Codes)
		}
	})
}

// TestAnswerPerPolicy drives each kind of answer through the handler under both delivery
// policies and checks the recipient's entry: what the README's "What happens to a recipient"
// table says.
func TestAnswerPerPolicy(t *testing.T) {
	t.Parallel()
	const runID = "spring-sale/20260101T0900Z"
	standard := func(status int) error {
		return &connectly.Error{StatusCode: status, ErrorBody: connectly.ErrorBody{Type: "ERROR_TYPE_UNSPECIFIED", Code: "ERROR_CODE_UNSPECIFIED"}}
	}
	type want struct {
		state ledger.State
		tries int // attempts recorded
	}
	for _, tc := range []struct {
		name        string
		err         error
		atMostOnce  want
		atLeastOnce want
	}{
		{"Refused", apiError(400, "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"), want{ledger.Failed, 1}, want{ledger.Failed, 1}},
		{"WindowClosed", &connectly.Error{StatusCode: 400, ErrorBody: connectly.ErrorBody{Type: "ERROR_TYPE_FAILED_PRECONDITION"}}, want{ledger.Failed, 1}, want{ledger.Failed, 1}},
		{"NotTaken408", standard(408), want{ledger.Queued, 1}, want{ledger.Queued, 1}},
		{"NotTakenRefusedConnection", &connectly.TransportError{Err: io.EOF}, want{ledger.Queued, 1}, want{ledger.Queued, 1}},
		{"Throttle429", standard(429), want{ledger.Queued, 0}, want{ledger.Queued, 0}},
		{"MaybeSent500", standard(500), want{ledger.Unknown, 1}, want{ledger.Queued, 1}},
		{"MaybeSentBare502", &connectly.Error{StatusCode: 502}, want{ledger.Unknown, 1}, want{ledger.Queued, 1}},
		{"MaybeSent503", standard(503), want{ledger.Unknown, 1}, want{ledger.Queued, 1}},
		{"RefusedStandard400", standard(400), want{ledger.Failed, 1}, want{ledger.Failed, 1}},
		{"MaybeSentNoAnswer", &connectly.TransportError{Written: true, Err: io.ErrUnexpectedEOF}, want{ledger.Unknown, 1}, want{ledger.Queued, 1}},
		{"StopRun", apiError(401, "ERROR_CODE_BUSINESS_KEY_SECRET_ABSENT"), want{ledger.Queued, 0}, want{ledger.Queued, 0}},
	} {
		for _, policy := range []ledger.Delivery{ledger.AtMostOnce, ledger.AtLeastOnce} {
			t.Run(tc.name+"/"+string(policy), func(t *testing.T) {
				t.Parallel()
				b := setup(t, testConfig())
				ps := seedRun(t, b, runID, policy, 1)
				b.sender.SendFunc = answer(tc.err)
				_ = handle(t, b, ps[0])
				w := tc.atMostOnce
				if policy == ledger.AtLeastOnce {
					w = tc.atLeastOnce
				}
				if e := entryOf(t, b, ps[0]); e.State != w.state || e.Attempts != w.tries {
					t.Fatalf("entry %+v, want state %s after %d attempts", e, w.state, w.tries)
				}
			})
		}
	}
}

// A 429 carrying Connectly's standard error body (code ERROR_CODE_UNSPECIFIED) is a throttle
// keyed HTTP_429, so it backs the sender off under the default limits.adaptive.codes.
func TestStandardBody429BacksTheSenderOff(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	ps := seedRun(t, b, "run-429", ledger.AtMostOnce, 1)
	b.sender.SendFunc = answer(&connectly.Error{StatusCode: 429, ErrorBody: connectly.ErrorBody{
		Message: "Too Many Requests", Type: "ERROR_TYPE_UNSPECIFIED", Code: "ERROR_CODE_UNSPECIFIED"}})

	from := b.worker.now().Unix()
	te := wantAs[*ThrottledError](t, handle(t, b, ps[0]))
	if te.Reason != "HTTP_429" {
		t.Fatalf("throttle reason %q, want HTTP_429", te.Reason)
	}
	// The adaptive controller counts the throttle in the sender's per-second throttle count;
	// the share it acts on is read from those counts. The send's second lies between from and
	// now (the handler may cross a second's end).
	n := 0
	for sec := from; sec <= b.worker.now().Unix(); sec++ {
		c, err := b.rdb.Get(context.Background(), rkeys.SenderThrottled("", testSender, sec)).Int()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		n += c
	}
	if n != 1 {
		t.Fatalf("a 429 with Connectly's error body was not counted once for the sender's adaptive rate: %d", n)
	}
	wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Queued, Code: "HTTP_429"})
}

func TestAdaptiveTrigger(t *testing.T) {
	t.Parallel()
	withBody := func(status int, code string) error {
		return &connectly.Error{StatusCode: status, ErrorBody: connectly.ErrorBody{Type: "ERROR_TYPE_UNSPECIFIED", Code: code}}
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"Bare429", &connectly.Error{StatusCode: 429}, true},
		{"StandardBody429", withBody(429, "ERROR_CODE_UNSPECIFIED"), true},
		// The pair limit is one person's, whatever the status: the sender keeps its rate.
		{"429WithPairCode", withBody(429, "131056"), false},
		{"429WithThroughputCode", withBody(429, "130429"), true},
		{"MetaThroughput", apiError(400, "130429"), true},
		// A top-level 4 is grpc-gateway's DEADLINE_EXCEEDED, no throttle; its
		// RESOURCE_EXHAUSTED at a 429 counts as the 429 it is.
		{"GRPCDeadline", apiError(400, "4"), false},
		{"GRPCResourceExhausted429", apiError(429, "8"), true},
		{"MetaWABALimit", apiError(400, "80007"), true},
		{"PairLimitIsOnePerson", apiError(400, "131056"), false},
		{"StandardBody500", withBody(500, "ERROR_CODE_UNSPECIFIED"), false},
		{"Bare503", &connectly.Error{StatusCode: 503}, false},
		{"Permanent", apiError(400, "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"), false},
		{"Accepted", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, testConfig())
			if got := b.worker.adaptiveTrigger(b.worker.table.Decide(tc.err)); got != tc.want {
				t.Fatalf("adaptiveTrigger = %v, want %v", got, tc.want)
			}
		})
	}
	cfg := testConfig()
	cfg.Limits.Adaptive.Period = -1 // off
	b := setup(t, cfg)
	if b.worker.adaptiveTrigger(b.worker.table.Decide(&connectly.Error{StatusCode: 429})) {
		t.Fatal("adaptiveTrigger fired with the backoff turned off")
	}
}
