package worker

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testclock"
)

// wantTierEmpty fails unless the daily tier of b's business counts no one.
func wantTierEmpty(t *testing.T, b *testBundle) {
	t.Helper()
	ms, err := b.rdb.ZRangeWithScores(context.Background(), rkeys.Tier(b.worker.cfg.Limits.BusinessID), 0, -1).Result()
	if err != nil || len(ms) != 0 {
		t.Errorf("daily tier holds %v (%v), want no one: nobody got a message", ms, err)
	}
}

// TestLateRebookRefusedGivesTierBack: a claimed send late for its slot lets it go (its room in
// the tier stays taken, limits.Late), books a fresh slot later on the worker's clock, and the
// fresh booking is refused (the sender's limit is booked far ahead). The send does not go, so
// the room its first booking took in the tier goes back: the tier counts no one.
func TestLateRebookRefusedGivesTierBack(t *testing.T) {
	b, t0 := lateSetup(t)
	ctx := context.Background()
	clk := testclock.New(time.UnixMicro(t0))
	b.worker.now = clk.Now
	p := seedRun(t, b, "run-late-refused", ledger.AtLeastOnce, 1)[0]
	first, err := b.worker.book(ctx, b.worker.requestFor(p))
	if err != nil || !first.OK || !first.TierAdded {
		t.Fatalf("booking: %+v, %v", first, err)
	}
	// The process stalled past the slot; the clock moved on, and the sender's limit is now
	// booked 10 s ahead, beyond MaxWait.
	first.wake = time.Now().Add(-time.Second)
	first.waited = true
	clk.Add(40 * time.Millisecond)
	b.mr.Set(rkeys.SenderLimit(b.worker.cfg.Limits.BusinessID, senderOf(p)), strconv.FormatInt(t0+10_000_000, 10))
	got, err := b.worker.onTime(ctx, first)
	if err != nil || got.OK || got.Reason != limits.ReasonRate {
		t.Fatalf("onTime: %+v, %v; want the fresh slot refused for the rate", got.Reservation, err)
	}
	wantTierEmpty(t, b)
}

// TestRefusedFallbackRebookRefusedGivesTierBack: the fallback template after a refused session
// message books its own room in the tier (Connectly found the window closed); late for its
// slot, it books a fresh one later, which is refused. Nothing went out, so the tier counts no
// one afterwards.
func TestRefusedFallbackRebookRefusedGivesTierBack(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.BusinessID = limitsBusiness
	cfg.Limits.DailyTier = 10
	cfg.Limits.MaxWait = 10 * time.Millisecond
	b, sim := setupSim(t, cfg)
	b, c, p := refusing(t, b)
	sender := rkeys.SenderLimit(limitsBusiness, senderOf(p))
	stalled := false
	sim.onSleep = func(time.Duration) {
		if stalled || c.Sessions() == 0 {
			return
		}
		// The fallback waits for its slot: the process stalls past it, and meanwhile the
		// sender's limit is booked an hour ahead, so its fresh slot is refused.
		stalled = true
		sim.Stall(pairLateStall)
		b.mr.Set(sender, strconv.FormatInt(sim.Now().Add(time.Hour).UnixMicro(), 10))
	}
	wantAs[*ThrottledError](t, handle(t, b, p))
	if !stalled {
		t.Fatal("the fallback never waited for its slot")
	}
	if c.Sessions() != 1 || b.sender.CallsTo(p.To) != 0 {
		t.Fatalf("%d session and %d template requests, want the refused session only", c.Sessions(), b.sender.CallsTo(p.To))
	}
	if e := entryOf(t, b, p); e.State != ledger.Queued {
		t.Fatalf("entry %+v, want queued: the fallback did not go", e)
	}
	wantTierEmpty(t, b)
}
