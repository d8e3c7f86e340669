package asynqbatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/luacheck"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// playLostReply writes a batch of new tasks (fresh) through a connection that loses the
// reply of the batch's script once, so go-redis sends the pipeline again and the script runs
// a second time: every task must still be queued once, and stay as the first run wrote it.
func playLostReply(ctx context.Context, rdb redis.UniversalClient, q string) error {
	c, ok := rdb.(*redis.Client)
	if !ok {
		return fmt.Errorf("%w, got %T", luacheck.ErrNeedsSingleNode, rdb)
	}
	o := c.Options()
	p, err := testredis.StartReplyDropper(o.Addr)
	if err != nil {
		return err
	}
	defer p.Close()
	via := redis.NewClient(&redis.Options{Addr: p.Addr(), DB: o.DB, Username: o.Username, Password: o.Password, Protocol: o.Protocol})
	defer via.Close()
	// Loaded first, so that the call that loses its reply is the script's run and not a NOSCRIPT.
	if err := asynqBatchCmd.Load(ctx, via).Err(); err != nil {
		return err
	}
	w := New(via)
	w.published.Store(q, true) // keeps asynq's queue set, a key without the case's id, out of the case

	later := time.Now().Add(time.Hour).Truncate(time.Second)
	var tasks []Task
	var pendingIDs []string
	for i := range 20 {
		id := fmt.Sprintf("r/%02d", i)
		tasks = append(tasks, Task{Type: "message:send", Payload: []byte(`{"to":"` + id + `"}`), ID: id, Queue: q, MaxRetry: 5})
		pendingIDs = append(pendingIDs, id)
	}
	tasks = append(tasks, Task{Type: "message:send", Payload: []byte(`{}`), ID: "r/later", Queue: q, ProcessAt: later})

	p.DropReplyTo([]byte(asynqBatchCmd.Hash()))
	created, err := w.Write(ctx, tasks, true)
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if n := p.Dropped(); n != 1 {
		return fmt.Errorf("%d replies lost, want 1: the case did not replay the script", n)
	}
	pending, err := rdb.LRange(ctx, rkeys.AsynqPending(q), 0, -1).Result()
	if err != nil {
		return err
	}
	var errs []error
	count := map[string]int{}
	for _, id := range pending {
		count[id]++
	}
	for _, id := range pendingIDs {
		if count[id] != 1 {
			errs = append(errs, fmt.Errorf("task %s is on pending %d times, want once", id, count[id]))
		}
	}
	if len(pending) != len(pendingIDs) {
		errs = append(errs, fmt.Errorf("pending holds %d ids for %d tasks", len(pending), len(pendingIDs)))
	}
	s, err := rdb.ZRangeWithScores(ctx, rkeys.AsynqScheduled(q), 0, -1).Result()
	if err != nil {
		return err
	}
	if len(s) != 1 || s[0].Member != "r/later" || s[0].Score != float64(later.Unix()) {
		errs = append(errs, fmt.Errorf("scheduled %v, want r/later at %d", s, later.Unix()))
	}
	for _, t := range tasks {
		h, err := rdb.HGetAll(ctx, rkeys.AsynqTask(q, t.ID)).Result()
		if err != nil {
			return err
		}
		if h["msg"] != string(encodeTaskMessage(t)) {
			errs = append(errs, fmt.Errorf("task %s: msg %q, want its encoded message", t.ID, h["msg"]))
		}
	}
	// Only the second run's reply arrives: it found every task the first run wrote.
	if len(created) != len(tasks) || slices.Contains(created, true) {
		errs = append(errs, fmt.Errorf("created %v, want all false (the second run's reply)", created))
	}
	return errors.Join(errs...)
}
