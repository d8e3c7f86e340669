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

// replyBench is a run of a campaign whose entries are planned, the follow-ups and webhook
// receiver Herald installs in front of it, and the fake Connectly that sends to those
// entries and calls the receiver back with their replies.
type replyBench struct {
	l      *ledger.Ledger
	run    ledger.Run
	tasks  *taskLog
	rc     *webhooks.Receiver
	fake   *fakeconnectly.Server
	client *connectly.Client
}

// newReplyBench creates run from the campaign in yamlText with entries planned and queued,
// and starts the receiver and the fake with hooks (its URL and secret are set here).
func newReplyBench(t *testing.T, yamlText string, run ledger.Run, entries []ledger.PlanEntry, hooks fakeconnectly.WebhookConfig) *replyBench {
	t.Helper()
	ctx := context.Background()
	const business, key, secret = "biz-replies", "key-0123456789abcdef", "whsec-replies-0123456789"
	_, rdb := testredis.Mini(t)
	def, err := campaigns.Parse(run.Campaign+".yaml", []byte(yamlText))
	if err != nil {
		t.Fatal(err)
	}
	b := &replyBench{l: ledger.New(rdb, nil), tasks: &taskLog{tasks: map[string][]asynqbatch.Task{}}}
	run.Template, run.Language, run.Queue, run.Delivery = "spring_promo", "en_US", "herald:marketing", ledger.AtMostOnce
	run.Created = time.Now().Add(-time.Minute)
	if err := b.l.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.PlanQueued(ctx, ledger.Batch{Run: run.ID, From: 0, To: len(entries), Entries: entries}); err != nil {
		t.Fatal(err)
	}
	if b.run, err = b.l.GetRun(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	fu, err := conversation.NewFollowups(conversation.FollowupConfig{Redis: rdb, Business: business, Tasks: b.tasks,
		Resolve: func(_ context.Context, id string) (conversation.RunInfo, bool, error) {
			return conversation.RunInfo{Run: b.run, Def: def}, id == b.run.ID, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if b.rc, err = webhooks.New(webhooks.Config{Secrets: []string{secret}, Business: business},
		webhooks.Deps{Redis: rdb, Logger: zerolog.Nop(), Replies: fu}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b.rc)
	t.Cleanup(srv.Close)
	hooks.URL, hooks.Secret = srv.URL+"/", secret
	fake, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: business, APIKey: key, RateLimit: -1, Webhooks: hooks})
	b.fake = fake
	if b.client, err = connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: business, APIKey: key}); err != nil {
		t.Fatal(err)
	}
	return b
}

// send sends the run's template to each entry as the worker does: claimed, sent with the
// entry's address as callbackData, its accept recorded.
func (b *replyBench) send(t *testing.T, entries []ledger.PlanEntry) {
	t.Helper()
	ctx := context.Background()
	for _, e := range entries {
		a := ledger.Address{Run: b.run.ID, Recipient: e.Recipient, Bucket: e.Bucket}
		if _, err := b.l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
			t.Fatal(err)
		}
		res, err := b.client.SendTemplate(ctx, connectly.TemplateMessage{Number: e.Recipient, TemplateName: b.run.Template,
			Language: b.run.Language, CallbackData: a.Callback()})
		if err != nil {
			t.Fatalf("send to %s: %v", e.Recipient, err)
		}
		if _, err := b.l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: res.ID, Attempt: 1}); err != nil {
			t.Fatal(err)
		}
	}
}
