package worker

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testclock"
)

// drain hands every payload not yet settled to the handler once, and returns those that
// came back throttled.
func drain(t *testing.T, b *testBundle, ps []campaigns.SendPayload) (throttled []campaigns.SendPayload, last *ThrottledError) {
	t.Helper()
	for _, p := range ps {
		err := handle(t, b, p)
		if err == nil {
			continue
		}
		te := wantAs[*ThrottledError](t, err)
		throttled, last = append(throttled, p), te
	}
	return throttled, last
}

func TestDailyTierHoldsAndRolls(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.DailyTier = 250
	b := setup(t, cfg)
	clk := testclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	b.worker.now = clk.Now
	ps := seedRun(t, b, "run-tier", ledger.AtMostOnce, 1000)

	pending := ps
	for day := 1; len(pending) > 0; day++ {
		if day > 4 {
			t.Fatalf("%d recipients left after 4 days", len(pending))
		}
		var te *ThrottledError
		pending, te = drain(t, b, pending)
		sent := 1000 - len(pending)
		if want := min(1000, 250*day); sent != want {
			t.Fatalf("day %d: %d sent, want %d", day, sent, want)
		}
		if len(pending) == 0 {
			break
		}
		// The rest wait, with the reason on the run, using no attempt and failing nothing.
		if te.Reason != "daily tier" || te.RetryAfter <= 0 || te.RetryAfter > 5*time.Minute {
			t.Fatalf("day %d: throttle %+v, want a daily-tier wait of at most the recheck interval", day, te)
		}
		r := runOf(t, b, "run-tier")
		if w := r.WaitingNow(clk.Now()); !strings.Contains(w, "daily tier") {
			t.Fatalf("day %d: run waiting = %q, want the daily tier", day, w)
		}
		c := countersOf(t, b, "run-tier")
		if c.States[ledger.Failed] != 0 || c.States[ledger.Queued] != int64(len(pending)) || c.Attempts != int64(sent) {
			t.Fatalf("day %d: counters %+v", day, c)
		}
		wantEntry(t, b, pending[0], ledger.Entry{State: ledger.Queued, Code: "DAILY_TIER"})
		// Within the window nothing moves, however often the tasks look again.
		clk.Add(23 * time.Hour)
		if again, _ := drain(t, b, pending); len(again) != len(pending) {
			t.Fatalf("day %d: %d sent before the window rolled", day, len(pending)-len(again))
		}
		clk.Add(time.Hour + time.Second)
		if r := runOf(t, b, "run-tier"); r.WaitingNow(clk.Now()) != "" {
			t.Fatalf("day %d: stale waiting note %q still reads as current", day, r.Waiting)
		}
	}
	c := countersOf(t, b, "run-tier")
	if c.States[ledger.Accepted] != 1000 || c.States[ledger.Failed] != 0 || c.Attempts != 1000 {
		t.Fatalf("end: %+v", c)
	}
	if n := len(b.sender.Calls()); n != 1000 {
		t.Fatalf("%d requests, want 1000", n)
	}
}

func TestThrottleStormUsesNoAttempts(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.Adaptive = limits.Policy{Min: 0.1, Every: 10 * time.Second, Step: 0.1}
	b := setup(t, cfg)
	clk := testclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	b.worker.now = clk.Now
	ps := seedRun(t, b, "run-storm", ledger.AtMostOnce, 200)

	// A storm: for the first 600 requests, two of every three get 429 (Connectly's, with no
	// body code) or Meta's 130429.
	var mu sync.Mutex
	n := 0
	b.sender.SendFunc = func(_ context.Context, msg connectly.TemplateMessage) (connectly.SendResult, error) {
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		switch {
		case k <= 600 && k%3 == 1:
			return connectly.SendResult{}, &connectly.Error{StatusCode: 429}
		case k <= 600 && k%3 == 2:
			return connectly.SendResult{}, apiError(400, "130429")
		}
		return connectly.SendResult{ID: "msg-" + msg.Number}, nil
	}
	pending := ps
	ctl := limits.SenderControl("", testSender, cfg.Limits.DefaultSenderRate, cfg.Limits.Adaptive)
	lowest := 1.0
	for pass := 0; len(pending) > 0; pass++ {
		if pass > 50 {
			t.Fatalf("%d recipients still throttled after 50 passes", len(pending))
		}
		pending, _ = drain(t, b, pending)
		st, err := b.worker.limits.Limiter().BackoffOf(context.Background(), ctl, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		lowest = min(lowest, st.Factor)
		clk.Add(2 * time.Second)
	}
	c := countersOf(t, b, "run-storm")
	if c.States[ledger.Accepted] != 200 || c.States[ledger.Failed] != 0 || c.States[ledger.Unknown] != 0 || c.Attempts != 200 {
		t.Fatalf("after the storm: %+v, want 200 accepted on one attempt each", c)
	}
	for _, p := range ps {
		if e := entryOf(t, b, p); e.State != ledger.Accepted || e.Attempts != 1 {
			t.Fatalf("%s: %+v", p.To, e)
		}
	}
	// The storm (two thirds of the requests throttled) took the sender's rate down to the floor;
	// calm brings it back step by step.
	if lowest != 0.1 {
		t.Fatalf("lowest factor %v, want the floor 0.1", lowest)
	}
	st, _ := b.worker.limits.Limiter().BackoffOf(context.Background(), ctl, clk.Now().Add(45*time.Second))
	if st.Factor <= lowest || st.Factor >= 1 {
		t.Fatalf("factor 45s after the storm %v, want recovering", st.Factor)
	}
	if st, _ := b.worker.limits.Limiter().BackoffOf(context.Background(), ctl, clk.Now().Add(2*time.Minute)); st.Factor != 1 {
		t.Fatalf("factor 2m after the storm %v, want 1", st.Factor)
	}
}

// TestOneThrottleAmongManyKeepsTheRate: the reservations a worker makes count on its own
// clock (Deps.Now), the one its adaptive controller reads them on, so under a clock other
// than the process's one throttle after 100 accepted sends is a share of about 1%: the
// sender's rate stays as it is.
func TestOneThrottleAmongManyKeepsTheRate(t *testing.T) {
	b := setup(t, testConfig())
	clk := testclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	b.worker.now = clk.Now
	ps := seedRun(t, b, "run-one-throttle", ledger.AtMostOnce, 102)
	for _, p := range ps[:100] {
		if err := handle(t, b, p); err != nil {
			t.Fatal(err)
		}
	}
	b.sender.SendFunc = answer(&connectly.Error{StatusCode: 429})
	for _, p := range ps[100:] {
		clk.Add(500 * time.Millisecond)
		wantAs[*ThrottledError](t, handle(t, b, p))
	}
	cfg := b.worker.cfg.Limits
	ctl := limits.SenderControl(cfg.BusinessID, testSender, cfg.DefaultSenderRate, cfg.Adaptive)
	st, err := b.worker.limits.Limiter().BackoffOf(context.Background(), ctl, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.Factor != 1 || st.Reserved < 100 {
		t.Fatalf("after one throttle among 100 sends: %+v, want the rate unchanged and the sends counted", st)
	}
}

func TestPairThrottleDoesNotSlowTheSender(t *testing.T) {
	b := setup(t, testConfig())
	ps := seedRun(t, b, "run-pair", ledger.AtMostOnce, 1)
	b.sender.SendFunc = answer(apiError(400, "131056"))
	wantAs[*ThrottledError](t, handle(t, b, ps[0]))
	if n, _ := b.rdb.Exists(context.Background(), rkeys.SenderBackoff("", testSender)).Result(); n != 0 {
		t.Fatal("a pair-rate throttle (one person) halved the sender's rate")
	}
}

func TestFrequencyCapAcrossRuns(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.FrequencyCaps = map[string]FrequencyCap{"marketing": {Max: 1, Period: 7 * 24 * time.Hour}}
	b := setup(t, cfg)
	clk := testclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	b.worker.now = clk.Now
	first := seedRun(t, b, "run-cap-1", ledger.AtMostOnce, 3)
	second := seedRun(t, b, "run-cap-2", ledger.AtMostOnce, 3) // same three people
	for i := range first {
		first[i].Category = "marketing"
		second[i].Category = "marketing"
	}
	utility := second[2]
	utility.Category = "utility"

	for _, p := range first {
		if err := handle(t, b, p); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(24 * time.Hour)
	for _, p := range second[:2] {
		if err := handle(t, b, p); err != nil {
			t.Fatal(err)
		}
		wantEntry(t, b, p, ledger.Entry{State: ledger.Skipped, Code: "capped"})
	}
	// Caps are per category: a utility message is not held back by marketing ones.
	if err := handle(t, b, utility); err != nil {
		t.Fatal(err)
	}
	if e := entryOf(t, b, utility); e.State != ledger.Accepted {
		t.Fatalf("utility: %+v", e)
	}
	if n := len(b.sender.Calls()); n != 4 {
		t.Fatalf("%d requests, want 4 (3 + the utility one)", n)
	}
	c := countersOf(t, b, "run-cap-2")
	if c.States[ledger.Skipped] != 2 {
		t.Fatalf("second run %+v, want 2 skipped(capped)", c)
	}
}

// keepPlaceSetup is a worker whose sender has a slot every 500 ms and a MaxWait of 10 ms,
// on a simulated clock, with three payloads of one run: the first is sent, the second is
// refused (its slot is 500 ms away on a clock that has not moved) and switches the worker to
// pacing, the third is left to the test.
func keepPlaceSetup(t *testing.T, runID string) (*testBundle, *simClock, campaigns.SendPayload) {
	t.Helper()
	cfg := testConfig()
	cfg.Limits.SenderRates = map[string]float64{testSender: 2}
	cfg.Limits.MaxWait = 10 * time.Millisecond
	cfg.KeepPlaceFor = 5 * time.Second
	b, sim := setupSim(t, cfg)
	ps := seedRun(t, b, runID, ledger.AtMostOnce, 3)
	if err := handle(t, b, ps[0]); err != nil {
		t.Fatal(err)
	}
	// The first refusal comes back as a throttle and switches the worker to pacing.
	wantAs[*ThrottledError](t, handle(t, b, ps[1]))
	if !b.worker.pacing(testSender).Load() {
		t.Fatal("the refused send did not switch the worker to pacing")
	}
	return b, sim, ps[2]
}

// sendLateAfterClaim handles p, a paced send, stalling it once while it holds its claim and
// waits for its slot (its timer fires late, as on a loaded machine: the process's simulated
// clock moves past lateLimit), and wants it accepted on one attempt. The stall is the only
// lateness: the process's clock moves with the simulated one, not with the machine's.
func sendLateAfterClaim(t *testing.T, b *testBundle, sim *simClock, p campaigns.SendPayload) {
	t.Helper()
	stalls := 0
	sim.onSleep = func(time.Duration) {
		if stalls > 0 || entryOf(t, b, p).State != ledger.Submitting {
			return
		}
		stalls++
		sim.Stall(lateLimit + 10*time.Millisecond)
	}
	if err := handle(t, b, p); err != nil {
		t.Fatalf("paced send late after its claim: %v, want it sent after waiting in place", err)
	}
	if stalls != 1 {
		t.Fatalf("%d stalls while holding the claim, want 1", stalls)
	}
	if e := entryOf(t, b, p); e.State != ledger.Accepted || e.Attempts != 1 {
		t.Fatalf("entry %+v, want accepted on one attempt", e)
	}
}

func TestBookedLimitKeepsThePlace(t *testing.T) {
	b, sim, p := keepPlaceSetup(t, "run-keep")
	// From then on a send whose slot is beyond MaxPaceWait waits for it in place.
	if err := handle(t, b, p); err != nil {
		t.Fatalf("paced send: %v, want it sent after waiting in place", err)
	}
	if e := entryOf(t, b, p); e.State != ledger.Accepted || e.Attempts != 1 {
		t.Fatalf("entry %+v", e)
	}
	if got, least := sim.Slept(), 500*time.Millisecond-b.worker.cfg.Limits.MaxWait; got < least {
		t.Fatalf("the send waited %v for its slot, want at least %v", got, least)
	}
}

// TestLateAfterClaimKeepsThePlace: a paced send that comes to its slot late after its claim
// (the process stalled while it held the claim) gives the claim back and keeps its place for
// a fresh slot; it is not sent back to the queue because that slot is beyond MaxWait.
func TestLateAfterClaimKeepsThePlace(t *testing.T) {
	b, sim, p := keepPlaceSetup(t, "run-late-claim")
	sendLateAfterClaim(t, b, sim, p)
	// The late claim was given back with its attempt: one request.
	if n := b.sender.CallsTo(p.To); n != 1 {
		t.Fatalf("%d requests to the recipient, want 1", n)
	}
	// It waited in place for the slot after the one it came to late.
	if got, least := sim.Slept(), time.Second-b.worker.cfg.Limits.MaxWait; got < least {
		t.Fatalf("the send waited %v, want at least %v (a fresh slot)", got, least)
	}
}

func TestPairWaitDoesNotKeepThePlace(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.PairInterval = 6 * time.Second
	cfg.Limits.MaxWait = 10 * time.Millisecond
	cfg.KeepPlaceFor = time.Minute
	b := setup(t, cfg)
	a := seedRun(t, b, "run-pair-a", ledger.AtMostOnce, 2)
	other := seedRun(t, b, "run-pair-b", ledger.AtMostOnce, 2) // the same two people
	for _, p := range a {
		if err := handle(t, b, p); err != nil {
			t.Fatal(err)
		}
	}
	wantAs[*ThrottledError](t, handle(t, b, other[0])) // pipelined path; now pacing
	start := time.Now()
	te := wantAs[*ThrottledError](t, handle(t, b, other[1]))
	if te.RetryAfter < 5*time.Second {
		t.Fatalf("RetryAfter %v, want the rest of the pair interval", te.RetryAfter)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("a pair wait kept the place for %v", el)
	}
}

// TestExpiredAfterCrashIsSettled: a worker died after claiming (the entry is submitting) and
// the retry comes after the campaign expired: the entry must not stay submitting for ever.
func TestExpiredAfterCrashIsSettled(t *testing.T) {
	b := setup(t, testConfig())
	ps := seedRun(t, b, "run-exp-crash", ledger.AtMostOnce, 1)
	p := ps[0]
	if _, err := b.ledger.Claim(context.Background(), p.Address(), ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	p.Expires = time.Now().Add(-time.Minute).Unix()
	if err := handle(t, b, p); err != nil {
		t.Fatal(err)
	}
	if e := entryOf(t, b, p); e.State != ledger.Unknown {
		t.Fatalf("entry %+v, want unknown (the crashed attempt may have sent)", e)
	}
	if r := runOf(t, b, p.Run); r.Status != ledger.RunCompleted {
		t.Fatalf("run %s, want completed", r.Status)
	}
}

// pacedBundle returns a worker whose sender allows one message a second and that is already
// pacing (its second send was refused), with n more payloads of one run to send.
func pacedBundle(t *testing.T, runID string, n int) (*testBundle, []campaigns.SendPayload) {
	t.Helper()
	cfg := testConfig()
	// A slot every 10 s: these tests need real time (a send caught waiting), and the second
	// send must find its slot taken even when the first is slow on a loaded machine.
	cfg.Limits.SenderRates = map[string]float64{testSender: 0.1}
	cfg.Limits.MaxWait = 10 * time.Millisecond
	cfg.KeepPlaceFor = time.Minute
	b := setup(t, cfg)
	ps := seedRun(t, b, runID, ledger.AtMostOnce, n+2)
	if err := handle(t, b, ps[0]); err != nil {
		t.Fatal(err)
	}
	wantAs[*ThrottledError](t, handle(t, b, ps[1]))
	return b, ps[2:]
}

// TestStopEndsWaitingInPlace: a send keeping its place gives up when the worker stops, without
// a claim, so a shutdown never starts a send.
func TestStopEndsWaitingInPlace(t *testing.T) {
	b, ps := pacedBundle(t, "run-stop", 1)
	done := make(chan error, 1)
	before := b.mr.CommandCount()
	go func() { done <- handle(t, b, ps[0]) }()
	// Wait until the send is waiting in place: it read the run's status and asked the
	// limiter, which refused (the next slot is about 20 s away, the max wait 10 ms).
	deadline := time.Now().Add(5 * time.Second)
	for b.mr.CommandCount() < before+2 {
		if time.Now().After(deadline) {
			t.Fatal("the send never asked the limiter")
		}
		time.Sleep(time.Millisecond)
	}
	if len(done) != 0 {
		t.Fatalf("the send did not wait: %v", <-done)
	}
	b.worker.stopSend()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the waiting send went out after Stop")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting send did not give up after Stop")
	}
	if e := entryOf(t, b, ps[0]); e.State != ledger.Queued || e.Attempts != 0 {
		t.Fatalf("entry %+v, want queued with no attempt", e)
	}
}

// TestPausedRunDoesNotKeepThePlace: a paused run's task is held at once, not after waiting
// for a slot it would give back.
func TestPausedRunDoesNotKeepThePlace(t *testing.T) {
	b, ps := pacedBundle(t, "run-paused", 1)
	if _, err := b.ledger.Pause(context.Background(), "run-paused", "operator"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	he := wantAs[*HeldError](t, handle(t, b, ps[0]))
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("held after %v", el)
	}
	if he.Reason != "operator" {
		t.Fatalf("reason %q", he.Reason)
	}
}

// TestRedisDownIsNotAFailure: with Redis gone, a send waits and tries again (a throttle), so
// asynq's retry budget is not spent and the task is never archived for it.
func TestRedisDownIsNotAFailure(t *testing.T) {
	// One dial per command, and the worker's waits between retries skipped: the test takes
	// milliseconds, not the seconds of the client's and the worker's real retries.
	b := setupOutage(t, testConfig(), &redis.Options{DialerRetries: 1, MaxRetries: -1},
		func(context.Context, time.Duration) error { return nil })
	ps := seedRun(t, b, "run-down", ledger.AtMostOnce, 1)
	b.outage.Cut()
	te := wantAs[*ThrottledError](t, handle(t, b, ps[0]))
	if isFailure(te) {
		t.Fatal("counted as a failure")
	}
}

// TestSettleRetriesTheLedger: when Redis goes away after the claim, settling retries the
// ledger with a doubling backoff (on the injected sleep) and then reports the error, which
// is not a recipient's failure.
func TestSettleRetriesTheLedger(t *testing.T) {
	var mu sync.Mutex
	var waits []time.Duration
	b := setupOutage(t, testConfig(), &redis.Options{DialerRetries: 1, MaxRetries: -1},
		func(_ context.Context, d time.Duration) error {
			if d > 0 { // the slot's wait, already due, is none
				mu.Lock()
				waits = append(waits, d)
				mu.Unlock()
			}
			return nil
		})
	ps := seedRun(t, b, "run-settle-down", ledger.AtMostOnce, 1)
	b.sender.SendFunc = func(context.Context, connectly.TemplateMessage) (connectly.SendResult, error) {
		b.outage.Cut()
		return connectly.SendResult{ID: "msg-1"}, nil
	}
	if err := handle(t, b, ps[0]); err == nil {
		t.Fatal("settled with Redis gone")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	for len(want) < 14 {
		want = append(want, time.Second) // long enough for a Sentinel failover
	}
	if !slices.Equal(waits, want) {
		t.Fatalf("waits between ledger retries %v, want %v", waits, want)
	}
}

// TestExpiredAfterCrashWhilePausedIsHeld: as above, but the run is paused when the retry
// comes: the entry left submitting is not the task's to settle now (the claim holds), so the
// task is held, not ended with the entry still submitting and no task left to settle it.
func TestExpiredAfterCrashWhilePausedIsHeld(t *testing.T) {
	b := setup(t, testConfig())
	ps := seedRun(t, b, "run-exp-crash-paused", ledger.AtMostOnce, 1)
	p := ps[0]
	ctx := context.Background()
	if _, err := b.ledger.Claim(ctx, p.Address(), ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ledger.Pause(ctx, p.Run, "checking"); err != nil {
		t.Fatal(err)
	}
	p.Expires = time.Now().Add(-time.Minute).Unix()
	wantAs[*HeldError](t, handle(t, b, p))
	if e := entryOf(t, b, p); e.State != ledger.Submitting {
		t.Fatalf("entry %+v, want submitting until the run resumes", e)
	}
	if _, err := b.ledger.Resume(ctx, p.Run); err != nil {
		t.Fatal(err)
	}
	if err := handle(t, b, p); err != nil {
		t.Fatal(err)
	}
	if e := entryOf(t, b, p); e.State != ledger.Unknown {
		t.Fatalf("entry %+v after the resume, want unknown (the crashed attempt may have sent)", e)
	}
}
