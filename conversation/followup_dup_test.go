package conversation_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// interleaved is an asynqbatch.Writer whose first write lets another copy of the webhook be
// handled first: the copy finds the entry the first one has just created, still in the
// outbox, and writes its task before the first copy writes it.
type interleaved struct {
	asynqbatch.Writer
	first  atomic.Bool
	before func()
}

func (w *interleaved) Write(ctx context.Context, ts []asynqbatch.Task, fresh bool) ([]bool, error) {
	if w.first.CompareAndSwap(false, true) {
		w.before()
	}
	return w.Writer.Write(ctx, ts, fresh)
}

// Two copies of one tap handled at once (the provider repeats webhooks, and a receiver serves
// them concurrently): the copy that finds the entry in the outbox may write the follow-up's
// task between the entry's creation and the creating copy's own write. The task must still be
// queued once: with its id twice in asynq's pending list, two workers take it together, and
// the second one's completion finds the task gone (asynq logs "Could not remove task ... NOT
// FOUND" at error level).
func TestFollowupTaskQueuedOnceWhenACopyWritesItFirst(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	ana := b.rcpts[0]
	w := &interleaved{Writer: asynqbatch.New(b.rdb)}
	fu, err := conversation.NewFollowups(conversation.FollowupConfig{Redis: b.rdb, Business: "biz", Tasks: w, Resolve: b.resolve, Now: b.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	var copyErr error
	w.before = func() { _, copyErr = fu.Reply(ctx, b.tap(ana, "Yes, show me")) }
	out, err := fu.Reply(ctx, b.tap(ana, "Yes, show me"))
	if err != nil || copyErr != nil || !out.Created {
		t.Fatalf("first copy %+v, %v; second copy %v", out, err, copyErr)
	}
	id := b.taskID(ledger.FollowupRun(b.run.ID, "interested"), ana)
	// A session message's follow-up, queued as a session campaign's send is.
	pending, err := b.rdb.LRange(ctx, rkeys.AsynqPending(campaigns.QueueFor(campaigns.SessionOnlyCategory)), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range pending {
		if p == id {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("follow-up task %s is %d times in the pending list %v; want once", id, n, pending)
	}
}
