package limits

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
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

// TestAdoptedTierRoomGoesBack: a send late for its slot gives its booking back as Late (its
// room in the tier stays taken), books again on the same Request with the clock moved on,
// adopts the old room, and then gives everything back as Turned (the fresh booking was
// refused, or the provider turned the request away). The person got no message, so the tier
// must not count them: the give-back removes the member under the score the script actually
// wrote, the old booking's when the fresh one wrote none, not the Request's later Now.
func TestAdoptedTierRoomGoesBack(t *testing.T) {
	const who = "+15550001111"
	for _, tc := range []struct {
		name string
		// runRate refuses the fresh booking (one permit per 2 s, MaxWait 1 s) when set.
		runRate float64
		// openWindow opens the person's service window before the fresh booking (it then skips
		// the tier and writes no member).
		openWindow bool
		wantOK     bool
	}{
		{name: "fresh booking refused", runRate: 0.5},
		{name: "fresh booking in an open window", openWindow: true, wantOK: true},
		{name: "fresh booking rewrites the member", wantOK: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t)
			ctx := context.Background()
			s := NewSends(b.lim, Config{BusinessID: "biz", DailyTier: 10, PairInterval: -1, Adaptive: Policy{Period: -1}})
			req := s.Request(Intention{Run: "r", Recipient: who, RunRate: tc.runRate}, t0)
			old, err := s.ReserveRequest(ctx, req)
			if err != nil || !old.OK || !old.TierAdded {
				t.Fatalf("first booking: %+v %v", old.Reservation, err)
			}
			if err := old.GiveBack(ctx, Late); err != nil {
				t.Fatal(err)
			}
			if tc.openWindow {
				key, field := servicewindow.Locate("biz", who)
				b.mr.HSet(key, field, strconv.FormatInt(t0.Unix(), 10))
			}
			req.Now = t0.Add(40 * time.Millisecond) // the same Request, booked again later
			fresh, err := s.ReserveRequest(ctx, req)
			if err != nil || fresh.OK != tc.wantOK || fresh.InWindow != tc.openWindow {
				t.Fatalf("fresh booking: %+v %v, want OK %t, in window %t", fresh.Reservation, err, tc.wantOK, tc.openWindow)
			}
			fresh.Adopt(old)
			if !fresh.TierAdded {
				t.Errorf("fresh booking %+v did not adopt the old room in the tier", fresh.Reservation)
			}
			if err := fresh.GiveBack(ctx, Turned); err != nil {
				t.Fatal(err)
			}
			if ms, err := b.rdb.ZRangeWithScores(ctx, rkeys.Tier("biz"), 0, -1).Result(); err != nil || len(ms) != 0 {
				t.Errorf("tier after the give-back holds %v (%v), want no one: the person got no message", ms, err)
			}
		})
	}
}
