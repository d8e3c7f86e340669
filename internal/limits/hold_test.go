package limits

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/rkeys"
)

func TestParseHoldScope(t *testing.T) {
	for in, want := range map[string]HoldScope{"": HoldBusiness, "business": HoldBusiness, "sender": HoldSender, "send": HoldSend} {
		if got, err := ParseHoldScope(in); err != nil || got != want {
			t.Errorf("ParseHoldScope(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseHoldScope("everyone"); err == nil {
		t.Error("ParseHoldScope(everyone): no error")
	}
}

// TestHold holds each scope's limit for 30 s (Redis's clock stands still at t0 on miniredis)
// and checks which sends then wait, and for how long: exactly to the hold's end, never a send
// the scope does not cover.
func TestHold(t *testing.T) {
	const biz, s1, s2 = "biz", "+15550001111", "+15550003333"
	base := Config{BusinessID: biz, DefaultSenderRate: 80, BusinessRate: 200, PairInterval: -1, Adaptive: Policy{Period: -1}}
	noBiz := base
	noBiz.BusinessRate = -1
	const hold = 30 * time.Second
	for _, tc := range []struct {
		name     string
		cfg      Config
		scope    HoldScope
		key      string
		s1, s2   bool // whether a send from each sender waits for the hold
		noAnswer bool // nothing is held
	}{
		{"business", base, HoldBusiness, rkeys.BusinessLimit(biz), true, true, false},
		{"business without its limit holds the sender", noBiz, HoldBusiness, rkeys.SenderLimit(biz, s1), true, false, false},
		{"sender", base, HoldSender, rkeys.SenderLimit(biz, s1), true, false, false},
		{"send", base, HoldSend, "", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t)
			s := NewSends(b.lim, tc.cfg)
			ctx := context.Background()
			key, left, err := s.Hold(ctx, tc.scope, s1, hold)
			if err != nil {
				t.Fatal(err)
			}
			if tc.noAnswer {
				if key != "" || left != 0 || len(b.mr.Keys()) != 0 {
					t.Fatalf("send scope held %q for %s; keys %v", key, left, b.mr.Keys())
				}
			} else if key != tc.key || left != hold {
				t.Fatalf("held %q for %s; want %q for %s", key, left, tc.key, hold)
			}
			for i, sender := range []string{s1, s2} {
				held := []bool{tc.s1, tc.s2}[i]
				bk, err := s.Reserve(ctx, Intention{Sender: sender, Run: "r", Recipient: "+1555000200" + string(rune('0'+i))}, t0)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case held && (bk.OK || bk.Reason != ReasonRate || bk.Wait != hold):
					t.Errorf("sender %d: reservation %+v; want refused, waiting %s", i+1, bk.Reservation, hold)
				case !held && !bk.OK:
					t.Errorf("sender %d: reservation %+v; want granted", i+1, bk.Reservation)
				}
			}
			if tc.noAnswer {
				return
			}
			// A shorter hold leaves the longer one; a longer one extends it.
			if _, left, _ := s.Hold(ctx, tc.scope, s1, time.Second); left != hold {
				t.Errorf("a 1 s hold over a 30 s one: %s left", left)
			}
			if _, left, _ := s.Hold(ctx, tc.scope, s1, 2*hold); left != 2*hold {
				t.Errorf("a 60 s hold over a 30 s one: %s left", left)
			}
			// The key expires after the hold: nothing stays behind.
			if ttl := b.mr.TTL(tc.key); ttl <= 2*hold || ttl > 2*hold+2*time.Second {
				t.Errorf("TTL %s; want just over %s", ttl, 2*hold)
			}
		})
	}
}

// TestHoldSenderWhileSlowed: a hold of the sender's limit lasts its whole length whatever the
// sender's adaptive factor, which scales the limit's burst tolerance in a reservation: the
// factor may be low when the hold is made, or be lowered right after it (the worker records
// the throttle that brought the Retry-After after holding). No reservation lands before the
// hold ends; at full rate, none waits longer.
func TestHoldSenderWhileSlowed(t *testing.T) {
	const hold = time.Second
	for _, tc := range []struct {
		name        string
		slowedFirst bool
		slowedAfter bool
	}{
		{name: "slowed before the hold", slowedFirst: true},
		{name: "slowed after the hold", slowedAfter: true},
		{name: "at full rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t)
			ctx := context.Background()
			s := NewSends(b.lim, Config{BusinessID: "biz", DefaultSenderRate: 200, PairInterval: -1})
			// The adaptive factor runs on the process's clock (Hold reads it there); the
			// rate limits on miniredis's, which stands still at t0.
			now := time.Now()
			ctl := s.Control("")
			if tc.slowedFirst {
				// Down to the floor, recovering only after a minute.
				b.mr.HSet(ctl.Key(), "f", "0.2000", "at", strconv.FormatInt(now.Add(time.Minute).UnixMilli(), 10),
					"dec", strconv.FormatInt(now.UnixMilli(), 10))
			}
			if _, left, err := s.Hold(ctx, HoldSender, "", hold); err != nil || left != hold {
				t.Fatalf("hold: %s left (%v), want %s", left, err, hold)
			}
			if tc.slowedAfter {
				// 95 of 100 sends throttled: the factor drops to its floor.
				seedCounts(ctx, b.rdb, ctl, now, 100, 95)
				if th, err := b.lim.Throttled(ctx, ctl, now); err != nil || !th.Decreased || th.Factor != 0.2 {
					t.Fatalf("Throttled: %+v, %v; want a decrease to 0.2", th, err)
				}
			}
			bk, err := s.Reserve(ctx, Intention{Run: "r", Recipient: "+15550002000"}, now)
			if err != nil {
				t.Fatal(err)
			}
			slowed := tc.slowedFirst || tc.slowedAfter
			if (bk.Factor < 1) != slowed || bk.Wait != hold {
				t.Errorf("reservation %+v: want a wait of the %s hold exactly (slowed %t)", bk.Reservation, hold, slowed)
			}
		})
	}
}
