package ledger

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// realRedis returns a ledger bundle on a real Redis, or skips the test. It uses the ledger's
// database below the one HERALD_TEST_REDIS names (testredis.OffsetLedger), which other
// ledger tests share, so it deletes only the keys of the runs it names, nothing else.
func realRedis(t *testing.T, runIDs ...string) *testBundle {
	t.Helper()
	opts := testredis.Options(t, testredis.OffsetLedger)
	url := os.Getenv(testredis.Env)
	rdb := redis.NewClient(opts)
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("HERALD_TEST_REDIS=%s (database %d): %v", url, opts.DB, err)
	}
	t.Cleanup(func() {
		for _, id := range runIDs {
			keys, _ := rdb.Keys(ctx, rkeys.Run(id)+"*").Result()
			if len(keys) > 0 {
				rdb.Del(ctx, keys...)
			}
			rdb.ZRem(ctx, rkeys.Runs(), id)
			rdb.ZRem(ctx, rkeys.ActiveRuns(), id)
			rdb.ZRem(ctx, rkeys.CampaignRuns("spring-sale"), id)
		}
		if n, _ := rdb.ZCard(ctx, rkeys.CampaignRuns("spring-sale")).Result(); n == 0 {
			rdb.ZRem(ctx, rkeys.Campaigns(), "spring-sale")
		}
		rdb.Close()
	})
	return &testBundle{rdb: rdb, l: New(rdb, func() time.Time { return testNow })}
}

// TestCompactEntriesRealRedis runs TestCompactEntriesInRedis's story on real Redis, whose Lua
// (not miniredis's) parses the entries: packed message ids holding NUL, '|' and newlines must
// come back whole.
func TestCompactEntriesRealRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ids := make([]string, len(hardULIDs))
	for i := range ids {
		ids[i] = fmt.Sprintf("test-compact-%d-%d", time.Now().UnixNano(), i)
	}
	b := realRedis(t, ids...)
	for i, mid := range hardULIDs {
		entries := seedRun(t, b, ids[i], AtMostOnce, []string{"+5511987654321", "bsuid:US.13491208655302741918"}, true)
		exerciseEntries(t, b, ids[i], entries, mid)
		raw, err := b.rdb.HGet(ctx, rkeys.LedgerBucket(ids[i], entries[0].Bucket), "5511987654321").Result()
		if err != nil || !strings.HasSuffix(raw, packMessageID(mid)) {
			t.Fatalf("id %d: entry %q (err %v), want the 17-byte id at its end", i, raw, err)
		}
	}
}
