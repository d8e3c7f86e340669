package worker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/internal/backoff"
	"github.com/heraldmsg/herald/internal/connectly"
)

func TestRetryDelay(t *testing.T) {
	t.Parallel()

	delay := retryDelay(backoff.Backoff{Base: 10 * time.Millisecond, Cap: 50 * time.Millisecond})
	task := asynq.NewTask("message:send", nil)

	for _, tc := range []struct {
		name   string
		err    error
		lo, hi time.Duration // the delay lies in [lo, hi)
	}{
		{"Throttled", &ThrottledError{RetryAfter: 2 * time.Second}, 2 * time.Second, 2*time.Second + 200*time.Millisecond + time.Millisecond},
		{"WrappedThrottled", fmt.Errorf("send: %w", &ThrottledError{RetryAfter: time.Second}), time.Second, time.Second + 100*time.Millisecond + time.Millisecond},
		{"ThrottledNoWait", &ThrottledError{}, 0, time.Millisecond},
		{"Held", &HeldError{RetryAfter: 5 * time.Second}, 5 * time.Second, 6*time.Second + time.Millisecond},
		{"WrappedHeld", fmt.Errorf("send: %w", &HeldError{RetryAfter: 10 * time.Second}), 10 * time.Second, 12*time.Second + time.Millisecond},
		{"TransientBacksOff", errors.New("HTTP_503"), 0, 50*time.Millisecond + time.Millisecond + 1},
		{"ProviderErrorBacksOff", &connectly.Error{StatusCode: 503}, 0, 50*time.Millisecond + time.Millisecond + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for n := range 500 {
				d := delay(n%10, tc.err, task)
				if d < tc.lo || d >= tc.hi {
					t.Fatalf("retryDelay(%d, %v) = %v, want in [%v, %v)", n%10, tc.err, d, tc.lo, tc.hi)
				}
			}
		})
	}
}

func TestIsFailure(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"Throttled", &ThrottledError{RetryAfter: time.Second, Reason: "HTTP_429"}, false},
		{"WrappedThrottled", fmt.Errorf("pace: %w", &ThrottledError{}), false},
		{"Held", &HeldError{Reason: "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND"}, false},
		{"LeaseExpired", asynq.ErrLeaseExpired, false},
		{"WrappedLeaseExpired", fmt.Errorf("claim: %w", asynq.ErrLeaseExpired), false},
		{"Canceled", context.Canceled, false},
		{"WrappedCanceled", fmt.Errorf("ledger: claim: %w", context.Canceled), false},
		{"Transient", &connectly.Error{StatusCode: 503}, true},
		{"Permanent", fmt.Errorf("ERROR_CODE_X: %w", asynq.SkipRetry), true},
		{"RedisDown", errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"), true},
		{"DeadlineExceeded", context.DeadlineExceeded, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := isFailure(tc.err); got != tc.want {
				t.Fatalf("isFailure(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"Throttled", &ThrottledError{RetryAfter: 1500 * time.Microsecond, Reason: "rate limit"}, "throttled (rate limit): retry in 2ms"},
		{"Held", &HeldError{RetryAfter: time.Second, Reason: "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND: no template"}, "run paused: ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND: no template"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.err.Error(); got != tc.want {
				t.Fatalf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}
