package limits

import (
	"context"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/rkeys"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.BusinessRate != DefaultBusinessRate || c.DefaultSenderRate != DefaultSenderRate ||
		c.PairInterval != DefaultPairInterval || c.PairMargin != DefaultPairMargin ||
		c.TierPeriod != DefaultTierPeriod || c.MaxWait != DefaultMaxWait {
		t.Fatalf("defaults %+v", c)
	}
	// Negative means off, and stays so.
	off := Config{BusinessRate: -1, PairInterval: -1, PairMargin: -1, Adaptive: Policy{Period: -1}}.WithDefaults()
	if off.BusinessRate != -1 || off.PairInterval != -1 || off.PairMargin != -1 || off.Adapts() {
		t.Fatalf("off %+v", off)
	}
	// The adaptive rate is on by default; off, a send's request has no adaptive factor.
	if !c.Adapts() || NewSends(nil, c).Request(Intention{Run: "r"}, time.Time{}).Adaptive == nil {
		t.Fatal("the adaptive rate is off by default")
	}
	if NewSends(nil, off).Request(Intention{Run: "r"}, time.Time{}).Adaptive != nil {
		t.Fatal("a negative Adaptive.Period leaves the adaptive rate on")
	}
	if r := (Config{SenderRates: map[string]float64{"+1": 5}}).WithDefaults(); r.SenderRate("+1") != 5 || r.SenderRate("+2") != DefaultSenderRate {
		t.Fatalf("sender rates %v %v", r.SenderRate("+1"), r.SenderRate("+2"))
	}
}

// TestGiveBack holds each way a reserved send can end to what it gives back: the shared rate
// permits only when unsent, the pair slot unless the request went out, the new room in the
// tier and the cap unless a message reached the person.
func TestGiveBack(t *testing.T) {
	const biz, sender, to, run = "biz", "+15550001111", "+15550002222", "run-1"
	in := Intention{Sender: sender, Run: run, Recipient: to, Category: "marketing", RunRate: 100}
	cfg := Config{BusinessID: biz, DefaultSenderRate: 100, BusinessRate: 100, PairInterval: time.Second,
		PairMargin: 100 * time.Millisecond, DailyTier: 10, Adaptive: Policy{Period: -1},
		FrequencyCaps: map[string]FrequencyCap{"marketing": {Max: 5, Period: time.Hour}}}
	slot := 10 * time.Millisecond
	pairSlot := 1100 * time.Millisecond
	for _, tc := range []struct {
		how              Spent
		rates, pair      bool // still booked after the give-back
		inTier, capMarks bool
	}{
		{Unsent, false, false, false, false},
		{Waited, true, false, false, false},
		{Late, true, false, true, true},
		{Turned, true, true, false, false},
	} {
		b := setup(t)
		s := NewSends(b.lim, cfg)
		ctx := context.Background()
		// Another person's send first: the shared limits then hold two slots, so a permit
		// given back twice would show.
		other := in
		other.Recipient = "+15550009999"
		if _, err := s.Reserve(ctx, other, t0); err != nil {
			t.Fatal(err)
		}
		bk, err := s.Reserve(ctx, in, t0)
		if err != nil || !bk.OK || !bk.TierAdded || !bk.CapAdded {
			t.Fatalf("%d: reserve %+v, %v", tc.how, bk.Reservation, err)
		}
		if got := tat(t, b, rkeys.PairLimit(biz, sender, to)); got != pairSlot {
			t.Fatalf("pair slot booked %v ahead, want the interval and its margin %v", got, pairSlot)
		}
		if err := bk.GiveBack(ctx, tc.how); err != nil {
			t.Fatal(err)
		}
		// A second give-back the same way gives nothing twice.
		if err := bk.GiveBack(ctx, tc.how); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{rkeys.SenderLimit(biz, sender), rkeys.BusinessLimit(biz), rkeys.RunLimit(biz, run)} {
			want := slot // the other send's slot only
			if tc.rates {
				want = 2 * slot
			}
			if got := tat(t, b, k); got != want {
				t.Errorf("%d: %s booked up to %v, want %v", tc.how, k, got, want)
			}
		}
		if got := b.mr.Exists(rkeys.PairLimit(biz, sender, to)); got != tc.pair {
			t.Errorf("%d: pair slot booked %t, want %t", tc.how, got, tc.pair)
		}
		_, err = b.rdb.ZScore(ctx, rkeys.Tier(biz), to).Result()
		if inTier := err == nil; inTier != tc.inTier {
			t.Errorf("%d: in the tier %t, want %t", tc.how, inTier, tc.inTier)
		}
		capKey := s.Request(in, t0).Cap.Key
		v, _ := b.rdb.HGet(ctx, capKey, to).Result()
		if marked := v != ""; marked != tc.capMarks {
			t.Errorf("%d: cap mark %q, want marked %t", tc.how, v, tc.capMarks)
		}
	}
}

// TestAdoptPassesRoomOn: a late booking's room in the tier goes back with the fresh booking
// that adopted it.
func TestAdoptPassesRoomOn(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	s := NewSends(b.lim, Config{BusinessID: "biz", DailyTier: 10, PairInterval: -1, Adaptive: Policy{Period: -1}})
	in := Intention{Run: "r", Recipient: "+15550003333"}
	old, err := s.Reserve(ctx, in, t0)
	if err != nil || !old.TierAdded {
		t.Fatalf("%+v %v", old.Reservation, err)
	}
	if err := old.GiveBack(ctx, Late); err != nil {
		t.Fatal(err)
	}
	fresh, err := s.ReserveRequest(ctx, old.Request())
	if err != nil || fresh.TierAdded {
		t.Fatalf("fresh %+v %v: the person is in the tier already", fresh.Reservation, err)
	}
	fresh.Adopt(old)
	if err := old.GiveBack(ctx, Turned); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.rdb.ZCard(ctx, rkeys.Tier("biz")).Result(); n != 1 {
		t.Fatalf("the adopted room went back with the old booking")
	}
	if err := fresh.GiveBack(ctx, Turned); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.rdb.ZCard(ctx, rkeys.Tier("biz")).Result(); n != 0 {
		t.Fatalf("tier holds %d after the fresh booking gave its adopted room back", n)
	}
}
