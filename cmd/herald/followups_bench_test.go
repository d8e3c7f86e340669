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
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/internal/webhooks"
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
// benchFollowupRecipients recipients is sent through the fake, whose readers all tap "Yes"
// once, and its webhooks are captured instead of delivered; the receiver then gets them
// directly (no HTTP). Every body is replayed once, so each reply creates a new follow-up and
// each event a new delivery state: run it with -count 1 and -benchtime of at most
// benchFollowupRecipients-1 ops (a sub-benchmark with too few bodies left skips). Needs
// HERALD_TEST_REDIS (its DB is flushed).
func BenchmarkReceiverReplies(b *testing.B) {
	url := os.Getenv("HERALD_TEST_REDIS")
	if url == "" {
		b.Skip("set HERALD_TEST_REDIS to a Redis whose DB may be flushed")
	}
	rdb, err := redisx.Open(url)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rdb.FlushDB(context.Background()); rdb.Close() })

	var mu sync.Mutex
	var replies, events []capturedHook
	capture := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := capturedHook{body: body, sig: r.Header.Get(webhooks.SignatureHeader)}
		mu.Lock()
		if bytes.Contains(body, []byte(`"statusUpdate"`)) {
			events = append(events, h)
		} else {
			replies = append(replies, h)
		}
		mu.Unlock()
	}))
	defer capture.Close()

	const secret = "bench-followup-secret-0123456789"
	fake, err := fakeconnectly.New(fakeconnectly.Config{BusinessID: itBusiness, APIKey: itKey, RateLimit: -1,
		Webhooks: fakeconnectly.WebhookConfig{URL: capture.URL + "/", Secret: secret, Seed: 7, Concurrency: 16,
			Fates: []fakeconnectly.Fate{{Percent: 100, Salt: "read", Status: fakeconnectly.HookRead}},
			Replies: []fakeconnectly.Reply{{Percent: 100, Salt: "r", Kind: fakeconnectly.KindTemplate, Times: 1,
				Button: "Yes", Payload: "YES"}}}})
	if err != nil {
		b.Fatal(err)
	}
	baseURL, err := fake.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer fake.Close()

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
	run, _, err := startRun(ctx, rdb, def, def.Sender, sendTaskOptions(c), zerolog.Nop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: baseURL, BusinessID: itBusiness, APIKey: itKey, MaxConns: 50})
	if err != nil {
		b.Fatal(err)
	}
	w := worker.New(worker.Config{
		Concurrency: 50, Backoff: worker.Backoff{Base: 20 * time.Millisecond, Cap: 200 * time.Millisecond},
		ThrottleDelay: 100 * time.Millisecond, HoldDelay: 200 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond, TaskCheckInterval: 50 * time.Millisecond,
		Limits: limits.Config{BusinessID: itBusiness, BusinessRate: 20000, DefaultSenderRate: 20000, PairInterval: -1},
	}, worker.Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop()})
	w.OnSending(sendRecorder(c, rdb, zerolog.Nop()))
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
		got := len(replies)
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

	fu, err := newFollowups(c, rdb, zerolog.Nop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	rc, err := webhooks.New(webhooks.Config{Secrets: []string{secret}, Business: itBusiness}, webhooks.Deps{Redis: rdb, Logger: zerolog.Nop(), Replies: fu})
	if err != nil {
		b.Fatal(err)
	}
	// One cursor per kind across the benchmark's rounds, so a body is fresh until all were used.
	var nextEvent, nextReply atomic.Int64
	b.Run("path=delivery-events", func(b *testing.B) { replayHooks(b, rc, events, &nextEvent) })
	b.Run("path=replies-to-followups", func(b *testing.B) { replayHooks(b, rc, replies, &nextReply) })
	// The replies did what they are measured for: one follow-up entry per recipient replayed.
	f, err := runFunnel(ctx, c, l, rdb, mustRunB(b, l, run.ID))
	if err != nil || f == nil {
		b.Fatal(err)
	}
	if want := nextReply.Load(); f.Rules[0].Created != want {
		b.Fatalf("%d follow-ups created for %d distinct replies", f.Rules[0].Created, want)
	}
}

// benchFollowupRecipients is the size of the benchmark's run: one reply and three delivery
// events each.
const benchFollowupRecipients = 3000

func replayHooks(b *testing.B, rc *webhooks.Receiver, hooks []capturedHook, next *atomic.Int64) {
	if next.Load()+int64(b.N) > int64(len(hooks)) {
		// A repeated body measures the duplicate path, not the one named here.
		b.Skipf("%d fresh bodies left, want %d: use -count 1 and -benchtime of at most %dx", int64(len(hooks))-next.Load(), b.N, benchFollowupRecipients-1)
	}
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h := hooks[next.Add(1)-1]
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(h.body))
			req.Header.Set("Content-Type", "text/plain; charset=utf-8")
			req.Header.Set(webhooks.SignatureHeader, h.sig)
			rw := httptest.NewRecorder()
			rc.ServeHTTP(rw, req)
			if rw.Code != http.StatusOK {
				b.Errorf("status %d: %s", rw.Code, rw.Body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "webhooks/s")
}

// writeBenchCampaign writes an audience of n generated recipients and a campaign for it with
// one on_reply rule, for the "Yes" button.
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
		"on_reply:\n  - name: yes\n    button: \"Yes\"\n    message: {text: \"Here it is\"}\n"
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
