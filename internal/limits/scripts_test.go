package limits

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/luacheck"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// scripts is every redis.NewScript variable of the package (luacheck.Files checks the list).
var scripts = []string{"reserveCmd", "refundCmd", "throttledCmd", "holdCmd"}

// TestScriptFiles pins the layout of the package's Lua: one lua/*.lua file per script, its
// contract at its top, none written as a Go string.
func TestScriptFiles(t *testing.T) {
	luacheck.Files(t, "luaLib", scripts)
}

// The script cases run on miniredis and on real Redis alike, so they hold no Redis clock: the
// tier, the cap and the adaptive factor run on the request's clock (caseNow), and the rate
// limits are checked where the clock cannot matter (no wait, or a wait far from another).

// caseNow is the tier's, the cap's and the controller's clock in the script cases.
var caseNow = time.UnixMilli(1767258000500)

// caseKeys are the keys of one script case: business id is the case's id.
type caseKeys struct{ rate, tier, cap, adaptive string }

func keysOf(id string) caseKeys {
	return caseKeys{rate: rkeys.SenderLimit(id, "s1"), tier: rkeys.Tier(id), cap: rkeys.Cap(id, "marketing", 0),
		adaptive: rkeys.SenderBackoff(id, "s1")}
}

// tierCapRequest reserves one permit of limit plus room in a tier of tierMax and a mark
// under a cap of capMax, for recipient n (+1555000000n) in run tag.
func (k caseKeys) tierCapRequest(limit Limit, tierMax, capMax, n int, tag string) *Request {
	member := fmt.Sprintf("+1555000000%d", n)
	return &Request{Keys: []string{k.rate}, Limits: []Limit{limit}, MaxWait: time.Hour, Now: caseNow,
		Tier: &Tier{Key: k.tier, Limit: tierMax, Period: 24 * time.Hour, Member: member},
		Cap:  &Cap{Key: k.cap, Field: member[1:], Max: capMax, Period: 24 * time.Hour, Tag: tag}}
}

// reserveWant is what a reservation must answer.
type reserveWant struct {
	ok                  bool
	reason              string
	tierAdded, capAdded bool
}

func reserveAs(ctx context.Context, lim *Limiter, r *Request, want reserveWant) (Reservation, error) {
	res, err := lim.ReserveRequest(ctx, r)
	if err != nil {
		return res, err
	}
	if res.OK != want.ok || res.Reason != want.reason || res.TierAdded != want.tierAdded || res.CapAdded != want.capAdded {
		return res, fmt.Errorf("%s in %s: %+v, want %+v", r.Tier.Member, r.Cap.Tag, res, want)
	}
	return res, nil
}

// wantString returns an error unless key holds want (or, with want "", does not exist).
func wantString(ctx context.Context, rdb redis.UniversalClient, key, want string) error {
	got, err := rdb.Get(ctx, key).Result()
	if err == redis.Nil {
		got, err = "", nil
	}
	if err != nil || got != want {
		return fmt.Errorf("%s = %q (%v), want %q", key, got, err, want)
	}
	return nil
}

// wantTTL returns an error unless key expires within (lo, hi].
func wantTTL(ctx context.Context, rdb redis.UniversalClient, key string, lo, hi time.Duration) error {
	d, err := rdb.PTTL(ctx, key).Result()
	if err != nil || d <= lo || d > hi {
		return fmt.Errorf("%s expires in %v (%v), want in (%v, %v]", key, d, err, lo, hi)
	}
	return nil
}

// wantFree checks that the case's rate limit, tier and first recipient's cap field hold
// nothing: every reservation of the case was given back.
func (k caseKeys) wantFree(ctx context.Context, rdb redis.UniversalClient) error {
	return errors.Join(wantString(ctx, rdb, k.rate, ""), wantTier(ctx, rdb, k.tier),
		wantCap(ctx, rdb, k.cap, "15550000001", ""))
}

func wantTier(ctx context.Context, rdb redis.UniversalClient, key string, members ...string) error {
	got, err := rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
	ok := err == nil && len(got) == len(members)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Member == members[i] && int64(got[i].Score) == caseNow.UnixMilli()
	}
	if !ok {
		return fmt.Errorf("tier %v (%v), want %v at %d", got, err, members, caseNow.UnixMilli())
	}
	return nil
}

func wantCap(ctx context.Context, rdb redis.UniversalClient, key, field, want string) error {
	got, err := rdb.HGet(ctx, key, field).Result()
	if err == redis.Nil {
		got, err = "", nil
	}
	if err != nil || got != want {
		return fmt.Errorf("cap %s = %q (%v), want %q", field, got, err, want)
	}
	return nil
}

// wantFields returns an error unless the hash at key has exactly the fields want.
func wantFields(ctx context.Context, rdb redis.UniversalClient, key string, want ...string) error {
	got, err := rdb.HKeys(ctx, key).Result()
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if err != nil || !slices.Equal(got, want) {
		return fmt.Errorf("%s has fields %v (%v), want %v", key, got, err, want)
	}
	return nil
}

// mark is a run's mark in a cap field at caseNow.
func mark(tag string) string { return fmt.Sprintf("%s:%d", tag, caseNow.UnixMilli()) }

var scriptCases = []luacheck.Case{
	{Script: "reserveCmd", Name: "cap tier and rate all or nothing", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		lim, k := New(rdb), keysOf(id)
		fast := PerSecond(1000)
		res, err := reserveAs(ctx, lim, k.tierCapRequest(fast, 1, 1, 1, "run-a"), reserveWant{true, "", true, true})
		if err != nil {
			return err
		}
		if res.Wait != 0 || res.Factor != 1 || res.Binding != -1 || res.InWindow {
			return fmt.Errorf("first: %+v, want no wait, factor 1, no binding limit", res)
		}
		// A retry of the same run finds its own mark and its place in the tier.
		if _, err := reserveAs(ctx, lim, k.tierCapRequest(fast, 1, 1, 1, "run-a"), reserveWant{true, "", false, false}); err != nil {
			return err
		}
		tat, err := rdb.Get(ctx, k.rate).Result()
		if err != nil {
			return err
		}
		// Another run to the same recipient is capped; another recipient finds the tier full
		// until the first leaves it, 24 h on. Neither writes anything.
		if _, err := reserveAs(ctx, lim, k.tierCapRequest(fast, 1, 1, 1, "run-b"), reserveWant{false, ReasonCapped, false, false}); err != nil {
			return err
		}
		res, err = reserveAs(ctx, lim, k.tierCapRequest(fast, 1, 1, 2, "run-a"), reserveWant{false, ReasonTier, false, false})
		if err != nil {
			return err
		}
		if res.Wait != 24*time.Hour {
			return fmt.Errorf("tier refusal waits %v, want 24h", res.Wait)
		}
		for _, err := range []error{
			wantString(ctx, rdb, k.rate, tat),
			wantTier(ctx, rdb, k.tier, "+15550000001"),
			wantCap(ctx, rdb, k.cap, "15550000001", mark("run-a")),
			wantCap(ctx, rdb, k.cap, "15550000002", ""),
			wantTTL(ctx, rdb, k.tier, 24*time.Hour, 24*time.Hour+time.Minute),
			wantTTL(ctx, rdb, k.cap, 24*time.Hour, 24*time.Hour+time.Minute),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	}},
	{Script: "reserveCmd", Name: "adaptive factor and usage", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		lim, k := New(rdb), keysOf(id)
		if err := rdb.HSet(ctx, k.adaptive, "f", "0.5", "at", caseNow.UnixMilli()).Err(); err != nil {
			return err
		}
		req := func(now time.Time) *Request {
			return &Request{Keys: []string{k.rate}, Limits: []Limit{{Rate: 10, Burst: 1}}, MaxWait: time.Hour,
				Adaptive: &Adaptive{Key: k.adaptive, Index: 0}, Usage: []int{0}, Now: now}
		}
		first, err := lim.ReserveRequest(ctx, req(caseNow))
		if err != nil || !first.OK || first.Wait != 0 || first.Factor != 0.5 {
			return fmt.Errorf("first: %+v (%v), want OK now at factor 0.5", first, err)
		}
		// At half its rate the limit's 100 ms interval is 200 ms: the next permit waits that
		// long, less the little time the first call took.
		second, err := lim.ReserveRequest(ctx, req(caseNow))
		if err != nil || !second.OK || second.Factor != 0.5 || second.Binding != 0 ||
			second.Wait <= 150*time.Millisecond || second.Wait > 200*time.Millisecond {
			return fmt.Errorf("second: %+v (%v), want a wait of about 200ms set by the limit", second, err)
		}
		// 10 s after recovery starts the factor has climbed 10 steps of 0.01.
		later, err := lim.ReserveRequest(ctx, req(caseNow.Add(10*time.Second)))
		if err != nil || !later.OK || later.Factor != 0.6 {
			return fmt.Errorf("10 s later: %+v (%v), want factor 0.6", later, err)
		}
		// Each reservation is counted in the second of its own Now.
		use := UsageKey(k.rate, caseNow.Unix())
		if err := wantString(ctx, rdb, use, "2"); err != nil {
			return err
		}
		if err := wantString(ctx, rdb, UsageKey(k.rate, caseNow.Add(10*time.Second).Unix()), "1"); err != nil {
			return err
		}
		return wantTTL(ctx, rdb, use, 0, 15*time.Second)
	}},
	{Script: "reserveCmd", Name: "same token answers once", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		lim, k := New(rdb), keysOf(id)
		r := k.tierCapRequest(Limit{Rate: 1, Burst: 1}, 2, 2, 1, "run-a")
		r.Usage = []int{0}
		use := UsageKey(k.rate, caseNow.Unix())
		first, err := lim.reserve(ctx, r, "tok-1")
		if err != nil || !first.OK || first.Wait != 0 || !first.TierAdded || !first.CapAdded {
			return fmt.Errorf("first: %+v (%v), want OK at once with new room in the tier and the cap", first, err)
		}
		tat, err := rdb.Get(ctx, k.rate).Result()
		if err != nil {
			return err
		}
		// The same token again (go-redis sent the command a second time): the first run's
		// answer, and nothing more taken.
		// Its wait is to the same slot, which has come: 0, or on real Redis's running clock
		// the little time since, negative.
		again, err := lim.reserve(ctx, r, "tok-1")
		wait := again.Wait
		again.Wait = first.Wait
		if err != nil || again != first || wait > 0 || wait < -time.Second {
			return fmt.Errorf("same token again: %+v, wait %v (%v), want the first answer %+v", again, wait, err, first)
		}
		memo := rkeys.Reserved(k.rate, "tok-1")
		for _, err := range []error{
			wantString(ctx, rdb, k.rate, tat),
			wantString(ctx, rdb, use, "1"),
			wantTier(ctx, rdb, k.tier, "+15550000001"),
			wantCap(ctx, rdb, k.cap, "15550000001", mark("run-a")),
			wantTTL(ctx, rdb, memo, MemoTTL-5*time.Second, MemoTTL),
		} {
			if err != nil {
				return err
			}
		}
		// Another token is another reservation: a second permit (a second's wait at 1/s) and a
		// second use; the tier and the cap hold the recipient and the run already.
		other, err := lim.reserve(ctx, r, "tok-2")
		if err != nil || !other.OK || other.TierAdded || other.CapAdded || other.Binding != 0 ||
			other.Wait <= 900*time.Millisecond || other.Wait > time.Second {
			return fmt.Errorf("another token: %+v (%v), want OK after about a second, no new room", other, err)
		}
		tat2, err := rdb.Get(ctx, k.rate).Result()
		if err != nil || tat2 == tat {
			return fmt.Errorf("another token left the limit at %s (%v)", tat2, err)
		}
		// Its second run answers its own slot: the wait to it, no longer than the first.
		otherAgain, err := lim.reserve(ctx, r, "tok-2")
		if err != nil || !otherAgain.OK || otherAgain.Binding != 0 || otherAgain.Wait <= 800*time.Millisecond || otherAgain.Wait > other.Wait {
			return fmt.Errorf("another token again: %+v (%v), want the slot of %+v", otherAgain, err, other)
		}
		if err := wantString(ctx, rdb, k.rate, tat2); err != nil {
			return err
		}
		return wantString(ctx, rdb, use, "2")
	}},
	{Script: "reserveCmd", Name: "same token after give-back books nothing", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		lim, k := New(rdb), keysOf(id)
		r := k.tierCapRequest(Limit{Rate: 1, Burst: 1}, 1, 1, 1, "run-a")
		res, err := lim.reserve(ctx, r, "tok-1")
		if err != nil || !res.OK || !res.TierAdded || !res.CapAdded {
			return fmt.Errorf("reserve: %+v (%v), want OK with new room", res, err)
		}
		if err := lim.refund(ctx, r, res); err != nil {
			return err
		}
		// A run of the same reservation coming after its give-back (its command held up on
		// the way while the one sent again was answered and given back) takes nothing, and
		// says so.
		again, err := lim.reserve(ctx, r, "tok-1")
		if err != nil || again.OK || again.Reason != ReasonGivenBack || again.TierAdded || again.CapAdded || again.Wait != 0 {
			return fmt.Errorf("same token after the give-back: %+v (%v), want refused %q", again, err, ReasonGivenBack)
		}
		if err := k.wantFree(ctx, rdb); err != nil {
			return err
		}
		// A new token books the room again.
		_, err = reserveAs(ctx, lim, r, reserveWant{true, "", true, true})
		return err
	}},
	{Script: "refundCmd", Name: "gives back permits room and marks", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		lim, k := New(rdb), keysOf(id)
		slow := Limit{Rate: 1, Burst: 1}
		a := k.tierCapRequest(slow, 2, 2, 1, "run-a")
		if _, err := reserveAs(ctx, lim, a, reserveWant{true, "", true, true}); err != nil {
			return err
		}
		b := k.tierCapRequest(slow, 2, 2, 1, "run-b")
		resB, err := reserveAs(ctx, lim, b, reserveWant{true, "", false, true})
		if err != nil {
			return err
		}
		if resB.Wait <= 900*time.Millisecond {
			return fmt.Errorf("second permit of 1/s waits %v, want about 1s", resB.Wait)
		}
		// Run b's refund takes its mark and its permit back; the tier place is run a's.
		if err := lim.refund(ctx, b, resB); err != nil {
			return err
		}
		if err := wantTier(ctx, rdb, k.tier, "+15550000001"); err != nil {
			return err
		}
		if err := wantCap(ctx, rdb, k.cap, "15550000001", mark("run-a")); err != nil {
			return err
		}
		// Run a's, straight through the script: its permit (the limit's last: the key goes),
		// a limit that holds nothing, its place in the tier and its mark.
		n, err := refundCmd.Run(ctx, rdb, []string{k.rate, k.rate + ":none", k.tier, k.cap},
			2, a.Tier.Member, a.Cap.Field, a.Cap.Tag, a.Now.UnixMilli(), 0, 1000000, 1000000, 0, 0).Int()
		if err != nil || n != 1 {
			return fmt.Errorf("refund of run a: %d (%v), want 1 limit refunded", n, err)
		}
		if err := k.wantFree(ctx, rdb); err != nil {
			return err
		}
		// Everything is free again: a new reservation neither waits nor is refused.
		res, err := reserveAs(ctx, lim, k.tierCapRequest(slow, 1, 1, 2, "run-c"), reserveWant{true, "", true, true})
		if err == nil && res.Wait != 0 {
			err = fmt.Errorf("after the refunds: waits %v", res.Wait)
		}
		return err
	}},
	{Script: "refundCmd", Name: "pair slot goes back only while no later booking holds it", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		// Pair slots 1 s apart, waits up to an hour: a, b and c book one person's next slots.
		s := NewSends(New(rdb), Config{BusinessID: id, BusinessRate: -1, PairInterval: time.Second, PairMargin: -1,
			MaxWait: time.Hour, Adaptive: Policy{Period: -1}})
		in := Intention{Sender: "s1", Run: "r", Recipient: "+15550000001"}
		pairKey := rkeys.PairLimit(id, "s1", in.Recipient)
		book := func(name string, lo, hi time.Duration) (*Booking, error) {
			b, err := s.Reserve(ctx, in, caseNow)
			if err != nil || !b.OK || b.Wait <= lo || b.Wait > hi {
				return nil, fmt.Errorf("%s: %+v (%v), want a wait in (%v, %v]", name, b.Reservation, err, lo, hi)
			}
			return b, nil
		}
		a, err := book("a", -time.Second, 0)
		if err != nil {
			return err
		}
		if _, err := book("b", 900*time.Millisecond, time.Second); err != nil {
			return err
		}
		held, err := rdb.Get(ctx, pairKey).Int64()
		if err != nil {
			return err
		}
		// a comes to its slot too late and gives its pair slot back: b already holds the next
		// one, so moving the time back would give b's slot to the next booking too (two
		// messages to the person at once). a's slot is lost instead.
		if err := a.GiveBack(ctx, Late); err != nil {
			return err
		}
		if err := wantString(ctx, rdb, pairKey, fmt.Sprint(held)); err != nil {
			return fmt.Errorf("after a's give-back under b: %w", err)
		}
		c, err := book("c", 1900*time.Millisecond, 2*time.Second)
		if err != nil {
			return err
		}
		// c, the last booking, gives back: its slot is free for the next.
		if err := c.GiveBack(ctx, Late); err != nil {
			return err
		}
		if err := wantString(ctx, rdb, pairKey, fmt.Sprint(held)); err != nil {
			return fmt.Errorf("after c's give-back: %w", err)
		}
		_, err = book("d", 1800*time.Millisecond, 2*time.Second)
		return err
	}},
	{Script: "refundCmd", Name: "keeps a tier member a later send moved", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		lim, k := New(rdb), keysOf(id)
		a := k.tierCapRequest(Limit{}, 2, 0, 1, "run-a")
		a.Cap = nil
		resA, err := reserveAs(ctx, lim, a, reserveWant{true, "", true, false})
		if err != nil {
			return err
		}
		// Run b sends to the same person 1.5 s later: no new room, the member's time moves.
		b := k.tierCapRequest(Limit{}, 2, 0, 1, "run-b")
		b.Cap, b.Now = nil, caseNow.Add(1500*time.Millisecond)
		if _, err := reserveAs(ctx, lim, b, reserveWant{true, "", false, false}); err != nil {
			return err
		}
		// Run a's request is turned away: the person stays, b's message counts.
		if err := lim.refund(ctx, a, resA); err != nil {
			return err
		}
		if sc, err := rdb.ZScore(ctx, k.tier, "+15550000001").Result(); err != nil || int64(sc) != b.Now.UnixMilli() {
			return fmt.Errorf("after run a's give-back: the member's time %v (%v), want run b's %d", sc, err, b.Now.UnixMilli())
		}
		// Given back at the time the member holds, it goes.
		if err := refundCmd.Run(ctx, rdb, []string{k.tier}, 0, a.Tier.Member, "", "", b.Now.UnixMilli(), 0).Err(); err != nil {
			return err
		}
		return wantTier(ctx, rdb, k.tier)
	}},
	{Script: "refundCmd", Name: "gives back once under the memo", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		lim, k := New(rdb), keysOf(id)
		slow := Limit{Rate: 1, Burst: 1}
		ra, rb := k.tierCapRequest(slow, 2, 2, 1, "run-a"), k.tierCapRequest(slow, 2, 2, 2, "run-a")
		a, err := lim.reserve(ctx, ra, "tok-a")
		if err != nil || !a.OK {
			return fmt.Errorf("a: %+v (%v)", a, err)
		}
		b, err := lim.reserve(ctx, rb, "tok-b")
		if err != nil || !b.OK || !b.TierAdded || !b.CapAdded {
			return fmt.Errorf("b: %+v (%v), want OK with new room", b, err)
		}
		tat, err := rdb.Get(ctx, k.rate).Int64()
		if err != nil {
			return err
		}
		// b's give-back sent twice: its permit (1 s at 1/s), its room and its mark go back once.
		for range 2 {
			if err := lim.refund(ctx, rb, b); err != nil {
				return err
			}
		}
		memoB := rkeys.Reserved(k.rate, "tok-b")
		for _, err := range []error{
			wantString(ctx, rdb, k.rate, fmt.Sprint(tat-1000000)),
			wantTier(ctx, rdb, k.tier, "+15550000001"),
			wantCap(ctx, rdb, k.cap, "15550000002", ""),
			wantFields(ctx, rdb, memoB, "r", "g:"+k.rate, "g:tier", "g:cap"),
			wantTTL(ctx, rdb, memoB, MemoTTL-5*time.Second, MemoTTL),
		} {
			if err != nil {
				return err
			}
		}
		// a gives back in two steps (its room, then its permit): both go back, each once.
		room := &Request{Keys: ra.Keys, Limits: []Limit{{}}, Tier: ra.Tier, Cap: ra.Cap, Now: ra.Now}
		permit := &Request{Keys: ra.Keys, Limits: ra.Limits, Now: ra.Now}
		onlyPermit := a
		onlyPermit.TierAdded, onlyPermit.CapAdded = false, false
		for _, step := range []struct {
			r   *Request
			res Reservation
		}{{room, a}, {permit, onlyPermit}, {room, a}, {permit, onlyPermit}} {
			if err := lim.refund(ctx, step.r, step.res); err != nil {
				return err
			}
		}
		if err := k.wantFree(ctx, rdb); err != nil {
			return err
		}
		// A give-back under a token whose reservation wrote no memo (it was refused, and gives
		// back room adopted from another) writes one, so a late run of it books nothing.
		memoC := rkeys.Reserved(k.rate, "tok-c")
		if err := refundCmd.Run(ctx, rdb, []string{k.tier, memoC}, 0, "+15550000003", "", "", caseNow.UnixMilli(),
			MemoTTL.Milliseconds()).Err(); err != nil {
			return err
		}
		if err := wantFields(ctx, rdb, memoC, "g:tier"); err != nil {
			return err
		}
		if err := wantTTL(ctx, rdb, memoC, MemoTTL-5*time.Second, MemoTTL); err != nil {
			return err
		}
		c, err := lim.reserve(ctx, k.tierCapRequest(slow, 2, 2, 3, "run-a"), "tok-c")
		if err != nil || c.OK || c.Reason != ReasonGivenBack {
			return fmt.Errorf("a late run of c: %+v (%v), want refused %q", c, err, ReasonGivenBack)
		}
		return wantTier(ctx, rdb, k.tier)
	}},
	{Script: "throttledCmd", Name: "decrease hold recover", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		lim := New(rdb)
		c := SenderControl(id, "s1", 100, DefaultPolicy())
		// Half of the last 3 s's reservations were throttled: over the threshold, the factor
		// drops to what got through in the latest second (50 of the 100 the rate allows).
		seedCounts(ctx, rdb, c, caseNow, 100, 50)
		th, err := lim.Throttled(ctx, c, caseNow)
		if err != nil || !th.Decreased || th.Factor != 0.5 || th.Share != 0.5 {
			return fmt.Errorf("first throttle: %+v (%v), want a decrease to 0.5 on a share of 0.5", th, err)
		}
		ms := caseNow.UnixMilli()
		st, err := rdb.HGetAll(ctx, c.Key()).Result()
		if err != nil || len(st) != 4 || st["f"] != "0.5000" || st["at"] != fmt.Sprint(ms+1000) ||
			st["dec"] != fmt.Sprint(ms) || st["s"] != "0.5000" {
			return fmt.Errorf("state %v (%v), want f 0.5000, at %d, dec %d, s 0.5000", st, err, ms+1000, ms)
		}
		// It lives until the factor is back at 1: the 1 s hold, then 50 steps (+1) of 1 s.
		if err := wantTTL(ctx, rdb, c.Key(), 51*time.Second, 52*time.Second); err != nil {
			return err
		}
		// Within the hold a throttle is counted, nothing decided.
		th, err = lim.Throttled(ctx, c, caseNow.Add(200*time.Millisecond))
		if err != nil || th.Decreased || th.Factor != 0.5 || th.Share != -1 {
			return fmt.Errorf("throttle in the hold: %+v (%v), want factor 0.5 and no decision", th, err)
		}
		count := rkeys.SenderThrottled(id, "s1", caseNow.Unix())
		if err := wantString(ctx, rdb, count, "2"); err != nil {
			return err
		}
		if err := wantTTL(ctx, rdb, count, 7*time.Second, 8*time.Second); err != nil {
			return err
		}
		// 10 s after the hold, with no throttles since the decrease's second, the factor has
		// climbed 10 steps and the share decided on is 0.
		th, err = lim.Throttled(ctx, c, caseNow.Add(11*time.Second))
		if err != nil || th.Decreased || th.Factor != 0.6 || th.Share != 0 {
			return fmt.Errorf("throttle 11 s on: %+v (%v), want factor 0.6 on a share of 0", th, err)
		}
		return nil
	}},
	{Script: "throttledCmd", Name: "a decrease keeps a hold's end", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		// An hour's hold of a 200/s sender (a burst tolerance of 15 ms), then a decrease to the
		// floor, which divides the tolerance by 5: the next send still waits out the hold.
		// Redis's clock runs on real Redis: the wait is checked against the time since the hold.
		s := NewSends(New(rdb), Config{BusinessID: id, DefaultSenderRate: 200, PairInterval: -1})
		ctl := s.Control("s1")
		start := time.Now()
		if _, left, err := s.Hold(ctx, HoldSender, "s1", time.Hour); err != nil || left > time.Hour || left < time.Hour-time.Minute {
			return fmt.Errorf("hold an hour: %s (%v)", left, err)
		}
		seedCounts(ctx, rdb, ctl, caseNow, 100, 95)
		if th, err := New(rdb).Throttled(ctx, ctl, caseNow); err != nil || !th.Decreased || th.Factor != 0.2 {
			return fmt.Errorf("throttle: %+v (%v), want a decrease to 0.2", th, err)
		}
		bk, err := s.Reserve(ctx, Intention{Sender: "s1", Run: "r", Recipient: "+15550000001"}, caseNow)
		if err != nil || bk.Factor != 0.2 || bk.Wait+time.Since(start) < time.Hour {
			return fmt.Errorf("a send after the decrease: %+v (%v), want it to wait out the hour", bk.Reservation, err)
		}
		return nil
	}},
	{Script: "throttledCmd", Name: "floor and threshold", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		lim := New(rdb)
		// Under the threshold (3 of 100) nothing moves.
		calm := SenderControl(id, "calm", 100, DefaultPolicy())
		seedCounts(ctx, rdb, calm, caseNow, 100, 3)
		th, err := lim.Throttled(ctx, calm, caseNow)
		if err != nil || th.Decreased || th.Factor != 1 || th.Share != 0.03 {
			return fmt.Errorf("3%% throttled: %+v (%v), want factor 1 on a share of 0.03", th, err)
		}
		if n, err := rdb.Exists(ctx, calm.Key()).Result(); err != nil || n != 0 {
			return fmt.Errorf("a throttle under the threshold wrote the state (%d, %v)", n, err)
		}
		// 95 of 100 throttled would leave 0.05 of the rate: the floor (0.2) holds it.
		storm := SenderControl(id, "storm", 100, DefaultPolicy())
		seedCounts(ctx, rdb, storm, caseNow, 100, 95)
		th, err = lim.Throttled(ctx, storm, caseNow)
		if err != nil || !th.Decreased || th.Factor != 0.2 || th.Share != 0.95 {
			return fmt.Errorf("95%% throttled: %+v (%v), want a decrease to the floor 0.2", th, err)
		}
		return nil
	}},
	{Script: "holdCmd", Name: "holds the limit and only lengthens", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		// Redis's clock runs on real Redis: waits are checked within a minute of an hour.
		s := NewSends(New(rdb), Config{BusinessID: id, BusinessRate: 200, PairInterval: -1, Adaptive: Policy{Period: -1}})
		near := func(d, want time.Duration) bool { return d <= want && d > want-time.Minute }
		if _, left, err := s.Hold(ctx, HoldBusiness, "s1", time.Hour); err != nil || !near(left, time.Hour) {
			return fmt.Errorf("hold an hour: %s (%v)", left, err)
		}
		if _, left, err := s.Hold(ctx, HoldBusiness, "s1", time.Second); err != nil || !near(left, time.Hour) {
			return fmt.Errorf("a second's hold over an hour's: %s left (%v), want the hour kept", left, err)
		}
		bk, err := s.Reserve(ctx, Intention{Sender: "s2", Run: "r", Recipient: "+15550000001"}, caseNow)
		if err != nil || bk.OK || bk.Reason != ReasonRate || !near(bk.Wait, time.Hour) {
			return fmt.Errorf("another sender's send while held: %+v (%v), want refused for about an hour", bk.Reservation, err)
		}
		ttl, err := rdb.PTTL(ctx, rkeys.BusinessLimit(id)).Result()
		if err != nil || !near(ttl, time.Hour+2*time.Second) {
			return fmt.Errorf("the held key's TTL %s (%v), want just over an hour", ttl, err)
		}
		return nil
	}},
}

// seedCounts sets, for each whole second of c's Period before now, reserved reservations and
// throttled throttles.
func seedCounts(ctx context.Context, rdb redis.UniversalClient, c Control, now time.Time, reserved, throttled int) {
	thr, res := c.periodKeys(now.Unix(), c.Policy.withDefaults().seconds())
	for i := range thr {
		rdb.Set(ctx, thr[i], throttled, time.Minute)
		rdb.Set(ctx, res[i], reserved, time.Minute)
	}
}

// TestScriptCases plays each script's cases on miniredis, and on real Redis when
// HERALD_TEST_REDIS is set. The business id is the case's id, so its keys hold it.
func TestScriptCases(t *testing.T) {
	luacheck.RunCases(t, scripts, scriptCases)
}
