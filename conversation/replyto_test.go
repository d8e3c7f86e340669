package conversation_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// seedSent creates run in the ledger with one entry, to's, accepted as message mid, records
// the send in the index of recent sends until until, and returns the entry's ledger bucket.
// The run's keys are deleted when the test ends (the Redis suite shares its database).
func seedSent(t *testing.T, b *joinBundle, run, to, mid string, until time.Time) int {
	t.Helper()
	ctx := context.Background()
	const buckets = 4
	campaign := "c-" + run
	t.Cleanup(func() {
		keys, _ := b.rdb.Keys(ctx, rkeys.Run(run)+"*").Result()
		if len(keys) > 0 {
			b.rdb.Del(ctx, keys...)
		}
		b.rdb.ZRem(ctx, rkeys.Runs(), run)
		b.rdb.Del(ctx, rkeys.CampaignRuns(campaign))
		b.rdb.ZRem(ctx, rkeys.Campaigns(), campaign)
	})
	l := ledger.New(b.rdb, b.clock.now)
	if err := l.CreateRun(ctx, ledger.Run{ID: run, Campaign: campaign, Delivery: ledger.AtMostOnce, Buckets: buckets, Created: b.clock.t}); err != nil {
		t.Fatal(err)
	}
	pe := ledger.PlanEntry{Recipient: to, Bucket: ledger.BucketOf(to, buckets), Row: 1}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: run, From: 0, To: 1, Entries: []ledger.PlanEntry{pe}}); err != nil {
		t.Fatal(err)
	}
	a := ledger.Address{Run: run, Recipient: to, Bucket: pe.Bucket}
	if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: mid, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	recordOnly(t, b, run, pe.Bucket, to, until)
	return pe.Bucket
}

// buttonTo is a button reply from phone with no callbackData that names the message it
// answers (context.replyToId + buttonResponse).
func buttonTo(phone, replyTo string) conversation.Reply {
	return conversation.Reply{Kind: webhooks.ReplyButton, From: webhooks.Customer{Phone: phone}, ReplyTo: replyTo,
		ButtonText: "Yes", ButtonPayload: "YES"}
}

func TestJoinReplyTo(t *testing.T) {
	t.Parallel()
	const ana = "+15550001111"

	// Runs A then B messaged the customer; a reply naming A's message joins A, not the
	// newest run.
	t.Run("JoinsTheRunWhoseMessageItAnswers", func(t *testing.T) {
		joinSuite(t, func(t *testing.T, b *joinBundle) {
			until := b.clock.t.Add(48 * time.Hour)
			runA, runB := b.biz+"-a", b.biz+"-b"
			bucketA := seedSent(t, b, runA, ana, "wamid.A", until)
			bucketB := seedSent(t, b, runB, ana, "01ARZ3NDEKTSV4RRFFQ69G5FAV", until)
			e, ok := mustJoin(t, b, buttonTo(ana, "wamid.A"))
			want := conversation.Entry{Run: runA, Bucket: bucketA, Recipient: ana, Via: conversation.ViaReplyTo}
			if !ok || e != want {
				t.Fatalf("Join = %+v, %v; want %+v", e, ok, want)
			}
			// B's message id is a ULID, which the ledger keeps packed: it is found all the same.
			e, ok = mustJoin(t, b, buttonTo(ana, "01ARZ3NDEKTSV4RRFFQ69G5FAV"))
			want = conversation.Entry{Run: runB, Bucket: bucketB, Recipient: ana, Via: conversation.ViaReplyTo}
			if !ok || e != want {
				t.Fatalf("Join = %+v, %v; want %+v", e, ok, want)
			}
			// A quoted text reply names its message the same way.
			text := textFrom(ana, "")
			text.ReplyTo = "wamid.A"
			if e, ok := mustJoin(t, b, text); !ok || e.Run != runA || e.Via != conversation.ViaReplyTo {
				t.Fatalf("quoted text: Join = %+v, %v; want %s", e, ok, runA)
			}
		})
	})

	t.Run("NamingNoCandidateFallsBackToTheNewestRun", func(t *testing.T) {
		joinSuite(t, func(t *testing.T, b *joinBundle) {
			until := b.clock.t.Add(48 * time.Hour)
			runA, runB := b.biz+"-a", b.biz+"-b"
			seedSent(t, b, runA, ana, "wamid.A", until)
			bucketB := seedSent(t, b, runB, ana, "wamid.B", until)
			e, ok := mustJoin(t, b, buttonTo(ana, "wamid.of-a-run-without-on_reply"))
			want := conversation.Entry{Run: runB, Bucket: bucketB, Recipient: ana, Via: conversation.ViaRecent}
			if !ok || e != want {
				t.Fatalf("Join = %+v, %v; want %+v", e, ok, want)
			}
			// A's message id recorded for another customer is not this customer's.
			if e, ok := mustJoin(t, b, buttonTo("+15550002222", "wamid.A")); ok {
				t.Fatalf("another customer: Join = %+v, want none", e)
			}
		})
	})

	t.Run("CallbackWinsOverReplyTo", func(t *testing.T) {
		joinSuite(t, func(t *testing.T, b *joinBundle) {
			until := b.clock.t.Add(48 * time.Hour)
			runA, runB := b.biz+"-a", b.biz+"-b"
			seedSent(t, b, runA, ana, "wamid.A", until)
			bucketB := seedSent(t, b, runB, ana, "wamid.B", until)
			r := buttonTo(ana, "wamid.A")
			r.Callback = &ledger.Address{Run: runB, Recipient: ana, Bucket: bucketB}
			e, ok := mustJoin(t, b, r)
			want := conversation.Entry{Run: runB, Bucket: bucketB, Recipient: ana, Via: conversation.ViaCallback}
			if !ok || e != want {
				t.Fatalf("Join = %+v, %v; want %+v", e, ok, want)
			}
		})
	})

	// Only answerable runs are candidates: once A's until has passed, a reply naming A's
	// message goes to the newest run still answerable.
	t.Run("OnlyAnswerableRunsAreCandidates", func(t *testing.T) {
		joinSuite(t, func(t *testing.T, b *joinBundle) {
			runA, runB := b.biz+"-a", b.biz+"-b"
			seedSent(t, b, runA, ana, "wamid.A", b.clock.t.Add(time.Hour))
			seedSent(t, b, runB, ana, "wamid.B", b.clock.t.Add(48*time.Hour))
			b.forward(2 * time.Hour)
			if e, ok := mustJoin(t, b, buttonTo(ana, "wamid.A")); !ok || e.Run != runB || e.Via != conversation.ViaRecent {
				t.Fatalf("Join = %+v, %v; want %s via %s", e, ok, runB, conversation.ViaRecent)
			}
		})
	})
}

// roundTrips counts a client's round trips: each command, each pipeline.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestJoinRoundTrips: a reply without callbackData costs the join three round trips whatever
// the number of candidates: the index, the candidates' runs, and their ledger entries (which
// say whether each run's message reached the customer, and which one a reply names).
func TestJoinRoundTrips(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	b := &joinBundle{rdb: rdb, clock: c, biz: "biz", idx: conversation.NewIndex(rdb, "biz", c.now)}
	const ana = "+15550001111"
	for _, run := range []string{"run-a", "run-b", "run-c"} {
		seedSent(t, b, run, ana, "wamid."+run, c.t.Add(time.Hour))
	}
	// The customer is known by a BSUID too, and run-d, the newest, messaged them by it: four
	// candidates under two ids.
	mustRecord(t, b, "run-d", 0, "bsuid:US.1", c.t.Add(time.Hour))
	h := &roundTrips{}
	rdb.AddHook(h)
	for _, tc := range []struct {
		r    conversation.Reply
		want int64
		run  string
	}{
		{textFrom(ana, "US.1"), 3, "run-d"},
		{buttonTo(ana, ""), 3, "run-d"},
		{buttonTo(ana, "wamid.run-a"), 3, "run-a"},
		{buttonTo(ana, "wamid.unknown"), 3, "run-d"},
	} {
		tc.r.From.BSUID = "US.1"
		h.n.Store(0)
		e, ok := mustJoin(t, b, tc.r)
		if !ok || e.Run != tc.run {
			t.Fatalf("Join(reply to %q) = %+v, %v; want %s", tc.r.ReplyTo, e, ok, tc.run)
		}
		if n := h.n.Load(); n != tc.want {
			t.Errorf("Join(reply to %q): %d round trips, want %d", tc.r.ReplyTo, n, tc.want)
		}
	}
}

// TestFollowupsReplyToOlderRun: with two runs of the campaign sent to the customer, a tap
// without callbackData that names the first run's message creates the first run's follow-up.
func TestFollowupsReplyToOlderRun(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	ana := b.rcpts[0]
	run2 := b.run
	run2.ID = "promo-2"
	if err := b.l.CreateRun(ctx, run2); err != nil {
		t.Fatal(err)
	}
	pe := ledger.PlanEntry{Recipient: ana, Bucket: ledger.BucketOf(ana, run2.Buckets), Row: 1}
	if _, err := b.l.PlanQueued(ctx, ledger.Batch{Run: run2.ID, From: 0, To: 1, Entries: []ledger.PlanEntry{pe}}); err != nil {
		t.Fatal(err)
	}
	a := ledger.Address{Run: run2.ID, Recipient: ana, Bucket: pe.Bucket}
	if _, err := b.l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: "wamid.second", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	resolve := func(ctx context.Context, id string) (conversation.RunInfo, bool, error) {
		if id == run2.ID {
			return conversation.RunInfo{Run: run2, Def: b.def}, true, nil
		}
		return b.resolve(ctx, id)
	}
	fu, err := conversation.NewFollowups(conversation.FollowupConfig{Redis: b.rdb, Business: "biz", Tasks: b.tasks, Resolve: resolve, Now: b.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	until := b.clock.t.Add(72 * time.Hour)
	for _, run := range []string{b.run.ID, run2.ID} {
		if err := fu.Index().Record(ctx, run, ledger.BucketOf(ana, b.run.Buckets), ana, until); err != nil {
			t.Fatal(err)
		}
	}
	// setupFollowups accepted each first-run message under its recipient as the message id.
	tap := conversation.Reply{Kind: webhooks.ReplyButton, From: webhooks.Customer{Phone: ana}, At: b.clock.t,
		ReplyTo: ana, ButtonText: "Not now"}
	out, err := fu.Reply(ctx, tap)
	if err != nil {
		t.Fatal(err)
	}
	if out.Entry.Run != b.run.ID || out.Entry.Via != conversation.ViaReplyTo || out.Rule != "later" || !out.Created {
		t.Fatalf("Reply = %+v; want run %s's rule later created", out, b.run.ID)
	}
	if id := b.taskID(ledger.FollowupRun(b.run.ID, "later"), ana); len(b.tasks.tasks[id]) != 1 {
		t.Fatalf("no task for %s's follow-up", b.run.ID)
	}
	if id := b.taskID(ledger.FollowupRun(run2.ID, "later"), ana); len(b.tasks.tasks[id]) != 0 {
		t.Fatalf("a follow-up of %s, whose message was not answered", run2.ID)
	}
}
