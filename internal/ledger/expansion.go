package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// Now is the ledger's clock.
func (l *Ledger) Now() time.Time { return l.now() }

// SetCursorOffset records the audience file offset just after row, so a resumed expansion
// whose queued_to cursor equals row seeks there instead of reading the file from the start.
func (l *Ledger) SetCursorOffset(ctx context.Context, runID string, row int, offset int64) error {
	v := strconv.Itoa(row) + ":" + strconv.FormatInt(offset, 10)
	if err := l.rdb.HSet(ctx, rkeys.Run(runID), "queued_off", v).Err(); err != nil {
		return fmt.Errorf("ledger: record cursor of run %s: %w", runID, err)
	}
	return nil
}

// CursorOffset returns the last offset recorded by SetCursorOffset and the row it follows;
// ok is false when none was recorded.
func (l *Ledger) CursorOffset(ctx context.Context, runID string) (row int, offset int64, ok bool, err error) {
	v, err := l.rdb.HGet(ctx, rkeys.Run(runID), "queued_off").Result()
	if errors.Is(err, redis.Nil) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("ledger: read cursor of run %s: %w", runID, err)
	}
	r, o, found := strings.Cut(v, ":")
	row, err1 := strconv.Atoi(r)
	offset, err2 := strconv.ParseInt(o, 10, 64)
	if !found || err1 != nil || err2 != nil {
		return 0, 0, false, nil
	}
	return row, offset, true, nil
}

// Pending counts a run's recipients that have, or are about to have, a task in the queue:
// planned, queued and submitting. Expansion keeps this under its window.
func (l *Ledger) Pending(ctx context.Context, runID string) (int64, error) {
	vals, err := l.rdb.HMGet(ctx, rkeys.Counts(runID), string(Planned), string(Queued), string(Submitting)).Result()
	if err != nil {
		return 0, fmt.Errorf("ledger: read pending of run %s: %w", runID, err)
	}
	var n int64
	for _, v := range vals {
		if s, ok := v.(string); ok {
			k, _ := strconv.ParseInt(s, 10, 64)
			n += k
		}
	}
	return n, nil
}
