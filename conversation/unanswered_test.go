package conversation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testlog"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// observed returns follow-ups on b's Redis with metrics and a log the test reads, that know
// runs besides the bundle's.
func (b *fuBundle) observed(t *testing.T, runs ...ledger.Run) (*conversation.Followups, *conversation.Metrics, *testlog.Buffer) {
	t.Helper()
	resolve := func(ctx context.Context, id string) (conversation.RunInfo, bool, error) {
		for _, r := range runs {
			if r.ID == id {
				return conversation.RunInfo{Run: r, Def: b.def}, true, nil
			}
		}
		return b.resolve(ctx, id)
	}
	m := conversation.NewMetrics(nil)
	logs := &testlog.Buffer{}
	fu, err := conversation.NewFollowups(conversation.FollowupConfig{Redis: b.rdb, Business: "biz", Tasks: b.tasks,
		Resolve: resolve, Now: b.clock.now, Metrics: m, Logger: zerolog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	return fu, m, logs
}

// failDelivery records a delivery_failed event for to's message in b's run.
func (b *fuBundle) failDelivery(t *testing.T, to string) {
	t.Helper()
	v, _, err := b.l.ApplyDelivery(context.Background(), ledger.DeliveryEvent{Address: ledger.AddressIn(b.run.ID, to, b.run.Buckets),
		State: ledger.Failed, Code: "ERROR_CODE_UNSPECIFIED", Class: "transient", MessageID: to})
	if err != nil || v != ledger.DeliveryApplied {
		t.Fatalf("delivery failure of %s: %s, %v", to, v, err)
	}
}

// A delivery_failed event can come after the message reached the person (ordering is not
// guaranteed, reference 5.1); a reply that names the message proves it did. Tapping the
// message's button (callbackData) or quoting it (context.replyToId) gets the follow-up.
func TestReplyNamingAMessageWhoseDeliveryFailedGetsItsFollowup(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	ana, bea := b.rcpts[0], b.rcpts[1]
	b.failDelivery(t, ana)
	out, err := b.fu.Reply(ctx, b.tap(ana, "Yes, show me"))
	if err != nil || !out.Created || out.Unanswered != "" {
		t.Fatalf("tap on a message whose delivery failed: %+v, %v", out, err)
	}
	if got := b.followupTasks("interested", ana, b.run.ID); got[0] != 1 {
		t.Fatal("no follow-up task for the tap")
	}

	// The same through context.replyToId, joined through the index of recent sends.
	pe := ledger.AddressIn(b.run.ID, bea, b.run.Buckets)
	if err := b.fu.Index().Record(ctx, b.run.ID, pe.Bucket, bea, b.clock.t.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	b.failDelivery(t, bea)
	r := conversation.Reply{Kind: webhooks.ReplyText, From: webhooks.Customer{Phone: bea}, At: b.clock.t, ReplyTo: bea,
		Text: "how much?", MessageID: "wamid.bea-1"}
	out, err = b.fu.Reply(ctx, r)
	if err != nil || out.Entry.Via != conversation.ViaReplyTo || !out.Created {
		t.Fatalf("quoted reply to a message whose delivery failed: %+v, %v", out, err)
	}

	// A reply that names no message is not joined to a run whose delivery failed.
	r = conversation.Reply{Kind: webhooks.ReplyText, From: webhooks.Customer{Phone: bea}, At: b.clock.t, Text: "how much?",
		MessageID: "wamid.bea-2"}
	if out, err = b.fu.Reply(ctx, r); err != nil || out.Entry.Run != "" {
		t.Fatalf("unnamed reply joined a run whose delivery failed: %+v, %v", out, err)
	}
}

// A reply that matches a rule on an entry whose message never reached the customer gets no
// follow-up, but not silently: the reason is counted, logged, and for a settled entry written
// as the rule's follow-up, skipped(not_reached), once however many copies of the reply come.
func TestReplyToAnEntryThatNeverReachedIsCountedLoggedAndSkipped(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	dan := b.rcpts[3] // still being sent in the setup
	if _, err := b.l.Finish(ctx, ledger.AddressIn(b.run.ID, dan, b.run.Buckets),
		ledger.Outcome{State: ledger.Failed, Code: "131026", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	fu, m, logs := b.observed(t)
	tap := b.tap(dan, "Not now")
	tap.MessageID = "wamid.dan-1"
	for i := range 3 {
		out, err := fu.Reply(ctx, tap)
		if err != nil || out.Unanswered != conversation.SkipNotReached || out.Rule != "later" {
			t.Fatalf("copy %d: %+v, %v", i, out, err)
		}
		if i == 0 && (out.Verdict != ledger.FollowupSkipped || !out.Created) {
			t.Fatalf("first copy: %+v", out)
		}
	}
	fe, ok, err := b.l.Entry(ctx, ledger.FollowupAddress(b.run.ID, "later", dan, b.run.Buckets))
	if err != nil || !ok || fe.State != ledger.Skipped || fe.Code != conversation.SkipNotReached {
		t.Fatalf("follow-up entry %+v (found %v, %v), want skipped(not_reached)", fe, ok, err)
	}
	if got := b.followupTasks("later", dan, b.run.ID); got[0] != 0 {
		t.Fatal("a task for a message that never reached the customer")
	}
	for outcome, want := range map[string]float64{"unanswerable": 1, "skipped": 1, "matched": 0, "created": 0} {
		if got := testutil.ToFloat64(m.Replies.WithLabelValues("promo", "later", outcome, conversation.ViaCallback)); got != want {
			t.Errorf("%s: %g, want %g", outcome, got, want)
		}
	}
	if n := strings.Count(logs.String(), "no follow-up"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), `"reason":"not_reached"`) {
		t.Errorf("log without its reason:\n%s", logs)
	}
}

// An entry whose send is still to come (queued) keeps the rule's one follow-up: the reply is
// counted and logged, nothing is written, and a reply once the message went gets it.
func TestReplyToAnEntryNotSentYetKeepsTheFollowup(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	cid := "+15550000009"
	run := b.run
	run.ID = "promo-queued"
	if err := b.l.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	a := ledger.AddressIn(run.ID, cid, run.Buckets)
	if _, err := b.l.PlanQueued(ctx, ledger.Batch{Run: run.ID, From: 0, To: 1,
		Entries: []ledger.PlanEntry{{Recipient: cid, Bucket: a.Bucket, Row: 1}}}); err != nil {
		t.Fatal(err)
	}
	fu, m, logs := b.observed(t, run)
	tap := conversation.Reply{Kind: webhooks.ReplyButton, From: webhooks.Customer{Phone: cid}, At: b.clock.t, Callback: &a,
		ButtonText: "Not now", MessageID: "wamid.cid-1"}
	out, err := fu.Reply(ctx, tap)
	if err != nil || out.Unanswered != conversation.UnansweredNotSent || out.Created {
		t.Fatalf("tap on a queued entry: %+v, %v", out, err)
	}
	if _, ok, _ := b.l.Entry(ctx, ledger.FollowupAddress(run.ID, "later", cid, run.Buckets)); ok {
		t.Fatal("a follow-up entry for an entry not sent yet")
	}
	if got := testutil.ToFloat64(m.Replies.WithLabelValues("promo", "later", "unanswerable", conversation.ViaCallback)); got != 1 {
		t.Errorf("unanswerable: %g, want 1", got)
	}
	if !strings.Contains(logs.String(), `"reason":"not_sent"`) {
		t.Errorf("not logged with its reason:\n%s", logs)
	}
	// The message goes; the next tap gets the follow-up.
	if _, err := b.l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: "m-cid", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	tap.MessageID = "wamid.cid-2"
	if out, err = fu.Reply(ctx, tap); err != nil || !out.Created {
		t.Fatalf("tap once sent: %+v, %v", out, err)
	}

	// A callbackData that names no entry of its run: counted and logged too.
	ghost := ledger.AddressIn(run.ID, "+15550000077", run.Buckets)
	tap = conversation.Reply{Kind: webhooks.ReplyButton, From: webhooks.Customer{Phone: "+15550000077"}, At: b.clock.t,
		Callback: &ghost, ButtonText: "Not now", MessageID: "wamid.ghost-1"}
	if out, err = fu.Reply(ctx, tap); err != nil || out.Unanswered != conversation.UnansweredNoEntry {
		t.Fatalf("tap naming no entry: %+v, %v", out, err)
	}
	if got := testutil.ToFloat64(m.Replies.WithLabelValues("promo", "later", "unanswerable", conversation.ViaCallback)); got != 2 {
		t.Errorf("unanswerable: %g, want 2", got)
	}
}
