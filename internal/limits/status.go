package limits

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// Status methods read the limits of one business, named as an Intention names them (the
// business, a sender, a template category, recipients), without reserving anything: they
// build the keys, as Sends.Request does.

// BusinessUse returns the business's requests per second over the `seconds` whole seconds
// (1 to 10) before now, counted by the reservations of its request limit.
func (l *Limiter) BusinessUse(ctx context.Context, business string, seconds int, now time.Time) (float64, error) {
	return l.usage(ctx, rkeys.BusinessLimit(business), seconds, now)
}

// SenderUse returns sender's messages per second over the `seconds` whole seconds (1 to 10)
// before now, counted by the reservations of its rate limit ("" is the business's default
// sender, as in an Intention).
func (l *Limiter) SenderUse(ctx context.Context, business, sender string, seconds int, now time.Time) (float64, error) {
	return l.usage(ctx, rkeys.SenderLimit(business, SenderKey(sender)), seconds, now)
}

// usage returns a limit's sends per second over the `seconds` whole seconds before now, from
// the counts reservations keep (Request.Usage).
func (l *Limiter) usage(ctx context.Context, limitKey string, seconds int, now time.Time) (float64, error) {
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
	// Used is the number of unique recipients in the tier's period; Limit is the tier.
	Used, Limit int
	// NextFree is when the oldest recipient leaves the period (zero when it holds none).
	NextFree time.Time
}

// Remaining is the room left in the tier (never negative).
func (u TierUse) Remaining() int { return max(0, u.Limit-u.Used) }

// DailyTier reads the use of business's daily tier of limit unique recipients per rolling
// period, at now.
func (l *Limiter) DailyTier(ctx context.Context, business string, limit int, period time.Duration, now time.Time) (TierUse, error) {
	return l.tierOf(ctx, rkeys.Tier(business), limit, period, now)
}

// tierOf reads the use of the daily tier kept at key, at now.
func (l *Limiter) tierOf(ctx context.Context, key string, limit int, period time.Duration, now time.Time) (TierUse, error) {
	from := strconv.FormatInt(now.Add(-period).UnixMilli(), 10)
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
		u.NextFree = time.UnixMilli(int64(oldest[0].Score)).Add(period)
	}
	return u, nil
}

// capMarks counts the marks of a cap record (tag:ms,...) inside the period ending at now.
func capMarks(v string, period time.Duration, now time.Time) int {
	from := now.Add(-period).UnixMilli()
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

// CapCheck asks which Recipients of Business a send of a template of Category (marketing
// when empty, as in an Intention) by a new run would find capped at Now under Cap, the
// category's frequency cap.
type CapCheck struct {
	Business, Category string
	Cap                FrequencyCap
	Recipients         []string
	Now                time.Time
}

// Capped reports, for each of q's recipients, whether a send would be capped. It reserves
// nothing (for plans). A cap of Max 0 caps no one.
func (l *Limiter) Capped(ctx context.Context, q CapCheck) ([]bool, error) {
	if q.Cap.Max <= 0 {
		return make([]bool, len(q.Recipients)), nil
	}
	caps := make([]Cap, len(q.Recipients))
	for i, to := range q.Recipients {
		caps[i] = capOf(q.Business, q.Category, q.Cap, to, "")
	}
	return l.peekCaps(ctx, caps, q.Now)
}

// peekCaps reports, for each cap, whether a send by a new run would be capped at now.
func (l *Limiter) peekCaps(ctx context.Context, caps []Cap, now time.Time) ([]bool, error) {
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
		out[i] = capMarks(v, c.Period, now) >= c.Max
	}
	return out, nil
}

// InDailyTier reports, for each recipient, whether they were messaged within business's daily
// tier's period ending at now (a send to them takes no new room).
func (l *Limiter) InDailyTier(ctx context.Context, business string, recipients []string, period time.Duration, now time.Time) ([]bool, error) {
	return l.inTier(ctx, rkeys.Tier(business), recipients, period, now)
}

// inTier reports, for each member, whether they were messaged within the tier's period.
func (l *Limiter) inTier(ctx context.Context, key string, members []string, period time.Duration, now time.Time) ([]bool, error) {
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
	from := float64(now.Add(-period).UnixMilli())
	out := make([]bool, len(members))
	for i := range members {
		if s, err := cmds[i].Result(); err == nil && s > from {
			out[i] = true
		}
	}
	return out, nil
}

// TierCheck asks what the daily tier of Business would make of a send from Sender (E.164; ""
// when the send names none, as in an Intention) to each of Recipients at Now: whether they
// were messaged within its Period, and whether their customer service window is open under
// WindowPolicy and WindowMargin (the worker's, as in an Intention).
type TierCheck struct {
	Business, Sender string
	Recipients       []string
	Period           time.Duration
	WindowPolicy     servicewindow.Policy
	WindowMargin     time.Duration
	Now              time.Time
}

// TierPeek is what the daily tier would make of one recipient's send.
type TierPeek struct {
	// InTier: messaged within the tier's period. InWindow: a service window that counts for
	// the send is open, so the reservation skips the tier.
	InTier, InWindow bool
}

// New reports whether the send would take new room in the tier.
func (p TierPeek) New() bool { return !p.InTier && !p.InWindow }

// PeekTier reports, for each of q's recipients, what the daily tier would make of their send,
// reading the windows a reservation reads (Intention's) and deciding as it does, in one
// pipeline. It reserves nothing (for plans).
func (l *Limiter) PeekTier(ctx context.Context, q TierCheck) ([]TierPeek, error) {
	key := rkeys.Tier(q.Business)
	scores := make([]*redis.FloatCmd, len(q.Recipients))
	reads := make([][]*redis.StringCmd, len(q.Recipients))
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, to := range q.Recipients {
			scores[i] = p.ZScore(ctx, key, to)
			in := Intention{Sender: q.Sender, Recipient: to, WindowPolicy: q.WindowPolicy}
			for _, w := range in.windows(q.Business) {
				reads[i] = append(reads[i], p.HGet(ctx, w.Key, w.Field))
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("limits: peek tier: %w", err)
	}
	from := float64(q.Now.Add(-q.Period).UnixMilli())
	out := make([]TierPeek, len(q.Recipients))
	for i := range q.Recipients {
		if s, err := scores[i].Result(); err == nil && s > from {
			out[i].InTier = true
		}
		for _, c := range reads[i] {
			sec, err := strconv.ParseFloat(c.Val(), 64)
			if err == nil && openAt(sec, q.WindowMargin, q.Now) {
				out[i].InWindow = true
				break
			}
		}
	}
	return out, nil
}

// Senders lists, sorted, the senders of business with limiter state in Redis: a rate limit or
// an adaptive factor ("default" for the business's default sender). It scans the keyspace,
// so it is for reports, not for sends.
func (l *Limiter) Senders(ctx context.Context, business string) ([]string, error) {
	seen := map[string]bool{}
	for _, pattern := range []string{rkeys.SenderLimit(business, "*"), rkeys.SenderBackoff(business, "*")} {
		prefix := strings.TrimSuffix(pattern, "*")
		iter := l.rdb.Scan(ctx, 0, rkeys.EscapeGlob(prefix)+"*", 500).Iterator()
		for iter.Next(ctx) {
			s := strings.TrimSuffix(strings.TrimPrefix(iter.Val(), prefix), ":use")
			if s != "" && !strings.Contains(s, ":") {
				seen[s] = true
			}
		}
		if err := iter.Err(); err != nil {
			return nil, fmt.Errorf("limits: list senders: %w", err)
		}
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out, nil
}
