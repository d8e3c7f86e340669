package conversation_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/testlog"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/heraldmsg/herald/worker"
)

// TestInboundAndFollowupLogsMaskCustomers runs the webhook receiver, the follow-ups and a
// worker at debug level into one buffer, as `herald webhooks` and `herald worker` log: a
// customer known by phone number asks the price (typed text, with their name on the webhook
// and a number in the text), a customer known only by a BSUID writes something no rule is
// about and then "Stop!", and the price follow-up goes out through a fake Connectly. Every
// line is scanned: no full phone number, no full BSUID, nothing the customers wrote or were
// called, no webhook secret, no API key.
func TestInboundAndFollowupLogsMaskCustomers(t *testing.T) {
	t.Parallel()
	const (
		secret   = "whsec-logscan-7f3a9c2e41"
		apiKey   = "key-logscan-0d9e8f7a6b5c"
		bsuidID  = "US.13491208655302741918"
		name     = "Anastasia Kowalczyk"
		asked    = "How much is the blue kettle? Call me back on 0207 946 0958 please"
		stopper  = "Zbigniew Brzeczyszczykiewicz"
		wondered = "Is this the shop on Marszalkowska street?"
	)
	b := setupFollowups(t)
	ctx := context.Background()
	ana, bsuid := b.rcpts[0], "bsuid:"+bsuidID

	// The BSUID customer got a message of a second run of the campaign.
	run2 := b.run
	run2.ID = "promo-bsuid"
	if err := b.l.CreateRun(ctx, run2); err != nil {
		t.Fatal(err)
	}
	pe := ledger.PlanEntry{Recipient: bsuid, Bucket: ledger.BucketOf(bsuid, run2.Buckets), Row: 1}
	if _, err := b.l.PlanQueued(ctx, ledger.Batch{Run: run2.ID, From: 0, To: 1, Entries: []ledger.PlanEntry{pe}}); err != nil {
		t.Fatal(err)
	}
	a := ledger.Address{Run: run2.ID, Recipient: bsuid, Bucket: pe.Bucket}
	if _, err := b.l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: "wamid.bsuid-1", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	resolve := func(ctx context.Context, id string) (conversation.RunInfo, bool, error) {
		if id == run2.ID {
			return conversation.RunInfo{Run: run2, Def: b.def}, true, nil
		}
		return b.resolve(ctx, id)
	}

	logs := &testlog.Buffer{}
	log := zerolog.New(logs).Level(zerolog.DebugLevel)
	fu, err := conversation.NewFollowups(conversation.FollowupConfig{Redis: b.rdb, Business: "biz", Tasks: b.tasks,
		Resolve: resolve, Now: b.clock.now, Logger: log, Metrics: conversation.NewMetrics(nil)})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		run string
		to  string
	}{{b.run.ID, ana}, {run2.ID, bsuid}} {
		if err := fu.Index().Record(ctx, s.run, ledger.BucketOf(s.to, b.run.Buckets), s.to, b.clock.t.Add(72*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	b.clock.t = b.clock.t.Add(time.Minute)
	rc, err := webhooks.New(webhooks.Config{Secrets: []string{secret}, Now: b.clock.now, Business: "biz"},
		webhooks.Deps{Redis: b.rdb, Logger: log, Replies: fu, Metrics: metrics.New().NewWebhooks()})
	if err != nil {
		t.Fatal(err)
	}
	post := func(body []byte) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(webhooks.SignatureHeader, webhooks.Sign(body, secret))
		w := httptest.NewRecorder()
		rc.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	post(fmt.Appendf(nil, `{"timestamp":"%d","sender":{"id":%q,"channelType":"whatsapp","name":%q},`+
		`"recipient":{"id":"+16044441234","channelType":"whatsapp"},"message":{"id":"wamid.ana-ask","text":%q}}`,
		b.clock.t.Unix(), ana, name, asked))
	bsuidSays := func(id, text string) []byte {
		return fmt.Appendf(nil, `{"timestamp":"%d","sender":{"id":%q,"channelType":"whatsapp","name":%q,"userId":%q,"phoneNumber":""},`+
			`"recipient":{"id":"+16044441234","channelType":"whatsapp"},"message":{"id":%q,"text":%q}}`,
			b.clock.t.Unix(), bsuidID, stopper, bsuidID, id, text)
	}
	post(bsuidSays("wamid.bsuid-who", wondered)) // matches no rule
	post(bsuidSays("wamid.bsuid-stop", "Stop!"))
	if sups, err := b.l.Suppressions(ctx, []string{bsuid}); err != nil || !sups[0].Blocks(false) {
		t.Fatalf("the BSUID customer's STOP: %+v, %v; want suppressed", sups, err)
	}

	// The price follow-up, a session message, goes through a worker to a fake Connectly that
	// has ana's window open, as Herald's record has it from her question.
	b.tasks.mu.Lock()
	written := b.tasks.tasks[b.taskID(ledger.FollowupRun(b.run.ID, "price"), ana)]
	b.tasks.mu.Unlock()
	if len(written) != 1 {
		t.Fatalf("%d tasks for ana's price follow-up, want 1", len(written))
	}
	fake, err := fakeconnectly.New(fakeconnectly.Config{BusinessID: "biz", APIKey: apiKey, RateLimit: -1, Clock: b.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	if err := fake.OpenWindow(ana, b.clock.t); err != nil {
		t.Fatal(err)
	}
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: srv.URL, BusinessID: "biz", APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(worker.Config{Limits: limits.Config{BusinessID: "biz", BusinessRate: -1, DefaultSenderRate: 1e6, PairInterval: -1}},
		worker.Deps{Redis: b.rdb, Sender: client, Logger: log, Now: b.clock.now, Metrics: metrics.New()})
	w.OnSending(conversation.SendRecorder(resolve, fu.Index(), conversation.NewColumns(b.rdb)))
	if err := w.HandleSend(ctx, asynq.NewTask(campaigns.TypeSend, written[0].Payload)); err != nil {
		t.Fatal(err)
	}
	fe, ok, err := b.l.Entry(ctx, ledger.FollowupAddress(b.run.ID, "price", ana, b.run.Buckets))
	if err != nil || !ok || fe.State != ledger.Accepted {
		t.Fatalf("price follow-up %+v (found %v, %v), want accepted", fe, ok, err)
	}

	out := logs.String()
	for _, want := range []string{`"message":"inbound message"`, "opted out (inbound message)", "matched no on_reply rule", `"component":"worker"`} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s line: the scan would see nothing of it\n%s", want, out)
		}
	}
	for _, secretText := range []string{
		ana, strings.TrimPrefix(ana, "+"), ana[2:], // the number, with or without + and country code
		bsuid, bsuidID, bsuidID[3:], // the BSUID, with or without its prefix and region
		name, "Kowalczyk", asked, "blue kettle", "946 0958", stopper, "Zbigniew", wondered, "Marszalkowska",
		secret, apiKey,
	} {
		if strings.Contains(out, secretText) {
			t.Errorf("the log holds %q", secretText)
		}
	}
	// No number of 7 digits or more anywhere (a run of digits that is not part of an id such
	// as a message's ULID): a number is masked but for its last 4.
	if m := regexp.MustCompile(`(?:^|[^0-9A-Za-z_])\+?\d{7,}(?:[^0-9A-Za-z_]|$)`).FindAllString(out, -1); len(m) > 0 {
		t.Errorf("the log holds digit runs %q", m)
	}
	if t.Failed() {
		t.Logf("log:\n%s", out)
	}
}
