package limits

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// resendSetup is a business whose default sender sends 1/s (burst 1) and nothing else limits,
// on miniredis with its clock stopped at t0, reached through a lossy proxy.
func resendSetup(t *testing.T) (*testBundle, *Sends, *testredis.ReplyDropper, redis.UniversalClient) {
	t.Helper()
	b := setup(t)
	p, err := testredis.StartReplyDropper(b.mr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), PoolSize: 1, MaxRetries: 3})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	s := NewSends(New(rdb), Config{BusinessID: "biz", DefaultSenderRate: 1, BusinessRate: -1, PairInterval: -1,
		Adaptive: Policy{Period: -1}, DailyTier: 10, MaxWait: 10 * time.Second})
	// The scripts are known to Redis, so the EVALSHA whose answer is lost ran them (an
	// unknown script would answer NOSCRIPT, and only the EVAL after it would run).
	if err := s.Limiter().Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := refundCmd.Load(ctx, rdb).Err(); err != nil {
		t.Fatal(err)
	}
	return b, s, p, rdb
}

// checkOneReservation checks that the business's sender limit holds the one permit bk took:
// counted once in the second's use, and the next send waits one interval, not two.
func checkOneReservation(t *testing.T, b *testBundle, s *Sends, bk *Booking) {
	t.Helper()
	ctx := context.Background()
	if !bk.OK || bk.Wait != 0 || !bk.TierAdded {
		t.Fatalf("the reservation sent twice answered %+v, want the first run's: OK, no wait, tier room taken", bk.Reservation)
	}
	use, err := b.rdb.Get(ctx, UsageKey(rkeys.SenderLimit("biz", "default"), t0.Unix())).Result()
	if err != nil || use != "1" {
		t.Errorf("reservations counted in the second: %q (%v), want 1", use, err)
	}
	next, err := s.Reserve(ctx, Intention{Run: "run", Recipient: "+15550000002"}, t0)
	if err != nil || !next.OK || next.Wait != time.Second {
		t.Errorf("the next send: %+v (%v), want a wait of one interval (1s)", next.Reservation, err)
	}
	if err := next.GiveBack(ctx, Unsent); err != nil {
		t.Fatal(err)
	}
	// Given back once, the booking leaves the limit as it found it.
	if err := bk.GiveBack(ctx, Unsent); err != nil {
		t.Fatal(err)
	}
	again, err := s.Reserve(ctx, Intention{Run: "run", Recipient: "+15550000003"}, t0)
	if err != nil || !again.OK || again.Wait != 0 {
		t.Errorf("after the give-back: %+v (%v), want no wait", again.Reservation, err)
	}
	if n, err := b.rdb.ZCard(ctx, rkeys.Tier("biz")).Result(); err != nil || n != 1 {
		t.Errorf("tier holds %d (%v), want only the last send's recipient", n, err)
	}
}

// TestReserveSentTwiceTakesOnce: the answer of a reservation is lost on its way back (the
// connection fails after Redis ran the script), so go-redis sends the same command again. The
// second run must answer as the first and take nothing more: before the memo it took a second
// permit, and the caller, holding that second answer, waited an interval for nothing while the
// first permit was never used or given back.
func TestReserveSentTwiceTakesOnce(t *testing.T) {
	b, s, p, _ := resendSetup(t)
	ctx := context.Background()
	p.DropReplyTo([]byte("evalsha"))
	bk, err := s.Reserve(ctx, Intention{Run: "run", Recipient: "+15550000001"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Dropped() != 1 {
		t.Fatalf("%d answers lost, want 1", p.Dropped())
	}
	checkOneReservation(t, b, s, bk)
}

// TestReserveInSentTwiceTakesOnce is TestReserveSentTwiceTakesOnce for a reservation sent in a
// pipeline (go-redis sends the whole pipeline again).
func TestReserveInSentTwiceTakesOnce(t *testing.T) {
	b, s, p, rdb := resendSetup(t)
	ctx := context.Background()
	p.DropReplyTo([]byte("evalsha"))
	var bc *BookingCmd
	_, err := rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		bc = s.ReserveIn(ctx, pipe, Intention{Run: "run", Recipient: "+15550000001"}, t0)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Dropped() != 1 {
		t.Fatalf("%d answers lost, want 1", p.Dropped())
	}
	bk, err := bc.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkOneReservation(t, b, s, bk)
}

// TestGiveBackSentTwiceGivesOnce: the answer of a give-back is lost and go-redis sends it
// again. The permit goes back once: a second give-back of the same permit freed a slot
// another send holds, and one second then carried a send more than the rate.
func TestGiveBackSentTwiceGivesOnce(t *testing.T) {
	_, s, p, _ := resendSetup(t)
	ctx := context.Background()
	first, err := s.Reserve(ctx, Intention{Run: "run", Recipient: "+15550000001"}, t0)
	if err != nil || !first.OK || first.Wait != 0 {
		t.Fatalf("first: %+v (%v)", first.Reservation, err)
	}
	second, err := s.Reserve(ctx, Intention{Run: "run", Recipient: "+15550000002"}, t0)
	if err != nil || !second.OK || second.Wait != time.Second {
		t.Fatalf("second: %+v (%v), want a wait of 1s", second.Reservation, err)
	}
	p.DropReplyTo([]byte("evalsha"))
	if err := second.GiveBack(ctx, Unsent); err != nil {
		t.Fatal(err)
	}
	if p.Dropped() != 1 {
		t.Fatalf("%d answers lost, want 1", p.Dropped())
	}
	// The first permit is still held: the next send waits for its interval.
	next, err := s.Reserve(ctx, Intention{Run: "run", Recipient: "+15550000003"}, t0)
	if err != nil || !next.OK || next.Wait != time.Second {
		t.Errorf("after the second's give-back: %+v (%v), want a wait of 1s (the first permit holds)", next.Reservation, err)
	}
}

// TestReserveAgainAfterItsSlot: a reservation's second run that comes after its slot (go-redis
// sent it again after a read timeout of seconds) answers the slot as passed, a negative wait,
// so the caller finds itself late and lets the slot go, as a send that woke late; a wait of 0
// would have sent it at once, seconds after its slot, crowding the sends of later slots.
func TestReserveAgainAfterItsSlot(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	r := &Request{Keys: []string{rkeys.SenderLimit("biz", "s1")}, Limits: []Limit{{Rate: 1, Burst: 1}}, MaxWait: 10 * time.Second, Now: t0}
	first, err := b.lim.reserve(ctx, r, "tok-1")
	if err != nil || !first.OK || first.Wait != 0 {
		t.Fatalf("first: %+v (%v)", first, err)
	}
	second, err := b.lim.reserve(ctx, r, "tok-2")
	if err != nil || !second.OK || second.Wait != time.Second {
		t.Fatalf("second: %+v (%v), want a wait of 1s", second, err)
	}
	b.mr.SetTime(t0.Add(5 * time.Second))
	again, err := b.lim.reserve(ctx, r, "tok-2")
	if err != nil || !again.OK || again.Wait != -4*time.Second {
		t.Fatalf("second again 5 s on: %+v (%v), want OK with its slot 4s past", again, err)
	}
}
