package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
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

// Backoff is exponential backoff with full jitter: a random delay in [0, min(Cap, Base·2^n)).
type Backoff struct {
	Base time.Duration
	Cap  time.Duration
}

// Delay returns the delay before retry n (0-based).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Cap
	if n < 32 {
		if e := b.Base << n; e > 0 && e < b.Cap {
			d = e
		}
	}
	if d <= 0 {
		return 0
	}
	return rand.N(d) + time.Millisecond
}

// retryDelay is asynq's RetryDelayFunc: throttles and holds wait what they asked for (with a
// little jitter so held tasks do not return in one wave), everything else backs off.
func (b Backoff) retryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var te *ThrottledError
	if errors.As(err, &te) {
		return te.RetryAfter + rand.N(te.RetryAfter/10+time.Millisecond)
	}
	var he *HeldError
	if errors.As(err, &he) {
		return he.RetryAfter + rand.N(he.RetryAfter/5+time.Millisecond)
	}
	return b.Delay(n)
}
