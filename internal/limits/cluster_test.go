package limits

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/testredis"
)

// TestClusterSends plays the limits API a worker and `herald limits show` use, on a Redis
// Cluster (HERALD_TEST_REDIS_CLUSTER), for a business of its own: a reservation with every
// limit (rates, pair, daily tier, frequency cap, a service window read), pipelined beside
// another business's, given back; holds of the business and of a sender; the pair backoff;
// a throttle and the controller's state; and the reports that read the limits. Every script
// of the package runs with the keys Sends builds, and each one's KEYS must lie in one slot.
// The business's keys are deleted afterwards.
func TestClusterSends(t *testing.T) {
	cc := testredis.Cluster(t)
	check := testredis.NewSlotCheck()
	cc.AddHook(check)
	ctx := context.Background()
	biz, other := testredis.UniqueName("limits-cluster"), testredis.UniqueName("limits-cluster-other")
	testredis.DeleteAtCleanup(t, cc, biz)
	testredis.DeleteAtCleanup(t, cc, other)

	const sender, sender2, rcpt = "+15550100001", "+15550100002", "+15557770001"
	run := testredis.UniqueName("run")
	cfg := Config{BusinessID: biz, SenderRates: map[string]float64{sender: 50, sender2: 50}, DailyTier: 10,
		FrequencyCaps: map[string]FrequencyCap{"marketing": {Max: 1, Period: time.Hour}}}
	s := NewSends(New(cc), cfg)
	policy := servicewindow.Policy{Senders: []string{sender, sender2}}
	in := Intention{Sender: sender, Run: run, Recipient: rcpt, RunRate: 50, ReadWindow: true, WindowPolicy: policy}
	now := time.Now()

	// A reservation takes room in the tier and a mark under the cap; given back unsent, it
	// leaves neither.
	bk, err := s.Reserve(ctx, in, now)
	if err != nil || !bk.OK || !bk.TierAdded || !bk.CapAdded || bk.InWindow {
		t.Fatalf("Reserve = %+v, %v; want OK with new room in the tier and the cap", bk.Reservation, err)
	}
	if use, err := s.Limiter().DailyTier(ctx, biz, cfg.DailyTier, DefaultTierPeriod, now); err != nil || use.Used != 1 {
		t.Fatalf("DailyTier = %+v, %v; want 1 used", use, err)
	}
	capCheck := CapCheck{Business: biz, Cap: cfg.FrequencyCaps["marketing"], Recipients: []string{rcpt, "+15557770002"}, Now: now}
	if capped, err := s.Limiter().Capped(ctx, capCheck); err != nil || !slices.Equal(capped, []bool{true, false}) {
		t.Fatalf("Capped = %v, %v; want [true false]", capped, err)
	}
	if in, err := s.Limiter().InDailyTier(ctx, biz, []string{rcpt, "+15557770002"}, DefaultTierPeriod, now); err != nil || !slices.Equal(in, []bool{true, false}) {
		t.Fatalf("InDailyTier = %v, %v; want [true false]", in, err)
	}
	if err := bk.GiveBack(ctx, Unsent); err != nil {
		t.Fatal(err)
	}
	if use, err := s.Limiter().DailyTier(ctx, biz, cfg.DailyTier, DefaultTierPeriod, now); err != nil || use.Used != 0 {
		t.Fatalf("DailyTier after the give-back = %+v, %v; want none used", use, err)
	}
	if capped, err := s.Limiter().Capped(ctx, capCheck); err != nil || !slices.Equal(capped, []bool{false, false}) {
		t.Fatalf("Capped after the give-back = %v, %v; want none", capped, err)
	}

	// The recipient writes to the sender: the reservation reads the open window (a key of
	// another slot than the rate limits' would be refused by the Cluster) and takes no room.
	tracker := servicewindow.New(cc, nil)
	tracker.SetPolicy(policy)
	if moved, err := tracker.TouchTo(ctx, biz, sender, []string{rcpt}, now); err != nil || !moved {
		t.Fatalf("TouchTo = %v, %v", moved, err)
	}
	// Pipelined beside another business's reservation: the pipeline spans nodes. The script is
	// loaded first, as a worker loads it (Limiter.Load, on every master): the other business's
	// keys may lie on a node no script call has reached yet, which would answer NOSCRIPT.
	so := NewSends(New(cc), Config{BusinessID: other, DailyTier: 5})
	if err := so.Limiter().Load(ctx); err != nil {
		t.Fatal(err)
	}
	var mine, theirs *BookingCmd
	if _, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
		mine = s.ReserveIn(ctx, p, in, now)
		theirs = so.ReserveIn(ctx, p, Intention{Sender: sender, Run: run, Recipient: rcpt}, now)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	bk, err = mine.Result(ctx)
	if err != nil || !bk.OK || !bk.InWindow || bk.TierAdded || !bk.CapAdded {
		t.Fatalf("pipelined Reserve = %+v, %v; want OK in the window, no room in the tier", bk.Reservation, err)
	}
	if b, err := theirs.Result(ctx); err != nil || !b.OK || !b.TierAdded {
		t.Fatalf("the other business's Reserve = %+v, %v", b.Reservation, err)
	}
	if err := bk.GiveBack(ctx, Turned); err != nil {
		t.Fatal(err)
	}

	// A hold of the business rate holds every sender; a hold of one sender, that sender only.
	key, d, err := s.Hold(ctx, HoldBusiness, sender, 30*time.Second)
	if err != nil || key != rkeys.BusinessLimit(biz) || d <= 29*time.Second || d > 30*time.Second {
		t.Fatalf("Hold(business) = %s, %v, %v", key, d, err)
	}
	in2 := Intention{Sender: sender2, Run: run, Recipient: "+15557770003", RunRate: 50}
	if b, err := s.Reserve(ctx, in2, time.Now()); err != nil || b.OK || b.Reason != ReasonRate || b.Binding != LimBusiness {
		t.Fatalf("Reserve under the business hold = %+v, %v; want refused by the business rate", b.Reservation, err)
	}
	if key, _, err := s.Hold(ctx, HoldSender, sender2, 40*time.Second); err != nil || key != rkeys.SenderLimit(biz, sender2) {
		t.Fatalf("Hold(sender) = %s, %v", key, err)
	}
	if b, err := s.Reserve(ctx, in2, time.Now()); err != nil || b.OK || b.Binding != LimSender || b.Wait <= 35*time.Second {
		t.Fatalf("Reserve under the sender hold = %+v, %v; want refused by the sender's rate for ~40s", b.Reservation, err)
	}

	// The pair backoff: 1 s, then 4 s, and the pair's rate limit held for it.
	for i, want := range []time.Duration{time.Second, 4 * time.Second} {
		if wait, err := s.PairThrottled(ctx, sender, rcpt); err != nil || wait != want {
			t.Fatalf("PairThrottled #%d = %v, %v; want %v", i+1, wait, err, want)
		}
	}
	if ttl, err := cc.PTTL(ctx, rkeys.PairBackoff(biz, sender, rcpt)).Result(); err != nil || ttl <= 0 {
		t.Fatalf("pair backoff expires in %v, %v", ttl, err)
	}
	if ttl, err := cc.PTTL(ctx, rkeys.PairLimit(biz, sender, rcpt)).Result(); err != nil || ttl <= 0 {
		t.Fatalf("pair limit expires in %v, %v: not held", ttl, err)
	}

	// A throttle: the controller counts it against the sends reserved in its window (whole
	// seconds: it shows a second later).
	c, at := s.Control(sender), time.Now()
	th, err := s.Limiter().Throttled(ctx, c, at)
	if err != nil || th.Factor <= 0 || th.Factor > 1 {
		t.Fatalf("Throttled = %+v, %v", th, err)
	}
	if b, err := s.Limiter().BackoffOf(ctx, c, at.Add(time.Second)); err != nil || b.Throttled != 1 || b.Reserved < 1 {
		t.Fatalf("BackoffOf = %+v, %v; want the throttle counted", b, err)
	}
	if use, err := s.Limiter().SenderUse(ctx, biz, sender, 5, at.Add(time.Second)); err != nil || use <= 0 {
		t.Fatalf("SenderUse = %v, %v; want the reservations counted", use, err)
	}
	if use, err := s.Limiter().BusinessUse(ctx, biz, 5, at.Add(time.Second)); err != nil || use <= 0 {
		t.Fatalf("BusinessUse = %v, %v; want the reservations counted", use, err)
	}

	// Every script ran, each with its KEYS in one slot (testredis.Cluster fails the test
	// otherwise).
	ran := map[string]bool{}
	for _, call := range check.Calls() {
		ran[call.SHA] = true
	}
	for name, sc := range map[string]*redis.Script{"reserveCmd": reserveCmd, "refundCmd": refundCmd, "throttledCmd": throttledCmd, "holdCmd": holdCmd} {
		if !ran[sc.Hash()] {
			t.Errorf("%s did not run", name)
		}
	}
}

// TestClusterSenders: `herald limits show` lists every sender with limiter state, on a
// Cluster as on one Redis, whichever node holds the business's keys (a SCAN reaches one node:
// go-redis sends one whose MATCH holds a hash tag, as Senders' does, to that tag's node).
func TestClusterSenders(t *testing.T) {
	cc := testredis.Cluster(t)
	ctx := context.Background()
	const tries = 6
	for i := range tries {
		biz := testredis.UniqueName("limits-senders")
		testredis.DeleteAtCleanup(t, cc, biz)
		s := NewSends(New(cc), Config{BusinessID: biz})
		for _, sender := range []string{"+15550100001", "+15550100002"} {
			if b, err := s.Reserve(ctx, Intention{Sender: sender, Run: "r", Recipient: "+15557770001"}, time.Now()); err != nil || !b.OK {
				t.Fatalf("Reserve = %+v, %v", b.Reservation, err)
			}
		}
		got, err := s.Limiter().Senders(ctx, biz)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"+15550100001", "+15550100002"}; !slices.Equal(got, want) {
			t.Fatalf("business %d of %d: Senders = %v, want %v (its keys are on the node of slot %d)",
				i+1, tries, got, want, testredis.Slot(rkeys.SenderLimit(biz, "x")))
		}
	}
}
