package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/heraldmsg/herald/worker"
)

// TestIntegrationFollowups sends a run with on_reply through the fake, whose readers tap a
// button or type a keyword, with duplicate and reordered webhooks shared by two receiver
// replicas: every tapper and every writer gets exactly one follow-up of their rule (the fake's
// conversation record judges), inside their window, and the funnel adds up.
func TestIntegrationFollowups(t *testing.T) {
	rdb, _ := integrationRedis(t)
	ctx := context.Background()
	const secret = "it-followup-secret-0123456789"
	c := config.Default()
	c.Connectly.BusinessID = itBusiness
	rcfg := webhooks.Config{Secrets: []string{secret}, RetryEvery: 100 * time.Millisecond, Business: itBusiness}
	var addrs []string
	for range 2 {
		fu, err := newFollowups(c, rdb, zerolog.Nop(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ws, err := startReceiverWith(ctx, rcfg, "127.0.0.1:0", rdb, zerolog.Nop(), nil, fu)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ws.stop)
		addrs = append(addrs, "http://"+ws.addr+"/")
	}
	hooks := fakeconnectly.WebhookConfig{
		URL: addrs[0], URLs: addrs[1:], Secret: secret, Seed: 7, Concurrency: 16,
		DuplicatePercent: 20, ReorderPercent: 30, Delay: time.Millisecond,
		Fates: []fakeconnectly.Fate{{Percent: 100, Salt: "read", Status: fakeconnectly.HookRead}},
		Replies: []fakeconnectly.Reply{
			{Percent: 20, Salt: "r", From: 0, Kind: fakeconnectly.KindTemplate, Times: 1, Button: "Yes", Payload: "YES"},
			{Percent: 10, Salt: "r", From: 20, Kind: fakeconnectly.KindTemplate, Times: 1, Text: "how much is it"},
		},
	}
	fake, err := fakeconnectly.New(fakeconnectly.Config{BusinessID: itBusiness, APIKey: itKey, RateLimit: -1, Webhooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	url, err := fake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })

	const n = 5000
	dir := t.TempDir()
	writeCampaign(t, dir, "replies", "at-most-once", n)
	path := filepath.Join(dir, "campaign.yaml")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("on_reply:\n  - name: yes\n    button: \"Yes\"\n    message: {text: \"Here it is\"}\n" +
		"  - name: price\n    keyword: \"how much\"\n    message: {text: \"From $9\"}\n")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	def, err := campaigns.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	run, _, err := startRun(ctx, rdb, def, def.Sender, sendTaskOptions(c), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: itBusiness, APIKey: itKey, MaxConns: 50})
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(worker.Config{
		Concurrency: 50, Backoff: worker.Backoff{Base: 20 * time.Millisecond, Cap: 200 * time.Millisecond},
		ThrottleDelay: 100 * time.Millisecond, HoldDelay: 200 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond, TaskCheckInterval: 50 * time.Millisecond,
		BusinessID: itBusiness, BusinessRate: 20000, DefaultSenderRate: 20000, PairInterval: -1,
	}, worker.Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop()})
	w.OnSending(sendRecorder(c, rdb, zerolog.Nop()))
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(); w.Shutdown() })

	l := ledger.New(rdb, nil)
	var fn *conversationFunnel
	waitFor(t, 3*time.Minute, "the run, its replies and their follow-ups", func() bool {
		if runStatus(t, l, run.ID) != ledger.RunCompleted || fake.WebhookStats().Pending != 0 {
			return false
		}
		got, err := runFunnel(ctx, c, l, rdb, mustRun(t, l, run.ID))
		if err != nil || got == nil {
			return false
		}
		fn = &conversationFunnel{got.Rules[0].Created, got.Rules[0].Sent, got.Rules[1].Created, got.Rules[1].Sent, got.Replied}
		return fn.yesCreated > 0 && fn.yesSent == fn.yesCreated && fn.priceSent == fn.priceCreated
	})
	convs, err := fake.Conversations()
	if err != nil {
		t.Fatal(err)
	}
	followups := map[string]int{}
	for _, cv := range convs {
		for _, m := range cv.Messages {
			if m.Kind != fakeconnectly.KindSession || m.Status != 200 {
				continue
			}
			if !m.WindowOpen {
				t.Errorf("%s: a follow-up outside the window", cv.Number)
			}
			followups[m.Text]++
			rule := "yes"
			if m.Text == "From $9" {
				rule = "price"
			}
			if !strings.Contains(string(m.CallbackData), run.ID+"~"+rule) {
				t.Errorf("follow-up %q with callbackData %s", m.Text, m.CallbackData)
			}
		}
	}
	if int64(followups["Here it is"]) != fn.yesCreated || int64(followups["From $9"]) != fn.priceCreated {
		t.Fatalf("fake received %v follow-ups; funnel %+v", followups, fn)
	}
	// Exactly one per tapper and per writer (the fake's replies pick numbers by HashBucket), and
	// nothing for anyone else.
	tappers, writers := 0, 0
	for _, cv := range convs {
		seen := map[string]int{}
		for _, m := range cv.Messages {
			if m.Kind == fakeconnectly.KindSession && m.Status == 200 {
				seen[m.Text]++
			}
		}
		want := map[string]int{}
		switch b := fakeconnectly.HashBucket("r", cv.Number); {
		case b < 2000:
			want["Here it is"] = 1
			tappers++
		case b < 3000:
			want["From $9"] = 1
			writers++
		}
		if len(seen) != len(want) || seen["Here it is"] != want["Here it is"] || seen["From $9"] != want["From $9"] {
			t.Errorf("%s: follow-ups %v, want %v", cv.Number, seen, want)
		}
	}
	if int64(tappers) != fn.yesCreated || int64(writers) != fn.priceCreated || fn.replied != int64(tappers+writers) {
		t.Errorf("tappers %d writers %d; funnel %+v", tappers, writers, *fn)
	}
	t.Logf("funnel: %+v", *fn)
}

type conversationFunnel struct {
	yesCreated, yesSent, priceCreated, priceSent, replied int64
}

func mustRun(t *testing.T, l *ledger.Ledger, id string) ledger.Run {
	t.Helper()
	r, err := l.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
