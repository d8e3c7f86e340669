package limits

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// throttledCmd halves an adaptive limit's factor after the provider throttled, unless it was
// halved less than a cooldown ago (one burst of throttled answers is one signal).
//
// KEYS[1] adaptive key. ARGV[1] now ms, ARGV[2] every ms, ARGV[3] step, ARGV[4] min factor,
// ARGV[5] cooldown ms. Returns {1 if halved else 0, the factor now}.
var throttledCmd = redis.NewScript(`
local now = tonumber(ARGV[1])
local every, step = tonumber(ARGV[2]), tonumber(ARGV[3])
local f = redis.call('HMGET', KEYS[1], 'f', 'at')
local cur = 1
if f[1] then
  local elapsed = math.max(0, now - tonumber(f[2]))
  cur = tonumber(f[1]) + math.floor(elapsed / every) * step
  if cur > 1 then cur = 1 end
  if elapsed < tonumber(ARGV[5]) then return {0, string.format('%.4f', cur)} end
end
local nf = cur / 2
if nf < tonumber(ARGV[4]) then nf = tonumber(ARGV[4]) end
redis.call('HSET', KEYS[1], 'f', string.format('%.4f', nf), 'at', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((1 - nf) / step + 1) * every)
return {1, string.format('%.4f', nf)}
`)

// Throttled records that the provider throttled the limit behind key: its factor halves (down
// to the policy's minimum), at most once per cooldown. It returns the factor now and whether
// this call halved it.
func (l *Limiter) Throttled(ctx context.Context, key string, p Policy, now time.Time) (float64, bool, error) {
	p = p.withDefaults()
	res, err := throttledCmd.Run(ctx, l.rdb, []string{key}, now.UnixMilli(), p.Every.Milliseconds(), p.Step, p.Min,
		p.Cooldown.Milliseconds()).Slice()
	if err != nil {
		return 1, false, fmt.Errorf("limits: throttled: %w", err)
	}
	if len(res) != 2 {
		return 1, false, fmt.Errorf("limits: throttled: unexpected reply %v", res)
	}
	halved, _ := res[0].(int64)
	s, _ := res[1].(string)
	f, _ := strconv.ParseFloat(s, 64)
	return f, halved == 1, nil
}

// Backoff is an adaptive limit's state.
type Backoff struct {
	// Factor scales the configured rate (1: no backoff).
	Factor float64
	// Since is when the provider last throttled (zero when Factor is 1).
	Since time.Time
	// Full is when the factor is back at 1.
	Full time.Time
}

// BackoffOf reads the adaptive state stored at key.
func (l *Limiter) BackoffOf(ctx context.Context, key string, p Policy, now time.Time) (Backoff, error) {
	p = p.withDefaults()
	v, err := l.rdb.HMGet(ctx, key, "f", "at").Result()
	if err != nil {
		return Backoff{Factor: 1}, fmt.Errorf("limits: backoff: %w", err)
	}
	fs, _ := v[0].(string)
	ats, _ := v[1].(string)
	f, ferr := strconv.ParseFloat(fs, 64)
	at, aerr := strconv.ParseInt(ats, 10, 64)
	if ferr != nil || aerr != nil {
		return Backoff{Factor: 1}, nil
	}
	since := time.UnixMilli(at)
	steps := math.Floor(float64(max(0, now.Sub(since))) / float64(p.Every))
	cur := math.Min(1, f+steps*p.Step)
	if cur >= 1 {
		return Backoff{Factor: 1}, nil
	}
	need := math.Ceil((1 - f) / p.Step)
	return Backoff{Factor: cur, Since: since, Full: since.Add(time.Duration(need) * p.Every)}, nil
}

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
