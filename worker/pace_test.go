package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// cancelAfterClaim is a paced worker on a simulated clock (a slot every 500 ms, the pair
// limit and a daily tier) and a payload to send, with the context to send it on: the
// worker's sleep ends that context once the send holds its claim (its last wait is the claim
// lead, on the task's context). ended reports how often it did.
func cancelAfterClaim(t *testing.T, runID string) (b *testBundle, send campaigns.SendPayload, ctx context.Context, ended func() int) {
	t.Helper()
	cfg := testConfig()
	cfg.Limits.SenderRates = map[string]float64{testSender: 2}
	cfg.Limits.MaxWait = 10 * time.Millisecond
	cfg.Limits.PairInterval = 6 * time.Second
	cfg.Limits.DailyTier = 1000
	cfg.KeepPlaceFor = 5 * time.Second
	sim := &simClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var (
		target   *campaigns.SendPayload
		canceled int
	)
	sleep := func(sctx context.Context, d time.Duration) error {
		if target != nil && canceled == 0 && entryOf(t, b, *target).State == ledger.Submitting {
			canceled++
			cancel()
		}
		return sim.Sleep(sctx, d)
	}
	b = setupWith(t, cfg, &redis.Options{}, sleep)
	sim.use(b)
	ps := seedRun(t, b, runID, ledger.AtMostOnce, 3)
	if err := handle(t, b, ps[0]); err != nil {
		t.Fatal(err)
	}
	wantAs[*ThrottledError](t, handle(t, b, ps[1])) // refused: the worker paces from now on
	send = ps[2]
	target = &send
	return b, send, ctx, func() int { return canceled }
}

// wantGivenBack fails unless send's booking gave back what it held for the recipient: the
// pair slot and the room in the daily tier.
func wantGivenBack(t *testing.T, b *testBundle, send campaigns.SendPayload) {
	t.Helper()
	business := b.worker.cfg.Limits.BusinessID
	now, err := b.rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Given back, the pair limit is free from the send's own slot on (at most MaxWait
	// ahead); still held, it is booked a pair interval after that slot.
	free := now.Add(b.worker.cfg.Limits.MaxWait).UnixMicro()
	if got := tatOf(t, b, rkeys.PairLimit(business, senderOf(send), send.To)); got > free {
		t.Errorf("the recipient's pair slot is still booked (free %v after Redis's now), want it given back",
			time.Duration(got-now.UnixMicro())*time.Microsecond)
	}
	if _, err := b.rdb.ZScore(context.Background(), rkeys.Tier(business), send.To).Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("the recipient still counts in the daily tier (err %v), want the room given back", err)
	}
}

// TestCancelAfterClaimGivesAllBack: a paced send whose task ends while it waits out the claim
// lead (after its claim) does not go, gives its claim back (nothing stays submitting) and
// gives back what its booking holds for the recipient.
func TestCancelAfterClaimGivesAllBack(t *testing.T) {
	b, send, ctx, ended := cancelAfterClaim(t, "run-cancel-claim")
	err := b.worker.HandleSend(ctx, sendTask(t, send))
	if n := ended(); n != 1 {
		t.Fatalf("the task's context was ended %d times while the send held its claim, want 1", n)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("handler = %v, want the ended context", err)
	}
	if n := b.sender.CallsTo(send.To); n != 0 {
		t.Fatalf("%d requests after the task ended, want none", n)
	}
	if e := entryOf(t, b, send); e.State != ledger.Queued || e.Attempts != 0 {
		t.Fatalf("entry %+v, want queued with its attempt given back", e)
	}
	wantGivenBack(t, b, send)
}

// TestPacedClaimReportsEndedContext: pacedClaim itself reports a context that ended after
// the claim, with the claim, so its caller gives the claim back; the booking is given back
// already.
func TestPacedClaimReportsEndedContext(t *testing.T) {
	b, send, ctx, ended := cancelAfterClaim(t, "run-paced-ended")
	j, err := b.worker.decode(ctx, sendTask(t, send))
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := b.worker.pacedClaim(ctx, j)
	if n := ended(); n != 1 {
		t.Fatalf("the task's context was ended %d times while the send held its claim, want 1", n)
	}
	if !errors.Is(err, context.Canceled) || c.Verdict != ledger.VerdictSend {
		t.Fatalf("pacedClaim = %s, %v; want the claim with the ended context's error", c.Verdict, err)
	}
	wantGivenBack(t, b, send)
}

// TestLateAfterClaimIsNoThrottle: a paced send late after its claim gives the claim back
// under its own code and sends from the same task: no throttled send is counted for it, its
// history tells it from a refusal, and its lateness is counted once.
func TestLateAfterClaimIsNoThrottle(t *testing.T) {
	b, sim, p := keepPlaceSetup(t, "run-late-no-throttle")
	throttled := countersOf(t, b, p.Run).Throttled // the refusal that switched to pacing
	m := metrics.New()
	b.worker.metrics = m
	sendLateAfterClaim(t, b, sim, p)
	if n := testutil.ToFloat64(m.Sends.WithLabelValues(testCampaign, testSenderLabel, metrics.OutcomeThrottled, "pacing")); n != 0 {
		t.Errorf("herald_sends_total{throttled,pacing} = %v for a send that went, want 0", n)
	}
	if n := testutil.ToFloat64(m.Sends.WithLabelValues(testCampaign, testSenderLabel, metrics.OutcomeAccepted, "none")); n != 1 {
		t.Errorf("herald_sends_total{accepted} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.LimitWaits.WithLabelValues("late")); n != 1 {
		t.Errorf("herald_limit_waits_total{late} = %v, want 1", n)
	}
	hist, err := b.ledger.History(context.Background(), p.Address())
	if err != nil {
		t.Fatal(err)
	}
	given := 0
	for _, ev := range hist {
		switch ev.Code {
		case CodeLateAfterClaim:
			given++
		case "RATE_LIMIT":
			t.Errorf("history %+v: the late claim given back reads as a rate-limit refusal", hist)
		}
	}
	if given != 1 || hist[0].Outcome != string(ledger.ReleaseRequeue) {
		t.Errorf("history %+v, want one claim given back as %s (%s)", hist, CodeLateAfterClaim, ledger.ReleaseRequeue)
	}
	if c := countersOf(t, b, p.Run); c.Throttled != throttled {
		t.Errorf("the run counts %d throttled sends, want %d: the late claim was given back and the send went", c.Throttled, throttled)
	}
}

// TestLateCountedOncePerBooking: a send late before its claim on every try goes on its third
// try anyway; each of its three bookings counts as late once, the third not again after its
// claim.
func TestLateCountedOncePerBooking(t *testing.T) {
	b, sim, p := keepPlaceSetup(t, "run-late-once")
	m := metrics.New()
	b.worker.metrics = m
	stalls := 0
	sim.onSleep = func(time.Duration) {
		// Every wait before the claim fires late; the waits in place before a slot is
		// booked fire late too, which changes nothing (the slot is booked after them).
		if stalls >= 20 || entryOf(t, b, p).State == ledger.Submitting {
			return
		}
		stalls++
		sim.Stall(lateLimit + claimLead + 10*time.Millisecond)
	}
	if err := handle(t, b, p); err != nil {
		t.Fatalf("paced send late on every try: %v, want it sent on the third", err)
	}
	if stalls >= 20 {
		t.Fatalf("%d stalls, want the send to go on its third try", stalls)
	}
	if e := entryOf(t, b, p); e.State != ledger.Accepted || e.Attempts != 1 {
		t.Fatalf("entry %+v, want accepted on one attempt", e)
	}
	if n := b.sender.CallsTo(p.To); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	if n := testutil.ToFloat64(m.LimitWaits.WithLabelValues("late")); n != 3 {
		t.Errorf("herald_limit_waits_total{late} = %v, want 3 (one per booking)", n)
	}
}

// TestCancelledRunTasksTakeNoSlot: once a sender's sends wait for their slots, the tasks of a
// cancelled run end at once, skipped(cancelled), without booking or waiting for a slot, so
// they do not hold up the runs queued behind them at the sender's rate.
func TestCancelledRunTasksTakeNoSlot(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.DefaultSenderRate = 10 // each send books a slot 100 ms after the last
	b, sim := setupSim(t, cfg)
	ps := seedRun(t, b, "run-cancelled", ledger.AtMostOnce, 20)
	ctx := context.Background()
	if _, _, err := b.worker.ledger.Cancel(ctx, "run-cancelled", "cancelled by test"); err != nil {
		t.Fatal(err)
	}
	b.worker.pacing(ps[0].Sender).Store(true)
	for _, p := range ps {
		if err := handle(t, b, p); err != nil {
			t.Fatal(err)
		}
		if e := entryOf(t, b, p); e.State != ledger.Skipped || e.Code != "cancelled" {
			t.Fatalf("entry %+v, want skipped(cancelled)", e)
		}
	}
	if s := sim.Slept(); s != 0 {
		t.Fatalf("the cancelled run's 20 tasks waited %v for rate slots, want none", s)
	}
	if n := len(b.sender.Calls()); n != 0 {
		t.Fatalf("%d requests, want none", n)
	}
}
