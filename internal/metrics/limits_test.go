package metrics

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/limits"
)

func TestLimitsCollector(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	now := time.Now()
	rdb.ZAdd(ctx, "tier", redis.Z{Score: float64(now.Add(-time.Hour).UnixMilli()), Member: "+15550001"},
		redis.Z{Score: float64(now.Add(-time.Minute).UnixMilli()), Member: "+15550002"},
		redis.Z{Score: float64(now.Add(-30 * time.Hour).UnixMilli()), Member: "+15550003"}) // out of the window
	rdb.HSet(ctx, "backoff:a", "f", "0.5", "at", strconv.FormatInt(now.UnixMilli(), 10))
	c := NewLimitsCollector(LimitsSource{Limiter: limits.New(rdb), TierKey: "tier", TierLimit: 250, TierWindow: 24 * time.Hour,
		Senders: map[string]string{"+14155550100": "backoff:a", "+14155550101": "backoff:b"}})
	want := `
# HELP herald_daily_tier_limit The daily messaging tier in unique recipients; 0 when unlimited.
# TYPE herald_daily_tier_limit gauge
herald_daily_tier_limit 250
# HELP herald_daily_tier_used Unique recipients messaged in the daily messaging tier's rolling window (business-wide).
# TYPE herald_daily_tier_used gauge
herald_daily_tier_used 2
# HELP herald_sender_rate_factor Share of the configured rate a sender runs at: below 1 while backing off after a throttle.
# TYPE herald_sender_rate_factor gauge
herald_sender_rate_factor{sender="+14155550100"} 0.5
herald_sender_rate_factor{sender="+14155550101"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
