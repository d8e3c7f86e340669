package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

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
	out, _, err := l.entries(ctx, addrs, false)
	return out, err
}

// EntriesOfRuns reads the entries at addrs as Entries does and, in the same round trip, when
// each address's run was created (zero when its run records no time). A run's creation is the
// earliest any of its messages can have been sent: the conversation's join reads it for
// entries whose message time is not known yet.
func (l *Ledger) EntriesOfRuns(ctx context.Context, addrs []Address) ([]Entry, []time.Time, error) {
	return l.entries(ctx, addrs, true)
}

func (l *Ledger) entries(ctx context.Context, addrs []Address, withCreated bool) ([]Entry, []time.Time, error) {
	if len(addrs) == 0 {
		return nil, nil, nil
	}
	cmds := make([]*redis.SliceCmd, len(addrs))
	var created []*redis.StringCmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, a := range addrs {
			fields := []string{a.Recipient}
			if d, ok := digitField(a.Recipient); ok {
				fields = []string{d, a.Recipient}
			}
			cmds[i] = p.HMGet(ctx, rkeys.LedgerBucket(a.Run, a.Bucket), fields...)
			if withCreated {
				created = append(created, p.HGet(ctx, rkeys.Run(a.Run), "created"))
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("ledger: read entries: %w", err)
	}
	// A run without a creation time answers nil; any other failure of a command is an error.
	for i, c := range cmds {
		if err := c.Err(); err != nil {
			return nil, nil, fmt.Errorf("ledger: read entries: %w", err)
		}
		if withCreated {
			if err := created[i].Err(); err != nil && !errors.Is(err, redis.Nil) {
				return nil, nil, fmt.Errorf("ledger: read entries: %w", err)
			}
		}
	}
	out := make([]Entry, len(addrs))
	for i, c := range cmds {
		for _, v := range c.Val() {
			s, ok := v.(string)
			if !ok {
				continue
			}
			if out[i], err = decodeEntry(s); err != nil {
				return nil, nil, err
			}
			break
		}
	}
	if !withCreated {
		return out, nil, nil
	}
	starts := make([]time.Time, len(addrs))
	for i, c := range created {
		if n, err := strconv.ParseInt(c.Val(), 10, 64); err == nil && n > 0 {
			starts[i] = time.UnixMilli(n)
		}
	}
	return out, starts, nil
}
