package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/heraldmsg/herald/serve"
)

// TestIntegrationWebhooks10k sends a 10,000-recipient run through the fake, which calls the
// receiver with signed delivery webhooks, duplicates and out-of-order events included, and
// checks that every recipient's ledger state ends equal to the highest status the fake
// delivered for its message. Lost answers make some recipients unknown; their webhooks must
// settle them.
func TestIntegrationWebhooks10k(t *testing.T) {
	t.Parallel() // beside the other long integration tests, on a database of its own (dbs)
	rdb, _ := integrationRedis(t)
	ctx := context.Background()
	const secret = "it-webhook-secret-0123456789"

	ws, err := serve.StartReceiver(ctx, serve.ReceiverSetup{Config: webhooks.Config{Secrets: []string{secret}, RetryEvery: 100 * time.Millisecond},
		Listen: "127.0.0.1:0", Redis: rdb, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ws.Stop)

	rules := []fakeconnectly.Rule{
		{Percent: 1, Salt: "invalid", Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"},
		{Percent: 1, Salt: "lost", LoseResponse: true, Times: 1},
		// A 503 after which the message went out: unknown, never sent twice, then settled by
		// its delivery events like a lost answer.
		{Percent: 2, Salt: "5xx", Status: 503, Sent: true, Times: 1},
	}
	hooks := fakeconnectly.WebhookConfig{
		URL: "http://" + ws.Addr() + "/", Secret: secret, Seed: 42, Concurrency: 16,
		DuplicatePercent: 20, ReorderPercent: 30, Delay: 2 * time.Millisecond,
		Fates: []fakeconnectly.Fate{
			{Percent: 3, Salt: "df", Status: fakeconnectly.HookDeliveryFailed, Code: "ERROR_CODE_UNSPECIFIED"},
			{Percent: 1, Salt: "df-optout", Status: fakeconnectly.HookDeliveryFailed, Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
			{Percent: 10, Salt: "sent", Status: fakeconnectly.HookSent},
			{Percent: 30, Salt: "delivered", Status: fakeconnectly.HookDelivered},
		},
		Replies: []fakeconnectly.Reply{{Percent: 5, Salt: "btn", Template: "it_tpl", Button: "Yes", Payload: "YES"}},
	}
	fake, url := newFake(t, fakeconnectly.Config{BusinessID: itBusiness, APIKey: itKey, Rules: rules, RateLimit: -1,
		MaxReceived: 1, Webhooks: hooks})

	const n = 10000
	def := writeCampaign(t, t.TempDir(), "hooks", "at-most-once", n)
	run, _, err := startRun(ctx, rdb, def, def.Sender, serve.SendTaskOptions(config.Default()), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	startWorker(t, rdb, url, 50)
	l := ledger.New(rdb, nil)
	waitForProgress(t, time.Minute, 10*time.Minute, "the run to complete and every webhook to be recorded", func() (bool, string) {
		r, err := l.GetRun(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		c, err := l.Counters(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		parked, err := ws.Parked(ctx)
		st := fake.WebhookStats()
		done := r.Status == ledger.RunCompleted && err == nil && parked == 0 && st.Pending == 0
		return done, fmt.Sprintf("run %s, states %v, %d parked (%v), webhooks %d of %d answered, %d pending",
			r.Status, c.States, parked, err, st.Delivered, st.Events, st.Pending)
	})

	entries := map[string]ledger.Entry{}
	if err := l.EachEntry(ctx, run.ID, func(rcpt string, _ int, e ledger.Entry) error {
		entries[rcpt] = e
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]ledger.State{
		fakeconnectly.HookSent: ledger.Sent, fakeconnectly.HookDelivered: ledger.Delivered,
		fakeconnectly.HookRead: ledger.Read, fakeconnectly.HookDeliveryFailed: ledger.Failed,
	}
	outcomes := fake.WebhookOutcomes()
	byFate := map[string]int{}
	bad := 0
	for _, o := range outcomes {
		byFate[o.Planned]++
		if o.Highest != o.Planned {
			t.Errorf("%s: the fake planned %s but the receiver acknowledged only up to %q", o.Number, o.Planned, o.Highest)
		}
		e, ok := entries[o.Number]
		switch {
		case !ok:
			t.Errorf("%s: accepted by the fake but not in the ledger", o.Number)
		case e.State != want[o.Highest] || e.MessageID != o.MessageID:
			if bad++; bad <= 10 {
				t.Errorf("%s: ledger %+v, the fake's last word %s for %s", o.Number, e, o.Highest, o.MessageID)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d messages end in the wrong state", bad, len(outcomes))
	}
	c, err := l.Counters(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	settled := int64(0)
	for k, v := range c.Codes {
		if len(k) > 8 && k[:8] == "settled:" {
			settled += v
		}
	}
	st := fake.WebhookStats()
	if len(outcomes) < n*95/100 || c.States[ledger.Unknown] != 0 || settled == 0 || st.Events < len(outcomes)*2 || st.GaveUp != 0 {
		// Name the unknown entries left, and whether the fake took their message (its
		// webhooks then should have settled them) or never did (a request that left Herald
		// and never reached the fake reads as maybe sent, and nothing settles it).
		took := map[string]bool{}
		for _, o := range outcomes {
			took[o.Number] = true
		}
		var left []string
		for rcpt, e := range entries {
			if e.State == ledger.Unknown && len(left) < 5 {
				left = append(left, fmt.Sprintf("%s %+v (the fake took it: %v)", logx.Phone(rcpt), e, took[rcpt]))
			}
		}
		t.Fatalf("the test proves too little: %d messages, %d unknown left %v, %d settled, webhook stats %+v",
			len(outcomes), c.States[ledger.Unknown], left, settled, st)
	}
	for _, f := range []string{fakeconnectly.HookSent, fakeconnectly.HookDelivered, fakeconnectly.HookRead, fakeconnectly.HookDeliveryFailed} {
		if byFate[f] == 0 {
			t.Fatalf("no message ended %s: %v", f, byFate)
		}
	}
	if v, err := l.Verify(ctx, run.ID); err != nil || len(v.Mismatches) > 0 {
		t.Fatalf("verify: %+v %v", v.Mismatches, err)
	}
	d, err := l.DeliveryStats(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Delivered != int64(byFate[fakeconnectly.HookDelivered]+byFate[fakeconnectly.HookRead]) || d.TimeToDeliver.Samples != d.Delivered ||
		d.ButtonReplies["Yes"] == 0 || d.FailedByCode["ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"] == 0 {
		t.Fatalf("delivery stats %+v for fates %v", d, byFate)
	}
	t.Logf("%d messages, fates %v, %d webhook calls (%d retried), %d unknown settled; time to deliver p50 %s p99 %s",
		len(outcomes), byFate, st.Delivered, st.Retries, settled, d.TimeToDeliver.P50, d.TimeToDeliver.P99)
}
