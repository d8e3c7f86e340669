package conversation_test

import (
	"context"
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
			const business, key, secret, to = "biz-sizes", "key-0123456789abcdef", "whsec-sizes-0123456789", "+15550000001"
			_, rdb := testredis.Mini(t)
			def, err := campaigns.Parse("sizes.yaml", []byte(sizesYAML))
			if err != nil {
				t.Fatal(err)
			}
			l := ledger.New(rdb, nil)
			run := ledger.Run{ID: "sizes-1", Campaign: "sizes", Template: "spring_promo", Language: "en_US", Queue: "herald:marketing",
				Delivery: ledger.AtMostOnce, Buckets: 1, Created: time.Now().Add(-time.Minute)}
			if err := l.CreateRun(ctx, run); err != nil {
				t.Fatal(err)
			}
			a := ledger.Address{Run: run.ID, Recipient: to}
			if _, err := l.PlanQueued(ctx, ledger.Batch{Run: run.ID, From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: to, Row: 1}}}); err != nil {
				t.Fatal(err)
			}
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
			fake, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: business, APIKey: key, RateLimit: -1,
				Webhooks: fakeconnectly.WebhookConfig{URL: hooks.URL + "/", Secret: secret, ListReply: form}})
			client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: business, APIKey: key})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
				t.Fatal(err)
			}
			res, err := client.SendTemplate(ctx, connectly.TemplateMessage{Number: to, TemplateName: run.Template,
				Language: run.Language, CallbackData: a.Callback()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: res.ID, Attempt: 1}); err != nil {
				t.Fatal(err)
			}
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
