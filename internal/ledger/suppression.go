package ledger

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// SkipSuppressed is the skip reason of a recipient on the suppression list (Suppress): at
// expansion (planned skipped, no task), for a reply's follow-up, and at send time, when the
// person opted out after the task was planned (no request was made).
const SkipSuppressed = "suppressed"

// SuppressedCmd is a read of the suppression list queued in a pipeline (SuppressedIn); read
// it with Result after the pipeline ran.
type SuppressedCmd struct{ cmd *redis.BoolCmd }

// SuppressedIn queues, in p, the read of whether recipient (a ledger recipient: "+digits" or
// "bsuid:<id>") is on the suppression list, so a send can learn it in the round trip of its
// claim. The list is one hash with no hash tag: on Redis Cluster it lives in a slot of its
// own, which a pipeline may mix with the claim's (a script could not read it).
func (l *Ledger) SuppressedIn(ctx context.Context, p redis.Pipeliner, recipient string) *SuppressedCmd {
	return &SuppressedCmd{cmd: p.HExists(ctx, rkeys.Suppressed(), recipient)}
}

// Result reports whether the recipient is on the suppression list.
func (c *SuppressedCmd) Result() (bool, error) {
	in, err := c.cmd.Result()
	if err != nil {
		return false, fmt.Errorf("ledger: read suppression list: %w", err)
	}
	return in, nil
}
