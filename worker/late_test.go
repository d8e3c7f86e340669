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
