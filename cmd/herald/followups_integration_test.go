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
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/heraldmsg/herald/serve"
)

// TestIntegrationFollowups sends a run with on_reply through the fake, whose readers tap a
// button or type a keyword, with duplicate and reordered webhooks shared by two receiver
// replicas: every tapper and every writer gets exactly one follow-up of their rule (the fake's
// conversation record judges), inside their window, and the funnel adds up.
func TestIntegrationFollowups(t *testing.T) {
	t.Parallel() // beside the other long integration tests, on a database of its own (dbs)
	rdb, redisURL := integrationRedis(t)
	ctx := context.Background()
	const secret = "it-followup-secret-0123456789"
	c := config.Default()
	c.Connectly.BusinessID = itBusiness
	rcfg := webhooks.Config{Secrets: []string{secret}, RetryEvery: 100 * time.Millisecond, Business: itBusiness}
	var addrs []string
	for range 2 {
		fu, err := serve.NewFollowups(c, rdb, zerolog.Nop(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ws, err := serve.StartReceiver(ctx, serve.ReceiverSetup{Config: rcfg, Listen: "127.0.0.1:0", Redis: rdb, Log: zerolog.Nop(), Followups: fu})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ws.Stop)
		addrs = append(addrs, "http://"+ws.Addr()+"/")
	}
	hooks := fakeconnectly.WebhookConfig{
		URL: addrs[0], URLs: addrs[1:], Secret: secret, Seed: 7, Concurrency: 16,
		DuplicatePercent: 20, ReorderPercent: 30, Delay: time.Millisecond,
		Fates: []fakeconnectly.Fate{{Percent: 100, Salt: "read", Status: fakeconnectly.HookRead}},
		Replies: []fakeconnectly.Reply{
			{Percent: 20, Salt: "r", From: 0, Kind: fakeconnectly.KindTemplate, Template: "it_tpl", Times: 1, Button: "Yes", Payload: "YES"},
			{Percent: 10, Salt: "r", From: 20, Kind: fakeconnectly.KindTemplate, Times: 1, Text: "how much is it"},
		},
	}
	fake, url := newFake(t, fakeconnectly.Config{BusinessID: itBusiness, APIKey: itKey, RateLimit: -1, Webhooks: hooks,
		// Follow-ups are slow, so the kill lands while some are in flight.
		Rules: []fakeconnectly.Rule{{Kind: fakeconnectly.KindSession, Percent: 100, Salt: "slower", Latency: 300 * time.Millisecond}}})

	const n = 5000
	dir := t.TempDir()
	writeCampaign(t, dir, "replies", "at-most-once", n)
	path := filepath.Join(dir, "campaign.yaml")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("on_reply:\n  - name: yes\n    button: \"Yes\"\n    message: {text: \"Here it is, {{ .name }}\"}\n" +
		"  - name: price\n    keyword: \"how much\"\n    message: {text: \"From $9\"}\n")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	def, err := campaigns.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	run, _, err := startRun(ctx, rdb, def, def.Sender, serve.SendTaskOptions(c), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(cfgPath, []byte("senders:\n  - {number: \"+14155550100\", rate: 1000}\nconnectly: {business_rate: 1000}\n"+
		"limits: {pair_interval: 0s}\nworker: {concurrency: 50}\nretry: {base: 20ms, cap: 200ms, throttle_delay: 100ms, hold_delay: 200ms}\n"+
		"log: {level: warn, format: json}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"HERALD_CONFIG=" + cfgPath, "HERALD_REDIS_URL=" + redisURL, "CONNECTLY_BASE_URL=" + url,
		"CONNECTLY_BUSINESS_ID=" + itBusiness, "CONNECTLY_API_KEY=" + itKey}
	p := startWorkerProc(t, env)
	// SIGKILL the worker once follow-ups are going out (they are slow at the fake, so some are
	// in flight), then start another.
	waitFor(t, 2*time.Minute, "follow-up requests under way", func() bool {
		select {
		case err := <-p.done:
			t.Fatalf("worker exited: %v; logs:\n%s", err, p.logs)
		default:
		}
		return sessionsReceived(fake) >= 50
	})
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p = startWorkerProc(t, env)

	l := ledger.New(rdb, nil)
	var fn *conversationFunnel
	var rules []report.FunnelRule
	// Tasks in flight in the killed worker come back once asynq sees their lease expire (30 s
	// after the last extension, checked every minute), so this wait is long.
	waitFor(t, 4*time.Minute, "the run, its replies and their follow-ups", func() bool {
		if runStatus(t, l, run.ID) != ledger.RunCompleted || fake.WebhookStats().Pending != 0 {
			return false
		}
		// A delivery event for a follow-up the kill left submitting is parked; once the entry
		// is settled unknown, the receiver's next retry of parked events settles it sent. The
		// funnel is read after that.
		if n, err := l.ParkedCount(ctx); err != nil || n != 0 {
			return false
		}
		got, err := report.RunFunnel(ctx, l, mustRun(t, l, run.ID), serve.RunRuleIDs(c, rdb))
		if err != nil || got == nil {
			return false
		}
		for _, r := range got.Rules {
			if r.Sent+r.Unknown+r.Failed+r.Skipped != r.Created {
				return false
			}
		}
		rules = got.Rules
		fn = &conversationFunnel{got.Rules[0].Created, got.Rules[0].Sent, got.Rules[1].Created, got.Rules[1].Sent, got.Replied}
		return fn.yesCreated > 0
	})
	p.stop(t)
	convs, err := fake.Conversations()
	if err != nil {
		t.Fatal(err)
	}
	// The "yes" follow-up reads the recipient's own name column, stored at its send.
	names := map[string]string{}
	audience, err := os.ReadFile(filepath.Join(dir, "audience.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(audience), "\n")[1:] {
		if name, number, ok := strings.Cut(line, ","); ok {
			names[number] = name
		}
	}
	text := map[string]string{"yes": "Here it is, ", "price": "From $9"}
	followups := map[string]int{}
	for _, cv := range convs {
		for _, m := range cv.Messages {
			if m.Kind != fakeconnectly.KindSession || m.Status != 200 {
				continue
			}
			if !m.WindowOpen {
				t.Errorf("%s: a follow-up outside the window", cv.Number)
			}
			rule := "yes"
			if m.Text == text["price"] {
				rule = "price"
			}
			followups[rule]++
			if !strings.Contains(string(m.CallbackData), run.ID+"~"+rule) {
				t.Errorf("follow-up %q with callbackData %s", m.Text, m.CallbackData)
			}
		}
	}
	if st := fake.Stats(); st.WindowRefused != 0 || st.AcceptedOutsideWindow != 0 {
		t.Errorf("fake: %d follow-ups refused for a closed window, %d accepted outside one; want none", st.WindowRefused, st.AcceptedOutsideWindow)
	}
	// Exactly one per tapper and per writer (the fake's replies pick numbers by HashBucket, among
	// those it accepted the template for), and nothing for anyone else. The follow-ups are
	// at-most-once (the campaign's policy): one whose claim the SIGKILL interrupted is settled
	// unknown and never resent, so a tapper may have none only if their follow-up entry is
	// unknown; nobody may have two.
	tappers, writers, lost := 0, 0, map[string]int64{}
	for _, cv := range convs {
		seen, template := map[string]int{}, false
		for _, m := range cv.Messages {
			switch {
			case m.Kind == fakeconnectly.KindSession && m.Status == 200:
				seen[m.Text]++
			case m.Kind == fakeconnectly.KindTemplate && m.Status == 200:
				template = true
			}
		}
		rule := ""
		switch b := fakeconnectly.HashBucket("r", cv.Number); {
		case !template:
		case b < 2000:
			rule = "yes"
			tappers++
		case b < 3000:
			rule = "price"
			writers++
		}
		want := text[rule]
		if rule == "yes" {
			want += names[cv.Number]
		}
		for txt, k := range seen {
			if txt != want || k != 1 {
				t.Errorf("%s (rule %q): follow-ups %v, want one %q", cv.Number, rule, seen, want)
			}
		}
		if rule == "" || seen[want] == 1 {
			continue
		}
		e, ok, err := l.Entry(ctx, ledger.FollowupAddress(run.ID, rule, cv.Number, run.Buckets))
		if err != nil || !ok || e.State != ledger.Unknown {
			t.Errorf("%s (rule %q): no follow-up, entry %+v (found %v, %v); want one, or the entry unknown", cv.Number, rule, e, ok, err)
			continue
		}
		lost[rule]++
	}
	// The funnel adds up: one entry per tapper and per writer, each sent or unknown (an unknown
	// one may since have been settled by its delivery webhook, so Sent counts what the fake
	// accepted).
	want := map[string]int64{"yes": int64(tappers), "price": int64(writers)}
	for _, r := range rules {
		if r.Created != want[r.Rule] || r.Sent != int64(followups[r.Rule]) || r.Unknown < lost[r.Rule] || r.Failed != 0 || r.Skipped != 0 {
			t.Errorf("rule %s: funnel %+v; want %d created, %d sent per the fake, at least %d unknown", r.Rule, r, want[r.Rule], followups[r.Rule], lost[r.Rule])
		}
	}
	if fn.replied != int64(tappers+writers) {
		t.Errorf("tappers %d writers %d; funnel %+v", tappers, writers, *fn)
	}
	t.Logf("funnel: %+v; lost to the kill (unknown, at-most-once): %v", *fn, lost)
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
