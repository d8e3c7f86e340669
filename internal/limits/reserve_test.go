package limits

import (
	"context"
	"testing"
	"time"
)

func reserveReq(tb testing.TB, b *testBundle, r *Request) Reservation {
	tb.Helper()
	res, err := b.lim.ReserveRequest(context.Background(), r)
	if err != nil {
		tb.Fatalf("ReserveRequest: %v", err)
	}
	return res
}

func TestTier(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	day := 24 * time.Hour
	req := func(member string, now time.Time) *Request {
		return &Request{Tier: &Tier{Key: "tier", Limit: 3, Period: day, Member: member}, Now: now}
	}
	start := t0
	for i, m := range []string{"a", "b", "c"} {
		if r := reserveReq(t, b, req(m, start.Add(time.Duration(i)*time.Hour))); !r.OK || !r.TierAdded {
			t.Fatalf("%s: %+v, want room taken", m, r)
		}
	}
	// Someone already messaged in the window takes no new room.
	if r := reserveReq(t, b, req("b", start.Add(3*time.Hour))); !r.OK || r.TierAdded {
		t.Fatalf("b again: %+v, want OK without new room", r)
	}
	// A fourth person waits until the oldest ("a", at start) leaves the window.
	now := start.Add(5 * time.Hour)
	r := reserveReq(t, b, req("d", now))
	if r.OK || r.Reason != ReasonTier || r.Wait != day-5*time.Hour {
		t.Fatalf("d: %+v, want a tier wait of %v", r, day-5*time.Hour)
	}
	use, err := b.lim.tierOf(ctx, "tier", 3, day, now)
	if err != nil {
		t.Fatal(err)
	}
	if use.Used != 3 || use.Remaining() != 0 || !use.NextFree.Equal(start.Add(day)) {
		t.Fatalf("tierOf = %+v", use)
	}
	// The window rolls: "a" leaves, "d" gets its room; "b" (last sent at +3h) still counts.
	now = start.Add(day + time.Millisecond)
	if r := reserveReq(t, b, req("d", now)); !r.OK || !r.TierAdded {
		t.Fatalf("d after the roll: %+v", r)
	}
	if r := reserveReq(t, b, req("e", now)); r.OK {
		t.Fatalf("e: %+v, want a wait (b, c, d fill the tier)", r)
	}
	// A refused tier takes nothing from the rate limits.
	lim := PerSecond(1)
	rr := &Request{Keys: []string{"rate"}, Limits: []Limit{lim}, MaxWait: time.Second,
		Tier: &Tier{Key: "tier", Limit: 3, Period: day, Member: "f"}, Now: now}
	if r := reserveReq(t, b, rr); r.OK || r.Reason != ReasonTier {
		t.Fatalf("f: %+v", r)
	}
	if n, _ := b.rdb.Exists(ctx, "rate").Result(); n != 0 {
		t.Fatal("a tier refusal wrote the rate limit")
	}
}

func TestCap(t *testing.T) {
	b := setup(t)
	week := 7 * 24 * time.Hour
	req := func(tag string, now time.Time) *Request {
		return &Request{Cap: &Cap{Key: "cap", Field: "+15550001", Max: 2, Period: week, Tag: tag}, Now: now}
	}
	if r := reserveReq(t, b, req("runA", t0)); !r.OK || !r.CapAdded {
		t.Fatalf("runA: %+v", r)
	}
	if r := reserveReq(t, b, req("runB", t0.Add(time.Hour))); !r.OK || !r.CapAdded {
		t.Fatalf("runB: %+v", r)
	}
	if r := reserveReq(t, b, req("runC", t0.Add(2*time.Hour))); r.OK || r.Reason != ReasonCapped {
		t.Fatalf("runC: %+v, want capped", r)
	}
	// A retry of a run that already holds a mark is not capped and takes no new mark.
	if r := reserveReq(t, b, req("runA", t0.Add(3*time.Hour))); !r.OK || r.CapAdded {
		t.Fatalf("runA retry: %+v", r)
	}
	// Once runB's mark (at +1h) leaves the window, runC fits.
	if r := reserveReq(t, b, req("runC", t0.Add(week+59*time.Minute))); r.OK {
		t.Fatalf("runC before runB's mark expired: %+v", r)
	}
	if r := reserveReq(t, b, req("runC", t0.Add(week+time.Hour+time.Millisecond))); !r.OK {
		t.Fatalf("runC after runB's mark expired: %+v", r)
	}
}

func TestRefundGivesTierAndCapBack(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	r := &Request{
		Keys: []string{"rate"}, Limits: []Limit{PerSecond(10)}, MaxWait: time.Second,
		Tier: &Tier{Key: "tier", Limit: 1, Period: time.Hour, Member: "x"},
		Cap:  &Cap{Key: "cap", Field: "x", Max: 1, Period: time.Hour, Tag: "run1"},
		Now:  t0,
	}
	res := reserveReq(t, b, r)
	if !res.OK || !res.TierAdded || !res.CapAdded {
		t.Fatalf("reserve: %+v", res)
	}
	if err := b.lim.refund(ctx, r, res); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.rdb.ZCard(ctx, "tier").Result(); n != 0 {
		t.Fatalf("tier holds %d after the refund", n)
	}
	if ok, _ := b.rdb.HExists(ctx, "cap", "x").Result(); ok {
		t.Fatal("cap mark left after the refund")
	}
	// Another recipient and another run fit in the room given back.
	r.Tier.Member, r.Cap.Tag = "y", "run2"
	r.Cap.Field = "x"
	if res := reserveReq(t, b, r); !res.OK {
		t.Fatalf("after refund: %+v", res)
	}
}

func TestUsage(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	r := &Request{Keys: []string{"sender"}, Limits: []Limit{{Rate: 1000, Burst: 1000}}, MaxWait: time.Second, Usage: []int{0},
		Now: t0}
	for range 30 {
		reserveReq(t, b, r)
	}
	r.Now = t0.Add(time.Second)
	for range 10 {
		reserveReq(t, b, r)
	}
	u, err := b.lim.usage(ctx, "sender", 2, t0.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if u != 20 {
		t.Fatalf("usage = %v/s, want (30+10)/2", u)
	}
	if ttl := b.mr.TTL(UsageKey("sender", t0.Unix())); ttl <= 0 || ttl > 15*time.Second {
		t.Fatalf("usage count TTL %v, want it to expire within 15 s", ttl)
	}
}

func TestBindingLimit(t *testing.T) {
	b := setup(t)
	r := &Request{Keys: []string{"off", "fast", "slow"}, Limits: []Limit{{}, {Rate: 100, Burst: 1}, {Rate: 1, Burst: 1}},
		MaxWait: 10 * time.Millisecond}
	if res := reserveReq(t, b, r); !res.OK || res.Binding != -1 {
		t.Fatalf("first: %+v, want no wait and no binding limit", res)
	}
	// The 1/s limit makes the next send wait: its index in Keys is 2.
	if res := reserveReq(t, b, r); res.OK || res.Reason != ReasonRate || res.Binding != 2 {
		t.Fatalf("second: %+v, want refused by limit 2", res)
	}
}
