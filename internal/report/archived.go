package report

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// SendAddress reads the ledger address of a send task's recipient from the task's type and
// payload; ok is false for a task of another type and for a payload that does not decode.
// The commands give one that decodes campaigns' send payload (ShowParams.SendAddress).
type SendAddress func(taskType string, payload []byte) (addr ledger.Address, ok bool)

// archivedRead bounds what ArchivedTasks reads: at most maxArchived ids of a run (asynq keeps
// at most 10,000 archived tasks a queue), their messages and ledger entries archivedBatch at a
// time, each batch in two round trips.
const (
	maxArchived   = 10000
	archivedBatch = 500
)

// ArchivedTasks counts run's send tasks in queue's archived set (an operator's task archive, or
// a task that ended with an error asynq may not retry) whose recipient's ledger entry is still
// to be sent (planned, queued or submitting): those recipients hold the run, which cannot end
// until each task is retried or deleted. A task archived after a permanent failure, whose
// entry is failed (or any other terminal state), holds nothing and is not counted; nor is a
// task whose payload addr cannot read, or whose recipient has no entry. A send task's id
// starts with its run's id and a slash (ledger.TaskIDs); the count reads at most maxArchived
// of them, their messages and entries in batches (archivedBatch). A nil addr counts every
// archived task of the run, as nothing can tell their recipients.
func ArchivedTasks(ctx context.Context, rdb redis.UniversalClient, l *ledger.Ledger, queue, run string, addr SendAddress) (int64, error) {
	var ids []string
	it := rdb.ZScan(ctx, rkeys.AsynqArchived(queue), 0, rkeys.EscapeGlob(run)+"/*", 1000).Iterator()
	for i := 0; len(ids) < maxArchived && it.Next(ctx); i++ {
		if i%2 == 0 { // members and scores alternate
			ids = append(ids, it.Val())
		}
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("archived tasks of %s in %s: %w", run, queue, err)
	}
	if addr == nil {
		return int64(len(ids)), nil
	}
	var n int64
	for len(ids) > 0 {
		batch := ids[:min(len(ids), archivedBatch)]
		ids = ids[len(batch):]
		held, err := heldBy(ctx, rdb, l, queue, batch, addr)
		if err != nil {
			return 0, fmt.Errorf("archived tasks of %s in %s: %w", run, queue, err)
		}
		n += held
	}
	return n, nil
}

// heldBy counts the archived tasks ids of queue whose recipients' entries are still to be
// sent: their messages in one round trip, their entries in another.
func heldBy(ctx context.Context, rdb redis.UniversalClient, l *ledger.Ledger, queue string, ids []string, addr SendAddress) (int64, error) {
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, rkeys.AsynqTask(queue, id), "msg")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	addrs := make([]ledger.Address, 0, len(ids))
	for _, c := range cmds {
		msg, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue // deleted since the scan
		}
		if err != nil {
			return 0, err
		}
		typ, payload, ok := asynqbatch.DecodeTask(msg)
		if !ok {
			continue
		}
		if a, ok := addr(typ, payload); ok {
			addrs = append(addrs, a)
		}
	}
	entries, err := l.Entries(ctx, addrs)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range entries {
		if e.State != "" && !e.State.Terminal() {
			n++
		}
	}
	return n, nil
}
