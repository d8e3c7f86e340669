package conversation_test

import (
	"context"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
)

const sizesYAML = `
id: sizes
template: {name: spring_promo, language: en_US}
audience: {file: audience.csv}
on_reply:
  - name: medium
    list_row: size_m
    message: {text: "Medium it is: {{ .list_row }} ({{ .reply }})"}
  - name: other
    any: true
    none: true
`

// A list choice matches a list_row rule in every form a receiver may meet it (reference 5.4
// documents no list reply shape; the fake's webhooks.listReply gives three readings): a
// listResponse {id, text}, a listResponse {id, title}, and a buttonResponse {text, payload}
// carrying the row's title and id the way a button reply is documented. Each time the rule's
// follow-up is created, and renders the row's id and title. Before, the buttonResponse form
// was read as a tap on a button and no list_row rule ever matched it.
func TestListRowRuleMatchesEveryListReplyForm(t *testing.T) {
	t.Parallel()
	for _, form := range []string{fakeconnectly.ListReplyResponse, fakeconnectly.ListReplyTitle, fakeconnectly.ListReplyButton} {
		t.Run(form, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			const to = "+15550000001"
			entries := []ledger.PlanEntry{{Recipient: to, Row: 1}}
			b := newReplyBench(t, sizesYAML, ledger.Run{ID: "sizes-1", Campaign: "sizes", Buckets: 1}, entries,
				fakeconnectly.WebhookConfig{ListReply: form})
			b.send(t, entries)
			l, run, tasks, fake := b.l, b.run, b.tasks, b.fake
			if _, err := fake.Inbound(to, fakeconnectly.Reply{Button: "Medium", Payload: "size_m", Shape: fakeconnectly.ReplyList}); err != nil {
				t.Fatal(err)
			}
			id, err := l.TaskID(ctx, ledger.FollowupRun(run.ID, "medium"), to)
			if err != nil {
				t.Fatal(err)
			}
			var written []asynqbatch.Task
			testredis.WaitUntil(t, 10*time.Second, "the list_row rule's follow-up task", func() bool {
				tasks.mu.Lock()
				defer tasks.mu.Unlock()
				written = tasks.tasks[id]
				return len(written) > 0
			})
			if len(written) != 1 {
				t.Fatalf("%d tasks of the list_row rule's follow-up, want 1", len(written))
			}
			p, err := campaigns.DecodeSend(written[0].Payload)
			if err != nil {
				t.Fatal(err)
			}
			content, err := campaigns.DecodeSession(p.Session)
			if err != nil || content.Text != "Medium it is: size_m (Medium)" {
				t.Fatalf("follow-up %q (%v), want the row's id and title", content.Text, err)
			}
		})
	}
}
