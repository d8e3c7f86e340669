package limits

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// TestStatusByName: the status methods, named by business, sender, category and recipients
// as an Intention is, read what Sends' reservations wrote: the business's and each sender's
// use, the daily tier, who is in it, who is at the frequency cap, and which senders have
// state.
func TestStatusByName(t *testing.T) {
	const biz, number = "biz{1}", "+15550001111"
	b := setup(t)
	ctx := context.Background()
	cfg := Config{BusinessID: biz, DefaultSenderRate: 1000, BusinessRate: 1000, PairInterval: -1, DailyTier: 5,
		TierPeriod: time.Hour, FrequencyCaps: map[string]FrequencyCap{
			"marketing": {Max: 2, Period: time.Hour}, "utility": {Max: 1, Period: time.Hour}}}
	s := NewSends(b.lim, cfg)
	reserve := func(in Intention, at time.Time) {
		t.Helper()
		req := s.Request(in, at)
		bk, err := s.ReserveRequest(ctx, req)
		if err != nil || !bk.OK {
			t.Fatalf("reserve %+v: %+v, %v", in, bk, err)
		}
	}
	// Second t0: three marketing sends (the default category) from number, one utility send
	// from the default sender; ann gets two marketing messages, from two runs.
	reserve(Intention{Sender: number, Run: "r1", Recipient: "+1555000ann"}, t0)
	reserve(Intention{Sender: number, Run: "r2", Recipient: "+1555000ann"}, t0)
	reserve(Intention{Sender: number, Run: "r2", Recipient: "+1555000bob"}, t0)
	reserve(Intention{Run: "r3", Recipient: "+1555000cid", Category: "utility"}, t0)
	now := t0.Add(time.Second)

	if u, err := b.lim.BusinessUse(ctx, biz, 1, now); err != nil || u != 4 {
		t.Errorf("BusinessUse = %v, %v; want 4/s", u, err)
	}
	if u, err := b.lim.SenderUse(ctx, biz, number, 2, now); err != nil || u != 1.5 {
		t.Errorf("SenderUse(%s) = %v, %v; want 3 sends over 2 s", number, u, err)
	}
	for _, sender := range []string{"", "default"} {
		if u, err := b.lim.SenderUse(ctx, biz, sender, 1, now); err != nil || u != 1 {
			t.Errorf("SenderUse(%q) = %v, %v; want the default sender's 1/s", sender, u, err)
		}
	}
	if u, err := b.lim.SenderUse(ctx, "other-biz", number, 1, now); err != nil || u != 0 {
		t.Errorf("another business's SenderUse = %v, %v; want 0", u, err)
	}
	if _, err := b.lim.SenderUse(ctx, biz, number, 11, now); err == nil {
		t.Error("SenderUse over 11 s: no error, want one (the counts live 15 s)")
	}

	tier, err := b.lim.DailyTier(ctx, biz, 5, time.Hour, now)
	if err != nil || tier.Used != 3 || tier.Remaining() != 2 || !tier.NextFree.Equal(t0.Add(time.Hour)) {
		t.Errorf("DailyTier = %+v, %v; want 3 of 5 used, room again at t0+1h", tier, err)
	}
	people := []string{"+1555000ann", "+1555000cid", "+1555000dan"}
	in, err := b.lim.InDailyTier(ctx, biz, people, time.Hour, now)
	if want := []bool{true, true, false}; err != nil || !reflect.DeepEqual(in, want) {
		t.Errorf("InDailyTier(%v) = %v, %v; want %v", people, in, err, want)
	}
	if in, err := b.lim.InDailyTier(ctx, biz, people, time.Hour, t0.Add(2*time.Hour)); err != nil || in[0] || in[1] {
		t.Errorf("InDailyTier after the window = %v, %v; want no one", in, err)
	}

	fc := cfg.FrequencyCaps["marketing"]
	capped, err := b.lim.Capped(ctx, CapCheck{Business: biz, Category: "", Cap: fc, Recipients: people, Now: now})
	if want := []bool{true, false, false}; err != nil || !reflect.DeepEqual(capped, want) {
		t.Errorf("Capped(marketing, the default) = %v, %v; want %v", capped, err, want)
	}
	if c, err := b.lim.Capped(ctx, CapCheck{Business: biz, Category: "marketing", Cap: fc, Recipients: people, Now: now}); err != nil || !reflect.DeepEqual(c, capped) {
		t.Errorf("Capped(\"marketing\") = %v, %v; want as the default category's %v", c, err, capped)
	}
	capped, err = b.lim.Capped(ctx, CapCheck{Business: biz, Category: "utility", Cap: cfg.FrequencyCaps["utility"], Recipients: people, Now: now})
	if want := []bool{false, true, false}; err != nil || !reflect.DeepEqual(capped, want) {
		t.Errorf("Capped(utility) = %v, %v; want %v", capped, err, want)
	}
	if c, err := b.lim.Capped(ctx, CapCheck{Business: biz, Category: "", Cap: FrequencyCap{}, Recipients: people, Now: now}); err != nil || !reflect.DeepEqual(c, make([]bool, 3)) {
		t.Errorf("Capped with no cap = %v, %v; want no one", c, err)
	}
	if c, err := b.lim.Capped(ctx, CapCheck{Business: biz, Category: "", Cap: fc, Recipients: people, Now: t0.Add(2 * time.Hour)}); err != nil || c[0] {
		t.Errorf("Capped after the cap's window = %v, %v; want no one", c, err)
	}

	senders, err := b.lim.Senders(ctx, biz)
	if want := []string{number, "default"}; err != nil || !reflect.DeepEqual(senders, want) {
		t.Errorf("Senders = %v, %v; want %v", senders, err, want)
	}
	if senders, err := b.lim.Senders(ctx, "other-biz"); err != nil || len(senders) != 0 {
		t.Errorf("another business's Senders = %v, %v; want none", senders, err)
	}
}

// TestStatusRedisError: a status read that Redis does not answer is an error, not an empty
// limit.
func TestStatusRedisError(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.mr.SetError("LOADING Redis is loading the dataset in memory")
	defer b.mr.SetError("")
	one := []string{"+15550001111"}
	fc := FrequencyCap{Max: 1, Period: time.Hour}
	for name, err := range map[string]error{
		"BusinessUse": second(b.lim.BusinessUse(ctx, "biz", 1, t0)),
		"SenderUse":   second(b.lim.SenderUse(ctx, "biz", "", 1, t0)),
		"DailyTier":   second(b.lim.DailyTier(ctx, "biz", 5, time.Hour, t0)),
		"InDailyTier": second(b.lim.InDailyTier(ctx, "biz", one, time.Hour, t0)),
		"Capped":      second(b.lim.Capped(ctx, CapCheck{Business: "biz", Category: "", Cap: fc, Recipients: one, Now: t0})),
		"Senders":     second(b.lim.Senders(ctx, "biz")),
	} {
		if err == nil {
			t.Errorf("%s with Redis failing: no error", name)
		}
	}
}

func second[T any](_ T, err error) error { return err }
