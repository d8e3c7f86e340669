package worker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
)

const optedOut = "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"

// suppressionHook fails every write to the suppression list while failing is above zero
// (counting down; -1 fails them all), as if Redis did not answer it, and notes in order the
// suppression writes and the scripts that recorded an opt-out failure.
type suppressionHook struct {
	failing atomic.Int64
	mu      sync.Mutex
	seen    []string
}

func (h *suppressionHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *suppressionHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		switch {
		case strings.HasPrefix(cmd.Name(), "eval") && len(args) > 3 && args[3] == rkeys.Suppressed():
			if n := h.failing.Load(); n != 0 {
				h.failing.CompareAndSwap(n, max(n-1, -1))
				cmd.SetErr(errors.New("i/o timeout"))
				return cmd.Err()
			}
			err := next(ctx, cmd)
			if err == nil { // an EVALSHA refused with NOSCRIPT goes again as EVAL
				h.note("suppress")
			}
			return err
		case strings.HasPrefix(cmd.Name(), "eval") && slices.Contains(args, any("f")) && slices.Contains(args, any(optedOut)):
			err := next(ctx, cmd)
			if err == nil { // an EVALSHA refused with NOSCRIPT goes again as EVAL
				h.note("failed")
			}
			return err
		}
		return next(ctx, cmd)
	}
}

func (h *suppressionHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *suppressionHook) note(what string) {
	h.mu.Lock()
	h.seen = append(h.seen, what)
	h.mu.Unlock()
}

func (h *suppressionHook) order() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.seen)
}

// setupOptOut is a worker whose one recipient answers that they opted out, its Redis client
// with h; the waits between ledger retries are skipped.
func setupOptOut(t *testing.T, h *suppressionHook) (*testBundle, string) {
	t.Helper()
	b := setupWith(t, testConfig(), &redis.Options{}, func(ctx context.Context, _ time.Duration) error { return ctx.Err() })
	b.rdb.AddHook(h)
	b.sender.SendFunc = answer(apiError(400, optedOut))
	return b, "run-opt-out"
}

func suppressedOf(t *testing.T, b *testBundle, to string) bool {
	t.Helper()
	in, err := b.ledger.Suppressed(context.Background(), []string{to})
	if err != nil {
		t.Fatal(err)
	}
	return in[0]
}

// TestAnOptOutIsSuppressedBeforeItsFailureIsRecorded: the number joins the suppression list
// before the failure is recorded (once recorded, a retry of the task finds the entry done),
// and a write to the list that fails for a moment is tried again within the send.
func TestAnOptOutIsSuppressedBeforeItsFailureIsRecorded(t *testing.T) {
	h := &suppressionHook{}
	h.failing.Store(2)
	b, run := setupOptOut(t, h)
	p := seedRun(t, b, run, ledger.AtMostOnce, 1)[0]
	err := handle(t, b, p)
	if !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("error %v, want the task ended", err)
	}
	if got := h.order(); !slices.Equal(got, []string{"suppress", "failed"}) {
		t.Fatalf("order %q, want the suppression, then the failure", got)
	}
	if !suppressedOf(t, b, p.To) {
		t.Fatal("not suppressed")
	}
	wantEntry(t, b, p, ledger.Entry{State: ledger.Failed, Attempts: 1, Code: optedOut})
}

// TestAnOptOutIsSuppressedByTheRetryWhenTheListIsUnreachable: when the suppression list
// cannot be written at all, the failure is recorded and the task retries; the retry finds
// the entry failed with an opt-out code, makes no request, and writes the suppression.
func TestAnOptOutIsSuppressedByTheRetryWhenTheListIsUnreachable(t *testing.T) {
	h := &suppressionHook{}
	h.failing.Store(-1)
	b, run := setupOptOut(t, h)
	p := seedRun(t, b, run, ledger.AtMostOnce, 1)[0]
	suppressedByTheRetry(t, b, h, p, ledger.Entry{State: ledger.Failed, Attempts: 1, Code: optedOut}, 1, nil)
	// A later delivery of the same task keeps the suppression as it is (its time included).
	ctx := context.Background()
	if err := b.rdb.HSet(ctx, rkeys.Suppressed(), p.To, optedOut+"|1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := handle(t, b, p); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if v := b.mr.HGet(rkeys.Suppressed(), p.To); v != optedOut+"|1" {
		t.Fatalf("suppression %q after a redelivery, want it kept", v)
	}
}

// TestAnOptOutIsSuppressedByARetryThatEndsBeforeItsClaim: the retry of an opt-out whose
// suppression could not be written may end before it reaches its claim (its send has expired
// meanwhile, say); it still writes the suppression. Before, only a retry that reached its claim
// did, and an expired one left a customer who opted out off the list.
func TestAnOptOutIsSuppressedByARetryThatEndsBeforeItsClaim(t *testing.T) {
	h := &suppressionHook{}
	h.failing.Store(-1)
	b, run := setupOptOut(t, h)
	p := seedRun(t, b, run, ledger.AtMostOnce, 1)[0]
	if err := handle(t, b, p); err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("error %v, want one the task retries on", err)
	}
	if suppressedOf(t, b, p.To) {
		t.Fatal("suppressed although the list could not be written: the test tested nothing")
	}
	h.failing.Store(0)
	p.Expires = time.Now().Add(-time.Minute).Unix() // the retry comes after the send's expiry
	if err := handle(t, b, p); err != nil {
		t.Fatalf("expired retry: %v", err)
	}
	if !suppressedOf(t, b, p.To) {
		t.Fatal("the opt-out was recorded failed, but its expired retry never wrote the suppression")
	}
	wantEntry(t, b, p, ledger.Entry{State: ledger.Failed, Attempts: 1, Code: optedOut})
}

// TestAnOptOutSettledUnknownIsSuppressedByTheRetry: under at-least-once, a retry after a 503
// refused because the customer opted out leaves them unknown (they may hold the first
// message), the entry holding the 503's code. When the suppression list cannot be written
// then, the task retries, and the retry, finding the entry unknown, reads the opt-out from its
// history and writes the suppression, with no request.
// The same when a delivery event of the first message settles the entry before the retry.
func TestAnOptOutSettledUnknownIsSuppressedByTheRetry(t *testing.T) {
	for _, delivered := range []bool{false, true} {
		t.Run(map[bool]string{false: "Unknown", true: "DeliveredSince"}[delivered], func(t *testing.T) {
			h := &suppressionHook{}
			b, run := setupOptOut(t, h)
			answers := []error{apiError(503, ""), apiError(400, optedOut)}
			var calls atomic.Int64
			b.sender.SendFunc = func(context.Context, connectly.TemplateMessage) (connectly.SendResult, error) {
				return connectly.SendResult{}, answers[min(int(calls.Add(1))-1, 1)]
			}
			p := seedRun(t, b, run, ledger.AtLeastOnce, 1)[0]
			if err := handle(t, b, p); err == nil || errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("first attempt: %v, want an error the task retries after", err)
			}
			h.failing.Store(-1)
			var between func()
			if delivered {
				between = func() {
					v, _, err := b.ledger.ApplyDelivery(context.Background(), ledger.DeliveryEvent{Address: p.Address(), State: ledger.Delivered})
					if err != nil || v != ledger.DeliveryApplied {
						t.Fatalf("delivery: %v, %v", v, err)
					}
				}
			}
			suppressedByTheRetry(t, b, h, p, ledger.Entry{State: ledger.Unknown, Attempts: 2, Code: "HTTP_503"}, 2, between)
		})
	}
}

// suppressedByTheRetry runs p's task, answered by an opt-out while h fails every write to the
// suppression list: the task must end in an error it retries on, the entry as want, the number
// not suppressed. With the list back (and between run, when given), asynq's retry of the task
// must write the suppression without a request: requests in all.
func suppressedByTheRetry(t *testing.T, b *testBundle, h *suppressionHook, p campaigns.SendPayload, want ledger.Entry, requests int, between func()) {
	t.Helper()
	if err := handle(t, b, p); err == nil || errors.Is(err, asynq.SkipRetry) || !isFailure(err) {
		t.Fatalf("the opt-out: %v, want an error the task retries on", err)
	}
	wantEntry(t, b, p, want)
	if suppressedOf(t, b, p.To) {
		t.Fatal("suppressed although the list could not be written: the test tested nothing")
	}
	h.failing.Store(0)
	if between != nil {
		between()
	}
	if err := handle(t, b, p); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !suppressedOf(t, b, p.To) {
		t.Fatal("the customer opted out, but the number never joined the suppression list")
	}
	if n := b.sender.CallsTo(p.To); n != requests {
		t.Fatalf("%d requests, want %d", n, requests)
	}
}
