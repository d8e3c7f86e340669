// Package limits keeps Herald's rate limits in Redis, shared by every worker process.
//
// A limit is a GCRA (generic cell rate algorithm) state: one key holding the theoretical
// arrival time. Reserve takes a permit from several limits at once and returns how long the
// caller must wait before using it; the caller sleeps exactly that long, so each permit costs
// one Redis call however many workers compete (no retry herd), and the combined rate of all
// processes never exceeds the limit.
package limits

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limit is a rate with a small burst.
type Limit struct {
	// Rate is permits per second; zero or less means unlimited.
	Rate float64
	// Burst is how many permits may be taken back to back after an idle period. Keep it small:
	// Meta counts messages per second, so a burst of a whole second's worth breaks the cap.
	Burst int
}

// PerSecond returns a limit of rate permits a second with a burst of about 50 ms of traffic
// (at least 1), which holds the rate within a percent while absorbing scheduling jitter.
func PerSecond(rate float64) Limit {
	return Limit{Rate: rate, Burst: max(1, int(math.Ceil(rate*0.05)))}
}

func (l Limit) String() string { return fmt.Sprintf("%g/s burst %d", l.Rate, l.Burst) }

// reserveCmd reserves one permit from every limit given, at the earliest time all allow it.
//
// KEYS[i] -> GCRA state of limit i (same hash tag).
// ARGV[1] -> max wait in microseconds; then per key: emission interval (µs), burst tolerance (µs).
// Returns {1, wait µs} when reserved (the caller must wait that long), or {0, wait µs} when the
// wait would exceed the max (nothing reserved).
var reserveCmd = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local maxwait = tonumber(ARGV[1])
local at = now
local tats = {}
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if tat < now then tat = now end
  tats[i] = tat
  local allowed = tat - tonumber(ARGV[2 * i + 1])
  if allowed > at then at = allowed end
end
local wait = at - now
if wait > maxwait then return {0, string.format('%.0f', wait)} end
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i])
  local tat = tats[i]
  if at > tat then tat = at end
  tat = tat + interval
  redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
return {1, string.format('%.0f', wait)}
`)

// Limiter reserves permits from limits kept in Redis.
type Limiter struct {
	rdb redis.UniversalClient
}

// New returns a Limiter on rdb.
func New(rdb redis.UniversalClient) *Limiter { return &Limiter{rdb: rdb} }

// Reservation is the answer of Reserve.
type Reservation struct {
	// OK is true when a permit was reserved from every limit; use it after Wait.
	OK bool
	// Wait is how long to wait before using the permit, or, when !OK, how long until one
	// would be available.
	Wait time.Duration
}

// Reserve takes one permit from each of the keyed limits (keys must share a hash tag) unless
// that means waiting longer than maxWait. Limits with Rate <= 0 are skipped.
func (l *Limiter) Reserve(ctx context.Context, keys []string, limits []Limit, maxWait time.Duration) (Reservation, error) {
	ks, args := reserveArgs(keys, limits, maxWait)
	if len(ks) == 0 {
		return Reservation{OK: true}, nil
	}
	return parseReservation(reserveCmd.Run(ctx, l.rdb, ks, args...))
}

// ReserveCmd is a reservation queued in a pipeline; read it with Result after the pipeline ran.
type ReserveCmd struct {
	cmd  *redis.Cmd
	l    *Limiter
	keys []string
	args []any
}

// ReserveIn queues the same reservation as Reserve in a pipeline, so it can share a round
// trip with other commands. The script must be loaded (Load); Result falls back to a direct
// call when Redis answers NOSCRIPT.
func (l *Limiter) ReserveIn(ctx context.Context, p redis.Pipeliner, keys []string, limits []Limit, maxWait time.Duration) *ReserveCmd {
	ks, args := reserveArgs(keys, limits, maxWait)
	rc := &ReserveCmd{l: l, keys: ks, args: args}
	if len(ks) > 0 {
		rc.cmd = reserveCmd.EvalSha(ctx, p, ks, args...)
	}
	return rc
}

// Result returns the reservation.
func (r *ReserveCmd) Result(ctx context.Context) (Reservation, error) {
	if r.cmd == nil {
		return Reservation{OK: true}, nil
	}
	if err := r.cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		return parseReservation(reserveCmd.Run(ctx, r.l.rdb, r.keys, r.args...))
	}
	return parseReservation(r.cmd)
}

// Load loads the limiter's script into Redis, for pipelined use.
func (l *Limiter) Load(ctx context.Context) error {
	if err := reserveCmd.Load(ctx, l.rdb).Err(); err != nil {
		return fmt.Errorf("limits: load script: %w", err)
	}
	return nil
}

func reserveArgs(keys []string, limits []Limit, maxWait time.Duration) ([]string, []any) {
	if len(keys) != len(limits) {
		panic("limits: Reserve needs one limit per key")
	}
	ks := make([]string, 0, len(keys))
	args := []any{maxWait.Microseconds()}
	for i, lim := range limits {
		if lim.Rate <= 0 {
			continue
		}
		interval := 1e6 / lim.Rate
		ks = append(ks, keys[i])
		args = append(args, int64(math.Round(interval)), int64(math.Round(interval*float64(max(1, lim.Burst)-1))))
	}
	return ks, args
}

func parseReservation(c *redis.Cmd) (Reservation, error) {
	res, err := c.Slice()
	if err != nil {
		return Reservation{}, fmt.Errorf("limits: reserve: %w", err)
	}
	if len(res) != 2 {
		return Reservation{}, fmt.Errorf("limits: reserve: unexpected reply %v", res)
	}
	ok, _ := res[0].(int64)
	var us int64
	switch v := res[1].(type) {
	case string:
		us, _ = strconv.ParseInt(v, 10, 64)
	case int64:
		us = v
	}
	return Reservation{OK: ok == 1, Wait: time.Duration(us) * time.Microsecond}, nil
}

// refundCmd gives one permit back to every limit given (a reserved send that did not happen).
//
// KEYS[i] -> GCRA state of limit i. ARGV[i] -> emission interval of limit i (µs).
// Returns the number of limits refunded.
var refundCmd = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = 0
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '')
  if tat then
    tat = tat - tonumber(ARGV[i])
    if tat <= now then
      redis.call('DEL', KEYS[i])
    else
      redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
    end
    n = n + 1
  end
end
return n
`)

// Refund gives back the permit a Reserve took from each of the keyed limits, for a send that
// did not happen (its run was paused, or it was already done). The next reservation can use
// the freed slot; reservations already handed out keep their times.
func (l *Limiter) Refund(ctx context.Context, keys []string, limits []Limit) error {
	ks := make([]string, 0, len(keys))
	args := make([]any, 0, len(keys))
	for i, lim := range limits {
		if lim.Rate <= 0 {
			continue
		}
		ks = append(ks, keys[i])
		args = append(args, int64(math.Round(1e6/lim.Rate)))
	}
	if len(ks) == 0 {
		return nil
	}
	if err := refundCmd.Run(ctx, l.rdb, ks, args...).Err(); err != nil {
		return fmt.Errorf("limits: refund: %w", err)
	}
	return nil
}
