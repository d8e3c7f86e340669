package limits

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// counts sets the reservation and throttle counts of a sender's second at (as the reservation
// script and Throttled keep them).
func counts(tb testing.TB, b *testBundle, c Control, at time.Time, reserved, throttled int) {
	tb.Helper()
	ctx := context.Background()
	sec := at.Unix()
	if err := b.rdb.Set(ctx, UsageKey(rkeys.SenderLimit(c.Business, c.Sender), sec), reserved, 0).Err(); err != nil {
		tb.Fatal(err)
	}
	if err := b.rdb.Set(ctx, rkeys.SenderThrottled(c.Business, c.Sender, sec), throttled, 0).Err(); err != nil {
		tb.Fatal(err)
	}
}

func throttled(tb testing.TB, b *testBundle, c Control, now time.Time) Throttle {
	tb.Helper()
	th, err := b.lim.Throttled(context.Background(), c, now)
	if err != nil {
		tb.Fatalf("Throttled: %v", err)
	}
	return th
}

func backoffOf(tb testing.TB, b *testBundle, c Control, now time.Time) Backoff {
	tb.Helper()
	st, err := b.lim.BackoffOf(context.Background(), c, now)
	if err != nil {
		tb.Fatalf("BackoffOf: %v", err)
	}
	return st
}

func TestAdaptive(t *testing.T) {
	b := setup(t)
	p := Policy{Min: 0.1, Period: 2 * time.Second, Threshold: 0.05, Every: 10 * time.Second, Step: 0.25}
	c := SenderControl("biz", "+14155550100", 100, p)
	now := t0
	req := func() *Request {
		return &Request{Keys: []string{rkeys.SenderLimit(c.Business, c.Sender)}, Limits: []Limit{{Rate: 100, Burst: 1}},
			MaxWait: time.Minute, Adaptive: &Adaptive{Key: c.Key(), Index: 0, Policy: p}, Now: now}
	}
	// At full rate, permits are 10 ms apart.
	reserveReq(t, b, req())
	if r := reserveReq(t, b, req()); r.Wait != 10*time.Millisecond || r.Factor != 1 {
		t.Fatalf("full rate: %+v", r)
	}

	// 9 throttled of 200 reserved over the window's two seconds (4.5%): sparse, nothing changes.
	counts(t, b, c, now.Add(-2*time.Second), 100, 4)
	counts(t, b, c, now.Add(-time.Second), 100, 5)
	if th := throttled(t, b, c, now); th.Decreased || th.Factor != 1 || th.Share != 0.045 {
		t.Fatalf("sparse throttles: %+v", th)
	}
	if st := backoffOf(t, b, c, now); st.Factor != 1 || st.Decision != DecisionHold || !st.DecidedAt.IsZero() ||
		st.Throttled != 9 || st.Reserved != 200 || st.Share != 0.045 {
		t.Fatalf("BackoffOf after sparse throttles: %+v", st)
	}
	// This second's throttle was counted too.
	if n, _ := b.rdb.Get(context.Background(), rkeys.SenderThrottled(c.Business, c.Sender, now.Unix())).Int(); n != 1 {
		t.Fatalf("this second's throttle count %d, want 1", n)
	}

	// 24 throttled of 120 (20%), the sender using 60/s of its 100/s: the factor drops to the
	// rate accepted in the latest second, 60/s × 80% = 48/s, a factor of 0.48.
	counts(t, b, c, now.Add(-2*time.Second), 60, 12)
	counts(t, b, c, now.Add(-time.Second), 60, 12)
	if th := throttled(t, b, c, now); !th.Decreased || th.Factor != 0.48 || th.Share != 0.2 {
		t.Fatalf("throttled 20%%: %+v", th)
	}
	// For a moment after a decrease (the hold: a second here) the controller makes no
	// decision, however bad.
	counts(t, b, c, now.Add(time.Second), 10, 10)
	if th := throttled(t, b, c, now.Add(999*time.Millisecond)); th.Decreased || th.Factor != 0.48 || th.Share != -1 {
		t.Fatalf("within the hold: %+v", th)
	}
	// The permit already booked (at +20 ms) stands; from there on permits are 10/0.48 ms apart.
	if r := reserveReq(t, b, req()); r.Wait != 20*time.Millisecond || r.Factor != 0.48 {
		t.Fatalf("lowered: %+v, want wait 20ms", r)
	}
	if r := reserveReq(t, b, req()); r.Wait != 20*time.Millisecond+20833*time.Microsecond {
		t.Fatalf("lowered: %+v, want permits 20.833 ms apart", r)
	}
	st := backoffOf(t, b, c, now.Add(500*time.Millisecond))
	if st.Factor != 0.48 || st.Decision != DecisionDecrease || !st.DecidedAt.Equal(now) || !st.Since.Equal(now) ||
		st.DecreaseShare != 0.2 || !st.Full.Equal(now.Add(time.Second+30*time.Second)) {
		t.Fatalf("BackoffOf in the hold = %+v", st)
	}
	// After the hold, +0.25 every 10 s.
	if st := backoffOf(t, b, c, now.Add(10*time.Second)); st.Factor != 0.48 || st.Decision != DecisionIncrease ||
		!st.DecidedAt.Equal(now.Add(time.Second)) {
		t.Fatalf("after 10s: %+v", st)
	}
	if st := backoffOf(t, b, c, now.Add(11*time.Second)); st.Factor != 0.73 || st.Decision != DecisionIncrease ||
		!st.DecidedAt.Equal(now.Add(11*time.Second)) {
		t.Fatalf("after 11s: %+v", st)
	}
	if st := backoffOf(t, b, c, now.Add(40*time.Second)); st.Factor != 1 || st.Decision != DecisionHold ||
		!st.DecidedAt.Equal(now.Add(31*time.Second)) || !st.Full.IsZero() {
		t.Fatalf("after 40s: %+v", st)
	}

	// The next decision reads only the seconds after the decrease's: the heavy second of the
	// hold counts (+1 s: 10 of 10 throttled), the decrease's own second (t0) does not.
	counts(t, b, c, now, 1000, 1000)
	if th := throttled(t, b, c, now.Add(2*time.Second)); !th.Decreased || th.Share != 1 || th.Factor != 0.1 {
		t.Fatalf("after the hold: %+v, want a decrease to the floor on the second after the decrease", th)
	}
	// A storm stops at the floor.
	for i := 2; i <= 6; i++ {
		at := now.Add(time.Duration(i) * 2 * time.Second)
		counts(t, b, c, at.Add(-time.Second), 50, 50)
		if th := throttled(t, b, c, at); th.Factor != 0.1 {
			t.Fatalf("storm %d: %+v, want the floor 0.1", i, th)
		}
	}
	if ttl := b.mr.TTL(rkeys.SenderThrottled(c.Business, c.Sender, now.Unix()+2)); ttl <= 0 || ttl > 10*time.Second {
		t.Fatalf("throttle count TTL %v, want it to expire a few seconds after the window", ttl)
	}
	if ttl := b.mr.TTL(c.Key()); ttl <= 0 {
		t.Fatalf("state TTL %v, want it to expire once recovered", ttl)
	}
}

// TestAdaptiveUnknownUse: throttles without any reservation counted for their seconds (the
// counts use another clock, or no rate is known) are all the controller knows: it decreases.
func TestAdaptiveUnknownUse(t *testing.T) {
	b := setup(t)
	c := SenderControl("biz", "s", 0, Policy{Min: 0.3})
	counts(t, b, c, t0.Add(-time.Second), 0, 3)
	if th := throttled(t, b, c, t0); !th.Decreased || th.Share != 1 || th.Factor != 0.3 {
		t.Fatalf("%+v", th)
	}
	// Without a rate, a decrease scales the factor by the share that got through.
	c = SenderControl("biz", "s2", 0, Policy{})
	counts(t, b, c, t0.Add(-time.Second), 100, 10)
	if th := throttled(t, b, c, t0); !th.Decreased || th.Factor != 0.9 {
		t.Fatalf("no rate: %+v", th)
	}
}

// TestAdaptiveClockBehind: a worker whose clock is behind the last decrease (skew, or a request
// built just before another worker's decision) sees the stored factor, never less.
func TestAdaptiveClockBehind(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	p := Policy{Min: 0.2, Every: 5 * time.Second, Step: 0.1}
	c := SenderControl("biz", "s", 10, p)
	dec := t0.Add(6 * time.Second)
	b.rdb.HSet(ctx, c.Key(), "f", "0.2", "at", strconv.FormatInt(dec.Add(p.withDefaults().hold()).UnixMilli(), 10),
		"dec", strconv.FormatInt(dec.UnixMilli(), 10))
	for _, behind := range []time.Duration{time.Millisecond, 6 * time.Second, 11 * time.Second} {
		r, err := b.lim.ReserveRequest(ctx, &Request{Keys: []string{"sender"}, Limits: []Limit{{Rate: 10, Burst: 1}},
			MaxWait: time.Hour, Adaptive: &Adaptive{Key: c.Key(), Index: 0, Policy: p}, Now: dec.Add(-behind)})
		if err != nil || r.Factor != 0.2 {
			t.Fatalf("%v behind: factor %v, err %v; want the floor 0.2", behind, r.Factor, err)
		}
		if st := backoffOf(t, b, c, dec.Add(-behind)); st.Factor != 0.2 {
			t.Fatalf("%v behind: BackoffOf %v", behind, st.Factor)
		}
		if th := throttled(t, b, c, dec.Add(-behind)); th.Factor != 0.2 || th.Decreased {
			t.Fatalf("%v behind: Throttled %+v", behind, th)
		}
	}
}

// TestAdaptiveOldState: a state written before the controller kept its decreases (factor and
// the time of the halving) still reads and recovers.
func TestAdaptiveOldState(t *testing.T) {
	b := setup(t)
	c := SenderControl("biz", "s", 10, Policy{Every: 5 * time.Second, Step: 0.1})
	b.rdb.HSet(context.Background(), c.Key(), "f", "0.5", "at", strconv.FormatInt(t0.UnixMilli(), 10))
	if st := backoffOf(t, b, c, t0.Add(10*time.Second)); st.Factor != 0.7 || st.Decision != DecisionIncrease ||
		!st.Since.Equal(t0) || !st.Full.Equal(t0.Add(25*time.Second)) {
		t.Fatalf("%+v", st)
	}
}

func TestDefaultPolicy(t *testing.T) {
	if got := (Policy{}).withDefaults(); got != DefaultPolicy() {
		t.Fatalf("zero policy = %+v, want the defaults %+v", got, DefaultPolicy())
	}
	for in, want := range map[time.Duration]time.Duration{300 * time.Millisecond: time.Second, 2400 * time.Millisecond: 2 * time.Second,
		time.Minute: MaxPeriod} {
		if got := (Policy{Period: in}).withDefaults().Period; got != want {
			t.Errorf("window %v → %v, want %v", in, got, want)
		}
	}
}

// TestReservationsCountOnTheirClock: a send's reservation counts itself in the second of its
// Request.Now, the clock the controller reads the counts on, so on a clock other than the
// process's the throttled share still sees them: 100 reservations and then one throttle a
// half second later are a share of about 1%, which leaves the rate alone.
func TestReservationsCountOnTheirClock(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	s := NewSends(b.lim, Config{BusinessID: "biz", DefaultSenderRate: 1e6, BusinessRate: -1, PairInterval: -1})
	for i := range 100 {
		bk, err := s.Reserve(ctx, Intention{Run: "run", Recipient: "+1555000" + strconv.Itoa(1000+i)}, t0)
		if err != nil || !bk.OK {
			t.Fatalf("reserve %d: %+v, %v", i, bk, err)
		}
	}
	c := s.Control("")
	throttled(t, b, c, t0.Add(500*time.Millisecond))
	if th := throttled(t, b, c, t0.Add(time.Second)); th.Decreased || th.Factor != 1 || th.Share > 0.02 {
		t.Fatalf("throttle after 100 reservations: %+v, want a share of about 1%% and no decrease", th)
	}
	if st := backoffOf(t, b, c, t0.Add(time.Second)); st.Reserved != 100 {
		t.Fatalf("backoff %+v, want the 100 reservations counted in the second before", st)
	}
}
