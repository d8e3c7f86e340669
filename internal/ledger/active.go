package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// The index of runs not yet ended (rkeys.ActiveRuns), from which the run gauges are reported
// whatever the number of newer runs.
//
// The index lives in another Cluster slot than the runs' keys, so no run script writes it
// (the resend set, rkeys.ResendRuns, is kept the same way). A run enters it with the run lists
// (ListRun: when it is created, and again at every expansion step), and leaves it through the
// call that saw it end: Cancel, and every call whose script may complete it (Finish,
// FinishExpansion, CloseExpansion, Skip, a claim that settles an earlier attempt's entry
// unknown, a delivery event or the resend sweep settling the last unknown recipient it waited
// for). Those take it out after their script, best effort: a run found ended while listed
// (the step failed, or an expansion step listed it again as it ended) is dropped by whoever
// reads the index (DropEnded). An ended run never runs again, so dropping it is always right.
// Runs created before the index existed are listed once by BackfillActiveRuns.

// Active reports whether a run with status s has not ended: running or paused.
func (s RunStatus) Active() bool { return s == RunRunning || s == RunPaused }

// ActiveRuns returns the ids of up to n runs listed as not yet ended, oldest first, from the
// offset-th on, and how many are listed in all. A listed run may have ended since: check its
// status, and drop it with DropEnded.
func (l *Ledger) ActiveRuns(ctx context.Context, offset, n int) (ids []string, listed int64, err error) {
	var page *redis.StringSliceCmd
	var card *redis.IntCmd
	_, err = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		page = p.ZRange(ctx, rkeys.ActiveRuns(), int64(offset), int64(offset+n-1))
		card = p.ZCard(ctx, rkeys.ActiveRuns())
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("ledger: list active runs: %w", err)
	}
	return page.Val(), card.Val(), nil
}

// DropEnded takes runs that have ended (or no longer exist) out of the index of runs not yet
// ended.
func (l *Ledger) DropEnded(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	if err := l.rdb.ZRem(ctx, rkeys.ActiveRuns(), members...).Err(); err != nil {
		return fmt.Errorf("ledger: drop ended runs: %w", err)
	}
	return nil
}

// unlistEnded takes a run out of the index of runs not yet ended once it has ended, after a
// script that may have completed it. It is best effort: the outcome the script wrote stands
// whatever becomes of this, and a reader of the index drops a run it finds ended. Follow-up
// runs, never listed, are left alone.
func (l *Ledger) unlistEnded(ctx context.Context, runID string) {
	if _, _, ok := FollowupOf(runID); ok {
		return
	}
	s, err := l.rdb.HGet(ctx, rkeys.Run(runID), "status").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return
	}
	if !RunStatus(s).Active() {
		_ = l.DropEnded(ctx, runID)
	}
}

// unlist takes a run known to have ended out of the index of runs not yet ended, best effort
// (see unlistEnded).
func (l *Ledger) unlist(ctx context.Context, runID string) {
	if _, _, ok := FollowupOf(runID); !ok {
		_ = l.DropEnded(ctx, runID)
	}
}

// backfillPage is how many runs of the run list one step of BackfillActiveRuns reads.
const backfillPage = 500

// BackfillActiveRuns lists the running and paused runs of the run list in the index of runs not
// yet ended, once per deployment: the runs created before the index existed, which an
// expansion step lists again only while they expand. It walks the run list oldest first, a
// page per round trip, keeping its position in Redis (rkeys.ActiveRunsBackfill), so a walk cut
// short (its context ended) goes on from there at the next call; it reports whether the walk
// is done. Calls at the same time list the same runs, which is harmless.
func (l *Ledger) BackfillActiveRuns(ctx context.Context) (bool, error) {
	return l.backfillActiveRuns(ctx, backfillPage)
}

// backfillActiveRuns is BackfillActiveRuns reading page runs per step.
func (l *Ledger) backfillActiveRuns(ctx context.Context, page int64) (bool, error) {
	return l.backfillIndex(ctx, "active runs", rkeys.ActiveRunsBackfill(), rkeys.ActiveRuns(), page,
		func(zs []redis.Z) ([]redis.Z, error) {
			statuses := make([]*redis.StringCmd, len(zs))
			_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, z := range zs {
					id, _ := z.Member.(string)
					statuses[i] = p.HGet(ctx, rkeys.Run(id), "status")
				}
				return nil
			})
			if err != nil && !errors.Is(err, redis.Nil) {
				return nil, err
			}
			var active []redis.Z
			for i, z := range zs {
				if RunStatus(statuses[i].Val()).Active() {
					active = append(active, z)
				}
			}
			return active, nil
		})
}

// backfillIndex adds to index the runs of the run list that pick picks, page runs (with their
// creation scores) a round trip, oldest first, keeping its position under pos so that a walk
// cut short (its context ended) goes on from there at the next call; it reports whether the
// walk is done. A run already in the index keeps its score (NX). what names the index in errors.
func (l *Ledger) backfillIndex(ctx context.Context, what, pos, index string, page int64,
	pick func(zs []redis.Z) ([]redis.Z, error)) (bool, error) {
	at, err := l.rdb.Get(ctx, pos).Result()
	switch {
	case errors.Is(err, redis.Nil):
		at = "0"
	case err != nil:
		return false, fmt.Errorf("ledger: backfill %s: %w", what, err)
	}
	if at == "done" {
		return true, nil
	}
	from, _ := strconv.ParseInt(at, 10, 64)
	for {
		zs, err := l.rdb.ZRangeWithScores(ctx, rkeys.Runs(), from, from+page-1).Result()
		if err != nil {
			return false, fmt.Errorf("ledger: backfill %s: %w", what, err)
		}
		picked, err := pick(zs)
		if err != nil {
			return false, fmt.Errorf("ledger: backfill %s: %w", what, err)
		}
		next := "done"
		if int64(len(zs)) == page {
			next = strconv.FormatInt(from+page, 10)
		}
		// The two keys are in different Cluster slots: the position moves once the page is
		// listed.
		if len(picked) > 0 {
			if err := l.rdb.ZAddNX(ctx, index, picked...).Err(); err != nil {
				return false, fmt.Errorf("ledger: backfill %s: %w", what, err)
			}
		}
		if err := l.rdb.Set(ctx, pos, next, 0).Err(); err != nil {
			return false, fmt.Errorf("ledger: backfill %s: %w", what, err)
		}
		if next == "done" {
			return true, nil
		}
		from += page
	}
}
