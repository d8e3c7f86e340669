package limits

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/redisx"
)

// realRedis returns a client on the Redis named by HERALD_TEST_REDIS and a key prefix no other
// test uses, or skips the test. The keys under the prefix are deleted afterwards; nothing
// else in the database is touched.
func realRedis(t *testing.T) (redis.UniversalClient, string) {
	t.Helper()
	url := os.Getenv("HERALD_TEST_REDIS")
	if url == "" {
		t.Skip("needs a real Redis: set HERALD_TEST_REDIS=redis://127.0.0.1:6379/15 to run it")
	}
	rdb, err := redisx.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	if err := redisx.Ping(context.Background(), rdb, 2*time.Second); err != nil {
		t.Fatalf("HERALD_TEST_REDIS=%s: %v", url, err)
	}
	prefix := fmt.Sprintf("herald:test:limits:{%s-%d}:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	return rdb, prefix
}

// TestReserveRealRedis runs the reservation script on real Redis, whose Lua and TIME differ
// from miniredis's. The clock runs, so it checks bounds instead of exact waits: in a tight
// loop the k-th permit (0-based) of a limit with burst B waits (k-B+1)/rate less the time
// elapsed since the first call, and never more.
func TestReserveRealRedis(t *testing.T) {
	t.Parallel()

	rdb, prefix := realRedis(t)
	lim := New(rdb)
	ctx := context.Background()

	t.Run("TightLoopWaits", func(t *testing.T) {
		sender, business := prefix+"sender", prefix+"business"
		// The sender limit is the slower one, so it sets every wait.
		lims := []Limit{PerSecond(80), PerSecond(1000)}
		interval := time.Duration(float64(time.Second) / lims[0].Rate)
		burst := lims[0].Burst

		start := time.Now()
		for k := range 40 {
			r, err := lim.Reserve(ctx, []string{sender, business}, lims, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			elapsed := time.Since(start)
			ideal := time.Duration(max(0, k-burst+1)) * interval
			if !r.OK || r.Wait > ideal+time.Microsecond || r.Wait < ideal-elapsed-time.Millisecond {
				t.Fatalf("reservation %d = %+v, want OK with wait in [%v, %v]", k, r, ideal-elapsed, ideal)
			}
		}
	})

	t.Run("MaxWaitExceededReservesNothing", func(t *testing.T) {
		key := prefix + "slow"
		lims := []Limit{{Rate: 1, Burst: 1}}
		if r, err := lim.Reserve(ctx, []string{key}, lims, time.Hour); err != nil || !r.OK || r.Wait != 0 {
			t.Fatalf("first reservation = %+v, %v; want OK with no wait", r, err)
		}
		before, err := rdb.Get(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		r, err := lim.Reserve(ctx, []string{key}, lims, 10*time.Millisecond)
		if err != nil || r.OK || r.Wait < 900*time.Millisecond || r.Wait > time.Second {
			t.Fatalf("second reservation = %+v, %v; want refused with a wait just under 1s", r, err)
		}
		if after := rdb.Get(ctx, key).Val(); after != before {
			t.Fatalf("a refused reservation moved the limit: %s -> %s", before, after)
		}
	})
}
