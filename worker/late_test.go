package worker

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// requestFor is the reservation p's send needs now.
func (w *Worker) requestFor(p campaigns.SendPayload) *limits.Request {
	return w.limits.Request(limits.Intention{Sender: p.Sender, Run: p.Run, Recipient: p.To, Category: p.Category,
		RunRate: p.Rate}, w.now())
}

// tatOf reads a rate limit's theoretical arrival time (µs on Redis's clock); 0 when unset.
func tatOf(t *testing.T, b *testBundle, key string) int64 {
	t.Helper()
	if !b.mr.Exists(key) {
		return 0
	}
	v, err := b.mr.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// lateSetup is a worker paced at 100/s (10 ms slots) with the pair limit and a daily tier,
// on a Redis whose clock stands still at t0 (µs), so every slot is known exactly.
func lateSetup(t *testing.T) (b *testBundle, t0 int64) {
	t.Helper()
	cfg := testConfig()
	cfg.Limits.DefaultSenderRate = 100
	cfg.Limits.PairInterval = 6 * time.Second
	cfg.Limits.DailyTier = 1000
	b = setup(t, cfg)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	b.mr.SetTime(now)
	return b, now.UnixMicro()
}

// A slot whose time has come is not given back to the shared limits: given back, it would
// free the last slot booked, and the next reservation would share that slot with the send
// that holds it (one send more than the rate in every second around it).
func TestWaitedKeepsTheSharedSlots(t *testing.T) {
	b, t0 := lateSetup(t)
	ctx := context.Background()
	ps := seedRun(t, b, "run-spent", ledger.AtLeastOnce, 2)
	sender := rkeys.SenderLimit(b.worker.cfg.Limits.BusinessID, senderOf(ps[0]))
	pair := rkeys.PairLimit(b.worker.cfg.Limits.BusinessID, senderOf(ps[1]), ps[1].To)

	req0, req1 := b.worker.requestFor(ps[0]), b.worker.requestFor(ps[1])
	if _, err := b.worker.book(ctx, req0); err != nil {
		t.Fatal(err)
	}
	b1, err := b.worker.book(ctx, req1)
	if err != nil || !b1.OK || !b1.TierAdded {
		t.Fatalf("second booking: %+v, %v", b1, err)
	}
	if got, want := tatOf(t, b, sender), t0+20_000; got != want {
		t.Fatalf("sender limit after two bookings at %d µs, want %d", got-t0, want-t0)
	}

	b.worker.giveBack(ctx, b1, limits.Waited)
	if got, want := tatOf(t, b, sender), t0+20_000; got != want {
		t.Errorf("sender limit after giving it back as Waited at %d µs, want %d (the slot stays used)", got-t0, want-t0)
	}
	if got := tatOf(t, b, pair); got != 0 {
		t.Errorf("pair limit still booked at %d µs after giving it back as Waited, want it given back", got-t0)
	}
	if ok, _ := b.rdb.ZScore(ctx, rkeys.Tier(b.worker.cfg.Limits.BusinessID), ps[1].To).Result(); ok != 0 {
		t.Errorf("recipient still counted in the daily tier after giving it back as Waited")
	}
	// A plain refund (a reservation just made, whose send will not happen) gives the slot back.
	b2, err := b.worker.book(ctx, req1)
	if err != nil || !b2.OK {
		t.Fatalf("third booking: %+v, %v", b2, err)
	}
	b.worker.giveBack(ctx, b2, limits.Unsent)
	if got, want := tatOf(t, b, sender), t0+20_000; got != want {
		t.Errorf("sender limit after a refund at %d µs, want %d", got-t0, want-t0)
	}
}

// A claimed send that finds itself past its slot by more than lateLimit lets the slot go and
// takes a fresh one, keeping its pair slot and its room in the tier.
func TestLateSendTakesAFreshSlot(t *testing.T) {
	b, t0 := lateSetup(t)
	ctx := context.Background()
	ps := seedRun(t, b, "run-late", ledger.AtLeastOnce, 1)
	p := ps[0]
	sender := rkeys.SenderLimit(b.worker.cfg.Limits.BusinessID, senderOf(p))
	pair := rkeys.PairLimit(b.worker.cfg.Limits.BusinessID, senderOf(p), p.To)
	req := b.worker.requestFor(p)

	first, err := b.worker.book(ctx, req)
	if err != nil || !first.OK || !first.TierAdded {
		t.Fatalf("booking: %+v, %v", first, err)
	}
	// The process stalled: the send comes to its slot a second after it.
	first.wake = time.Now().Add(-time.Second)
	first.waited = true
	got, err := b.worker.onTime(ctx, first)
	if err != nil || !got.OK {
		t.Fatalf("onTime: %+v, %v", got, err)
	}
	if !got.waited || !got.TierAdded {
		t.Errorf("fresh booking lost what the first one held: waited %t, tier added %t", got.waited, got.TierAdded)
	}
	if time.Since(got.wake) > time.Second/2 {
		t.Errorf("onTime returned the late slot (woke %s ago), want a fresh one", time.Since(got.wake))
	}
	// One slot for the late booking, which stays used, and one (two if this test itself
	// stalled past lateLimit) for the fresh booking.
	if n := (tatOf(t, b, sender) - t0) / 10_000; n < 2 || n > 3 {
		t.Errorf("sender limit holds %d slots, want 2 (the late slot stays used) or 3", n)
	}
	slot := (b.worker.cfg.Limits.PairInterval + b.worker.cfg.Limits.PairMargin).Microseconds()
	if got, want := tatOf(t, b, pair), t0+slot; got != want {
		t.Errorf("pair limit at %d µs, want %d (given back and booked again once)", got-t0, want-t0)
	}
	if n, _ := b.rdb.ZCard(ctx, rkeys.Tier(b.worker.cfg.Limits.BusinessID)).Result(); n != 1 {
		t.Errorf("daily tier counts %d recipients, want 1", n)
	}
}

// pairLateStall is how long a stalled sleep holds the send up in the tests below: well past
// lateLimit and the claim lead, and past the pair lateness of a 40 ms margin, whatever the
// slot's wait (at most 10 ms: MaxWait) took off it.
const pairLateStall = 60 * time.Millisecond

// pairLateCase is a send held up at every sleep of one stage of its way to the request.
type pairLateCase struct {
	name string
	// paced: the worker paces the sender (pacedClaim) rather than reserving and claiming in
	// one round trip (onTime).
	paced bool
	// claimed: the stalls come while the send holds its claim, else only before it.
	claimed bool
}

var pairLateCases = []pairLateCase{
	{name: "onTime", paced: false, claimed: true},
	{name: "pacedBeforeClaim", paced: true, claimed: false},
	{name: "pacedAfterClaim", paced: true, claimed: true},
}

// pairLateSetup is a worker on a simulated clock with the pair limit (6 s, with margin on top;
// negative interval: none) and a daily tier, and a payload whose every sleep in the stage
// c names stalls pairLateStall, past its slot, on the process's clock, for as long as stalling
// is on. A paced worker paces at 2/s, as keepPlaceSetup's.
func pairLateSetup(t *testing.T, c pairLateCase, interval, margin time.Duration) (b *testBundle, p campaigns.SendPayload, stalling *bool) {
	t.Helper()
	cfg := testConfig()
	cfg.Limits.PairInterval = interval
	cfg.Limits.PairMargin = margin
	cfg.Limits.DailyTier = 1000
	cfg.Limits.MaxWait = 10 * time.Millisecond
	cfg.KeepPlaceFor = 5 * time.Second
	if c.paced {
		cfg.Limits.SenderRates = map[string]float64{testSender: 2}
	}
	b, sim := setupSim(t, cfg)
	ps := seedRun(t, b, "run-pair-late", ledger.AtLeastOnce, 3)
	if c.paced {
		if err := handle(t, b, ps[0]); err != nil {
			t.Fatal(err)
		}
		wantAs[*ThrottledError](t, handle(t, b, ps[1])) // refused: the worker paces from now on
	}
	if got := b.worker.pacing(testSender).Load(); got != c.paced {
		t.Fatalf("worker pacing %t, want %t", got, c.paced)
	}
	p = ps[2]
	stalling = new(bool)
	*stalling = true
	stalls := 0
	sim.onSleep = func(time.Duration) {
		if !*stalling || stalls >= 20 || (entryOf(t, b, p).State == ledger.Submitting) != c.claimed {
			return
		}
		stalls++
		sim.Stall(pairLateStall)
	}
	return b, p, stalling
}

// TestLateForPairDoesNotGo: a send still late for its slot on its last try, by more than the
// pair margin can absorb (pairLateness), would reach the person less than the pair interval
// after a message booked a pair slot after its own slot: it does not go. Its claim goes back
// unused (the attempt with it, nothing counted), what its booking holds for the recipient goes
// back, and the task tries again later as a throttle; it then sends.
func TestLateForPairDoesNotGo(t *testing.T) {
	for _, c := range pairLateCases {
		t.Run(c.name, func(t *testing.T) {
			b, p, stalling := pairLateSetup(t, c, 6*time.Second, 40*time.Millisecond)
			if got, want := b.worker.pairLateness(), 20*time.Millisecond; got != want {
				t.Fatalf("pair lateness %v, want half the margin, %v", got, want)
			}
			before := countersOf(t, b, p.Run)
			te := wantAs[*ThrottledError](t, handle(t, b, p))
			if te.Reason != "late for its slot" || te.RetryAfter != b.worker.cfg.ThrottleDelay {
				t.Errorf("throttle %+v, want a retry after ThrottleDelay for a send late for its slot", te)
			}
			if n := b.sender.CallsTo(p.To); n != 0 {
				t.Fatalf("%d requests from a send %v late for its last slot, want none", n, pairLateStall)
			}
			if e := entryOf(t, b, p); e.State != ledger.Queued || e.Attempts != 0 {
				t.Fatalf("entry %+v, want queued with no attempt", e)
			}
			after := countersOf(t, b, p.Run)
			if after.Throttled != before.Throttled || after.States[ledger.Failed] != 0 || after.Attempts != before.Attempts {
				t.Errorf("counters %+v after %+v: a send that did not go counted as throttled, failed or attempted", after, before)
			}
			hist, err := b.ledger.History(context.Background(), p.Address())
			if err != nil {
				t.Fatal(err)
			}
			given := 0
			for _, ev := range hist {
				if ev.Code == CodeLateForPair {
					given++
					if ev.Outcome != string(ledger.ReleaseRequeue) {
						t.Errorf("history %+v: the claim went back as %s, want %s", hist, ev.Outcome, ledger.ReleaseRequeue)
					}
				}
			}
			if want := map[bool]int{true: 1, false: 0}[c.claimed]; given != want {
				t.Errorf("history %+v: %d claims given back as %s, want %d", hist, given, CodeLateForPair, want)
			}
			wantGivenBack(t, b, p)

			// The retry may find the sender's limit booked ahead, after the late slots the
			// send let go, and be refused once before it paces and keeps its place.
			*stalling = false
			err = handle(t, b, p)
			for i := 0; i < 2 && err != nil; i++ {
				wantAs[*ThrottledError](t, err)
				err = handle(t, b, p)
			}
			if err != nil {
				t.Fatalf("the send's retry: %v, want it sent", err)
			}
			if e := entryOf(t, b, p); e.State != ledger.Accepted || e.Attempts != 1 {
				t.Fatalf("entry %+v after the retry, want accepted on one attempt", e)
			}
			if n := b.sender.CallsTo(p.To); n != 1 {
				t.Fatalf("%d requests after the retry, want 1", n)
			}
		})
	}
}

// TestLateWithinPairLatenessGoes: a send late for its last slot by less than the pair margin
// can absorb goes, as does one as late that holds no pair slot (the rate limits tolerate a
// late send): a busy machine still sends.
func TestLateWithinPairLatenessGoes(t *testing.T) {
	for _, pair := range []struct {
		name             string
		interval, margin time.Duration
	}{
		{name: "withinMargin", interval: 6 * time.Second, margin: 4 * time.Second},
		{name: "noPairLimit", interval: -1, margin: 40 * time.Millisecond},
	} {
		for _, c := range pairLateCases {
			t.Run(pair.name+"/"+c.name, func(t *testing.T) {
				b, p, _ := pairLateSetup(t, c, pair.interval, pair.margin)
				if err := handle(t, b, p); err != nil {
					t.Fatalf("send late for every slot: %v, want it sent on its last", err)
				}
				if e := entryOf(t, b, p); e.State != ledger.Accepted || e.Attempts != 1 {
					t.Fatalf("entry %+v, want accepted on one attempt", e)
				}
				if n := b.sender.CallsTo(p.To); n != 1 {
					t.Fatalf("%d requests, want 1", n)
				}
			})
		}
	}
}

// TestTooLateCountsTheRoundTrip: a send's lateness for the pair interval is counted from the
// earliest its slot can have been, its reservation's round trip before wake (an answer
// delayed on its way back delays the send as much); a booking without a pair slot is never
// too late.
func TestTooLateCountsTheRoundTrip(t *testing.T) {
	for _, interval := range []time.Duration{6 * time.Second, -1} {
		cfg := testConfig()
		cfg.Limits.PairInterval = interval
		cfg.Limits.PairMargin = 2 * time.Second
		b := setup(t, cfg)
		ps := seedRun(t, b, "run-too-late", ledger.AtLeastOnce, 1)
		bk, err := b.worker.book(context.Background(), b.worker.requestFor(ps[0]))
		if err != nil || !bk.OK {
			t.Fatalf("booking: %+v, %v", bk, err)
		}
		bk.wake = time.Now().Add(-50 * time.Millisecond)
		bk.trip = 0
		if b.worker.tooLate(bk) {
			t.Errorf("pair interval %v: 50 ms past its slot is too late, want it within the pair lateness (%v)",
				interval, b.worker.pairLateness())
		}
		bk.trip = b.worker.pairLateness()
		if got, want := b.worker.tooLate(bk), interval > 0; got != want {
			t.Errorf("pair interval %v: 50 ms past wake after a round trip of %v: too late %t, want %t", interval, bk.trip, got, want)
		}
	}
}
