package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/demo"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/heraldmsg/herald/serve"
)

// TestIntegrationSessionCampaign sends a template campaign whose readers partly reply (the
// fake's inbound webhooks reach the receiver, which records their windows), then a session
// campaign to the same audience. The session message must go exactly to the open windows,
// once each, and the others be skipped(window_closed) or sent the fallback template; the
// fake's record must show no session request outside a window. The skip variant SIGKILLs
// its worker process in the middle of the session run.
func TestIntegrationSessionCampaign(t *testing.T) {
	t.Parallel() // beside the other long integration tests, on a database of its own (dbs)
	for _, tc := range []struct {
		name     string
		fallback bool
		kill     bool
	}{
		{name: "SkipWithKill", kill: true},
		{name: "Fallback", fallback: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testSessionCampaign(t, tc.fallback, tc.kill)
		})
	}
}

func testSessionCampaign(t *testing.T, fallback, kill bool) {
	rdb, url := integrationRedis(t)
	ctx := context.Background()
	const n = 400
	secret := "session-step-secret"
	ws, err := serve.StartReceiver(ctx, serve.ReceiverSetup{Config: webhooks.Config{Secrets: []string{secret}, RetryEvery: 100 * time.Millisecond,
		Business: itBusiness}, Listen: "127.0.0.1:0", Redis: rdb, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ws.Stop)
	fake, baseURL := newFake(t, fakeconnectly.Config{BusinessID: itBusiness, APIKey: itKey, RateLimit: -1,
		// Session sends are slow, so the kill lands while some are in flight.
		Rules: []fakeconnectly.Rule{{Kind: fakeconnectly.KindSession, Percent: 100, Salt: "slower", Latency: 400 * time.Millisecond},
			{Percent: 100, Salt: "slow", Latency: 20 * time.Millisecond}},
		Webhooks: fakeconnectly.WebhookConfig{URL: "http://" + ws.Addr() + "/", Secret: secret,
			Replies: []fakeconnectly.Reply{{Percent: 30, Salt: "it-reply", Text: "hello", Kind: fakeconnectly.KindTemplate}}}})

	dir := t.TempDir()
	tpl := writeCampaign(t, dir, "it-promo", "at-most-once", n)
	cfgPath := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(cfgPath, []byte("senders:\n  - {number: \"+14155550100\", rate: 1000}\nconnectly: {business_rate: 1000}\n"+
		"worker: {concurrency: 20}\nretry: {base: 50ms, cap: 500ms, throttle_delay: 100ms, hold_delay: 500ms}\nlog: {level: warn, format: json}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Campaign names on: the fake's records of each send name its campaign.
	env := []string{"HERALD_CONFIG=" + cfgPath, "HERALD_REDIS_URL=" + url, "CONNECTLY_BASE_URL=" + baseURL,
		"CONNECTLY_BUSINESS_ID=" + itBusiness, "CONNECTLY_API_KEY=" + itKey, "CONNECTLY_SEND_CAMPAIGN_NAME=true"}
	l := ledger.New(rdb, nil)
	opts := serve.SendTaskOptions(config.Default())

	// The template run, and the replies it brings.
	p := startWorkerProc(t, env)
	first, _, err := startRun(ctx, rdb, tpl, tpl.Sender, opts, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the template run to complete", func() bool { return runStatus(t, l, first.ID) == ledger.RunCompleted })
	if err := fake.WaitForWebhooks(ctx, ws.Parked, time.Minute); err != nil {
		t.Fatal(err)
	}
	numbers := map[string]bool{} // every recipient: is its window open (by Herald's record)?
	tr := servicewindow.New(rdb, time.Now)
	err = l.EachEntry(ctx, first.ID, func(rcpt string, _ int, _ ledger.Entry) error {
		_, open, err := tr.OpenFor(ctx, itBusiness, "", 0, rcpt)
		numbers[rcpt] = open
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	open := 0
	for num, o := range numbers {
		if o {
			open++
		}
		conv, err := fake.Conversation(num)
		if err != nil {
			t.Fatal(err)
		}
		if replied := len(conv.Inbound) > 0; replied != o {
			t.Fatalf("%s: Herald's window open %v, the fake's record of an inbound message %v", num, o, replied)
		}
	}
	if open < n/10 || open > n/2 {
		t.Fatalf("%d of %d windows open, want about 30%%", open, n)
	}

	// The session campaign, to all.
	yaml := "id: it-follow-up\nsender: \"+14155550100\"\nmessage:\n  text: \"Thanks {{ .name }}\"\n" +
		"audience: {file: audience.csv, phone: phone}\ndelivery: at-most-once\n"
	if fallback {
		yaml += "fallback_template:\n  name: it_tpl\n  language: en\n  parameters:\n    body_1: \"{{ .name }}\"\n"
	}
	path := filepath.Join(dir, "follow-up.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	def, err := campaigns.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if kill {
		p.stop(t) // the session run starts with no worker, so the kill lands mid-run
	}
	run, _, err := startRun(ctx, rdb, def, def.Sender, opts, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := func() int64 {
		c, err := l.Counters(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for s, k := range c.States {
			if s.Terminal() {
				sum += k
			}
		}
		return sum
	}
	if kill {
		p = startWorkerProc(t, env)
		// Kill once session requests are going out (they wait first for the pair interval after
		// the template), so some are in flight.
		waitFor(t, time.Minute, "session requests under way", func() bool {
			return sessionsReceived(fake) >= 30
		})
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-p.done
		if runStatus(t, l, run.ID) == ledger.RunCompleted {
			t.Fatal("the session run completed before the kill")
		}
		t.Logf("killed with %d of %d recipients done", done(), n)
		p = startWorkerProc(t, env)
	}
	// Tasks in flight in a killed worker come back once asynq sees their lease expire.
	waitFor(t, 4*time.Minute, "the session run to complete", func() bool { return runStatus(t, l, run.ID) == ledger.RunCompleted })
	p.stop(t)

	if st := fake.Stats(); st.WindowRefused != 0 || st.AcceptedOutsideWindow != 0 {
		t.Errorf("fake: %d session requests refused for a closed window, %d accepted outside one; want none", st.WindowRefused, st.AcceptedOutsideWindow)
	}
	sessions, fallbacks := map[string]int{}, map[string]int{}
	for _, r := range fake.Received() {
		if r.Message.CampaignName != def.ID {
			continue
		}
		switch r.Kind {
		case fakeconnectly.KindSession:
			sessions[r.Number]++
			if !numbers[r.Number] {
				t.Errorf("session request to %s, whose window is closed", r.Number)
			}
		case fakeconnectly.KindTemplate:
			fallbacks[r.Number]++
			if numbers[r.Number] || !fallback {
				t.Errorf("template request to %s (window open %v, fallback %v)", r.Number, numbers[r.Number], fallback)
			}
		}
	}
	c, err := l.Counters(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Recipients whose claim was found after the kill went unknown (webhooks may have settled
	// them since): their request may have left, once.
	var unknown int64
	for k, v := range c.Codes {
		if strings.HasPrefix(k, string(ledger.Unknown)+":") {
			unknown += v
		}
	}
	reached := map[ledger.State]bool{ledger.Accepted: true, ledger.Sent: true, ledger.Delivered: true, ledger.Read: true}
	for num, o := range numbers {
		if sessions[num] > 1 || fallbacks[num] > 1 {
			t.Errorf("%s sent %d session messages and %d fallbacks, want at most one", num, sessions[num], fallbacks[num])
		}
		e, ok, err := l.Entry(ctx, ledger.Address{Run: run.ID, Bucket: ledger.BucketOf(num, run.Buckets), Recipient: num})
		if err != nil || !ok {
			t.Fatalf("entry of %s: %v %v", num, ok, err)
		}
		switch {
		case e.State == ledger.Unknown:
			// A request may have left before the kill: at most once, never twice (checked above).
		case o && (sessions[num] != 1 || !reached[e.State]):
			t.Errorf("%s (window open): %d session messages, entry %+v", num, sessions[num], e)
		case !o && fallback && fallbacks[num] != 1:
			t.Errorf("%s (window closed): %d fallbacks, entry %+v", num, fallbacks[num], e)
		case !o && !fallback && (e.State != ledger.Skipped || e.Code != ledger.SkipWindowClosed):
			t.Errorf("%s (window closed, no fallback): entry %+v, want skipped(window_closed)", num, e)
		}
	}
	want := int64(n - open)
	got := c.Codes["skipped:"+ledger.SkipWindowClosed]
	if fallback {
		got = c.Accepted(ledger.SentFallback)
	}
	if got+unknown < want || got > want || c.Accepted(ledger.SentSession)+unknown < int64(open) || c.Accepted(ledger.SentSession) > int64(open) {
		t.Errorf("counters: %d session, %d fallback, %d window_closed, %d unknown; want %d open windows and %d closed",
			c.Accepted(ledger.SentSession), c.Accepted(ledger.SentFallback), c.Codes["skipped:"+ledger.SkipWindowClosed], unknown, open, want)
	}
	t.Logf("%d recipients, %d windows open: %v, codes %v", n, open, c.States, c.Codes)
}

// The demo ends with a session step to the template campaign's audience: those who replied
// get the session message, the others are skipped(window_closed), and no session request
// reaches the fake outside a window.
func TestDemoSessionStep(t *testing.T) {
	t.Parallel()
	d := demoJSON()
	code, out, errOut := d.code, d.out, d.errOut
	if code != 0 {
		t.Fatalf("demo exited %d: %s", code, errOut)
	}
	var rep struct {
		Recipients int `json:"recipients"`
		Delivery   struct {
			Replies int64 `json:"replies"`
		} `json:"delivery"`
		Fake        demo.FakeStats `json:"fake_connectly"`
		SessionStep *report.Run    `json:"session_step"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	s := rep.SessionStep
	if s == nil || s.Session == nil || s.Status != "completed" || s.Sum != int64(s.Recipients) || s.Recipients != 400 {
		t.Fatalf("session step %+v", s)
	}
	if s.Session.Sent == 0 || s.Session.WindowClosed == 0 || s.Session.Fallback != 0 || s.Session.Sent+s.Session.WindowClosed > 400 {
		t.Errorf("session counts %+v, want some sent, some skipped(window_closed), no fallback", *s.Session)
	}
	if rep.Fake.WindowRefused != 0 || rep.Fake.AcceptedOutsideWindow != 0 {
		t.Errorf("fake: %d session sends refused for a closed window, %d accepted outside one", rep.Fake.WindowRefused, rep.Fake.AcceptedOutsideWindow)
	}
}

// `campaign send` of the example session campaign plans one session task per recipient, each
// carrying its rendered message and the fallback template, in the fallback's category queue;
// `run show` counts the run like any other.
func TestCampaignSendSession(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	f := filepath.Join("..", "..", "configs", "campaigns", "delivery-followup.yaml")
	code, out, errOut := herald(t, env, "campaign", "send", "--json", f)
	if code != 0 {
		t.Fatalf("campaign send exited %d: %s", code, errOut)
	}
	var started struct {
		Run     string `json:"run"`
		Planned int    `json:"planned"`
		Queue   string `json:"queue"`
	}
	if err := json.Unmarshal([]byte(out), &started); err != nil {
		t.Fatal(err, out)
	}
	if started.Planned == 0 || started.Queue != "herald:utility" {
		t.Fatalf("campaign send: %+v, want recipients planned in herald:utility", started)
	}
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	ins := asynq.NewInspectorFromRedisClient(rdb)
	tasks, err := ins.ListPendingTasks(started.Queue, asynq.PageSize(1000))
	if err != nil || len(tasks) != started.Planned {
		t.Fatalf("%d pending tasks (%v), want %d", len(tasks), err, started.Planned)
	}
	for _, task := range tasks {
		p, err := campaigns.DecodeSend(task.Payload)
		if err != nil {
			t.Fatal(err)
		}
		content, err := campaigns.DecodeSession(p.Session)
		if err != nil || p.Kind != campaigns.KindSession || p.Template != "order_status" || len(content.ReplyButtons.Buttons) != 2 {
			t.Fatalf("payload %+v (%v)", p, err)
		}
	}
	code, out, errOut = herald(t, env, "run", "show", "--json", started.Run)
	var rep report.Run
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.States["queued"] != int64(started.Planned) {
		t.Fatalf("run show: exit %d %s %s", code, out, errOut)
	}
}
