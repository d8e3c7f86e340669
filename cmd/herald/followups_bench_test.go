package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/backoff"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/heraldmsg/herald/serve"
	"github.com/heraldmsg/herald/worker"
)

// capturedHook is one webhook call the fake made, kept to be replayed.
type capturedHook struct {
	body []byte
	sig  string
}

// BenchmarkReceiverReplies measures, on one receiver with on_reply installed, the replies per
// second it turns into follow-up tasks (the join, the rule match, the follow-up entry and its
// outbox in one script, the asynq task, the outbox cleared) next to the plain delivery events
// per second it records, in the same run. The bodies are the fake's own: a real run of
// benchFollowupRecipients recipients is sent through the fake, whose readers each reply once,
// half by tapping "Yes" (joined by the callbackData the tap carries) and half by typing
// "price?" (no callbackData: joined through the index of recent sends the worker recorded),
// and its webhooks are captured instead of delivered. The receiver then gets them straight
// into its handler, and, under path=http/..., through the HTTP server `herald webhooks` runs,
// on 127.0.0.1, signed as the fake signed them. Every body is replayed once, so each reply
// creates a new follow-up and each event a new delivery state: run it with -count 1 and a
// -benchtime of a few hundred ops (each kind of reply has about benchFollowupRecipients/2
// bodies, shared by its direct and HTTP paths; a sub-benchmark with too few bodies left
// skips). Needs HERALD_TEST_REDIS (a database leased from dbs, flushed).
func BenchmarkReceiverReplies(b *testing.B) {
	rdb, err := redisx.Open(dbs.Lease(b))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Cleanup(func() { rdb.Close() })

	var mu sync.Mutex
	var replies, texts, events []capturedHook
	capture := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := capturedHook{body: body, sig: r.Header.Get(webhooks.SignatureHeader)}
		mu.Lock()
		switch {
		case bytes.Contains(body, []byte(`"statusUpdate"`)):
			events = append(events, h)
		case bytes.Contains(body, []byte(benchTextReply)):
			texts = append(texts, h)
		default:
			replies = append(replies, h)
		}
		mu.Unlock()
	}))
	defer capture.Close()

	const secret = "bench-followup-secret-0123456789"
	fake, baseURL := fakeconnectly.StartForTest(b, fakeconnectly.Config{BusinessID: itBusiness, APIKey: itKey, RateLimit: -1,
		Webhooks: fakeconnectly.WebhookConfig{URL: capture.URL + "/", Secret: secret, Seed: 7, Concurrency: 16,
			Fates: []fakeconnectly.Fate{{Percent: 100, Salt: "read", Status: fakeconnectly.HookRead}},
			Replies: fakeconnectly.ReplyMix("r",
				fakeconnectly.Reply{Percent: 50, Kind: fakeconnectly.KindTemplate, Template: "it_tpl", Times: 1, Button: "Yes", Payload: "YES"},
				fakeconnectly.Reply{Percent: 50, Kind: fakeconnectly.KindTemplate, Times: 1, Text: benchTextReply})}})

	dir := b.TempDir()
	if err := writeBenchCampaign(dir, benchFollowupRecipients); err != nil {
		b.Fatal(err)
	}
	def, err := campaigns.Load(filepath.Join(dir, "campaign.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	c := config.Default()
	c.Connectly.BusinessID = itBusiness
	run, _, err := startRun(ctx, rdb, def, def.Sender, serve.SendTaskOptions(c), zerolog.Nop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: baseURL, BusinessID: itBusiness, APIKey: itKey, MaxConns: 50})
	if err != nil {
		b.Fatal(err)
	}
	w := worker.New(worker.Config{
		Concurrency: 50, Backoff: backoff.Backoff{Base: 20 * time.Millisecond, Cap: 200 * time.Millisecond},
		ThrottleDelay: 100 * time.Millisecond, HoldDelay: 200 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond, TaskCheckInterval: 50 * time.Millisecond,
		Limits: limits.Config{BusinessID: itBusiness, BusinessRate: 20000, DefaultSenderRate: 20000, PairInterval: -1},
	}, worker.Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop()})
	w.OnSending(serve.SendRecorder(c, rdb, zerolog.Nop()))
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	l := ledger.New(rdb, nil)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		r, err := l.GetRun(ctx, run.ID)
		if err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		got := len(replies) + len(texts)
		mu.Unlock()
		if r.Status == ledger.RunCompleted && fake.WebhookStats().Pending == 0 && got == benchFollowupRecipients {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the run %s and its webhooks: %d replies captured of %d", r.Status, got, benchFollowupRecipients)
		}
		time.Sleep(50 * time.Millisecond) // polling the run and the fake
	}
	// No worker from here: the follow-up tasks the replies create stay queued.
	w.Stop()
	w.Shutdown()

	fu, err := serve.NewFollowups(c, rdb, zerolog.Nop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	rc, err := webhooks.New(webhooks.Config{Secrets: []string{secret}, Business: itBusiness}, webhooks.Deps{Redis: rdb, Logger: zerolog.Nop(), Replies: fu})
	if err != nil {
		b.Fatal(err)
	}
	ws, err := serve.StartReceiver(ctx, serve.ReceiverSetup{Config: webhooks.Config{Secrets: []string{secret}, Business: itBusiness},
		Listen: "127.0.0.1:0", Redis: rdb, Log: zerolog.Nop(), Followups: fu})
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Stop()
	direct := func(h capturedHook) (int, string) {
		rw := httptest.NewRecorder()
		rc.ServeHTTP(rw, hookRequest(httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(h.body)), h))
		return rw.Code, rw.Body.String()
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	overHTTP := func(h capturedHook) (int, string) {
		req, err := http.NewRequest(http.MethodPost, "http://"+ws.Addr()+"/", bytes.NewReader(h.body))
		if err != nil {
			return 0, err.Error()
		}
		resp, err := hc.Do(hookRequest(req, h))
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// One cursor per kind across the benchmark's rounds and paths, so a body is fresh until
	// all were used.
	var nextEvent, nextReply, nextText atomic.Int64
	b.Run("path=delivery-events", func(b *testing.B) { replayHooks(b, direct, events, &nextEvent) })
	b.Run("path=replies-to-followups", func(b *testing.B) { replayHooks(b, direct, replies, &nextReply) })
	b.Run("path=text-replies-to-followups", func(b *testing.B) { replayHooks(b, direct, texts, &nextText) })
	b.Run("path=http/delivery-events", func(b *testing.B) { replayHooks(b, overHTTP, events, &nextEvent) })
	b.Run("path=http/replies-to-followups", func(b *testing.B) { replayHooks(b, overHTTP, replies, &nextReply) })
	b.Run("path=http/text-replies-to-followups", func(b *testing.B) { replayHooks(b, overHTTP, texts, &nextText) })
	// A reply Connectly delivers again (the provider retries a webhook it saw no 2xx for):
	// bodies the runs above already applied, so each one must change nothing.
	b.Run("path=repeated-replies", func(b *testing.B) { replayUsed(b, direct, replies, nextReply.Load()) })
	b.Run("path=http/repeated-replies", func(b *testing.B) { replayUsed(b, overHTTP, replies, nextReply.Load()) })
	// The replies did what they are measured for: one follow-up entry per distinct reply
	// replayed, of the rule its kind matches (a text reply joined through the index, not lost),
	// and none more for the repeated ones.
	f, err := report.RunFunnel(ctx, l, mustRunB(b, l, run.ID), serve.RunRuleIDs(c, rdb))
	if err != nil || f == nil || len(f.Rules) != 2 {
		b.Fatalf("funnel %+v: %v", f, err)
	}
	for i, want := range []int64{nextReply.Load(), nextText.Load()} {
		if f.Rules[i].Created != want {
			b.Fatalf("rule %s: %d follow-ups created for %d distinct replies", f.Rules[i].Rule, f.Rules[i].Created, want)
		}
	}
}

// benchTextReply is what the benchmark's typing readers write; the campaign's second rule
// matches it by keyword.
const benchTextReply = "price?"

// hookRequest sets a captured webhook's headers on req, as the fake sent them.
func hookRequest(req *http.Request, h capturedHook) *http.Request {
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set(webhooks.SignatureHeader, h.sig)
	return req
}

// benchFollowupRecipients is the size of the benchmark's run: one reply and three delivery
// events each.
const benchFollowupRecipients = 3000

// replayHooks posts b.N fresh bodies of hooks: each body once, across the benchmark's paths.
func replayHooks(b *testing.B, post func(capturedHook) (int, string), hooks []capturedHook, next *atomic.Int64) {
	if next.Load()+int64(b.N) > int64(len(hooks)) {
		// A repeated body measures the duplicate path, not the one named here.
		b.Skipf("%d fresh bodies left, want %d: the paths share one run's bodies (%d recipients, half tapping, half typing); "+
			"use -count 1, a -benchtime of at most 1400x, and run the direct and the http paths in separate invocations "+
			"(-bench 'BenchmarkReceiverReplies/path=[^h]' and -bench 'BenchmarkReceiverReplies/path=http')",
			int64(len(hooks))-next.Load(), b.N, benchFollowupRecipients)
	}
	replay(b, post, func(int64) capturedHook { return hooks[next.Add(1)-1] })
}

// replayUsed posts b.N bodies from the first used of hooks, each already applied once: the
// duplicate path.
func replayUsed(b *testing.B, post func(capturedHook) (int, string), hooks []capturedHook, used int64) {
	if used == 0 {
		b.Skip("no reply was applied before: run a replies-to-followups path in the same invocation")
	}
	replay(b, post, func(i int64) capturedHook { return hooks[i%used] })
}

// replay posts b.N bodies, the i-th being body(i), from 16 goroutines and reports webhooks/s.
func replay(b *testing.B, post func(capturedHook) (int, string), body func(i int64) capturedHook) {
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if code, resp := post(body(n.Add(1) - 1)); code != http.StatusOK {
				b.Errorf("status %d: %s", code, resp)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "webhooks/s")
}

// writeBenchCampaign writes an audience of n generated recipients and a campaign for it with
// two on_reply rules: the "Yes" button, and the keyword of benchTextReply.
func writeBenchCampaign(dir string, n int) error {
	var aud bytes.Buffer
	aud.WriteString("name,phone\n")
	gen := newPhoneGen()
	for i := range n {
		aud.WriteString("p" + strconv.Itoa(i) + "," + gen.next() + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "audience.csv"), aud.Bytes(), 0o644); err != nil {
		return err
	}
	yaml := "id: bench-replies\nsender: \"+14155550100\"\ntemplate: {name: it_tpl, language: en}\n" +
		"parameters:\n  body_1: \"{{ .name }}\"\naudience: {file: audience.csv, phone: phone}\ndelivery: at-most-once\n" +
		"on_reply:\n  - name: yes\n    button: \"Yes\"\n    message: {text: \"Here it is\"}\n" +
		"  - name: price\n    keyword: price\n    message: {text: \"From $9\"}\n"
	return os.WriteFile(filepath.Join(dir, "campaign.yaml"), []byte(yaml), 0o644)
}

func mustRunB(b *testing.B, l *ledger.Ledger, id string) ledger.Run {
	b.Helper()
	r, err := l.GetRun(context.Background(), id)
	if err != nil {
		b.Fatal(err)
	}
	return r
}
