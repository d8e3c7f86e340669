package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/backoff"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/serve"
	"github.com/heraldmsg/herald/worker"
)

const itBusiness, itKey = "it-business", "it-key-0123456789"

// writeCampaign writes an audience of n generated recipients and a campaign for it.
func writeCampaign(t *testing.T, dir, id, delivery string, n int) *campaigns.Definition {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "audience.csv"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "name,phone")
	gen := newPhoneGen()
	for i := 0; i < n; i++ {
		fmt.Fprintf(f, "p%d,%s\n", i, gen.next())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf("id: %s\nsender: \"+14155550100\"\ntemplate: {name: it_tpl, language: en}\n"+
		"parameters:\n  body_1: \"{{ .name }}\"\naudience: {file: audience.csv, phone: phone}\ndelivery: %s\n", id, delivery)
	path := filepath.Join(dir, "campaign.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	def, err := campaigns.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// startFake starts a fake Connectly with rules and no request limit.
func startFake(t *testing.T, rules []fakeconnectly.Rule) (*fakeconnectly.Server, string) {
	t.Helper()
	return newFake(t, fakeconnectly.Config{BusinessID: itBusiness, APIKey: itKey, Rules: rules, RateLimit: -1})
}

// startWorker runs Herald's worker in this process.
func startWorker(t *testing.T, rdb redis.UniversalClient, baseURL string, concurrency int) *worker.Worker {
	t.Helper()
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: baseURL, BusinessID: itBusiness, APIKey: itKey, MaxConns: concurrency})
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(worker.Config{
		Concurrency: concurrency, Backoff: backoff.Backoff{Base: 20 * time.Millisecond, Cap: 200 * time.Millisecond},
		ThrottleDelay: 100 * time.Millisecond, HoldDelay: 200 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond, TaskCheckInterval: 50 * time.Millisecond,
		Limits: limits.Config{BusinessID: itBusiness, BusinessRate: 20000, DefaultSenderRate: 20000,
			PairInterval: -1, // these tests retry one person within milliseconds on purpose
		},
	}, worker.Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop()})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(); w.Shutdown() })
	return w
}

func runStatus(t *testing.T, l *ledger.Ledger, id string) ledger.RunStatus {
	t.Helper()
	r, err := l.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Status
}

// acceptedTwice returns the numbers the fake accepted more than once, and how many it accepted.
func acceptedTwice(fake *fakeconnectly.Server) (twice []string, distinct int) {
	n := map[string]int{}
	for _, r := range fake.Received() {
		if r.MessageID != "" {
			n[r.Number]++
		}
	}
	for k, v := range n {
		if v > 1 {
			twice = append(twice, k)
		}
	}
	return twice, len(n)
}

// TestIntegrationFaultMix10k runs 10,000 recipients through the fake's fault mix and checks
// every guarantee against the fake's record.
func TestIntegrationFaultMix10k(t *testing.T) {
	t.Parallel() // beside the other long integration tests, on a database of its own (dbs)
	rdb, _ := integrationRedis(t)
	ctx := context.Background()
	rules := []fakeconnectly.Rule{
		{Percent: 2, Salt: "invalid", Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"},
		{Percent: 1, Salt: "optout", Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
		{Percent: 2, Salt: "fail-twice", Status: 500, Times: 2},
		{Percent: 3, Salt: "429", Status: 429, Times: 1},
	}
	fake, url := startFake(t, rules)
	def := writeCampaign(t, t.TempDir(), "mix", "at-most-once", 10000)
	run, _, err := startRun(ctx, rdb, def, def.Sender, serve.SendTaskOptions(config.Default()), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	startWorker(t, rdb, url, 50)
	l := ledger.New(rdb, nil)
	waitForProgress(t, time.Minute, 10*time.Minute, "the run to complete", runProgress(t, l, run.ID))

	c, err := l.Counters(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Sum() != 10000 {
		t.Fatalf("states add up to %d: %v", c.Sum(), c.States)
	}
	twice, distinct := acceptedTwice(fake)
	if len(twice) > 0 {
		t.Fatalf("%d recipients accepted twice, e.g. %s", len(twice), twice[0])
	}
	if int64(distinct) != c.States[ledger.Accepted] {
		t.Fatalf("fake accepted %d recipients, ledger %d", distinct, c.States[ledger.Accepted])
	}
	requests := map[string]int{}
	for _, r := range fake.Received() {
		requests[r.Number]++
	}
	var permanent, failTwice, throttled int
	err = l.EachEntry(ctx, run.ID, func(rcpt string, _ int, e ledger.Entry) error {
		var rule *fakeconnectly.Rule
		for i := range rules {
			if rules[i].Matches(rcpt, "it_tpl") {
				rule = &rules[i]
				break
			}
		}
		switch {
		case rule == nil:
			if e.State != ledger.Accepted || e.Attempts != 1 || requests[rcpt] != 1 {
				t.Errorf("%s: %+v after %d requests, want accepted on the first", rcpt, e, requests[rcpt])
			}
		case rule.Code != "":
			permanent++
			if e.State != ledger.Failed || e.Code != rule.Code || requests[rcpt] != 1 {
				t.Errorf("%s: %+v after %d requests, want failed %s after exactly one", rcpt, e, requests[rcpt], rule.Code)
			}
		case rule.Status == 500:
			failTwice++
			// A 500, even with Connectly's error body, may follow a message that went out:
			// under at-most-once it is never sent again.
			if e.State != ledger.Unknown || e.Attempts != 1 || requests[rcpt] != 1 {
				t.Errorf("%s: %+v after %d requests, want unknown after exactly one", rcpt, e, requests[rcpt])
			}
		case rule.Status == 429:
			throttled++
			if e.State != ledger.Accepted || e.Attempts != 1 || requests[rcpt] != 2 {
				t.Errorf("%s: %+v after %d requests, want accepted with the 429 using no attempt", rcpt, e, requests[rcpt])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if permanent == 0 || failTwice == 0 || throttled == 0 {
		t.Fatalf("fault mix too thin: %d permanent, %d fail-twice, %d throttled", permanent, failTwice, throttled)
	}
	if v, err := l.Verify(ctx, run.ID); err != nil || len(v.Mismatches) > 0 {
		t.Fatalf("verify: %v %+v", err, v.Mismatches)
	}

	// Opt-outs are suppressed: a second run of the campaign skips them without a request.
	run2, _, err := startRun(ctx, rdb, def, def.Sender, serve.SendTaskOptions(config.Default()), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := l.Counters(ctx, run2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := c.Codes["failed:ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"]; want == 0 || c2.Codes["skipped:suppressed"] != want {
		t.Fatalf("second run suppressed %d, want the %d opt-outs", c2.Codes["skipped:suppressed"], want)
	}
	t.Logf("10k run: %v; %d permanent, %d fail-twice, %d throttled", c.States, permanent, failTwice, throttled)
}

// TestIntegrationTemplateNotFoundPausesRun switches the fake to "template not found" mid-run:
// the run pauses at once, at most the worker's concurrency of further requests go out, and
// after resume the run finishes with nobody accepted twice.
func TestIntegrationTemplateNotFoundPausesRun(t *testing.T) {
	rdb, _ := integrationRedis(t)
	ctx := context.Background()
	slow := fakeconnectly.Rule{Percent: 100, Salt: "slow", Latency: 5 * time.Millisecond}
	fake, url := startFake(t, []fakeconnectly.Rule{slow})
	def := writeCampaign(t, t.TempDir(), "tnf", "at-most-once", 3000)
	run, _, err := startRun(ctx, rdb, def, def.Sender, serve.SendTaskOptions(config.Default()), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const concurrency = 10
	startWorker(t, rdb, url, concurrency)
	l := ledger.New(rdb, nil)
	waitFor(t, time.Minute, "500 accepted", func() bool { return fake.Stats().Accepted >= 500 })
	fake.SetRules([]fakeconnectly.Rule{{Percent: 100, Salt: "tnf", Code: "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND"}})
	waitFor(t, 10*time.Second, "the run to pause", func() bool { return runStatus(t, l, run.ID) == ledger.RunPaused })
	// Let held tasks come round a few times: nothing more may be sent while paused.
	waitFor(t, 10*time.Second, "held tasks to cycle", func() bool {
		c, _ := l.Counters(ctx, run.ID)
		return c.States[ledger.Submitting] == 0
	})
	time.Sleep(time.Second) // a window in which a paused run must stay silent
	recs := fake.Received()
	first := -1
	for i, r := range recs {
		if r.ErrorCode == "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND" {
			first = i
			break
		}
	}
	if after := len(recs) - first - 1; first < 0 || after > concurrency {
		t.Fatalf("%d requests after the first template-not-found answer, want at most %d", after, concurrency)
	}
	r, _ := l.GetRun(ctx, run.ID)
	if r.PauseReason == "" {
		t.Fatal("paused without a reason")
	}
	fake.SetRules([]fakeconnectly.Rule{slow})
	if ok, err := l.Resume(ctx, run.ID); err != nil || !ok {
		t.Fatalf("resume: %v %v", ok, err)
	}
	waitFor(t, 2*time.Minute, "the run to complete", func() bool { return runStatus(t, l, run.ID) == ledger.RunCompleted })
	c, _ := l.Counters(ctx, run.ID)
	twice, distinct := acceptedTwice(fake)
	if len(twice) > 0 || c.Sum() != 3000 || int64(distinct) != c.States[ledger.Accepted] || c.States[ledger.Accepted] != 3000 {
		t.Fatalf("after resume: %d accepted twice, %d distinct, states %v", len(twice), distinct, c.States)
	}
	t.Logf("paused for %q; %d requests after the first refusal", r.PauseReason, len(recs)-first-1)
}

// TestIntegrationSIGKILLFiveTimes kills a worker process with SIGKILL five times at random
// moments while it sends an at-most-once and an at-least-once run, restarting it each time.
// At-most-once must end with nobody accepted twice and nobody missing; at-least-once with
// nobody missing.
func TestIntegrationSIGKILLFiveTimes(t *testing.T) {
	t.Parallel() // beside the other long integration tests, on a database of its own (dbs)
	rdb, url := integrationRedis(t)
	ctx := context.Background()
	fake, baseURL := startFake(t, []fakeconnectly.Rule{{Percent: 100, Salt: "slow", Latency: 30 * time.Millisecond}})
	dir := t.TempDir()
	const n = 1500
	amo := writeCampaign(t, filepath.Join(dir, "amo"), "kill-amo", "at-most-once", n)
	alo := writeCampaign(t, filepath.Join(dir, "alo"), "kill-alo", "at-least-once", n)
	var runs []ledger.Run
	for _, def := range []*campaigns.Definition{amo, alo} {
		r, _, err := startRun(ctx, rdb, def, def.Sender, serve.SendTaskOptions(config.Default()), zerolog.Nop(), nil)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	cfgPath := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(cfgPath, []byte("senders:\n  - {number: \"+14155550100\", rate: 1000}\nconnectly: {business_rate: 1000}\n"+
		"worker: {concurrency: 30}\nretry: {base: 50ms, cap: 500ms, throttle_delay: 100ms, hold_delay: 500ms}\nlog: {level: warn, format: json}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"HERALD_CONFIG=" + cfgPath, "HERALD_REDIS_URL=" + url, "CONNECTLY_BASE_URL=" + baseURL,
		"CONNECTLY_BUSINESS_ID=" + itBusiness, "CONNECTLY_API_KEY=" + itKey}
	l := ledger.New(rdb, nil)
	done := func() int64 {
		var sum int64
		for _, r := range runs {
			c, err := l.Counters(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			for s, k := range c.States {
				if s.Terminal() {
					sum += k
				}
			}
		}
		return sum
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for kill := 1; kill <= 5; kill++ {
		p := startWorkerProc(t, env)
		target := int64(2*n) * int64(kill) * 12 / 100 // 12%, 24%, ... of both runs
		waitFor(t, time.Minute, fmt.Sprintf("%d recipients done before kill %d", target, kill), func() bool { return done() >= target })
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond) // a random moment, mid-send
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-p.done
	}
	final := startWorkerProc(t, env)
	// Tasks that were in flight in a killed worker come back once asynq sees their lease expire
	// (30 s after the last extension, checked every minute), so this wait is long.
	waitFor(t, 4*time.Minute, "both runs to complete", func() bool {
		return runStatus(t, l, runs[0].ID) == ledger.RunCompleted && runStatus(t, l, runs[1].ID) == ledger.RunCompleted
	})
	final.stop(t)

	// Sends are told apart by the run their callbackData names. campaignName is off by
	// default, so none carries it.
	accepted, named := map[string]int{}, 0
	for _, r := range fake.Received() {
		if r.Message.CampaignName != "" {
			named++
		}
		if a, ok := ledger.ParseCallback(r.Message.CallbackData); ok && r.MessageID != "" {
			accepted[a.Run+"/"+r.Number]++
		}
	}
	if named > 0 {
		t.Errorf("%d sends carry campaignName with connectly.send_campaign_name unset", named)
	}
	for i, r := range runs {
		c, err := l.Counters(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Sum() != n || c.States[ledger.Planned]+c.States[ledger.Queued]+c.States[ledger.Submitting] != 0 {
			t.Fatalf("%s: states %v, want all %d terminal", r.ID, c.States, n)
		}
		var twice, missing int
		err = l.EachEntry(ctx, r.ID, func(rcpt string, _ int, e ledger.Entry) error {
			k := accepted[r.ID+"/"+rcpt]
			if k > 1 {
				twice++
			}
			if e.State == ledger.Accepted && k == 0 {
				missing++ // the ledger says accepted but the fake never accepted it
			}
			if e.State == ledger.Unknown && i == 1 {
				t.Errorf("at-least-once run left %s unknown", rcpt)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if missing > 0 {
			t.Errorf("%s: %d recipients accepted in the ledger but never by the fake", r.ID, missing)
		}
		if r.Delivery == ledger.AtMostOnce && twice > 0 {
			t.Errorf("%s (at-most-once): %d recipients accepted twice", r.ID, twice)
		}
		t.Logf("%s (%s): %v, %d accepted twice", r.ID, r.Delivery, c.States, twice)
	}
}
