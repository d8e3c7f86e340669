// Package backoff is Herald's one retry delay: exponential backoff with full jitter. The
// worker uses it between send attempts that failed for a passing reason, the expander between
// attempts of an expansion task.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Defaults of a worker's backoff between send attempts (retry.base and retry.cap).
const (
	DefaultBase = time.Second
	DefaultCap  = 5 * time.Minute
)

// Backoff is exponential backoff with full jitter: a random delay in [0, min(Cap, Base·2^n)),
// plus a millisecond so that a delay is never zero.
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

// Jitter returns d plus a random part of up to d/div (and at most a millisecond more), so that
// many waits of the same length do not end in one wave.
func Jitter(d time.Duration, div int) time.Duration {
	return d + rand.N(d/time.Duration(div)+time.Millisecond)
}
