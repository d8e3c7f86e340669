package conversation_test

import (
	"context"
	"testing"
	"time"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// TestClusterJoin plays a reply's way on a Redis Cluster (HERALD_TEST_REDIS_CLUSTER): two
// runs of a business of its own message one customer (ledger entries accepted, sends recorded
// in the index of recent sends, audience columns stored), and the customer's replies join
// them: a typed answer to the newer run, one naming the older run's message to that one, both
// reading ledger entries of runs on different slots in one pipeline; each reply is kept once
// in the conversation history. Every script's KEYS must lie in one slot. The test's keys are
// deleted afterwards.
func TestClusterJoin(t *testing.T) {
	cc := testredis.Cluster(t)
	ctx := context.Background()
	biz, campaign := testredis.UniqueName("conv-cluster"), testredis.UniqueName("conv-cluster-campaign")
	older, newer := testredis.UniqueName("conv-run-a"), testredis.UniqueName("conv-run-b")
	testredis.DeleteAtCleanup(t, cc, biz)
	testredis.DeleteRunsAtCleanup(t, cc, campaign, older, newer)

	const phone, bsuid = "+15557770001", "US.13491208655302741918"
	l := ledger.New(cc, nil)
	idx := conversation.NewIndex(cc, biz, nil)
	cols := conversation.NewColumns(cc)
	until := time.Now().Add(time.Hour)
	mids := map[string]string{older: "m-older", newer: "m-newer"}
	for i, run := range []string{older, newer} {
		if err := l.CreateRun(ctx, ledger.Run{ID: run, Campaign: campaign, Delivery: ledger.AtMostOnce, Buckets: 1,
			Created: time.Now().Add(time.Duration(i-2) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		a := ledger.Address{Run: run, Bucket: ledger.BucketOf(phone, 1), Recipient: phone}
		if _, err := l.PlanQueued(ctx, ledger.Batch{Run: run, From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: phone, Bucket: a.Bucket, Row: 1}}}); err != nil {
			t.Fatal(err)
		}
		if err := l.MarkQueuedAt(ctx, run, 0, 1, 0); err != nil {
			t.Fatal(err)
		}
		// As the worker does before the request: the send is recorded, its columns stored.
		if err := idx.Record(ctx, run, a.Bucket, phone, until); err != nil {
			t.Fatal(err)
		}
		if err := cols.Save(ctx, a, map[string]string{"first_name": "ana", "run": run}, until); err != nil {
			t.Fatal(err)
		}
		c, err := l.Claim(ctx, a, ledger.AtMostOnce)
		if err != nil || c.Verdict != ledger.VerdictSend {
			t.Fatalf("Claim in %s = %+v, %v", run, c, err)
		}
		if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: mids[run], Attempt: c.Attempts}); err != nil {
			t.Fatal(err)
		}
		if got, err := cols.Load(ctx, a); err != nil || got["run"] != run {
			t.Fatalf("columns of %s = %v, %v", run, got, err)
		}
	}

	from := webhooks.Customer{Phone: phone, BSUID: bsuid}
	typed := conversation.Reply{Kind: webhooks.ReplyText, From: from, Text: "yes", MessageID: "in-1", At: time.Now()}
	e, ok, err := idx.Join(ctx, typed)
	if err != nil || !ok || e.Run != newer || e.Via != conversation.ViaRecent {
		t.Fatalf("Join(typed) = %+v, %v, %v; want the newer run %s by the index", e, ok, err, newer)
	}
	quoted := conversation.Reply{Kind: webhooks.ReplyText, From: from, Text: "this one", MessageID: "in-2", ReplyTo: mids[older]}
	q, ok, err := idx.Join(ctx, quoted)
	if err != nil || !ok || q.Run != older || q.Via != conversation.ViaReplyTo {
		t.Fatalf("Join(quoted) = %+v, %v, %v; want the older run %s by its message", q, ok, err, older)
	}

	h := conversation.NewHistory(cc, nil)
	for range 2 { // a webhook delivered twice is kept once
		if _, err := h.Record(ctx, e, typed, typed.MessageID, ""); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := h.Read(ctx, newer, phone); err != nil || len(got) != 1 {
		t.Fatalf("history of %s = %+v, %v; want the one reply", newer, got, err)
	}
}
