package conversation_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// TestIntegrationColumnsMemory stores two typical columns (a first name and a coupon code)
// for the recipients of a run on a real Redis, as the worker does before each send, and
// reports what they cost there (MEMORY USAGE of every bucket, key and expiry included,
// divided by the recipients; docs/campaigns.md quotes it). Buckets of 64 recipients must stay
// listpacks, and each must read back.
func TestIntegrationColumnsMemory(t *testing.T) {
	if os.Getenv(testredis.Env) == "" {
		t.Skipf("integration test: set %s to run it against a real Redis", testredis.Env)
	}
	rdb := redis.NewClient(testredis.Options(t, testredis.OffsetShared))
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	run := fmt.Sprintf("colmem-%d", time.Now().UnixNano())
	const n = 6400
	buckets := ledger.BucketsFor(n)
	t.Cleanup(func() {
		for b := range buckets {
			rdb.Del(context.Background(), rkeys.ReplyColumns(run, b))
		}
	})
	cols := conversation.NewColumns(rdb)
	expire := time.Now().Add(7 * 24 * time.Hour)
	for i := range n {
		to := fmt.Sprintf("+1415%07d", 5550000+i)
		vals := map[string]string{"first_name": []string{"ana", "bruno", "chen", "dara", "emeka"}[i%5], "coupon": fmt.Sprintf("SPRING%04d", i)}
		if err := cols.Save(ctx, ledger.Address{Run: run, Bucket: ledger.BucketOf(to, buckets), Recipient: to}, vals, expire); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	for b := range buckets {
		key := rkeys.ReplyColumns(run, b)
		used, err := rdb.MemoryUsage(ctx, key, 0).Result()
		if err != nil {
			t.Fatal(err)
		}
		total += used
		if enc, err := rdb.ObjectEncoding(ctx, key).Result(); err != nil || enc != "listpack" {
			t.Fatalf("bucket %d encoded %q (%v), want listpack", b, enc, err)
		}
		if ttl, err := rdb.TTL(ctx, key).Result(); err != nil || ttl <= 0 {
			t.Fatalf("bucket %d ttl %v (%v)", b, ttl, err)
		}
	}
	to := "+14155550042"
	got, err := cols.Load(ctx, ledger.Address{Run: run, Bucket: ledger.BucketOf(to, buckets), Recipient: to})
	if err != nil || got["first_name"] != "chen" || got["coupon"] != "SPRING0042" {
		t.Fatalf("load %v %v", got, err)
	}
	t.Logf("%d recipients, %d buckets: %d bytes, %.1f bytes a recipient (first_name and coupon)", n, buckets, total, float64(total)/n)
}
