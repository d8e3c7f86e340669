package worker

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// sessionClient is a Client that records session messages and answers them with SessionFunc
// (accepted, id "session-<to>", when nil); templates go to its fakeSender.
type sessionClient struct {
	*fakeSender
	SessionFunc func(connectly.SessionMessage) (connectly.SendResult, error)

	mu       sync.Mutex
	sessions []connectly.SessionMessage
}

func (c *sessionClient) SendSession(_ context.Context, m connectly.SessionMessage) (connectly.SendResult, error) {
	c.mu.Lock()
	c.sessions = append(c.sessions, m)
	c.mu.Unlock()
	if c.SessionFunc != nil {
		return c.SessionFunc(m)
	}
	return connectly.SendResult{ID: "session-" + m.To}, nil
}

func (c *sessionClient) Sessions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions)
}

// windowClosedAnswer is Connectly's refusal of a session message outside the window.
var windowClosedAnswer = apiError(400, "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW")

// sessionPayload turns p into a session send, with the fallback template when fallback is set.
func sessionPayload(t testing.TB, p campaigns.SendPayload, fallback bool) campaigns.SendPayload {
	t.Helper()
	content, err := json.Marshal(connectly.SessionContent{Text: "Your order shipped"})
	if err != nil {
		t.Fatal(err)
	}
	p.Kind, p.Session, p.Template = campaigns.KindSession, content, ""
	if fallback {
		p.Template = "spring_sale"
		p.Params = []connectly.Parameter{{Name: "body_1", Value: "Ana"}}
	}
	return p
}

// TestRefusedSessionFallsBackToTemplate: Herald's record says the window is open, Connectly
// (the fake, which has no window for the recipient) refuses the session message as outside
// it. With a fallback template the template goes at once under the same claim: two requests,
// the entry accepted as a fallback, as the gate's fallback is (its metric class is its own,
// TestRefusedFallbackCountedApart). Without one the entry
// fails with Connectly's code after one request, never retried.
func TestRefusedSessionFallsBackToTemplate(t *testing.T) {
	const business, key = "biz-refused", "key-0123456789abcdef"
	fake, b := withFake(t, business, key)
	ps := seedRun(t, b, "run-refused", ledger.AtMostOnce, 2)
	withFallback, without := sessionPayload(t, ps[0], true), sessionPayload(t, ps[1], false)
	for _, p := range []campaigns.SendPayload{withFallback, without} {
		openWindow(t, b, business, p.To)
	}

	if err := handle(t, b, withFallback); err != nil {
		t.Fatalf("with a fallback: %v, want the fallback accepted", err)
	}
	if err := handle(t, b, without); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("without a fallback: %v, want a permanent failure", err)
	}

	e := entryOf(t, b, withFallback)
	if e.State != ledger.Accepted || e.Code != ledger.SentFallback || e.Attempts != 1 || e.MessageID == "" {
		t.Errorf("with a fallback: %+v, want accepted(%s) after one attempt", e, ledger.SentFallback)
	}
	if e := entryOf(t, b, without); e.State != ledger.Failed || !b.worker.table.Decide(apiError(400, e.Code)).WindowClosed() || e.Attempts != 1 {
		t.Errorf("without a fallback: %+v, want failed with Connectly's code after one attempt", e)
	}
	var kinds []string
	var accepted, refused int
	for _, r := range fake.Received() {
		if r.Number != withFallback.To {
			continue
		}
		kinds = append(kinds, r.Kind)
		if r.Accepted() {
			accepted++
		} else {
			refused++
		}
	}
	if len(kinds) != 2 || kinds[0] != fakeconnectly.KindSession || kinds[1] != fakeconnectly.KindTemplate || accepted != 1 || refused != 1 {
		t.Errorf("requests to the recipient with a fallback: %v, %d accepted, %d refused; want the session refused, then the template accepted",
			kinds, accepted, refused)
	}
	n := 0
	for _, r := range fake.Received() {
		if r.Number == without.To {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d requests to the recipient without a fallback, want 1", n)
	}
	c := countersOf(t, b, "run-refused")
	if c.States[ledger.Accepted] != 1 || c.States[ledger.Failed] != 1 || c.Accepted(ledger.SentFallback) != 1 {
		t.Errorf("counters %+v, want one accepted as %s and one failed", c, ledger.SentFallback)
	}
}

// limitsBusiness is the business of refusalBundle's worker.
const limitsBusiness = "biz-limits"

// refusalBundle is a worker whose client refuses every session message as outside the window,
// and one session payload with a fallback whose window Herald records as open.
func refusalBundle(t *testing.T, cfg Config) (*testBundle, *sessionClient, campaigns.SendPayload) {
	t.Helper()
	cfg.Limits.BusinessID = limitsBusiness
	return refusing(t, setup(t, cfg))
}

// refusing makes b's client refuse every session message as outside the window, and returns
// one session payload with a fallback whose window Herald records as open.
func refusing(t *testing.T, b *testBundle) (*testBundle, *sessionClient, campaigns.SendPayload) {
	t.Helper()
	cfg := b.worker.cfg
	c := &sessionClient{fakeSender: b.sender, SessionFunc: func(connectly.SessionMessage) (connectly.SendResult, error) {
		return connectly.SendResult{}, windowClosedAnswer
	}}
	b.worker.client = c
	p := sessionPayload(t, seedRun(t, b, "run-limits", ledger.AtMostOnce, 1)[0], true)
	if _, err := servicewindow.New(b.rdb, nil).Touch(context.Background(), cfg.Limits.BusinessID, []string{p.To}, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	return b, c, p
}

// TestRefusedFallbackLimits: the fallback after a refusal is held to the limits. The pair
// slot the refused request took passes to it (no wait for the pair interval), and the daily
// tier counts the recipient, whose window Connectly found closed.
func TestRefusedFallbackLimits(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.PairInterval = 6 * time.Second
	cfg.Limits.DailyTier = 10
	b, c, p := refusalBundle(t, cfg)
	if err := handle(t, b, p); err != nil {
		t.Fatalf("handle: %v, want the fallback sent without waiting for the pair slot", err)
	}
	if c.Sessions() != 1 || b.sender.CallsTo(p.To) != 1 {
		t.Fatalf("%d session and %d template requests, want 1 and 1", c.Sessions(), b.sender.CallsTo(p.To))
	}
	if e := entryOf(t, b, p); e.State != ledger.Accepted || e.Code != ledger.SentFallback {
		t.Fatalf("entry %+v, want accepted(%s)", e, ledger.SentFallback)
	}
	if n, err := b.rdb.ZCard(context.Background(), rkeys.Tier(limitsBusiness)).Result(); err != nil || n != 1 {
		t.Fatalf("daily tier holds %d recipients (err %v), want the fallback's recipient", n, err)
	}
}

// TestRefusedFallbackLateForPair: the fallback after a refusal, still late for its slot on its
// last try by more than the pair margin absorbs, does not go (as a template would not): its
// booking goes back, the claim goes back unused, and the task tries again later, when the
// session is refused again and the fallback goes.
func TestRefusedFallbackLateForPair(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.BusinessID = limitsBusiness
	cfg.Limits.PairInterval = 6 * time.Second
	cfg.Limits.PairMargin = 40 * time.Millisecond
	cfg.Limits.DailyTier = 1000
	cfg.Limits.MaxWait = 10 * time.Millisecond
	cfg.KeepPlaceFor = 5 * time.Second
	b, sim := setupSim(t, cfg)
	b, c, p := refusing(t, b)
	// Every sleep after the refusal, on the fallback's way to its request, stalls past its slot.
	stalling, stalls := true, 0
	sim.onSleep = func(time.Duration) {
		if !stalling || stalls >= 20 || c.Sessions() == 0 {
			return
		}
		stalls++
		sim.Stall(pairLateStall)
	}
	te := wantAs[*ThrottledError](t, handle(t, b, p))
	if te.Reason != "late for its slot" {
		t.Errorf("throttle %+v, want one for a send late for its slot", te)
	}
	if c.Sessions() != 1 || b.sender.CallsTo(p.To) != 0 {
		t.Fatalf("%d session and %d template requests, want the refused session only", c.Sessions(), b.sender.CallsTo(p.To))
	}
	if e := entryOf(t, b, p); e.State != ledger.Queued {
		t.Fatalf("entry %+v, want queued: the fallback did not go", e)
	}
	hist, err := b.ledger.History(context.Background(), p.Address())
	if err != nil {
		t.Fatal(err)
	}
	if last := hist[len(hist)-1]; last.Code != CodeLateForPair || last.Outcome != string(ledger.ReleaseRequeue) {
		t.Errorf("history %+v: want the claim given back as %s %s last", hist, ledger.ReleaseRequeue, CodeLateForPair)
	}
	wantGivenBack(t, b, p)

	stalling = false
	err = handle(t, b, p)
	for i := 0; i < 2 && err != nil; i++ {
		wantAs[*ThrottledError](t, err)
		err = handle(t, b, p)
	}
	if err != nil {
		t.Fatalf("the send's retry: %v, want the fallback sent", err)
	}
	if e := entryOf(t, b, p); e.State != ledger.Accepted || e.Code != ledger.SentFallback {
		t.Fatalf("entry %+v after the retry, want accepted(%s)", e, ledger.SentFallback)
	}
	if c.Sessions() != 2 || b.sender.CallsTo(p.To) != 1 {
		t.Fatalf("%d session and %d template requests after the retry, want 2 and 1", c.Sessions(), b.sender.CallsTo(p.To))
	}
}

// TestRefusedFallbackTierFull: with no room in the daily tier for the fallback, nothing more
// is sent now: the claim goes back (the refused session message reached no one) and the task
// waits for the tier.
func TestRefusedFallbackTierFull(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.DailyTier = 1
	cfg.TierRecheck = time.Minute
	b, c, p := refusalBundle(t, cfg)
	if err := b.rdb.ZAdd(context.Background(), rkeys.Tier(limitsBusiness),
		redis.Z{Score: float64(time.Now().UnixMilli()), Member: "+19990000000"}).Err(); err != nil {
		t.Fatal(err)
	}
	te := wantAs[*ThrottledError](t, handle(t, b, p))
	if te.Reason != "daily tier" {
		t.Errorf("throttled for %q, want the daily tier", te.Reason)
	}
	if c.Sessions() != 1 || b.sender.CallsTo(p.To) != 0 {
		t.Fatalf("%d session and %d template requests, want the refused session only", c.Sessions(), b.sender.CallsTo(p.To))
	}
	if e := entryOf(t, b, p); e.State != ledger.Queued || e.Code != "DAILY_TIER" {
		t.Fatalf("entry %+v, want queued(DAILY_TIER): nothing went out", e)
	}
}

// TestWindowMarginAtTheGate: on an injected clock, a window that closes within the margin
// (default servicewindow.DefaultMargin) or within the longest wait before the request counts
// as closed, so the fallback goes; with the margin set to 0, a window that outlasts that wait
// gets the session message.
func TestWindowMarginAtTheGate(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	cases := []struct {
		name        string
		margin      time.Duration // < 0: the default
		closesIn    time.Duration
		wantSession bool
	}{
		{"default margin, closes in 90s", -1, 90 * time.Second, false},
		{"default margin, closes in 3m", -1, 3 * time.Minute, true},
		{"margin 0, closes in 90s", 0, 90 * time.Second, true},
		{"margin 0, closes within the wait before the request", 0, 10 * time.Second, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mr := miniredis.RunT(t)
			mr.SetTime(now)
			rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { rdb.Close() })
			cfg := testConfig()
			cfg.Limits.BusinessID = "biz-margin"
			sender := &fakeSender{}
			w := New(cfg, Deps{Redis: rdb, Sender: sender, Logger: zerolog.Nop(), Now: clock})
			if tc.margin >= 0 {
				w.SetWindowMargin(tc.margin)
			}
			c := &sessionClient{fakeSender: sender}
			w.client = c
			b := &testBundle{mr: mr, rdb: rdb, ledger: ledger.New(rdb, nil), sender: sender, worker: w}
			p := sessionPayload(t, seedRun(t, b, "run-margin", ledger.AtMostOnce, 1)[0], true)
			last := now.Add(tc.closesIn - servicewindow.Length)
			if _, err := servicewindow.New(rdb, clock).Touch(context.Background(), cfg.Limits.BusinessID, []string{p.To}, last); err != nil {
				t.Fatal(err)
			}
			if err := handle(t, b, p); err != nil {
				t.Fatal(err)
			}
			want := ledger.SentFallback
			if tc.wantSession {
				want = ledger.SentSession
			}
			if e := entryOf(t, b, p); e.State != ledger.Accepted || e.Code != want {
				t.Errorf("entry %+v, want accepted(%s)", e, want)
			}
			if n := c.Sessions() + sender.CallsTo(p.To); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

// TestAuthFallbackNeverToBSUID: an authentication fallback template never goes to a BSUID
// (Meta refuses it, error 131062). With the window closed at the gate the entry is skipped
// with campaigns.SkipBSUIDNotSupported and no request; after Connectly refused the session
// message as outside the window it fails as a refusal without a fallback would, under that
// code. Another category to a BSUID, or an authentication fallback to a phone number, still
// goes.
func TestAuthFallbackNeverToBSUID(t *testing.T) {
	const business = "biz-bsuid"
	cases := []struct {
		name     string
		prefix   string // of the recipient, seedRunNumbers
		category string
		refused  bool // Herald's record says open, Connectly refuses the session message
		want     ledger.Entry
		sessions int
		fallback int
	}{
		{"gate, BSUID, authentication", "bsuid:US.", "authentication", false,
			ledger.Entry{State: ledger.Skipped, Code: campaigns.SkipBSUIDNotSupported}, 0, 0},
		{"gate, BSUID, utility", "bsuid:US.", "utility", false,
			ledger.Entry{State: ledger.Accepted, Code: ledger.SentFallback, Attempts: 1}, 0, 1},
		{"gate, phone, authentication", "+1555", "authentication", false,
			ledger.Entry{State: ledger.Accepted, Code: ledger.SentFallback, Attempts: 1}, 0, 1},
		{"refused, BSUID, authentication", "bsuid:US.", "authentication", true,
			ledger.Entry{State: ledger.Failed, Code: campaigns.SkipBSUIDNotSupported, Attempts: 1}, 1, 0},
		{"refused, phone, authentication", "+1555", "authentication", true,
			ledger.Entry{State: ledger.Accepted, Code: ledger.SentFallback, Attempts: 1}, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, m := setupBusiness(t, business)
			c := &sessionClient{fakeSender: b.sender}
			if tc.refused {
				c.SessionFunc = func(connectly.SessionMessage) (connectly.SendResult, error) {
					return connectly.SendResult{}, windowClosedAnswer
				}
			}
			b.worker.client = c
			p := sessionPayload(t, seedRunNumbers(t, b, "run-bsuid", ledger.AtMostOnce, tc.prefix, 1)[0], true)
			p.Category = tc.category
			if tc.refused {
				openWindow(t, b, business, p.To)
			}
			handleToEntry(t, b, p, tc.want)
			if c.Sessions() != tc.sessions || b.sender.CallsTo(p.To) != tc.fallback {
				t.Errorf("%d session and %d template requests, want %d and %d", c.Sessions(), b.sender.CallsTo(p.To), tc.sessions, tc.fallback)
			}
			if tc.want.Code == campaigns.SkipBSUIDNotSupported {
				outcome := metrics.OutcomeSkipped
				if tc.want.State == ledger.Failed {
					outcome = metrics.OutcomeFailed
				}
				var class string
				if tc.refused {
					class = CodeWindowClosed
				} else {
					class = campaigns.SkipBSUIDNotSupported
				}
				if n := testutil.ToFloat64(m.Sends.WithLabelValues(testCampaign, testSenderLabel, outcome, class)); n != 1 {
					t.Errorf("herald_sends_total{%s,%s} = %v, want 1", outcome, class, n)
				}
			}
		})
	}
}

// TestTimedOutSendThatWentOut: Connectly takes the message on arrival and answers after the
// worker's request timeout (reference 4.4: "retrying after a timeout may double-send"). At
// most once, the recipient is unknown and never sent again, also when its task comes back;
// the person got one message.
func TestTimedOutSendThatWentOut(t *testing.T) {
	fake, b := withFake(t, "biz-timeout", "key-0123456789abcdef")
	b.worker.cfg.RequestTimeout = 100 * time.Millisecond
	p := seedRun(t, b, "run-timeout", ledger.AtMostOnce, 1)[0]
	p.Params = []connectly.Parameter{{Name: "body_1", Value: "Ana"}}
	fake.SetRules([]fakeconnectly.Rule{{Numbers: []string{p.To}, Latency: time.Minute, Sent: true}})
	for range 2 {
		if err := handle(t, b, p); err != nil {
			t.Fatalf("handle: %v, want the send settled as unknown", err)
		}
	}
	if e := entryOf(t, b, p); e.State != ledger.Unknown || e.Attempts != 1 || e.Code != "NO_RESPONSE" {
		t.Fatalf("entry %+v, want unknown(NO_RESPONSE) after one attempt", e)
	}
	if n := fake.AcceptedCount(p.To); n != 1 {
		t.Fatalf("Connectly took %d messages for the recipient, want 1", n)
	}
}

// TestFallbackHistorySaysWhy: a fallback sent because Connectly refused the session message
// as outside the window leaves the refusal in the recipient's history (window_refused with
// Connectly's code, then the accept), so its story tells it from a fallback the gate sent
// because Herald's record said closed, which keeps no history.
func TestFallbackHistorySaysWhy(t *testing.T) {
	b, _, p := refusalBundle(t, testConfig())
	if err := handle(t, b, p); err != nil {
		t.Fatal(err)
	}
	h, err := b.ledger.History(context.Background(), p.Address())
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].Outcome != ledger.EventWindowRefused || h[0].Code != "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW" ||
		h[0].Attempt != 1 || h[1].Outcome != string(ledger.Accepted) || h[1].Code != ledger.SentFallback {
		t.Fatalf("history %+v, want window_refused with Connectly's code, then accepted(fallback)", h)
	}

	// The gate's fallback (Herald's record: closed) keeps no history.
	gate := sessionPayload(t, seedRunNumbers(t, b, "run-gate-fallback", ledger.AtMostOnce, "+1666", 1)[0], true)
	if err := handle(t, b, gate); err != nil {
		t.Fatal(err)
	}
	if h, err := b.ledger.History(context.Background(), gate.Address()); err != nil || len(h) != 0 {
		t.Fatalf("gate fallback history %+v, %v; want none", h, err)
	}
	if e := entryOf(t, b, gate); e.State != ledger.Accepted || e.Code != ledger.SentFallback {
		t.Fatalf("gate fallback %+v", e)
	}
}

// TestRefusedFallbackCountedApart: the fallback sent because Connectly refused the session
// message as outside the window counts in herald_sends_total under class fallback_refused, the
// one the gate sent because Herald's record said closed under fallback, so a dashboard sees
// Herald's record of the windows drift from Connectly's.
func TestRefusedFallbackCountedApart(t *testing.T) {
	b, _, p := refusalBundle(t, testConfig())
	m := metrics.New()
	b.worker.metrics = m
	if err := handle(t, b, p); err != nil {
		t.Fatal(err)
	}
	gate := sessionPayload(t, seedRunNumbers(t, b, "run-gate-count", ledger.AtMostOnce, "+1666", 1)[0], true)
	if err := handle(t, b, gate); err != nil {
		t.Fatal(err)
	}
	for class, want := range map[string]float64{kindFallbackRefused: 1, kindFallback: 1} {
		if n := testutil.ToFloat64(m.Sends.WithLabelValues(testCampaign, testSenderLabel, metrics.OutcomeAccepted, class)); n != want {
			t.Errorf("herald_sends_total{accepted,%s} = %v, want %v", class, n, want)
		}
	}
}
