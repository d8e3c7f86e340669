package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/backoff"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/testredis"
)

// fakeSender is a Sender that records every request and answers with SendFunc, or accepts
// with message id "msg-<number>" when SendFunc is nil.
type fakeSender struct {
	SendFunc func(ctx context.Context, msg connectly.TemplateMessage) (connectly.SendResult, error)

	mu    sync.Mutex
	calls []connectly.TemplateMessage
}

func (f *fakeSender) SendTemplate(ctx context.Context, msg connectly.TemplateMessage) (connectly.SendResult, error) {
	f.mu.Lock()
	f.calls = append(f.calls, msg)
	f.mu.Unlock()
	if f.SendFunc != nil {
		return f.SendFunc(ctx, msg)
	}
	return connectly.SendResult{ID: "msg-" + msg.Number}, nil
}

// Calls returns the requests made so far.
func (f *fakeSender) Calls() []connectly.TemplateMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]connectly.TemplateMessage(nil), f.calls...)
}

// CallsTo counts the requests made to one recipient.
func (f *fakeSender) CallsTo(number string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Number == number {
			n++
		}
	}
	return n
}

// answer returns a SendFunc that always fails with err.
func answer(err error) func(context.Context, connectly.TemplateMessage) (connectly.SendResult, error) {
	return func(context.Context, connectly.TemplateMessage) (connectly.SendResult, error) {
		return connectly.SendResult{}, err
	}
}

func apiError(status int, code string) *connectly.Error {
	return &connectly.Error{StatusCode: status, ErrorBody: connectly.ErrorBody{Code: code, Message: "from the test"}}
}

const (
	testSender   = "+15550001111"
	testCampaign = "spring-sale"
)

// testSenderLabel is testSender's sender label in the metrics (masked; testConfig lists no
// sender).
var testSenderLabel = metrics.SenderLabels{}.Of(testSender)

// testConfig is a worker configuration that never paces (tests of pacing set their own
// rates) and gives up after three attempts.
func testConfig() Config {
	return Config{
		MaxAttempts:   3,
		ThrottleDelay: 3 * time.Second,
		HoldDelay:     7 * time.Second,
		Backoff:       backoff.Backoff{Base: 10 * time.Millisecond, Cap: 50 * time.Millisecond},
		// Tests retry one recipient within milliseconds; the pair limit has its own test.
		Limits: limits.Config{BusinessRate: -1, DefaultSenderRate: 1e6, PairInterval: -1},
	}
}

type testBundle struct {
	mr     *miniredis.Miniredis
	rdb    *redis.Client
	ledger *ledger.Ledger
	sender *fakeSender
	worker *Worker
	// outage, set by setupOutage, stands between rdb and mr.
	outage *testredis.Outage
}

func setup(tb testing.TB, cfg Config) *testBundle {
	tb.Helper()
	return setupWith(tb, cfg, &redis.Options{}, nil)
}

// setupWith is setup with opts for the Redis client (its address is miniredis's) and the
// worker's Sleep (nil: a real timer).
func setupWith(tb testing.TB, cfg Config, opts *redis.Options, sleep func(context.Context, time.Duration) error) *testBundle {
	tb.Helper()
	mr := miniredis.RunT(tb)
	opts.Addr = mr.Addr()
	return setupOn(tb, mr, cfg, opts, sleep)
}

// setupOutage is setupWith with the client dialing through an Outage before the miniredis
// (b.outage), for a test of Redis going down (b.outage.Cut): closing the miniredis would free
// its port, which another test process's server may take before the client's next command.
func setupOutage(tb testing.TB, cfg Config, opts *redis.Options, sleep func(context.Context, time.Duration) error) *testBundle {
	tb.Helper()
	mr := miniredis.RunT(tb)
	o := testredis.NewOutage(tb, mr.Addr())
	opts.Dialer = o.Dial
	b := setupOn(tb, mr, cfg, opts, sleep)
	b.outage = o
	return b
}

// setupOn is setupWith on mr, with a client of opts.
func setupOn(tb testing.TB, mr *miniredis.Miniredis, cfg Config, opts *redis.Options, sleep func(context.Context, time.Duration) error) *testBundle {
	tb.Helper()
	rdb := redis.NewClient(opts)
	tb.Cleanup(func() { rdb.Close() })
	sender := &fakeSender{}
	w := New(cfg, Deps{Redis: rdb, Sender: sender, Logger: zerolog.Nop(), Sleep: sleep})
	return &testBundle{mr: mr, rdb: rdb, ledger: ledger.New(rdb, nil), sender: sender, worker: w}
}

// seedRun creates a fully expanded run of n queued recipients, the way the scheduler does,
// and returns the send payloads of its tasks.
func seedRun(tb testing.TB, b *testBundle, runID string, d ledger.Delivery, n int) []campaigns.SendPayload {
	tb.Helper()
	return seedRunNumbers(tb, b, runID, d, "+1555", n)
}

// seedRunNumbers is seedRun with recipients numbered prefix followed by seven digits.
func seedRunNumbers(tb testing.TB, b *testBundle, runID string, d ledger.Delivery, prefix string, n int) []campaigns.SendPayload {
	tb.Helper()
	return seedRunWith(tb, b, ledger.Run{ID: runID, Delivery: d}, prefix, n)
}

// seedRunWith is seedRunNumbers for a run whose id, delivery policy and resend policy come
// from r.
func seedRunWith(tb testing.TB, b *testBundle, r ledger.Run, prefix string, n int) []campaigns.SendPayload {
	tb.Helper()
	ctx := context.Background()
	runID, d := r.ID, r.Delivery
	buckets := ledger.BucketsFor(n)
	err := b.ledger.CreateRun(ctx, ledger.Run{
		ID: runID, Campaign: testCampaign, Delivery: d, Template: "spring_sale", Language: "en",
		Sender: testSender, Queue: campaigns.QueueFor("marketing"), Buckets: buckets, ResendAfter: r.ResendAfter,
	})
	if err != nil {
		tb.Fatalf("CreateRun: %v", err)
	}
	entries := make([]ledger.PlanEntry, n)
	payloads := make([]campaigns.SendPayload, n)
	for i := range n {
		to := fmt.Sprintf("%s%07d", prefix, i)
		entries[i] = ledger.PlanEntry{Recipient: to, Bucket: ledger.BucketOf(to, buckets), Row: i + 1}
		payloads[i] = campaigns.SendPayload{
			Run: runID, To: to, Bucket: entries[i].Bucket, Row: i + 1, Campaign: testCampaign,
			Template: "spring_sale", Language: "en", Sender: testSender,
			Params:   []connectly.Parameter{{Name: "first_name", Value: fmt.Sprintf("Ana%d", i)}},
			Delivery: string(d),
		}
	}
	if _, err := b.ledger.PlanQueued(ctx, ledger.Batch{Run: runID, From: 0, To: n, Entries: entries}); err != nil {
		tb.Fatalf("Plan: %v", err)
	}
	if err := b.ledger.MarkQueuedAt(ctx, runID, 0, n, 0); err != nil {
		tb.Fatalf("MarkQueued: %v", err)
	}
	if _, err := b.ledger.FinishExpansion(ctx, runID, n); err != nil {
		tb.Fatalf("FinishExpansion: %v", err)
	}
	return payloads
}

func sendTask(tb testing.TB, p campaigns.SendPayload) *asynq.Task {
	tb.Helper()
	task, err := campaigns.NewSendTask(p, ledger.NewTaskIDs([]byte("worker tests")), campaigns.TaskOptions{Queue: campaigns.QueueFor("marketing"), MaxRetry: 25})
	if err != nil {
		tb.Fatalf("NewSendTask: %v", err)
	}
	return task
}

// handle runs the send handler on p's task, as asynq would.
func handle(tb testing.TB, b *testBundle, p campaigns.SendPayload) error {
	tb.Helper()
	return b.worker.HandleSend(context.Background(), sendTask(tb, p))
}

func entryOf(tb testing.TB, b *testBundle, p campaigns.SendPayload) ledger.Entry {
	tb.Helper()
	e, ok, err := b.ledger.Entry(context.Background(), p.Address())
	if err != nil || !ok {
		tb.Fatalf("Entry(%s) = %v, %v", p.To, ok, err)
	}
	return e
}

func countersOf(tb testing.TB, b *testBundle, runID string) ledger.Counters {
	tb.Helper()
	c, err := b.ledger.Counters(context.Background(), runID)
	if err != nil {
		tb.Fatalf("Counters: %v", err)
	}
	return c
}

func runOf(tb testing.TB, b *testBundle, runID string) ledger.Run {
	tb.Helper()
	r, err := b.ledger.GetRun(context.Background(), runID)
	if err != nil {
		tb.Fatalf("GetRun: %v", err)
	}
	return r
}

func wantEntry(tb testing.TB, b *testBundle, p campaigns.SendPayload, want ledger.Entry) {
	tb.Helper()
	want.Row = p.Row
	if got := entryOf(tb, b, p); got != want {
		tb.Fatalf("entry of %s (-want +got):\n- %+v\n+ %+v", p.To, want, got)
	}
}

func wantAs[T error](tb testing.TB, err error) T {
	tb.Helper()
	var target T
	if !errors.As(err, &target) {
		tb.Fatalf("error = %v (%T), want a %T", err, err, target)
	}
	return target
}

// withFake returns a worker bundle whose client sends to a fake Connectly of its own (no rate
// limit) for business, and that fake.
func withFake(t *testing.T, business, key string) (*fakeconnectly.Server, *testBundle) {
	t.Helper()
	fake, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: business, APIKey: key, RateLimit: -1})
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: business, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Limits.BusinessID = business
	b := setup(t, cfg)
	b.worker.client = client
	return fake, b
}

// simClock is the rate limits' time in a test: Redis's clock (TIME, which the rate limits run
// on) stands still, and each of the worker's sleeps moves it on by what was asked and returns
// at once. Where a send's slot falls then does not depend on how fast the machine runs, and
// waiting for a slot takes no time. The process's clock, on which the worker measures how late
// a send comes to its slot, is simulated too (the worker's mono clock, Process): the sleeps
// move it with Redis's, and a test makes a send late by stalling it (Stall), never because
// the machine is slow.
type simClock struct {
	mu    sync.Mutex
	mr    *miniredis.Miniredis
	t     time.Time
	slept time.Duration
	// stalled is how far the process's clock is ahead of Redis's: the stalls so far.
	stalled time.Duration
	// onSleep, when set, runs at the start of every sleep, before the clock moves.
	onSleep func(d time.Duration)
}

// use makes the simulated clock b's: Redis's clock and the worker's sleeps and process clock.
// A worker built on c.Sleep (setupWith) takes its process clock from here.
func (c *simClock) use(b *testBundle) {
	c.mr = b.mr
	c.mr.SetTime(c.t)
	b.worker.mono = c.Process
}

// Sleep is the worker's Deps.Sleep on the simulated clock.
func (c *simClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.onSleep != nil {
		c.onSleep(d)
	}
	if d <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept += d
	c.mr.SetTime(c.t)
	return nil
}

// Stall holds the process up for d, as a GC pause or a busy CPU would: its clock moves on by
// d, Redis's does not, and the worker has not slept.
func (c *simClock) Stall(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stalled += d
}

// Now is the simulated time, for a worker's Deps.Now: the clock its sleeps move.
func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Process is the process's simulated clock, the worker's mono clock: Now plus the stalls.
func (c *simClock) Process() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t.Add(c.stalled)
}

// Slept is the simulated time the worker has slept.
func (c *simClock) Slept() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slept
}

// setupSim is setup on a simulated clock: Redis's clock and the process's stand still at a
// fixed time and move only when the worker sleeps (and the process's when a test stalls it).
func setupSim(tb testing.TB, cfg Config) (*testBundle, *simClock) {
	tb.Helper()
	c := &simClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	b := setupWith(tb, cfg, &redis.Options{}, c.Sleep)
	c.use(b)
	return b, c
}

// followupOf creates the follow-up entry of rule for the recipient of parent send p (as the
// webhook receiver does when a reply matches it) and returns the follow-up's send payload:
// p's, in the follow-up run, sending template.
func followupOf(tb testing.TB, b *testBundle, p campaigns.SendPayload, rule, template string) campaigns.SendPayload {
	tb.Helper()
	parent := runOf(tb, b, p.Run)
	pr := ledger.ParentRun{ID: parent.ID, Campaign: parent.Campaign, Template: parent.Template, Language: parent.Language,
		Sender: parent.Sender, Delivery: parent.Delivery, Buckets: parent.Buckets}
	res, err := b.ledger.CreateFollowup(context.Background(), ledger.Followup{Parent: pr, Rule: rule, Recipient: p.To, Row: p.Row,
		Payload: []byte("{}"), Queue: campaigns.QueueFor(p.Category)})
	if err != nil || res.Verdict != ledger.FollowupCreated {
		tb.Fatalf("CreateFollowup: %+v %v", res, err)
	}
	fp := p
	fp.Run, fp.Bucket, fp.Template = res.Address.Run, res.Address.Bucket, template
	return fp
}

// openWindow records that to wrote to business an hour ago: their customer service window is
// open.
func openWindow(tb testing.TB, b *testBundle, business, to string) {
	tb.Helper()
	if _, err := servicewindow.New(b.rdb, nil).Touch(context.Background(), business, []string{to}, time.Now().Add(-time.Hour)); err != nil {
		tb.Fatal(err)
	}
}

// handleToEntry handles p, expecting a permanent failure when want is failed and no error
// otherwise, and checks that p's entry is want but for its message id.
func handleToEntry(tb testing.TB, b *testBundle, p campaigns.SendPayload, want ledger.Entry) {
	tb.Helper()
	err := handle(tb, b, p)
	if want.State == ledger.Failed {
		if !errors.Is(err, asynq.SkipRetry) {
			tb.Fatalf("handle: %v, want a permanent failure", err)
		}
	} else if err != nil {
		tb.Fatalf("handle: %v", err)
	}
	e := entryOf(tb, b, p)
	e.MessageID = ""
	want.Row = p.Row
	if e != want {
		tb.Errorf("entry %+v, want %+v", e, want)
	}
}

// setupBusiness is a worker of business with its own metrics.
func setupBusiness(t *testing.T, business string) (*testBundle, *metrics.Metrics) {
	t.Helper()
	cfg := testConfig()
	cfg.Limits.BusinessID = business
	b := setup(t, cfg)
	m := metrics.New()
	b.worker.metrics = m
	return b, m
}
