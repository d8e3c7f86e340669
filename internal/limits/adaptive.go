package limits

import (
	"context"
	_ "embed"
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
	// lowered; it holds for a moment (Policy.hold).
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
	// Burst is the burst of the sender's rate limit at Rate (Sends.Control sets the one its
	// reservations use). The factor divides the limit's burst tolerance, so a decrease would
	// let the sender's next send go sooner than before it, and end a Retry-After hold early:
	// a decrease moves the limit's time on by the tolerance it adds. 0 or 1: nothing to move.
	Burst int
	Policy
}

// SenderControl returns the controller of a business's sender.
func SenderControl(business, sender string, rate float64, p Policy) Control {
	return Control{Business: business, Sender: sender, Rate: rate, Policy: p}
}

// Key is where the controller keeps its state (the key of Adaptive in a reservation).
func (c Control) Key() string { return rkeys.SenderBackoff(c.Business, c.Sender) }

// periodKeys returns the throttle and reservation counts of the n whole seconds before sec
// (the Policy's Period), newest first.
func (c Control) periodKeys(sec int64, n int) (throttled, reserved []string) {
	limit := rkeys.SenderLimit(c.Business, c.Sender)
	for i := 1; i <= n; i++ {
		throttled = append(throttled, rkeys.SenderThrottled(c.Business, c.Sender, sec-int64(i)))
		reserved = append(reserved, UsageKey(limit, sec-int64(i)))
	}
	return throttled, reserved
}

//go:embed lua/throttled.lua
var throttledLua string

// throttledCmd counts one throttled send and lets the controller decide (see Policy). Its KEYS,
// ARGV and reply are documented at the top of lua/throttled.lua.
var throttledCmd = redis.NewScript(luaLib + throttledLua)

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
	throttled, reserved := c.periodKeys(sec, n)
	keys := append(append([]string{c.Key(), rkeys.SenderThrottled(c.Business, c.Sender, sec)}, throttled...), reserved...)
	// A decrease moves the sender's limit on by the burst tolerance it adds (see Burst).
	var tol int64
	if lim := (Limit{Rate: c.Rate, Burst: c.Burst}); lim.Rate > 0 && lim.Burst > 1 {
		keys = append(keys, rkeys.SenderLimit(c.Business, c.Sender))
		tol = lim.tolerance()
	}
	res, err := throttledCmd.Run(ctx, l.rdb, keys, now.UnixMilli(), sec, n, p.hold().Milliseconds(), p.Threshold, p.Min,
		p.Every.Milliseconds(), p.Step, max(0, c.Rate), (p.Period + 5*time.Second).Milliseconds(), tol).Slice()
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
	// Period's whole seconds before now (0 when nothing was reserved); Throttled and Reserved
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
	throttled, reserved := c.periodKeys(now.Unix(), p.seconds())
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
