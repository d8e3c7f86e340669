// Package limits keeps Herald's rate limits in Redis, shared by every worker process.
//
// A limit is a GCRA (generic cell rate algorithm) state: one key holding the theoretical
// arrival time. Reserve takes a permit from several limits at once and returns how long the
// caller must wait before using it; the caller sleeps exactly that long, so each permit costs
// one Redis call however many workers compete (no retry herd), and the combined rate of all
// processes never exceeds the limit.
package limits

import (
	_ "embed"
	"fmt"
	"math"

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

// PerSecond returns a limit of rate permits a second with a burst of about 20 ms of traffic
// (at least 1). Reservations book future slots, so the burst does not add throughput: it only
// lets an idle limit send a couple of messages at once. The slots themselves are never closer
// than 1/rate; what a one-second window sees is the slots plus how late each send leaves. The
// worker lets a slot go when it comes to it more than 15 ms late, so a sliding window holds
// at most rate × 1.015 + 1 sends, plus the burst after an idle spell, plus the network's
// jitter: at 80/s, 82 (docs/benchmarks.md has the measured figures).
func PerSecond(rate float64) Limit {
	return Limit{Rate: rate, Burst: max(1, int(math.Ceil(rate*0.02)))}
}

// tolerance is the limit's burst tolerance in µs at its rate: how far before its theoretical
// arrival time a reservation is granted (reserve.lua; the adaptive factor divides it).
func (l Limit) tolerance() int64 {
	return int64(math.Round(1e6 / l.Rate * float64(max(1, l.Burst)-1)))
}

func (l Limit) String() string { return fmt.Sprintf("%g/s burst %d", l.Rate, l.Burst) }

// luaLib is prepended to the scripts that read the adaptive factor (lua/lib.lua): the factor
// and the burst tolerance it scales are computed there alone.
//
//go:embed lua/lib.lua
var luaLib string

// Limiter reserves permits from limits kept in Redis.
type Limiter struct {
	rdb redis.UniversalClient
}

// New returns a Limiter on rdb.
func New(rdb redis.UniversalClient) *Limiter { return &Limiter{rdb: rdb} }
