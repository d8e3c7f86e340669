package testredis

import (
	"testing"
	"time"
)

// WaitUntil polls cond every 5 ms until it holds, failing the test, which names what it
// waited for, after within: a test waits for a condition, never for a fixed time.
func WaitUntil(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
