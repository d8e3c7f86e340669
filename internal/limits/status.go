package limits

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Usage returns a limit's sends per second over the `seconds` whole seconds before now, from
// the counts reservations keep (Request.Usage).
func (l *Limiter) Usage(ctx context.Context, limitKey string, seconds int, now time.Time) (float64, error) {
	if seconds < 1 || seconds > 10 {
		return 0, errors.New("limits: usage: seconds must be 1 to 10")
	}
	keys := make([]string, seconds)
	for i := range keys {
		keys[i] = UsageKey(limitKey, now.Unix()-1-int64(i))
	}
	vals, err := l.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return 0, fmt.Errorf("limits: usage: %w", err)
	}
	var sum int64
	for _, v := range vals {
		if s, ok := v.(string); ok {
			n, _ := strconv.ParseInt(s, 10, 64)
			sum += n
		}
	}
	return float64(sum) / float64(seconds), nil
}

// TierUse is the state of the daily tier.
type TierUse struct {
	// Used is the number of unique recipients in the window; Limit is the tier.
	Used, Limit int
	// NextFree is when the oldest recipient leaves the window (zero when the window is empty).
	NextFree time.Time
}

// Remaining is the room left in the tier (never negative).
func (u TierUse) Remaining() int { return max(0, u.Limit-u.Used) }

// TierOf reads the daily tier's use at now.
func (l *Limiter) TierOf(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (TierUse, error) {
	from := strconv.FormatInt(now.Add(-window).UnixMilli(), 10)
	u := TierUse{Limit: limit}
	n, err := l.rdb.ZCount(ctx, key, "("+from, "+inf").Result()
	if err != nil {
		return u, fmt.Errorf("limits: tier: %w", err)
	}
	u.Used = int(n)
	oldest, err := l.rdb.ZRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Min: "(" + from, Max: "+inf", Count: 1}).Result()
	if err != nil {
		return u, fmt.Errorf("limits: tier: %w", err)
	}
	if len(oldest) == 1 {
		u.NextFree = time.UnixMilli(int64(oldest[0].Score)).Add(window)
	}
	return u, nil
}

// capMarks counts the marks of a cap record (tag:ms,...) inside the window ending at now.
func capMarks(v string, window time.Duration, now time.Time) int {
	from := now.Add(-window).UnixMilli()
	n := 0
	for mark := range strings.SplitSeq(v, ",") {
		_, ts, ok := strings.Cut(mark, ":")
		if !ok {
			continue
		}
		if ms, err := strconv.ParseInt(ts, 10, 64); err == nil && ms > from {
			n++
		}
	}
	return n
}

// PeekCaps reports, for each cap, whether a send by a new run would be capped at now. It
// reserves nothing (for plans).
func (l *Limiter) PeekCaps(ctx context.Context, caps []Cap, now time.Time) ([]bool, error) {
	cmds := make([]*redis.StringCmd, len(caps))
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range caps {
			cmds[i] = p.HGet(ctx, c.Key, c.Field)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("limits: peek caps: %w", err)
	}
	out := make([]bool, len(caps))
	for i, c := range caps {
		v, err := cmds[i].Result()
		if err != nil {
			continue
		}
		out[i] = capMarks(v, c.Window, now) >= c.Max
	}
	return out, nil
}

// InTier reports, for each member, whether they were messaged within the tier's window (a
// send to them takes no new room).
func (l *Limiter) InTier(ctx context.Context, key string, members []string, window time.Duration, now time.Time) ([]bool, error) {
	cmds := make([]*redis.FloatCmd, len(members))
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range members {
			cmds[i] = p.ZScore(ctx, key, m)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("limits: tier members: %w", err)
	}
	from := float64(now.Add(-window).UnixMilli())
	out := make([]bool, len(members))
	for i := range members {
		if s, err := cmds[i].Result(); err == nil && s > from {
			out[i] = true
		}
	}
	return out, nil
}
