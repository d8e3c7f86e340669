package conversation_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// onceBench is two runs of campaign promo (promo-1, promo-2) whose message to ana was
// accepted, for the rule interested (once_per: campaign).
type onceBench struct {
	rdb  redis.UniversalClient
	l    *ledger.Ledger
	fu   *conversation.Followups
	h    *conversation.History
	runs map[string]ledger.Run
	now  time.Time
}

const ana = "+15550000001"

func setupOnce(t *testing.T) *onceBench {
	t.Helper()
	m, rdb := testredis.Mini(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m.SetTime(now)
	clock := func() time.Time { return now }
	def, err := campaigns.Parse("promo.yaml", []byte(promoYAML))
	if err != nil {
		t.Fatal(err)
	}
	l := ledger.New(rdb, clock)
	ctx := context.Background()
	b := &onceBench{rdb: rdb, l: l, h: conversation.NewHistory(rdb, clock), runs: map[string]ledger.Run{}, now: now}
	for _, id := range []string{"promo-1", "promo-2"} {
		run := ledger.Run{ID: id, Campaign: "promo", Template: "spring_promo", Language: "en_US", Queue: "herald:marketing",
			Delivery: ledger.AtMostOnce, Buckets: 1, Created: now}
		if err := l.CreateRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		e := ledger.PlanEntry{Recipient: ana, Bucket: 0, Row: 1}
		if _, err := l.PlanQueued(ctx, ledger.Batch{Run: id, From: 0, To: 1, Entries: []ledger.PlanEntry{e}}); err != nil {
			t.Fatal(err)
		}
		a := ledger.Address{Run: id, Recipient: ana}
		if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: "wamid." + id, Attempt: 1}); err != nil {
			t.Fatal(err)
		}
		b.runs[id], _ = l.GetRun(ctx, id)
	}
	resolve := func(_ context.Context, id string) (conversation.RunInfo, bool, error) {
		r, ok := b.runs[id]
		return conversation.RunInfo{Run: r, Def: def}, ok, nil
	}
	b.fu, err = conversation.NewFollowups(conversation.FollowupConfig{Redis: rdb, Business: "biz", Tasks: &taskLog{tasks: map[string][]asynqbatch.Task{}}, Resolve: resolve, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *onceBench) tap(t *testing.T, run, id string) conversation.Outcome {
	t.Helper()
	cb := ledger.AddressIn(run, ana, 1)
	out, err := b.fu.Reply(context.Background(), conversation.Reply{Kind: webhooks.ReplyButton, From: webhooks.Customer{Phone: ana},
		At: b.now, Callback: &cb, ButtonText: "Yes, show me", MessageID: id})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// settle ends promo-1's follow-up to ana with outcome o.
func (b *onceBench) settle(t *testing.T, o ledger.Outcome) {
	t.Helper()
	ctx := context.Background()
	a := ledger.FollowupAddress("promo-1", "interested", ana, 1)
	if o.State == ledger.Skipped {
		if ok, err := b.l.Skip(ctx, a, o.Code); err != nil || ok != ledger.Skipped {
			t.Fatalf("skip: %v %v", ok, err)
		}
		return
	}
	if _, err := b.l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.Finish(ctx, a, o); err != nil {
		t.Fatal(err)
	}
}

// TestOncePerCampaignCancelledRunTakesNothing: a reply to a cancelled run creates no
// follow-up and takes no once_per: campaign slot, so the campaign's next run answers it.
func TestOncePerCampaignCancelledRunTakesNothing(t *testing.T) {
	t.Parallel()
	b := setupOnce(t)
	ctx := context.Background()
	if _, _, err := b.l.Cancel(ctx, "promo-1", "test"); err != nil {
		t.Fatal(err)
	}
	if out := b.tap(t, "promo-1", "wamid.r1"); out.Created || out.Unanswered != conversation.UnansweredCancelled {
		t.Fatalf("reply to a cancelled run: %+v, want nothing created (cancelled)", out)
	}
	if _, ok, err := b.l.Entry(ctx, ledger.FollowupAddress("promo-1", "interested", ana, 1)); err != nil || ok {
		t.Fatalf("follow-up entry of a cancelled run: %v %v, want none", ok, err)
	}
	if out := b.tap(t, "promo-2", "wamid.r2"); !out.Created {
		t.Fatalf("reply to the next run: %+v, want its follow-up created", out)
	}
}

// TestFollowupsCancelledOnACompletedRunTakeNothing: an operator cancelled the follow-ups of
// a completed run (run cancel RUN): a reply to it creates no follow-up, as for a cancelled run.
func TestFollowupsCancelledOnACompletedRunTakeNothing(t *testing.T) {
	t.Parallel()
	b := setupOnce(t)
	ctx := context.Background()
	if err := b.rdb.HSet(ctx, rkeys.Run("promo-1"), "status", string(ledger.RunCompleted)).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := b.l.CancelFollowups(ctx, "promo-1", "by ana: wrong link"); err != nil || !ok {
		t.Fatalf("cancel follow-ups: %v %v", ok, err)
	}
	if out := b.tap(t, "promo-1", "wamid.r1"); out.Created || out.Unanswered != conversation.UnansweredCancelled {
		t.Fatalf("reply to a run whose follow-ups are cancelled: %+v, want nothing created (cancelled)", out)
	}
	if _, ok, err := b.l.Entry(ctx, ledger.FollowupAddress("promo-1", "interested", ana, 1)); err != nil || ok {
		t.Fatalf("follow-up entry: %v %v, want none", ok, err)
	}
}

// TestOncePerCampaignSlotGivenBack: a follow-up that ended without a message going out
// (skipped, or refused by Connectly: failed with no message id) gives its once_per: campaign
// slot to the next run a reply asks it for; one that went keeps it, and the reply it does not
// answer is recorded with a note naming the run that answered.
func TestOncePerCampaignSlotGivenBack(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		outcome  ledger.Outcome
		answered bool
	}{
		{"skipped", ledger.Outcome{State: ledger.Skipped, Code: "cancelled"}, true},
		{"refused", ledger.Outcome{State: ledger.Failed, Code: "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW", Attempt: 1}, true},
		{"sent", ledger.Outcome{State: ledger.Accepted, MessageID: "wamid.fu", Attempt: 1}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setupOnce(t)
			if out := b.tap(t, "promo-1", "wamid.r1"); !out.Created {
				t.Fatalf("first reply: %+v, want created", out)
			}
			b.settle(t, c.outcome)
			out := b.tap(t, "promo-2", "wamid.r2")
			if c.answered {
				if !out.Created {
					t.Fatalf("reply to promo-2 after promo-1's follow-up %s: %+v, want created", c.name, out)
				}
				return
			}
			if out.Created || out.Unanswered != conversation.UnansweredOnceHeld || out.HeldBy != "promo-1" {
				t.Fatalf("reply to promo-2 after promo-1's follow-up went: %+v, want held by promo-1", out)
			}
			got, err := b.h.Read(context.Background(), "promo-2", ana)
			if err != nil || len(got) != 1 || got[0].Note != "once per campaign: answered in run promo-1" {
				t.Fatalf("conversation %+v (%v), want the note naming promo-1", got, err)
			}
		})
	}
}
