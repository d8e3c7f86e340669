package limits

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// Meta's handling of its pair rate limit, 131056 (one business number to one person, about one
// message every 6 s): retry after 4^X seconds, X from 0 and one more for each refusal in a row
// (reference 9.1: 1, 4, 16, 64, 256 s), for that person only.
const (
	// PairBackoffMax is the longest wait the pair backoff gives (4^4 s).
	PairBackoffMax = 256 * time.Second
	// pairBackoffMemory is how long a refusal counts toward the next one's wait: refusals further
	// apart than this start again at 1 s.
	pairBackoffMemory = 2*PairBackoffMax + time.Minute
)

// PairThrottled records that Connectly or Meta refused a send from sender to recipient for the
// pair rate limit and returns how long that person's next send waits: 1 s for a first refusal,
// four times the last wait for each one that follows within pairBackoffMemory, at most
// PairBackoffMax. The pair's rate limit is held for that wait (as a Retry-After holds a
// sender's), so every send from sender to recipient waits it, whichever run it is in, not
// only the refused one. Two round trips.
func (s *Sends) PairThrottled(ctx context.Context, sender, recipient string) (time.Duration, error) {
	key := rkeys.PairBackoff(s.cfg.BusinessID, SenderKey(sender), recipient)
	var n *redis.IntCmd
	_, err := s.lim.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		n = p.Incr(ctx, key)
		p.PExpire(ctx, key, pairBackoffMemory)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("limits: pair backoff: %w", err)
	}
	wait := PairBackoff(int(n.Val()))
	if s.cfg.PairInterval > 0 {
		// The pair limit's burst is 1: no tolerance past the hold's end.
		pair := rkeys.PairLimit(s.cfg.BusinessID, SenderKey(sender), recipient)
		if err := holdCmd.Run(ctx, s.lim.rdb, []string{pair}, wait.Microseconds(), 0).Err(); err != nil {
			return wait, fmt.Errorf("limits: pair backoff hold: %w", err)
		}
	}
	return wait, nil
}

// PairBackoff is the wait after the n-th pair-limit refusal in a row (n from 1): 4^(n-1) s, at
// most PairBackoffMax.
func PairBackoff(n int) time.Duration {
	d := time.Second
	for i := 1; i < n && d < PairBackoffMax; i++ {
		d *= 4
	}
	return min(d, PairBackoffMax)
}
