package conversation_test

import (
	"context"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// A follow-up is queued by its own category, as a campaign's send of that category is, not
// on the queue of the run it follows: a session message without a fallback template goes in
// the utility queue (so pausing herald:marketing does not hold the answer to a customer's
// tap, nor does it wait at marketing's weight), a template follow-up in its template's
// category's. Every writer agrees: the receiver, a copy finding the entry pending, the
// outbox sweep, and the follow-up run's queue that `run show RUN~RULE` and the resend of an
// unknown follow-up read. A follow-up run created by an earlier version, with its parent's
// queue, takes its own with its next entry.
func TestFollowupQueuedByItsCategory(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	ana, bea, cid := b.rcpts[0], b.rcpts[1], b.rcpts[2]
	utility, marketing := campaigns.QueueFor(campaigns.SessionOnlyCategory), campaigns.QueueFor("marketing")
	if b.run.Queue != marketing {
		t.Fatalf("the parent run's queue is %s; the test wants a marketing run", b.run.Queue)
	}
	queueOf := func(rule, to string) string {
		t.Helper()
		tasks := b.tasks.tasks[b.taskID(ledger.FollowupRun(b.run.ID, rule), to)]
		if len(tasks) == 0 {
			t.Fatalf("no task for %s's %s follow-up", to, rule)
		}
		q := tasks[len(tasks)-1].Queue
		for _, task := range tasks {
			if task.Queue != q {
				t.Fatalf("%s's %s follow-up written on %s and %s", to, rule, task.Queue, q)
			}
		}
		return q
	}
	runQueue := func(rule string) string {
		t.Helper()
		r, err := b.l.GetRun(ctx, ledger.FollowupRun(b.run.ID, rule))
		if err != nil {
			t.Fatal(err)
		}
		return r.Queue
	}
	want := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %s, want %s", what, got, want)
		}
	}

	// A follow-up run as an earlier version left it: created with its parent's queue.
	interested := ledger.FollowupRun(b.run.ID, "interested")
	if err := b.rdb.HSet(ctx, rkeys.Run(interested), "id", interested, "queue", marketing, "status", "running").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.fu.Reply(ctx, b.tap(ana, "Yes, show me")); err != nil {
		t.Fatal(err)
	}
	want("session follow-up's task", queueOf("interested", ana), utility)
	want("session follow-up run's queue", runQueue("interested"), utility)

	if _, err := b.fu.Reply(ctx, b.tap(bea, "Not now")); err != nil {
		t.Fatal(err)
	}
	want("template follow-up's task", queueOf("later", bea), marketing)
	want("template follow-up run's queue", runQueue("later"), marketing)

	// A receiver that stops between the entry and its task: the copy of the reply that finds
	// the entry pending, and the outbox sweep, write it on the same queue.
	b.tasks.fail = true
	if _, err := b.fu.Reply(ctx, b.tap(cid, "Yes, show me")); err == nil {
		t.Fatal("a failed task write must fail the reply")
	}
	b.tasks.fail = false
	if _, err := b.fu.Reply(ctx, b.tap(cid, "Yes, show me")); err != nil {
		t.Fatal(err)
	}
	want("a pending follow-up's task", queueOf("interested", cid), utility)

	b.leaveInOutbox(t, ana)
	b.clock.t = b.clock.t.Add(2 * time.Minute)
	if n, err := b.fu.Sweep(ctx, time.Minute); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	want("the swept follow-up's task", queueOf("price", ana), utility)
	want("the swept follow-up run's queue", runQueue("price"), utility)
}

// A follow-up task an earlier Herald wrote on the queue of the run it follows, and left in
// the outbox (its receiver stopped before marking it queued), is not written again on its
// category's queue: asynq's check of an id is per queue, and two tasks of one recipient in two
// queues would be taken by two workers at once.
func TestFollowupWrittenOnAnotherQueueIsNotWrittenAgain(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	ana := b.rcpts[0]
	b.leaveInOutbox(t, ana)
	id := b.taskID(ledger.FollowupRun(b.run.ID, "price"), ana)
	delete(b.tasks.tasks, id) // the failed write of this version: the earlier one's stands below
	old := campaigns.QueueFor("marketing")
	if err := b.rdb.HSet(ctx, rkeys.AsynqTask(old, id), "msg", "written by an earlier Herald").Err(); err != nil {
		t.Fatal(err)
	}
	b.clock.t = b.clock.t.Add(2 * time.Minute)
	if _, err := b.fu.Sweep(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	if tasks := b.tasks.tasks[id]; len(tasks) != 0 {
		t.Fatalf("the follow-up was written again: %+v", tasks)
	}
	if n, err := b.fu.Sweep(ctx, time.Minute); err != nil || n != 0 {
		t.Fatalf("a second sweep: %d, %v; want the entry marked queued, nothing left", n, err)
	}
}
