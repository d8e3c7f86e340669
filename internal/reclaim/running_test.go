package reclaim

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// Running finds a task a server may still run by asynq's lists alone, its hash gone: leased
// until later or within LeaseGrace of its end, or listed by a beating server; not one whose
// lease ran out long ago and that no beating server lists, nor one never leased.
func TestRunningReadsLeasesAndServers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	now := time.Unix(1_800_000_000, 0)
	q := "herald:marketing"
	leases := map[string]time.Time{
		"held":    now.Add(20 * time.Second),
		"grace":   now.Add(-5 * time.Second),
		"expired": now.Add(-time.Minute),
		"listed":  now.Add(-time.Hour),
		"quiet":   now.Add(-time.Hour),
	}
	for id, at := range leases {
		if err := rdb.ZAdd(ctx, rkeys.AsynqLease(q), redis.Z{Score: float64(at.Unix()), Member: id}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// A beating server lists "listed"; one that stopped beating lists "quiet".
	for server, id := range map[string]string{"h:1:a": "listed", "h:2:b": "quiet"} {
		wkey := rkeys.AsynqPrefix + "workers:{" + server + "}"
		if err := rdb.ZAdd(ctx, rkeys.AsynqWorkers(), redis.Z{Score: float64(now.Add(5 * time.Second).Unix()), Member: wkey}).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.HSet(ctx, wkey, id, "x").Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Set(ctx, rkeys.AsynqPrefix+"servers:{h:1:a}", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := Running(ctx, rdb, []string{"herald:utility", q}, []string{"held", "grace", "expired", "listed", "quiet", "never"}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"held": true, "grace": true, "expired": false, "listed": true, "quiet": false, "never": false}
	for id, w := range want {
		if v, ok := got[id]; !ok || v != w {
			t.Errorf("Running[%s] = %v (in the map: %v), want %v", id, v, ok, w)
		}
	}
}
