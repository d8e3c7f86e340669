package conversation_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
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
			// Enough recipients for several ledger buckets (64 a bucket): herald_b is not always 0.
			const n = 160
			buckets := ledger.BucketsFor(n)
			rcpts := make([]string, n)
			entries := make([]ledger.PlanEntry, n)
			var replies []fakeconnectly.Reply
			for i := range rcpts {
				rcpts[i] = fmt.Sprintf("+1555000%04d", i)
				entries[i] = ledger.PlanEntry{Recipient: rcpts[i], Bucket: ledger.BucketOf(rcpts[i], buckets), Row: i + 1}
				replies = append(replies, fakeconnectly.Reply{Numbers: []string{rcpts[i]}, Template: "spring_promo", Button: "Yes", Payload: "YES",
					Shape: fakeconnectly.ButtonShapes[i%len(fakeconnectly.ButtonShapes)], TopLevelEmpty: true})
			}
			b := newReplyBench(t, tapYAML, ledger.Run{ID: "taps-1", Campaign: "taps", Buckets: buckets}, entries,
				fakeconnectly.WebhookConfig{Seed: 3, DuplicatePercent: 100, CallbackEcho: echo, InboundTopic: true, Replies: replies})
			b.send(t, entries)
			l, run, tasks, fake, rc := b.l, b.run, b.tasks, b.fake, b.rc
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
