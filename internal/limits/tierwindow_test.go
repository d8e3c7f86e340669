package limits

import (
	"context"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// The daily tier counts only the people messaged outside an open customer service window
// (Meta's rule); windows are recorded by servicewindow.Tracker on a simulated clock.

const twBiz = "biz"

// touchAt records an inbound message from id at at, on a tracker whose clock reads at.
func touchAt(t *testing.T, b *testBundle, id string, at time.Time) {
	t.Helper()
	tr := servicewindow.New(b.rdb, func() time.Time { return at })
	if moved, err := tr.Touch(context.Background(), twBiz, []string{id}, at); err != nil || !moved {
		t.Fatalf("touch %s: moved=%v err=%v", id, moved, err)
	}
}

func tierReq(id string, limit int, now time.Time) *Request {
	k, f := servicewindow.Locate(twBiz, id)
	return &Request{Tier: &Tier{Key: rkeys.Tier(twBiz), Limit: limit, Period: 24 * time.Hour, Member: id},
		Windows: []WindowRef{{Key: k, Field: f}}, Now: now}
}

func tierMembers(t *testing.T, b *testBundle) []string {
	t.Helper()
	ms, err := b.rdb.ZRange(context.Background(), rkeys.Tier(twBiz), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestTierSkipsOpenWindows(t *testing.T) {
	b := setup(t)
	now := t0
	open1, open2, other1, other2 := "+15550000001", "bsuid:US.13491208655302741918", "+15550000003", "+15550000004"
	touchAt(t, b, open1, now.Add(-time.Hour))
	touchAt(t, b, open2, now.Add(-23*time.Hour))
	// A tier of 2, four recipients: all four are sent, and only the two without a window count.
	for _, id := range []string{open1, other1, open2, other2} {
		r := reserveReq(t, b, tierReq(id, 2, now))
		wantOpen := id == open1 || id == open2
		if !r.OK || r.InWindow != wantOpen || r.TierAdded == wantOpen {
			t.Fatalf("%s: %+v, want OK with InWindow=%v", id, r, wantOpen)
		}
	}
	if ms := tierMembers(t, b); len(ms) != 2 || ms[0] != other1 || ms[1] != other2 {
		t.Fatalf("tier holds %v, want only the two without an open window", ms)
	}
	// The tier is full: a person with an open window is still not refused ...
	later := now.Add(30 * time.Minute)
	if r := reserveReq(t, b, tierReq(open1, 2, later)); !r.OK || r.TierAdded || !r.InWindow {
		t.Fatalf("open window, full tier: %+v, want OK without room", r)
	}
	// ... and a person without one is (the conservative side of the rule still holds).
	if r := reserveReq(t, b, tierReq("+15550000005", 2, later)); r.OK || r.Reason != ReasonTier || r.InWindow {
		t.Fatalf("no window, full tier: %+v, want a tier wait", r)
	}
	// open2's window opened 23 h before now: an hour and a second later it has closed, and the
	// full tier refuses them too.
	if r := reserveReq(t, b, tierReq(open2, 2, now.Add(time.Hour+time.Second))); r.OK || r.Reason != ReasonTier {
		t.Fatalf("closed window, full tier: %+v, want a tier wait", r)
	}
	if ms := tierMembers(t, b); len(ms) != 2 {
		t.Fatalf("tier holds %v after the refusals", ms)
	}
}

func TestTierCountsAClosedWindowAgain(t *testing.T) {
	b := setup(t)
	id := "+15550000010"
	// A window closed 25 h ago (the customer wrote 49 h ago) is no window.
	touchAt(t, b, id, t0.Add(-49*time.Hour))
	if r := reserveReq(t, b, tierReq(id, 10, t0)); !r.OK || !r.TierAdded || r.InWindow {
		t.Fatalf("closed 25 h ago: %+v, want room taken", r)
	}
	// An open window skips the tier; once it closes the person counts again.
	other := "+15550000011"
	touchAt(t, b, other, t0)
	if r := reserveReq(t, b, tierReq(other, 10, t0.Add(time.Hour))); !r.OK || r.TierAdded || !r.InWindow {
		t.Fatalf("open: %+v", r)
	}
	if r := reserveReq(t, b, tierReq(other, 10, t0.Add(25*time.Hour))); !r.OK || !r.TierAdded || r.InWindow {
		t.Fatalf("closed 1 h ago: %+v, want room taken", r)
	}
	// Exactly at the close the window is closed (open while last inbound + 24 h is after now).
	edge := "+15550000012"
	touchAt(t, b, edge, t0)
	if r := reserveReq(t, b, tierReq(edge, 10, t0.Add(servicewindow.Length-time.Millisecond))); !r.InWindow {
		t.Fatalf("a millisecond before the close: %+v, want the window open", r)
	}
	if r := reserveReq(t, b, tierReq(edge, 10, t0.Add(servicewindow.Length))); r.InWindow || !r.TierAdded {
		t.Fatalf("at the close: %+v, want room taken", r)
	}
	// With a margin, a window closing within it counts as closed: the person takes room.
	near := "+15550000013"
	touchAt(t, b, near, t0)
	req := tierReq(near, 10, t0.Add(servicewindow.Length-time.Minute))
	req.WindowMargin = 2 * time.Minute
	if r := reserveReq(t, b, req); r.InWindow || !r.TierAdded {
		t.Fatalf("a minute before the close, margin 2m: %+v, want room taken", r)
	}
	far := "+15550000014"
	touchAt(t, b, far, t0)
	req = tierReq(far, 10, t0.Add(servicewindow.Length-3*time.Minute))
	req.WindowMargin = 2 * time.Minute
	if r := reserveReq(t, b, req); !r.InWindow || r.TierAdded {
		t.Fatalf("three minutes before the close, margin 2m: %+v, want the window open", r)
	}
}

func TestTierWindowRefundKeepsEarlierRoom(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	id := "+15550000020"
	// Messaged outside a window first: the person takes room.
	if r := reserveReq(t, b, tierReq(id, 5, t0)); !r.OK || !r.TierAdded {
		t.Fatalf("first: %+v", r)
	}
	// They reply; a send into the open window takes nothing, so its refund gives nothing back.
	touchAt(t, b, id, t0.Add(time.Hour))
	req := tierReq(id, 5, t0.Add(2*time.Hour))
	res := reserveReq(t, b, req)
	if !res.OK || res.TierAdded || !res.InWindow {
		t.Fatalf("in window: %+v", res)
	}
	if err := b.lim.refund(ctx, req, res); err != nil {
		t.Fatal(err)
	}
	if ms := tierMembers(t, b); len(ms) != 1 || ms[0] != id {
		t.Fatalf("tier holds %v after the refund, want the earlier room kept", ms)
	}
	// The open-window send left the score of the earlier send alone.
	if s, _ := b.rdb.ZScore(ctx, rkeys.Tier(twBiz), id).Result(); int64(s) != t0.UnixMilli() {
		t.Fatalf("score %v, want the first send's %d", s, t0.UnixMilli())
	}
}

func TestTierWindowsWithRateLimitsAndUsage(t *testing.T) {
	// The window keys sit between the adaptive key and the usage keys, and their fields after
	// the per-limit arguments: a full request still reads every part in place.
	b := setup(t)
	ctx := context.Background()
	id := "+15550000030"
	touchAt(t, b, id, t0)
	r := tierReq(id, 1, t0)
	r.Keys = []string{"sender", "pair"}
	r.Limits = []Limit{PerSecond(1000), {Rate: 1, Burst: 1}}
	r.MaxWait = 500 * time.Millisecond
	r.Usage = []int{0}
	r.Cap = &Cap{Key: "cap", Field: id, Max: 1, Period: time.Hour, Tag: "run1"}
	r.Adaptive = &Adaptive{Key: "backoff", Index: 0}
	res := reserveReq(t, b, r)
	if !res.OK || res.TierAdded || !res.InWindow || !res.CapAdded || res.Wait != 0 {
		t.Fatalf("reserve: %+v", res)
	}
	if n, _ := b.rdb.Get(ctx, UsageKey("sender", t0.Unix())).Int(); n != 1 {
		t.Fatalf("usage = %d, want 1", n)
	}
	// The pair limit (1/s, burst 1) was taken: a second send at once waits about a second.
	r.Cap = nil
	if res := reserveReq(t, b, r); res.OK || res.Reason != ReasonRate || res.Binding != 1 {
		t.Fatalf("second: %+v, want a pair wait", res)
	}
}

// TestTierWindowRealRedis runs the tier's window check on real Redis, whose Lua differs from
// miniredis's (the recorded time is an integer field read with tonumber).
func TestTierWindowRealRedis(t *testing.T) {
	t.Parallel()
	rdb, prefix := realRedis(t)
	lim := New(rdb)
	ctx := context.Background()
	now := time.Now()
	csw, tier := prefix+"csw", prefix+"tier"
	if err := rdb.HSet(ctx, csw, "15550000001", now.Add(-time.Hour).Unix(),
		"15550000002", now.Add(-25*time.Hour).Unix()).Err(); err != nil {
		t.Fatal(err)
	}
	req := func(member, field string) *Request {
		return &Request{Keys: []string{prefix + "rate"}, Limits: []Limit{PerSecond(1000)}, MaxWait: time.Second,
			Tier:    &Tier{Key: tier, Limit: 1, Period: 24 * time.Hour, Member: member},
			Windows: []WindowRef{{Key: csw, Field: field}}, Now: now}
	}
	for _, c := range []struct {
		member, field string
		ok, added     bool
	}{
		{"+15550000003", "15550000003", true, true},   // no window: takes the tier's one place
		{"+15550000001", "15550000001", true, false},  // open window: sent, not counted
		{"+15550000002", "15550000002", false, false}, // closed 1 h ago: refused, the tier is full
	} {
		r, err := lim.ReserveRequest(ctx, req(c.member, c.field))
		if err != nil {
			t.Fatal(err)
		}
		if r.OK != c.ok || r.TierAdded != c.added || r.InWindow != (c.ok && !c.added) {
			t.Fatalf("%s: %+v, want OK=%v TierAdded=%v", c.member, r, c.ok, c.added)
		}
	}
	if ms, _ := rdb.ZRange(ctx, tier, 0, -1).Result(); len(ms) != 1 || ms[0] != "+15550000003" {
		t.Fatalf("tier holds %v", ms)
	}
	// Without a tier the window is read all the same.
	for field, open := range map[string]bool{"15550000001": true, "15550000002": false, "15550000009": false} {
		r := req("", field)
		r.Tier = nil
		res, err := lim.ReserveRequest(ctx, r)
		if err != nil || !res.OK || res.InWindow != open {
			t.Fatalf("no tier, %s: %+v %v, want InWindow=%v", field, res, err, open)
		}
	}
}

// Without a daily tier a request still reads the recipient's windows when it carries them,
// and says whether one is open, a refusal included; Sends adds them when the intention asks
// (ReadWindow), and only then.
func TestWindowWithoutTier(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	open, none := "+15550000040", "bsuid:US.13491208655302741918"
	touchAt(t, b, open, t0.Add(-time.Hour))
	s := NewSends(b.lim, Config{BusinessID: twBiz, PairInterval: -1, Adaptive: Policy{Period: -1}})
	for _, c := range []struct {
		id         string
		read, want bool
	}{
		{open, true, true},
		{none, true, false},
		{open, false, false}, // not asked: not read
	} {
		in := Intention{Run: "r", Recipient: c.id, ReadWindow: c.read}
		if req := s.Request(in, t0); len(req.Windows) > 0 != c.read || req.Tier != nil {
			t.Fatalf("%s read=%v: windows %v, tier %v", c.id, c.read, req.Windows, req.Tier)
		}
		bk, err := s.Reserve(ctx, in, t0)
		if err != nil || !bk.OK || bk.InWindow != c.want || bk.TierAdded {
			t.Fatalf("%s read=%v: %+v %v, want InWindow=%v", c.id, c.read, bk.Reservation, err, c.want)
		}
	}
	// A request of windows alone is read too, and a refused one says the window was open.
	req := &Request{Windows: s.Request(Intention{Recipient: open, ReadWindow: true}, t0).Windows, Now: t0}
	if r := reserveReq(t, b, req); !r.OK || !r.InWindow {
		t.Fatalf("windows only: %+v", r)
	}
	req.Keys, req.Limits = []string{"slow"}, []Limit{{Rate: 1, Burst: 1}}
	reserveReq(t, b, req)
	if r := reserveReq(t, b, req); r.OK || r.Reason != ReasonRate || !r.InWindow {
		t.Fatalf("refused: %+v, want a rate wait that saw the open window", r)
	}
	if b.mr.Exists(rkeys.Tier(twBiz)) {
		t.Fatal("a request without a tier wrote the tier")
	}
}
