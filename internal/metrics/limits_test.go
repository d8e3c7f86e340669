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
	"github.com/heraldmsg/herald/internal/rkeys"
)

func TestLimitsCollector(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	now := time.Now()
	rdb.ZAdd(ctx, rkeys.Tier("biz"), redis.Z{Score: float64(now.Add(-time.Hour).UnixMilli()), Member: "+15550001"},
		redis.Z{Score: float64(now.Add(-time.Minute).UnixMilli()), Member: "+15550002"},
		redis.Z{Score: float64(now.Add(-30 * time.Hour).UnixMilli()), Member: "+15550003"}) // out of the window
	a := limits.SenderControl("biz", "+14155550100", 80, limits.Policy{})
	rdb.HSet(ctx, a.Key(), "f", "0.5", "at", strconv.FormatInt(now.Add(time.Second).UnixMilli(), 10))
	// 2 of a's 80 requests in the last whole second were throttled.
	prev := now.Unix() - 1
	rdb.Set(ctx, limits.UsageKey(rkeys.SenderLimit("biz", a.Sender), prev), 80, 0)
	rdb.Set(ctx, rkeys.SenderThrottled("biz", a.Sender, prev), 2, 0)
	c := NewLimitsCollector(LimitsSource{Limiter: limits.New(rdb), Business: "biz", TierLimit: 250, TierPeriod: 24 * time.Hour,
		Senders: []limits.Control{a, limits.SenderControl("biz", "+14155550101", 80, limits.Policy{})}})
	// The sender label is masked but for the last 4 digits, as in logs and the CLI.
	want := `
# HELP herald_daily_tier_limit The daily messaging tier in unique recipients; 0 when unlimited.
# TYPE herald_daily_tier_limit gauge
herald_daily_tier_limit 250
# HELP herald_daily_tier_used Unique recipients messaged in the daily messaging tier's rolling window (business-wide); absent when the tier is unlimited (herald_daily_tier_limit 0), as nothing counts them then.
# TYPE herald_daily_tier_used gauge
herald_daily_tier_used 2
# HELP herald_sender_rate_factor Share of the configured rate a sender runs at: below 1 while backing off after a throttle.
# TYPE herald_sender_rate_factor gauge
herald_sender_rate_factor{sender="********0100"} 0.5
herald_sender_rate_factor{sender="********0101"} 1
# HELP herald_sender_throttled_share Share of a sender's requests the provider throttled over the adaptive controller's window.
# TYPE herald_sender_throttled_share gauge
herald_sender_throttled_share{sender="********0100"} 0.025
herald_sender_throttled_share{sender="********0101"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

// With the tier off (limits.messaging_tier: off, the default) nothing records the recipients
// messaged: herald_daily_tier_used is left out rather than read 0, and the limit says 0.
func TestLimitsCollectorTierOff(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	c := NewLimitsCollector(LimitsSource{Limiter: limits.New(rdb), Business: "biz"})
	want := `
# HELP herald_daily_tier_limit The daily messaging tier in unique recipients; 0 when unlimited.
# TYPE herald_daily_tier_limit gauge
herald_daily_tier_limit 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "herald_daily_tier_limit", "herald_daily_tier_used"); err != nil {
		t.Fatal(err)
	}
}

// Two configured senders with the same last 4 digits would have the same masked label: the
// scrape would fail on a duplicate label set. Each gets a suffix in the order of its full
// number instead, whatever the order of the config.
func TestLimitsCollectorSameLastDigits(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	now := time.Now()
	b := limits.SenderControl("biz", "+14155550100", 80, limits.Policy{})
	rdb.HSet(context.Background(), b.Key(), "f", "0.5", "at", strconv.FormatInt(now.Add(time.Second).UnixMilli(), 10))
	c := NewLimitsCollector(LimitsSource{Limiter: limits.New(rdb), Business: "biz",
		Senders: []limits.Control{limits.SenderControl("biz", "+14165550100", 80, limits.Policy{}), b,
			limits.SenderControl("biz", "+447700900100", 80, limits.Policy{}), limits.SenderControl("biz", "+14155550199", 80, limits.Policy{})}})
	want := `
# HELP herald_sender_rate_factor Share of the configured rate a sender runs at: below 1 while backing off after a throttle.
# TYPE herald_sender_rate_factor gauge
herald_sender_rate_factor{sender="********0100#1"} 0.5
herald_sender_rate_factor{sender="********0100#2"} 1
herald_sender_rate_factor{sender="*********0100"} 1
herald_sender_rate_factor{sender="********0199"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "herald_sender_rate_factor"); err != nil {
		t.Fatal(err)
	}
}
