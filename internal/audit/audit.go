// Package audit keeps the log of operator actions (pause, resume, cancel, retry, delete...)
// in Redis: who did what to which run, queue or task, when, and why.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// Keep is how many entries the log keeps; older ones are dropped.
const Keep = 10000

// Entry is one operator action.
type Entry struct {
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Reason string    `json:"reason,omitempty"`
	// Detail says what the action did (e.g. "148 recipients skipped").
	Detail string `json:"detail,omitempty"`
}

// Append adds an entry to the log.
func Append(ctx context.Context, rdb redis.UniversalClient, e Entry) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, rkeys.Audit(), b)
		p.LTrim(ctx, rkeys.Audit(), 0, Keep-1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit: append: %w", err)
	}
	return nil
}

// List returns up to n entries, newest first.
func List(ctx context.Context, rdb redis.UniversalClient, n int) ([]Entry, error) {
	raw, err := rdb.LRange(ctx, rkeys.Audit(), 0, int64(n-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	out := make([]Entry, 0, len(raw))
	for _, r := range raw {
		var e Entry
		if err := json.Unmarshal([]byte(r), &e); err != nil {
			return nil, fmt.Errorf("audit: malformed entry: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}
