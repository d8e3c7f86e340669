// Package limits keeps Herald's rate limits in Redis, shared by every worker process.
//
// A limit is a GCRA (generic cell rate algorithm) state: one key holding the theoretical
// arrival time. Reserve takes a permit from several limits at once and returns how long the
// caller must wait before using it; the caller sleeps exactly that long, so each permit costs
// one Redis call however many workers compete (no retry herd), and the combined rate of all
// processes never exceeds the limit.
package limits

import (
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
// lets an idle limit send a couple of messages at once. Meta counts messages per second, and
// a send that arrives a few milliseconds late lands in the next second's count, so any
// window of one second sees at most rate + burst + (network jitter / interval) messages: at
// 80/s, 82 plus jitter.
func PerSecond(rate float64) Limit {
	return Limit{Rate: rate, Burst: max(1, int(math.Ceil(rate*0.02)))}
}

func (l Limit) String() string { return fmt.Sprintf("%g/s burst %d", l.Rate, l.Burst) }

// Limiter reserves permits from limits kept in Redis.
type Limiter struct {
	rdb redis.UniversalClient
}

// New returns a Limiter on rdb.
func New(rdb redis.UniversalClient) *Limiter { return &Limiter{rdb: rdb} }
