package conversation_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
)

const tapYAML = `
id: taps
template: {name: spring_promo, language: en_US}
audience: {file: audience.csv}
on_reply:
  - name: yes
    button: "Yes"
    message: {text: "Here it is"}
`

// A button tap in each of its documented forms (README's isButtonResponse, the GitBook's
// context + buttonResponse, a top-level buttonResponse, the same without a message object),
// carrying the topic and the top-level empties, whose callbackData comes back as sent, as a
// JSON string or re-encoded (keys sorted, numbers as floats), each delivered twice: the
// receiver joins it to the run by the callbackData (ledger.ParseCallback) and the rule's
// follow-up is created once, with one task, for every tapper.
func TestFollowupsOnceWhateverTheCallbackEcho(t *testing.T) {
	t.Parallel()
	for _, echo := range []string{fakeconnectly.CallbackAsSent, fakeconnectly.CallbackString, fakeconnectly.CallbackReencoded} {
		t.Run(echo, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			const business, key, secret = "biz-taps", "key-0123456789abcdef", "whsec-taps-0123456789"
			_, rdb := testredis.Mini(t)
			def, err := campaigns.Parse("taps.yaml", []byte(tapYAML))
			if err != nil {
				t.Fatal(err)
			}
			l := ledger.New(rdb, nil)
			// Enough recipients for several ledger buckets (64 a bucket): herald_b is not always 0.
			const n = 160
			run := ledger.Run{ID: "taps-1", Campaign: "taps", Template: "spring_promo", Language: "en_US", Queue: "herald:marketing",
				Delivery: ledger.AtMostOnce, Buckets: ledger.BucketsFor(n), Created: time.Now().Add(-time.Minute)}
			if err := l.CreateRun(ctx, run); err != nil {
				t.Fatal(err)
			}
			rcpts := make([]string, n)
			entries := make([]ledger.PlanEntry, n)
			for i := range rcpts {
				rcpts[i] = fmt.Sprintf("+1555000%04d", i)
				entries[i] = ledger.PlanEntry{Recipient: rcpts[i], Bucket: ledger.BucketOf(rcpts[i], run.Buckets), Row: i + 1}
			}
			if _, err := l.PlanQueued(ctx, ledger.Batch{Run: run.ID, From: 0, To: n, Entries: entries}); err != nil {
				t.Fatal(err)
			}
			run, _ = l.GetRun(ctx, run.ID)
			tasks := &taskLog{tasks: map[string][]asynqbatch.Task{}}
			fu, err := conversation.NewFollowups(conversation.FollowupConfig{Redis: rdb, Business: business, Tasks: tasks,
				Resolve: func(_ context.Context, id string) (conversation.RunInfo, bool, error) {
					return conversation.RunInfo{Run: run, Def: def}, id == run.ID, nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			rc, err := webhooks.New(webhooks.Config{Secrets: []string{secret}, Business: business},
				webhooks.Deps{Redis: rdb, Logger: zerolog.Nop(), Replies: fu})
			if err != nil {
				t.Fatal(err)
			}
			hooks := httptest.NewServer(rc)
			t.Cleanup(hooks.Close)
			var replies []fakeconnectly.Reply
			for i, to := range rcpts {
				replies = append(replies, fakeconnectly.Reply{Numbers: []string{to}, Button: "Yes", Payload: "YES",
					Shape: fakeconnectly.ButtonShapes[i%len(fakeconnectly.ButtonShapes)], TopLevelEmpty: true})
			}
			fake, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: business, APIKey: key, RateLimit: -1,
				Webhooks: fakeconnectly.WebhookConfig{URL: hooks.URL + "/", Secret: secret, Seed: 3, DuplicatePercent: 100,
					CallbackEcho: echo, InboundTopic: true, Replies: replies}})
			client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: business, APIKey: key})
			if err != nil {
				t.Fatal(err)
			}
			// Each send as the worker makes it: claimed, sent with the entry's address as
			// callbackData, its accept recorded.
			for _, e := range entries {
				a := ledger.Address{Run: run.ID, Recipient: e.Recipient, Bucket: e.Bucket}
				if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
					t.Fatal(err)
				}
				res, err := client.SendTemplate(ctx, connectly.TemplateMessage{Number: e.Recipient, TemplateName: run.Template,
					Language: run.Language, CallbackData: a.Callback()})
				if err != nil {
					t.Fatalf("send to %s: %v", e.Recipient, err)
				}
				if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: res.ID, Attempt: 1}); err != nil {
					t.Fatal(err)
				}
			}
			testredis.WaitUntil(t, 30*time.Second, "every tap delivered and the receiver idle", func() bool {
				for _, to := range rcpts {
					rs := fake.RepliesFrom(to)
					if len(rs) != 1 || !rs[0].Delivered {
						return false
					}
				}
				if fake.WebhookStats().Pending != 0 {
					return false
				}
				_, _, err := rc.RetryParked(ctx)
				parked, perr := rc.Parked(ctx)
				return err == nil && perr == nil && parked == 0
			})

			fuRun := ledger.FollowupRun(run.ID, "yes")
			for _, to := range rcpts {
				e, ok, err := l.Entry(ctx, ledger.FollowupAddress(run.ID, "yes", to, run.Buckets))
				if err != nil || !ok || e.State != ledger.Queued {
					t.Errorf("%s: follow-up entry %+v (found %v, %v), want one queued", to, e, ok, err)
				}
				if len(fake.RepliesFrom(to)[0].CallbackData) == 0 {
					t.Errorf("%s: the tap carried no callbackData", to)
				}
			}
			c, err := l.Counters(ctx, fuRun)
			if err != nil {
				t.Fatal(err)
			}
			if c.States[ledger.Queued] != n || c.Sum() != n {
				t.Errorf("follow-up run: states %v, want %d queued and nothing else", c.States, n)
			}
			tasks.mu.Lock()
			distinct := len(tasks.tasks)
			tasks.mu.Unlock()
			if distinct != n {
				t.Errorf("%d distinct follow-up tasks, want one per tapper (%d)", distinct, n)
			}
			d, err := l.DeliveryStats(ctx, run.ID)
			if err != nil {
				t.Fatal(err)
			}
			if d.Replies != n || d.ButtonReplies["Yes"] != n {
				t.Errorf("run statistics: %d replies, taps %v; want %d, each copy counted once", d.Replies, d.ButtonReplies, n)
			}
			if st := fake.WebhookStats(); st.ByStatus["reply"] < 2*n {
				t.Errorf("the fake delivered %d replies, want every one twice (%d)", st.ByStatus["reply"], 2*n)
			}
		})
	}
}
