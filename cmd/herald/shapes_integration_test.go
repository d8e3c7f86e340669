package main

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/heraldmsg/herald/serve"
)

// TestIntegrationShapesEndToEnd runs a campaign with an on_reply rule through Herald's worker
// (serve.RunWorker, in process) and its receiver with follow-ups, against a fake Connectly
// that writes its webhooks in the shapes the reference leaves open: callbackData echoed as a
// JSON string or re-encoded (keys sorted, numbers as floats), inbound calls with "topic":
// "messages" and the top-level "attachments": [] and "location": null, button taps in the four
// documented forms, the campaign name both at the top and in the status update, failures in
// delivery with Meta's codes as JSON numbers, and copies of every kind of event. The fake's
// record judges: every tapper gets exactly one follow-up, nobody else any; `herald run show`
// reports the funnel, the failures and the suppressed.
func TestIntegrationShapesEndToEnd(t *testing.T) {
	t.Parallel() // beside the other long integration tests, on a database of its own (dbs)
	for _, echo := range []string{fakeconnectly.CallbackString, fakeconnectly.CallbackReencoded} {
		t.Run(echo, func(t *testing.T) {
			// A database of its own (flushed): the first run's opt-outs would skip the second
			// run's recipients.
			_, redisURL := integrationRedis(t)
			testShapesEndToEnd(t, redisURL, echo)
		})
	}
}

func testShapesEndToEnd(t *testing.T, redisURL, echo string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shared, err := redisx.Open(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.Close() })
	const secret = "it-shapes-secret-0123456789"
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(cfgPath, []byte("senders:\n  - {number: \"+14155550100\", rate: 1000}\nconnectly: {business_rate: 1000, send_campaign_name: true}\n"+
		"limits: {pair_interval: 0s}\nworker: {concurrency: 20}\nretry: {base: 20ms, cap: 200ms, throttle_delay: 100ms, hold_delay: 200ms}\n"+
		"log: {level: warn, format: json}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// The receiver, with on_reply's follow-ups, on its own port.
	c0 := config.Default()
	c0.Connectly.BusinessID = itBusiness
	fu, err := serve.NewFollowups(c0, shared, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := serve.StartReceiver(ctx, serve.ReceiverSetup{Config: webhooks.Config{Secrets: []string{secret}, RetryEvery: 100 * time.Millisecond, Business: itBusiness},
		Listen: "127.0.0.1:0", Redis: shared, Log: zerolog.Nop(), Followups: fu})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ws.Stop)

	hooks := fakeconnectly.WebhookConfig{
		URL: "http://" + ws.Addr() + "/", Secret: secret, Seed: 5, Concurrency: 8,
		DuplicatePercent: 25, ReorderPercent: 20, Delay: time.Millisecond,
		CallbackEcho: echo, InboundTopic: true, CampaignMetadata: fakeconnectly.CampaignMetaBoth,
		Fates: []fakeconnectly.Fate{
			{Percent: 5, Salt: "df", Status: fakeconnectly.HookDeliveryFailed, Code: "131050", NumericCode: true,
				Type: "ERROR_TYPE_INVALID_REQUEST", Message: "(#131050) User stopped marketing messages", Details: json.RawMessage("null")},
			{Percent: 5, Salt: "df2", Status: fakeconnectly.HookDeliveryFailed, Code: "131026", NumericCode: true, Omit: []string{"details", "type"}},
			{Percent: 100, Salt: "read", Status: fakeconnectly.HookRead},
		},
		Replies: []fakeconnectly.Reply{
			{Percent: 25, Salt: "r", From: 0, Kind: fakeconnectly.KindTemplate, Template: "it_tpl", Times: 1, Button: "Yes", Payload: "YES",
				Shape: fakeconnectly.ReplyRotate, Shapes: fakeconnectly.ButtonShapes, TopLevelEmpty: true},
			{Percent: 5, Salt: "r", From: 25, Kind: fakeconnectly.KindTemplate, Template: "it_tpl", Times: 1, Button: "STOP", Payload: "STOP",
				Shape: fakeconnectly.ReplyRotate, Shapes: fakeconnectly.ButtonShapes, TopLevelEmpty: true},
		},
	}
	fake, url := newFake(t, fakeconnectly.Config{BusinessID: itBusiness, APIKey: itKey, RateLimit: -1, Webhooks: hooks})

	const n = 300
	id := "shapes-" + echo
	writeCampaign(t, dir, id, "at-most-once", n)
	path := filepath.Join(dir, "campaign.yaml")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("on_reply:\n  - name: yes\n    button: \"Yes\"\n    message: {text: \"Here it is\"}\n")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	def, err := campaigns.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	run, _, err := startRun(ctx, shared, def, def.Sender, serve.SendTaskOptions(config.Default()), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}

	env := map[string]string{"HERALD_REDIS_URL": redisURL, "CONNECTLY_BASE_URL": url, "CONNECTLY_BUSINESS_ID": itBusiness, "CONNECTLY_API_KEY": itKey}
	c, err := config.Load(cfgPath, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	own, err := redisx.Open(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve.RunWorker(ctx, serve.Setup{Config: c, Log: zerolog.Nop(), Redis: own}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("worker: %v", err)
		}
	})

	l := ledger.New(shared, nil)
	var fn *report.Funnel
	waitFor(t, 2*time.Minute, "the run, its webhooks and its follow-ups", func() bool {
		if runStatus(t, l, run.ID) != ledger.RunCompleted || fake.WebhookStats().Pending != 0 {
			return false
		}
		if parked, err := ws.Parked(ctx); err != nil || parked != 0 {
			return false
		}
		got, err := report.RunFunnel(ctx, l, mustRun(t, l, run.ID), serve.RunRuleIDs(c0, shared))
		if err != nil || got == nil || len(got.Rules) != 1 {
			return false
		}
		r := got.Rules[0]
		if r.Created == 0 || r.Pending != 0 || r.Sent+r.Unknown+r.Failed+r.Skipped != r.Created || r.Read < r.Sent {
			return false
		}
		fn = got
		return true
	})

	convs, err := fake.Conversations()
	if err != nil {
		t.Fatal(err)
	}
	tappers, stoppers, failed := 0, 0, map[string]string{}
	for _, cv := range convs {
		var template, followups int
		for _, m := range cv.Messages {
			switch {
			case m.Kind == fakeconnectly.KindTemplate && m.Status == 200:
				template++
				if len(m.CallbackData) == 0 || m.CampaignName != def.ID {
					t.Errorf("%s: template sent with callbackData %s, campaignName %q", cv.Number, m.CallbackData, m.CampaignName)
				}
			case m.Kind == fakeconnectly.KindSession && m.Status == 200:
				followups++
				if !m.WindowOpen || m.Text != "Here it is" || !strings.Contains(string(m.CallbackData), run.ID+"~yes") {
					t.Errorf("%s: follow-up %+v", cv.Number, m)
				}
			}
		}
		if template != 1 {
			t.Errorf("%s: %d templates taken, want 1", cv.Number, template)
		}
		tapped, stopped := false, false
		for _, in := range cv.Inbound {
			switch in.Label {
			case "Yes":
				tapped = true
			case "STOP":
				stopped = true
			}
		}
		want := 0
		if tapped {
			tappers++
			want = 1
		}
		if followups != want {
			t.Errorf("%s (tapped %v): %d follow-ups, want %d", cv.Number, tapped, followups, want)
		}
		if stopped {
			stoppers++
		}
		for _, fate := range []struct{ salt, code string }{{"df", "131050"}, {"df2", "131026"}} {
			if fakeconnectly.HashBucket(fate.salt, cv.Number) < 500 {
				failed[cv.Number] = fate.code
				break
			}
		}
	}
	if tappers == 0 || stoppers == 0 || len(failed) == 0 {
		t.Fatalf("%d tappers, %d STOPs, %d failures in delivery: the test proves nothing", tappers, stoppers, len(failed))
	}
	if r := fn.Rules[0]; r.Created != int64(tappers) || r.Sent != int64(tappers) || r.Failed != 0 || r.Skipped != 0 {
		t.Errorf("funnel %+v, want %d created and sent", r, tappers)
	}

	// What the ledger and the suppression list say of each, and what run show reports.
	rcpts := make([]string, 0, len(convs))
	for _, cv := range convs {
		rcpts = append(rcpts, cv.Number)
	}
	sups, err := l.Suppressions(ctx, rcpts)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int64{}
	for i, cv := range convs {
		e, ok, err := l.Entry(ctx, ledger.AddressIn(run.ID, cv.Number, run.Buckets))
		if err != nil || !ok {
			t.Fatalf("%s: entry %v, %v", cv.Number, ok, err)
		}
		code, didFail := failed[cv.Number]
		switch {
		case didFail:
			codes["failed:"+code]++
			if e.State != ledger.Failed || e.Code != code {
				t.Errorf("%s: %+v, want failed in delivery with %s", cv.Number, e, code)
			}
			if want := map[string]ledger.Scope{"131050": ledger.ScopeMarketing, "131026": ""}[code]; sups[i].Scope != want {
				t.Errorf("%s (%s): suppression %+v, want scope %q", cv.Number, code, sups[i], want)
			}
		case e.State != ledger.Read:
			t.Errorf("%s: %+v, want read", cv.Number, e)
		}
		stopped := false
		for _, in := range cv.Inbound {
			stopped = stopped || in.Label == "STOP"
		}
		if stopped && !sups[i].Covers(ledger.ScopeAll) {
			t.Errorf("%s wrote STOP: suppression %+v, want every message", cv.Number, sups[i])
		}
	}
	code, out, errOut := herald(t, map[string]string{"HERALD_REDIS_URL": redisURL, "HERALD_LOG_LEVEL": "warn"}, "run", "show", "--json", run.ID)
	if code != 0 {
		t.Fatalf("run show exited %d: %s", code, errOut)
	}
	var rep report.Run
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err, out)
	}
	if rep.Status != string(ledger.RunCompleted) || rep.Delivery == nil || rep.Funnel == nil {
		t.Fatalf("run show: %+v", rep)
	}
	for k, want := range codes {
		if rep.Codes[k] != want {
			t.Errorf("run show codes %v, want %d %s", rep.Codes, want, k)
		}
	}
	if rep.Delivery.DeliveryFailed != int64(len(failed)) || rep.Delivery.Read != int64(n-len(failed)) ||
		rep.Delivery.OptOutsReceived != int64(stoppers) || rep.Funnel.Taps["Yes"] != int64(tappers) {
		t.Errorf("run show delivery %+v, taps %v; want %d failed, %d read, %d opt-outs, %d taps",
			*rep.Delivery, rep.Funnel.Taps, len(failed), n-len(failed), stoppers, tappers)
	}
}
