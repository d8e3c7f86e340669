package limits

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/testredis"
)

// BenchmarkSendReserve reserves sends as the worker does (Sends.Reserve: sender, business, run
// and pair limits, the adaptive factor, two use counts), each to a new recipient, with limits
// far above the rate reached so none waits, on the real Redis HERALD_TEST_REDIS names (its
// keys are under a business of its own and deleted after). It reports Redis's own time per
// script call (INFO commandstats, evalsha) beside the round trip: the round trip is mostly
// the network and the client, the script's time is what a change to it costs.
func BenchmarkSendReserve(b *testing.B) {
	rdb := redis.NewClient(testredis.Options(b, testredis.OffsetShared))
	b.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	biz := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	b.Cleanup(func() {
		if err := deleteKeys(ctx, rdb, "*{"+biz+"}*"); err != nil {
			b.Error(err)
		}
	})
	s := NewSends(New(rdb), Config{BusinessID: biz, BusinessRate: 1e7, DefaultSenderRate: 1e7})
	if err := s.Limiter().Load(ctx); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	before := evalshaUsec(ctx, b, rdb)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			bk, err := s.Reserve(ctx, Intention{Run: "run", Recipient: "+1555" + strconv.FormatInt(1e7+i, 10)}, time.Now())
			if err != nil || !bk.OK {
				b.Errorf("reserve: %+v (%v)", bk.Reservation, err)
				return
			}
		}
	})
	b.StopTimer()
	after := evalshaUsec(ctx, b, rdb)
	if n := seq.Load(); n > 0 {
		b.ReportMetric(float64(after.usec-before.usec)/float64(after.calls-before.calls), "redis-µs/call")
	}
}

// commandStat is Redis's count of evalsha calls and the microseconds they took.
type commandStat struct{ calls, usec int64 }

// evalshaUsec reads evalsha's line of INFO commandstats.
func evalshaUsec(ctx context.Context, b *testing.B, rdb *redis.Client) commandStat {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var st commandStat
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				st.calls = n
			case "usec":
				st.usec = n
			}
		}
	}
	return st
}

// deleteKeys deletes the keys matching pattern.
func deleteKeys(ctx context.Context, rdb *redis.Client, pattern string) error {
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			rdb.Del(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		rdb.Del(ctx, keys...)
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("delete keys %s: %w", pattern, err)
	}
	return nil
}
