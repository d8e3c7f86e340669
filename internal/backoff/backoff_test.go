package backoff

import (
	"math"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name string
		b    Backoff
	}{
		{"Defaults", Backoff{Base: time.Second, Cap: 5 * time.Minute}},
		{"Small", Backoff{Base: 10 * time.Millisecond, Cap: 50 * time.Millisecond}},
		{"CapBelowBase", Backoff{Base: time.Second, Cap: 100 * time.Millisecond}},
		{"LongBaseManyRetries", Backoff{Base: 10 * time.Second, Cap: time.Hour}},
		{"Huge", Backoff{Base: time.Hour, Cap: 1 << 62}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for n := range 70 {
				// The ceiling before jitter, min(Cap, Base·2^n), in floating point so that
				// it cannot overflow.
				ceiling := tc.b.Cap
				if e := float64(tc.b.Base) * math.Pow(2, float64(n)); e < float64(tc.b.Cap) {
					ceiling = time.Duration(e)
				}
				var lo, hi time.Duration = 1 << 62, 0
				for range 300 {
					d := tc.b.Delay(n)
					if d < 0 || d > ceiling+time.Millisecond {
						t.Fatalf("Delay(%d) = %v, outside [0, %v]", n, d, ceiling+time.Millisecond)
					}
					lo, hi = min(lo, d), max(hi, d)
				}
				// Full jitter: the samples spread over the range instead of sitting at one end.
				if hi-lo < ceiling/4 {
					t.Fatalf("Delay(%d) samples span only [%v, %v] of [0, %v]", n, lo, hi, ceiling)
				}
			}
		})
	}

	t.Run("ZeroBackoffIsImmediate", func(t *testing.T) {
		t.Parallel()
		for n := range 5 {
			if d := (Backoff{}).Delay(n); d != 0 {
				t.Fatalf("Delay(%d) = %v, want 0", n, d)
			}
		}
	})

	t.Run("GrowsWithRetries", func(t *testing.T) {
		t.Parallel()
		b := Backoff{Base: 10 * time.Millisecond, Cap: time.Hour}
		mean := func(n int) time.Duration {
			var sum time.Duration
			for range 2000 {
				sum += b.Delay(n)
			}
			return sum / 2000
		}
		// Means are about Base·2^n / 2; allow a wide margin for the randomness.
		for n := 1; n < 8; n++ {
			if lo, hi := mean(n-1), mean(n); hi < lo*3/2 {
				t.Fatalf("mean delay after retry %d is %v, after %d only %v", n-1, lo, n, hi)
			}
		}
	})
}
