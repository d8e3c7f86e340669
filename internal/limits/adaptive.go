package limits

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// The adaptive controller's decisions, as Backoff reports them.
const (
	// DecisionDecrease: the throttled share went over the threshold and the factor was
	// lowered; it holds for a window.
	DecisionDecrease = "decrease"
	// DecisionIncrease: the hold is over and the factor climbs back step by step.
	DecisionIncrease = "increase"
	// DecisionHold: the sender runs at its configured rate.
	DecisionHold = "hold"
)

// Control is one sender's adaptive controller. Its keys (all under the business's hash tag)
// are the state (rkeys.SenderBackoff: factor, when recovery starts, the last decrease and the
// share it answered), the per-second counts of throttled sends (rkeys.SenderThrottled) and the
// per-second reservation counts of the sender's rate limit (UsageKey of rkeys.SenderLimit,
// kept by every reservation that lists the sender's limit in Request.Usage). The throttled
// share is the first over the second: the send path pays nothing more than the count of each
// throttle.
type Control struct {
	Business, Sender string
	// Rate is the sender's configured rate in sends per second. A decrease scales the rate
	// the sender really used by the share that got through; 0 scales the factor instead.
	Rate float64
	Policy
}

// SenderControl returns the controller of a business's sender.
func SenderControl(business, sender string, rate float64, p Policy) Control {
	return Control{Business: business, Sender: sender, Rate: rate, Policy: p}
}

// Key is where the controller keeps its state (the key of Adaptive in a reservation).
func (c Control) Key() string { return rkeys.SenderBackoff(c.Business, c.Sender) }

// windowKeys returns the throttle and reservation counts of the n whole seconds before sec,
// newest first.
func (c Control) windowKeys(sec int64, n int) (throttled, reserved []string) {
	limit := rkeys.SenderLimit(c.Business, c.Sender)
	for i := 1; i <= n; i++ {
		throttled = append(throttled, rkeys.SenderThrottled(c.Business, c.Sender, sec-int64(i)))
		reserved = append(reserved, UsageKey(limit, sec-int64(i)))
	}
	return throttled, reserved
}

// throttledCmd counts one throttled send and lets the controller decide: within the hold after
// a decrease it does nothing more; otherwise, when the throttled share of the window's whole
// seconds after the last decrease's is over the threshold, the factor drops to the rate that
// got through in the latest of those seconds with any traffic (the rate the sender used then,
// at most its factor, times the share not throttled), not below the floor, and holds. The
// window decides whether (its average is steady against random throttles), the latest second
// how far (the average lags when throttling has just begun).
//
// KEYS[1] state, KEYS[2] this second's throttle count, then the n seconds before it: their
// throttle counts (KEYS[3..n+2]), then their reservation counts, newest first.
// ARGV[1] now ms, ARGV[2] now s, ARGV[3] n, ARGV[4] hold ms, ARGV[5] threshold, ARGV[6] min
// factor, ARGV[7] every ms, ARGV[8] step, ARGV[9] configured rate (0: unknown), ARGV[10] TTL
// of a throttle count ms.
// Returns {1 if lowered else 0, the factor now, the share decided on (” while holding)}.
var throttledCmd = redis.NewScript(`
local now, sec, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local every, step = tonumber(ARGV[7]), tonumber(ARGV[8])
if redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[10])) end
local st = redis.call('HMGET', KEYS[1], 'f', 'at', 'dec')
local cur, after = 1, -1
if st[1] then
  local at = tonumber(st[2])
  if now < at then return {0, string.format('%.4f', tonumber(st[1])), ''} end
  cur = tonumber(st[1]) + math.floor((now - at) / every) * step
  if cur > 1 then cur = 1 end
  -- Sends reserved before the decrease still land in the second after it.
  after = math.floor(tonumber(st[3] or st[2]) / 1000)
end
local thr, res = 0, 0
local rthr, rres, ractive = 0, 0, 0 -- the latest second with traffic
for i = 1, n do
  if sec - i > after then
    local t = tonumber(redis.call('GET', KEYS[2 + i]) or '0') or 0
    local r = tonumber(redis.call('GET', KEYS[2 + n + i]) or '0') or 0
    thr = thr + t
    res = res + r
    if ractive < 1 and (t > 0 or r > 0) then
      rthr, rres, ractive = rthr + t, rres + r, ractive + 1
    end
  end
end
local share = 0
if thr > 0 then share = thr / math.max(thr, res) end
if share <= tonumber(ARGV[5]) then
  return {0, string.format('%.4f', cur), string.format('%.4f', share)}
end
-- The window says whether to decrease; the latest second with traffic says how far.
local rshare = 0
if rthr > 0 then rshare = rthr / math.max(rthr, rres) end
local used = cur
local rate = tonumber(ARGV[9])
if rate > 0 and ractive > 0 then used = math.min(cur, rres / (ractive * rate)) end
local nf = used * (1 - rshare)
if nf < tonumber(ARGV[6]) then nf = tonumber(ARGV[6]) end
local hold = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'f', string.format('%.4f', nf), 'at', string.format('%.0f', now + hold),
  'dec', string.format('%.0f', now), 's', string.format('%.4f', share))
redis.call('PEXPIRE', KEYS[1], hold + math.ceil((1 - nf) / step + 1) * every)
return {1, string.format('%.4f', nf), string.format('%.4f', share)}
`)

// Throttle is what one throttled send did to its sender's controller.
type Throttle struct {
	// Factor is the sender's factor now; Decreased says this throttle lowered it.
	Factor    float64
	Decreased bool
	// Share is the throttled share the controller decided on, -1 during the hold after a
	// decrease (no decision is made then).
	Share float64
}

// Throttled records that the provider throttled a send of c's sender at now, and lets the
// controller decide (see Policy): one script, one round trip, only on throttled sends.
func (l *Limiter) Throttled(ctx context.Context, c Control, now time.Time) (Throttle, error) {
	p := c.Policy.withDefaults()
	n := p.seconds()
	sec := now.Unix()
	throttled, reserved := c.windowKeys(sec, n)
	keys := append(append([]string{c.Key(), rkeys.SenderThrottled(c.Business, c.Sender, sec)}, throttled...), reserved...)
	res, err := throttledCmd.Run(ctx, l.rdb, keys, now.UnixMilli(), sec, n, p.hold().Milliseconds(), p.Threshold, p.Min,
		p.Every.Milliseconds(), p.Step, max(0, c.Rate), (p.Window + 5*time.Second).Milliseconds()).Slice()
	if err != nil {
		return Throttle{Factor: 1, Share: -1}, fmt.Errorf("limits: throttled: %w", err)
	}
	if len(res) != 3 {
		return Throttle{Factor: 1, Share: -1}, fmt.Errorf("limits: throttled: unexpected reply %v", res)
	}
	lowered, _ := res[0].(int64)
	t := Throttle{Factor: parseFloat(res[1], 1), Decreased: lowered == 1, Share: -1}
	if s, _ := res[2].(string); s != "" {
		t.Share = parseFloat(s, -1)
	}
	return t, nil
}

func parseFloat(v any, def float64) float64 {
	s, _ := v.(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return def
	}
	return f
}

// Backoff is the state of a sender's controller.
type Backoff struct {
	// Factor scales the configured rate (1: at the configured rate).
	Factor float64
	// Share is the share of the sender's reservations the provider throttled over the
	// window's whole seconds before now (0 when nothing was reserved); Throttled and Reserved
	// are its counts.
	Share               float64
	Throttled, Reserved int64
	// Decision is the controller's latest decision (DecisionDecrease, DecisionIncrease or
	// DecisionHold) and DecidedAt when it was made: the decrease, the latest step up, or when
	// the factor was back at 1 (zero if it was never lowered or its state expired since).
	Decision  string
	DecidedAt time.Time
	// Since is the last decrease and DecreaseShare the throttled share it answered; Full is
	// when the factor is back at 1 unless it decreases again. All zero at the configured rate.
	Since         time.Time
	DecreaseShare float64
	Full          time.Time
}

// BackoffOf reads the state of c's controller at now, in one round trip.
func (l *Limiter) BackoffOf(ctx context.Context, c Control, now time.Time) (Backoff, error) {
	p := c.Policy.withDefaults()
	throttled, reserved := c.windowKeys(now.Unix(), p.seconds())
	var st *redis.SliceCmd
	var thr, res *redis.SliceCmd
	_, err := l.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		st = pl.HMGet(ctx, c.Key(), "f", "at", "dec", "s")
		thr = pl.MGet(ctx, throttled...)
		res = pl.MGet(ctx, reserved...)
		return nil
	})
	b := Backoff{Factor: 1, Decision: DecisionHold}
	if err != nil && !errors.Is(err, redis.Nil) {
		return b, fmt.Errorf("limits: backoff: %w", err)
	}
	b.Throttled, b.Reserved = sumCounts(thr.Val()), sumCounts(res.Val())
	if b.Throttled > 0 {
		b.Share = float64(b.Throttled) / float64(max(b.Throttled, b.Reserved))
	}
	v := st.Val()
	if len(v) != 4 {
		return b, nil
	}
	f, ferr := strconv.ParseFloat(str(v[0]), 64)
	at, aerr := strconv.ParseInt(str(v[1]), 10, 64)
	if ferr != nil || aerr != nil {
		return b, nil
	}
	dec, err := strconv.ParseInt(str(v[2]), 10, 64)
	if err != nil {
		dec = at // a state from before the controller kept its decreases
	}
	b.DecreaseShare, _ = strconv.ParseFloat(str(v[3]), 64)
	from := time.UnixMilli(at)
	b.Since = time.UnixMilli(dec)
	b.Full = from.Add(time.Duration(math.Ceil((1-f)/p.Step-1e-9)) * p.Every)
	elapsed := now.Sub(from)
	switch steps := math.Floor(float64(elapsed) / float64(p.Every)); {
	case elapsed < 0:
		b.Factor, b.Decision, b.DecidedAt = f, DecisionDecrease, b.Since
	case f+steps*p.Step < 1-1e-9:
		b.Factor, b.Decision = f+steps*p.Step, DecisionIncrease
		b.DecidedAt = from.Add(time.Duration(steps) * p.Every)
	default:
		b.Decision, b.DecidedAt = DecisionHold, b.Full
		b.Since, b.DecreaseShare, b.Full = time.Time{}, 0, time.Time{}
	}
	return b, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func sumCounts(vals []any) int64 {
	var n int64
	for _, v := range vals {
		c, _ := strconv.ParseInt(str(v), 10, 64)
		n += c
	}
	return n
}
