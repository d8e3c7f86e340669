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

// CursorOffset returns the last offset recorded by MarkQueuedAt and the row it follows;
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
	vals, err := l.rdb.HMGet(ctx, rkeys.Counts(runID), pendingStates...).Result()
	if err != nil {
		return 0, fmt.Errorf("ledger: read pending of run %s: %w", runID, err)
	}
	return sumCounts(vals), nil
}

// pendingStates are the counters Pending adds up.
var pendingStates = []string{string(Planned), string(Queued), string(Submitting)}

// sumCounts adds up counter values read with HMGET (absent ones are 0).
func sumCounts(vals []any) int64 {
	var n int64
	for _, v := range vals {
		if s, ok := v.(string); ok {
			k, _ := strconv.ParseInt(s, 10, 64)
			n += k
		}
	}
	return n
}

// BatchView is what an expansion needs to know before it plans a batch.
type BatchView struct {
	// Status is the run's status ("" when the run does not exist).
	Status RunStatus
	// Pending is as Pending reports.
	Pending int64
	// Suppressed says, per recipient asked about, whether the person opted out.
	Suppressed []bool
}

// ViewBatch reads, in one round trip, the run's status, its pending count and which of the
// recipients are on the suppression list.
func (l *Ledger) ViewBatch(ctx context.Context, runID string, recipients []string) (BatchView, error) {
	var (
		status *redis.StringCmd
		counts *redis.SliceCmd
		supp   *redis.SliceCmd
		v      BatchView
	)
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		status = p.HGet(ctx, rkeys.Run(runID), "status")
		counts = p.HMGet(ctx, rkeys.Counts(runID), pendingStates...)
		if len(recipients) > 0 {
			supp = p.HMGet(ctx, rkeys.Suppressed(), recipients...)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return v, fmt.Errorf("ledger: read run %s before a batch: %w", runID, err)
	}
	v.Status = RunStatus(status.Val())
	v.Pending = sumCounts(counts.Val())
	v.Suppressed = make([]bool, len(recipients))
	if supp != nil {
		for i, x := range supp.Val() {
			v.Suppressed[i] = x != nil
		}
	}
	return v, nil
}
