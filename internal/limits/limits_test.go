package limits

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/testredis"
)

// The reservation script reads the clock with Redis's TIME, which miniredis answers from
// SetTime once it is called; so these tests hold the clock still or move it by hand, and the
// expected waits are exact.

// t0 is the frozen Redis clock of the tests.
var t0 = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

type testBundle struct {
	mr  *miniredis.Miniredis
	rdb *redis.Client
	lim *Limiter
}

func setup(tb testing.TB) *testBundle {
	tb.Helper()
	mr := miniredis.RunT(tb)
	mr.SetTime(t0)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	tb.Cleanup(func() { rdb.Close() })
	return &testBundle{mr: mr, rdb: rdb, lim: New(rdb)}
}

func reserve(tb testing.TB, lim *Limiter, keys []string, limits []Limit, maxWait time.Duration) Reservation {
	tb.Helper()
	r, err := lim.Reserve(context.Background(), keys, limits, maxWait)
	if err != nil {
		tb.Fatalf("Reserve: %v", err)
	}
	return r
}

// tat reads a limit's stored theoretical arrival time as an offset from t0.
func tat(tb testing.TB, b *testBundle, key string) time.Duration {
	tb.Helper()
	v, err := b.rdb.Get(context.Background(), key).Result()
	if err != nil {
		tb.Fatalf("GET %s: %v", key, err)
	}
	us, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		tb.Fatalf("GET %s = %q: %v", key, v, err)
	}
	return time.Duration(us)*time.Microsecond - time.Duration(t0.UnixMicro())*time.Microsecond
}

func TestPerSecond(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name      string
		rate      float64
		wantBurst int
		wantStr   string
	}{
		{"MetaDefault", 80, 2, "80/s burst 2"},
		{"OnePerSecond", 1, 1, "1/s burst 1"},
		{"HighThroughput", 1000, 20, "1000/s burst 20"},
		{"ConnectlyBusiness", 200, 4, "200/s burst 4"},
		{"Low", 20, 1, "20/s burst 1"},
		{"Fractional", 0.5, 1, "0.5/s burst 1"},
		{"JustOverABurstStep", 51, 2, "51/s burst 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := PerSecond(tc.rate)
			if got.Rate != tc.rate || got.Burst != tc.wantBurst {
				t.Fatalf("PerSecond(%g) = %+v, want rate %g burst %d", tc.rate, got, tc.rate, tc.wantBurst)
			}
			if got.String() != tc.wantStr {
				t.Fatalf("String() = %q, want %q", got.String(), tc.wantStr)
			}
		})
	}
}

func TestReserve(t *testing.T) {
	t.Parallel()

	const (
		keyA = "herald:limit:{biz}:sender:+15550001111"
		keyB = "herald:limit:{biz}:business"
	)

	t.Run("BurstThenOneIntervalPerPermit", func(t *testing.T) {
		t.Parallel()

		for _, tc := range []struct {
			name  string
			limit Limit
		}{
			{"Rate10Burst1", Limit{Rate: 10, Burst: 1}},
			{"Rate80Burst4", PerSecond(80)},
			{"Rate1000Burst50", PerSecond(1000)},
			{"ZeroBurstActsAsOne", Limit{Rate: 5}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				interval := time.Duration(float64(time.Second) / tc.limit.Rate)
				burst := max(1, tc.limit.Burst)
				for k := range burst + 10 {
					got := reserve(t, b.lim, []string{keyA}, []Limit{tc.limit}, time.Hour)
					want := time.Duration(max(0, k-burst+1)) * interval
					if !got.OK || got.Wait != want {
						t.Fatalf("reservation %d = %+v, want OK with wait %v", k, got, want)
					}
				}
			})
		}
	})

	t.Run("IdleRefillsTheBurst", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		lim := Limit{Rate: 10, Burst: 3}
		for range 6 {
			reserve(t, b.lim, []string{keyA}, []Limit{lim}, time.Hour)
		}
		// Six permits at 10/s are paid off 600 ms later; then a full burst is free again.
		b.mr.SetTime(t0.Add(600 * time.Millisecond))
		for k := range 3 {
			if got := reserve(t, b.lim, []string{keyA}, []Limit{lim}, time.Hour); got.Wait != 0 {
				t.Fatalf("reservation %d after idling waits %v, want 0", k, got.Wait)
			}
		}
		if got := reserve(t, b.lim, []string{keyA}, []Limit{lim}, time.Hour); got.Wait != 100*time.Millisecond {
			t.Fatalf("reservation past the burst waits %v, want 100ms", got.Wait)
		}
	})

	t.Run("WaitShrinksAsTimePasses", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		lim := Limit{Rate: 10, Burst: 1}
		reserve(t, b.lim, []string{keyA}, []Limit{lim}, time.Hour)
		b.mr.SetTime(t0.Add(30 * time.Millisecond))
		if got := reserve(t, b.lim, []string{keyA}, []Limit{lim}, time.Hour); got.Wait != 70*time.Millisecond {
			t.Fatalf("wait %v, want 70ms", got.Wait)
		}
	})

	t.Run("TwoKeysWaitForTheSlower", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// A: 10/s with a burst of 2; B: 5/s with no burst. B sets the pace.
		lims := []Limit{{Rate: 10, Burst: 2}, {Rate: 5, Burst: 1}}
		for k, want := range []time.Duration{0, 200 * time.Millisecond, 400 * time.Millisecond} {
			got := reserve(t, b.lim, []string{keyA, keyB}, lims, time.Hour)
			if !got.OK || got.Wait != want {
				t.Fatalf("reservation %d = %+v, want OK with wait %v", k, got, want)
			}
		}
		// Each key's arrival time moved past the shared permit time by its own interval.
		if got := tat(t, b, keyA); got != 500*time.Millisecond {
			t.Fatalf("tat A = %v, want 500ms", got)
		}
		if got := tat(t, b, keyB); got != 600*time.Millisecond {
			t.Fatalf("tat B = %v, want 600ms", got)
		}
		// Reserved on its own, A's next permit is due its burst tolerance (one interval)
		// before its arrival time.
		if got := reserve(t, b.lim, []string{keyA}, []Limit{lims[0]}, time.Hour); got.Wait != 400*time.Millisecond {
			t.Fatalf("A alone waits %v, want 400ms", got.Wait)
		}
	})

	t.Run("TwoKeysSpendFromBoth", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		lims := []Limit{{Rate: 10, Burst: 1}, {Rate: 100, Burst: 1}}
		reserve(t, b.lim, []string{keyA, keyB}, lims, time.Hour)
		// The business limit was charged too: a send for another sender waits on it.
		other := "herald:limit:{biz}:sender:+15550002222"
		got := reserve(t, b.lim, []string{other, keyB}, []Limit{{Rate: 10, Burst: 1}, lims[1]}, time.Hour)
		if got.Wait != 10*time.Millisecond {
			t.Fatalf("other sender waits %v, want 10ms for the business limit", got.Wait)
		}
	})

	t.Run("MaxWaitExceededReservesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		lims := []Limit{{Rate: 10, Burst: 1}, {Rate: 100, Burst: 1}}
		reserve(t, b.lim, []string{keyA, keyB}, lims, time.Hour)
		beforeA, beforeB := tat(t, b, keyA), tat(t, b, keyB)

		for range 3 {
			got := reserve(t, b.lim, []string{keyA, keyB}, lims, 50*time.Millisecond)
			if got.OK || got.Wait != 100*time.Millisecond {
				t.Fatalf("reservation = %+v, want not OK with wait 100ms", got)
			}
		}
		if a, b := tat(t, b, keyA), tat(t, b, keyB); a != beforeA || b != beforeB {
			t.Fatalf("refused reservations moved the limits: A %v -> %v, B %v -> %v", beforeA, a, beforeB, b)
		}
		// A wait of exactly maxWait is allowed.
		if got := reserve(t, b.lim, []string{keyA, keyB}, lims, 100*time.Millisecond); !got.OK || got.Wait != 100*time.Millisecond {
			t.Fatalf("reservation = %+v, want OK with wait 100ms", got)
		}
	})

	t.Run("UnlimitedLimitsAreSkipped", func(t *testing.T) {
		t.Parallel()

		for _, tc := range []struct {
			name string
			rate float64
		}{
			{"Zero", 0},
			{"Negative", -1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				for range 20 {
					got := reserve(t, b.lim, []string{keyB}, []Limit{{Rate: tc.rate, Burst: 1}}, 0)
					if !got.OK || got.Wait != 0 {
						t.Fatalf("reservation = %+v, want OK with no wait", got)
					}
				}
				if n := b.rdb.Exists(context.Background(), keyB).Val(); n != 0 {
					t.Fatal("an unlimited limit stored state")
				}

				// Next to a real limit, only the real one is charged.
				lims := []Limit{{Rate: 10, Burst: 1}, {Rate: tc.rate}}
				reserve(t, b.lim, []string{keyA, keyB}, lims, time.Hour)
				if got := reserve(t, b.lim, []string{keyA, keyB}, lims, time.Hour); got.Wait != 100*time.Millisecond {
					t.Fatalf("wait %v, want 100ms from the limited key", got.Wait)
				}
				if n := b.rdb.Exists(context.Background(), keyB).Val(); n != 0 {
					t.Fatal("an unlimited limit stored state")
				}
			})
		}
	})

	t.Run("StateExpiresAfterItIsPaidOff", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		reserve(t, b.lim, []string{keyA}, []Limit{{Rate: 10, Burst: 1}}, time.Hour)
		// The tat is 100 ms ahead; the key lives a second beyond it.
		if ttl := b.mr.TTL(keyA); ttl != 1100*time.Millisecond {
			t.Fatalf("TTL %v, want 1.1s", ttl)
		}
		b.mr.FastForward(1100 * time.Millisecond)
		if b.mr.Exists(keyA) {
			t.Fatal("limit state outlived its TTL")
		}
	})

	t.Run("MismatchedKeysPanic", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		defer func() {
			if recover() == nil {
				t.Fatal("Reserve with two keys and one limit did not panic")
			}
		}()
		_, _ = b.lim.Reserve(context.Background(), []string{keyA, keyB}, []Limit{{Rate: 1}}, time.Second)
	})

	t.Run("RedisErrorIsWrapped", func(t *testing.T) {
		t.Parallel()
		// A Redis that refuses the dial: not a closed miniredis, whose freed port another test
		// process's server may take before the dial.
		rdb := redis.NewClient(&redis.Options{Dialer: testredis.Refuse, MaxRetries: -1, DialerRetries: 1})
		t.Cleanup(func() { rdb.Close() })
		_, err := New(rdb).Reserve(context.Background(), []string{keyA}, []Limit{{Rate: 1}}, time.Second)
		var opErr *net.OpError
		if !errors.As(err, &opErr) {
			t.Fatalf("Reserve on a closed Redis = %v, want one wrapping *net.OpError", err)
		}
	})
}
