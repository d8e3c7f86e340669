package limits

import (
	"context"
	"testing"
	"time"
)

func TestPairBackoff(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 4 * time.Second, 3: 16 * time.Second,
		4: 64 * time.Second, 5: 256 * time.Second, 6: 256 * time.Second, 1000: 256 * time.Second} {
		if got := PairBackoff(n); got != want {
			t.Errorf("PairBackoff(%d) = %v, want %v", n, got, want)
		}
	}
}

// Refusals in a row grow the wait for that pair only; a pair left alone long enough starts
// again at a second.
func TestPairThrottled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := NewSends(b.lim, Config{BusinessID: "B1"})
	ctx := context.Background()
	next := func(sender, to string) time.Duration {
		t.Helper()
		d, err := s.PairThrottled(ctx, sender, to)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, want := range []time.Duration{time.Second, 4 * time.Second, 16 * time.Second} {
		if got := next("", "+15550001"); got != want {
			t.Fatalf("wait %v, want %v", got, want)
		}
	}
	if got := next("", "+15550002"); got != time.Second {
		t.Fatalf("another person: wait %v, want 1s", got)
	}
	if got := next("+15550009", "+15550001"); got != time.Second {
		t.Fatalf("another sender: wait %v, want 1s", got)
	}
	b.mr.FastForward(pairBackoffMemory + time.Second)
	if got := next("", "+15550001"); got != time.Second {
		t.Fatalf("after a quiet spell: wait %v, want 1s", got)
	}
}
