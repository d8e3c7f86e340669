package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/internal/backoff"
)

// ThrottledError is returned by the handler when a send must wait for a rate limit or after a
// 429. It is not a failure: the task is rescheduled after RetryAfter without using an attempt.
type ThrottledError struct {
	RetryAfter time.Duration
	Reason     string
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("throttled (%s): retry in %s", e.Reason, e.RetryAfter.Round(time.Millisecond))
}

// HeldError is returned when the run is paused: the task is held, neither sent nor failed, and
// looks again after RetryAfter.
type HeldError struct {
	RetryAfter time.Duration
	Reason     string
}

func (e *HeldError) Error() string { return "run paused: " + e.Reason }

// endTask is the error that ends a task for good (asynq.SkipRetry): what happened, then the
// provider's own error, so the task's last error (`herald task show`) keeps Connectly's message.
// A nil cause gives what alone.
func endTask(what string, cause error) error {
	if cause == nil {
		return fmt.Errorf("%s: %w", what, asynq.SkipRetry)
	}
	return fmt.Errorf("%s: %w: %w", what, cause, asynq.SkipRetry)
}

// isFailure tells asynq which errors use an attempt: not throttles, not holds, not a lease
// lost to a crashed worker (the ledger settles that case), not a shutdown.
func isFailure(err error) bool {
	var te *ThrottledError
	var he *HeldError
	switch {
	case errors.As(err, &te), errors.As(err, &he):
		return false
	case errors.Is(err, asynq.ErrLeaseExpired), errors.Is(err, context.Canceled):
		return false
	}
	return true
}

// retryDelay is asynq's RetryDelayFunc: throttles and holds wait what they asked for (with a
// little jitter so held tasks do not return in one wave), everything else backs off.
func retryDelay(b backoff.Backoff) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		var te *ThrottledError
		if errors.As(err, &te) {
			return backoff.Jitter(te.RetryAfter, 10)
		}
		var he *HeldError
		if errors.As(err, &he) {
			return backoff.Jitter(he.RetryAfter, 5)
		}
		return b.Delay(n)
	}
}
