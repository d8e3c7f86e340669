package report

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// ArchivedTasks counts run's send tasks in queue's archived set: tasks an operator archived
// (task archive) or that ended with an error asynq may not retry. Their recipients stay queued
// in the ledger, so the run cannot end until each task is retried or deleted. A send task's id
// starts with its run's id and a slash (ledger.TaskIDs); asynq keeps at most 10,000 archived
// tasks a queue, so the count reads at most that many ids.
func ArchivedTasks(ctx context.Context, rdb redis.UniversalClient, queue, run string) (int64, error) {
	var n int64
	it := rdb.ZScan(ctx, rkeys.AsynqArchived(queue), 0, rkeys.EscapeGlob(run)+"/*", 1000).Iterator()
	for i := 0; it.Next(ctx); i++ {
		if i%2 == 0 { // members and scores alternate
			n++
		}
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("archived tasks of %s in %s: %w", run, queue, err)
	}
	return n, nil
}
