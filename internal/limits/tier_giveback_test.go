package limits

import (
	"context"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// TestTierGiveBackKeepsAnotherSendsMember: two runs of one business send to the same person
// from two sender numbers (the tier is the portfolio's, shared by both). Run A reserves first and
// adds the person to the tier; run B reserves next (the person is in the tier already, no new
// room) and its message is accepted; then A's request is turned away (a 429). A's give-back must
// not take the person out of the tier: B's message went out and counts for 24 h.
func TestTierGiveBackKeepsAnotherSendsMember(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	s := NewSends(b.lim, Config{BusinessID: "biz", DailyTier: 1, Adaptive: Policy{Period: -1}})
	const p, q = "+15550001111", "+15550002222"
	a, err := s.Reserve(ctx, Intention{Sender: "+14150000001", Run: "run-a", Recipient: p}, t0)
	if err != nil || !a.OK || !a.TierAdded {
		t.Fatalf("A: %+v %v", a.Reservation, err)
	}
	bb, err := s.Reserve(ctx, Intention{Sender: "+14150000002", Run: "run-b", Recipient: p}, t0.Add(100*time.Millisecond))
	if err != nil || !bb.OK || bb.TierAdded {
		t.Fatalf("B: %+v %v", bb.Reservation, err)
	}
	// B's message is accepted (nothing to give back). A is throttled: Turned.
	if err := a.GiveBack(ctx, Turned); err != nil {
		t.Fatal(err)
	}
	if _, err := b.rdb.ZScore(ctx, rkeys.Tier("biz"), p).Result(); err != nil {
		t.Errorf("the person B messaged is no longer in the tier: %v", err)
	}
	// With a tier of 1 used by B's message, a new person must wait.
	c, err := s.Reserve(ctx, Intention{Sender: "+14150000001", Run: "run-c", Recipient: q}, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if c.OK {
		t.Errorf("a second unique person was let through a tier of 1 within the period")
	}
}
