package ledger

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// Entries reads the entries at addrs, of any runs, in one round trip; an address with no
// entry gives the zero Entry (State ""). The conversation's join reads with it the message id
// each of a customer's candidate entries recorded, to find the run whose message a reply
// answers (context.replyToId).
//
// A phone recipient is asked for under both fields runs have kept it under (format.go): its
// digits and the number itself. A run holds only one of them, so no run's format is read.
func (l *Ledger) Entries(ctx context.Context, addrs []Address) ([]Entry, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.SliceCmd, len(addrs))
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, a := range addrs {
			fields := []string{a.Recipient}
			if d, ok := digitField(a.Recipient); ok {
				fields = []string{d, a.Recipient}
			}
			cmds[i] = p.HMGet(ctx, rkeys.LedgerBucket(a.Run, a.Bucket), fields...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: read entries: %w", err)
	}
	out := make([]Entry, len(addrs))
	for i, c := range cmds {
		for _, v := range c.Val() {
			s, ok := v.(string)
			if !ok {
				continue
			}
			if out[i], err = decodeEntry(s); err != nil {
				return nil, err
			}
			break
		}
	}
	return out, nil
}
