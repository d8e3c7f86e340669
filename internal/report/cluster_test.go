package report_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// TestClusterExplainReadsAFollowupsTask explains, on a Redis Cluster (HERALD_TEST_REDIS_CLUSTER),
// a recipient whose on_reply follow-up waits in asynq as a scheduled task: Explain finds the
// task through asynq's inspector (its queues, then the task in the follow-up run's queue) and
// says when it is due, as on one Redis. The test's keys and its queue are deleted afterwards.
func TestClusterExplainReadsAFollowupsTask(t *testing.T) {
	cc := testredis.Cluster(t)
	ctx := context.Background()
	campaign, run := testredis.UniqueName("explain-cluster"), testredis.UniqueName("explain-run")
	queue := "herald:" + testredis.UniqueName("explain-q")
	testredis.DeleteRunsAtCleanup(t, cc, campaign, run)
	testredis.DeleteAtCleanup(t, cc, queue)
	t.Cleanup(func() { cc.SRem(context.Background(), rkeys.AsynqQueues(), queue) })

	const to = "+447700900301"
	now := time.Now()
	l := ledger.New(cc, nil)
	r := ledger.Run{ID: run, Campaign: campaign, Delivery: ledger.AtMostOnce, Buckets: 1, Created: now}
	if err := l.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	addr := ledger.AddressIn(run, to, 1)
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: run, From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: to, Bucket: addr.Bucket, Row: 1}}}); err != nil {
		t.Fatal(err)
	}
	if c, err := l.Claim(ctx, addr, ledger.AtMostOnce); err != nil || c.Verdict != ledger.VerdictSend {
		t.Fatalf("Claim = %+v, %v", c, err)
	}
	if _, err := l.Finish(ctx, addr, ledger.Outcome{State: ledger.Accepted, MessageID: "m-1"}); err != nil {
		t.Fatal(err)
	}

	// The receiver's way: the follow-up's entry, its task (due in two hours), then out of the outbox.
	p := campaigns.SendPayload{Template: "nudge", Language: "en", Run: ledger.FollowupRun(run, "later"), To: to, Row: 1, Campaign: campaign}
	payload := campaigns.EncodeSend(p)
	res, err := l.CreateFollowup(ctx, ledger.Followup{Parent: ledger.ParentRun{ID: run, Campaign: campaign, Delivery: r.Delivery,
		Buckets: r.Buckets}, Rule: "later", Recipient: to, Row: 1, Payload: payload, Queue: queue})
	if err != nil || res.Verdict != ledger.FollowupCreated {
		t.Fatalf("CreateFollowup: %v, %v", res.Verdict, err)
	}
	id, err := l.TaskID(ctx, res.Run, to)
	if err != nil {
		t.Fatal(err)
	}
	due := now.Add(2 * time.Hour).Truncate(time.Second)
	if _, err := asynqbatch.New(cc).Write(ctx, []asynqbatch.Task{{Type: campaigns.TypeSend, Payload: payload, ID: id,
		Queue: queue, ProcessAt: due}}, false); err != nil {
		t.Fatal(err)
	}
	if err := l.FollowupQueued(ctx, res.Run, to); err != nil {
		t.Fatal(err)
	}

	rules := func(context.Context, ledger.Run) []string { return []string{"later"} }
	x, err := report.Explain(ctx, l, cc, report.ExplainParams{Run: run, Recipient: to, Shown: to, RuleIDs: rules, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Followups) != 1 {
		t.Fatalf("follow-ups %+v, want one", x.Followups)
	}
	f := x.Followups[0]
	if f.Task != asynq.TaskStateScheduled.String() || f.Due == nil || !f.Due.Equal(due) {
		t.Errorf("follow-up %+v (due %v), want its task scheduled, due %v", f, f.Due, due)
	}
}
