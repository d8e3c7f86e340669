package servicewindow

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testclock"
	"github.com/heraldmsg/herald/internal/testredis"
)

var t0 = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

const (
	biz   = "biz-1"
	phone = "+14155552671"
	bsuid = "bsuid:US.13491208655302741918"
)

type testBundle struct {
	m   *miniredis.Miniredis // nil on real Redis
	rdb redis.UniversalClient
	clk *testclock.Clock
	tr  *Tracker
	biz string
}

// at moves the tracker's clock (and miniredis's, so TTLs run with it) to t.
func (b *testBundle) at(t time.Time) {
	prev := b.clk.Now()
	b.clk.Set(t)
	if b.m != nil {
		b.m.SetTime(t)
		if !prev.IsZero() && t.After(prev) {
			b.m.FastForward(t.Sub(prev))
		}
	}
}

// setups are the Redis tiers every story runs on: miniredis always, real Redis with
// HERALD_TEST_REDIS.
var setups = map[string]func(t *testing.T) *testBundle{
	"Miniredis": func(t *testing.T) *testBundle {
		t.Helper()
		m, rdb := testredis.Mini(t)
		clk := &testclock.Clock{}
		b := &testBundle{m: m, rdb: rdb, clk: clk, tr: New(rdb, clk.Now), biz: biz}
		b.at(t0)
		return b
	},
	"RealRedis": func(t *testing.T) *testBundle {
		t.Helper()
		url := os.Getenv("HERALD_TEST_REDIS")
		if url == "" {
			t.Skip("needs a real Redis: set HERALD_TEST_REDIS=redis://127.0.0.1:6379/15 to run it")
		}
		rdb, err := redisx.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		if err := redisx.Ping(context.Background(), rdb, 2*time.Second); err != nil {
			t.Fatalf("HERALD_TEST_REDIS=%s: %v", url, err)
		}
		// A business of its own: only its buckets are written and deleted. Real Redis runs
		// its TTLs on the wall clock, so the stories' clock starts now.
		b := &testBundle{rdb: rdb, clk: &testclock.Clock{}, biz: fmt.Sprintf("test-%s-%d", t.Name(), time.Now().UnixNano())}
		b.tr = New(rdb, b.clk.Now)
		b.at(time.Now().Truncate(time.Second))
		t.Cleanup(func() {
			ctx := context.Background()
			keys, _ := rdb.Keys(ctx, rkeys.Prefix+"csw:{"+b.biz+"}:*").Result()
			if len(keys) > 0 {
				rdb.Del(ctx, keys...)
			}
			rdb.Close()
		})
		return b
	},
}

func TestTracker(t *testing.T) {
	t.Parallel()
	for tier, setup := range setups {
		t.Run(tier, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()

			t.Run("OpensAndClosesAt24h", func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				start := b.clk.Now()
				if _, open, err := b.tr.OpenFor(ctx, b.biz, "", 0, phone); err != nil || open {
					t.Fatalf("before any inbound: open %v err %v", open, err)
				}
				moved, err := b.tr.Touch(ctx, b.biz, []string{phone}, start.Add(-time.Hour))
				if err != nil || !moved {
					t.Fatalf("touch: moved %v err %v", moved, err)
				}
				closes, open, err := b.tr.OpenFor(ctx, b.biz, "", 0, phone)
				if err != nil || !open || !closes.Equal(start.Add(23*time.Hour)) {
					t.Fatalf("open %v closes %v err %v, want open until %v", open, closes, err, start.Add(23*time.Hour))
				}
				b.clk.Set(start.Add(23*time.Hour - time.Second))
				if w, _ := b.tr.Lookup(ctx, b.biz, "", phone); !w.Open {
					t.Fatal("recorded closed a second before 24 h")
				}
				b.clk.Set(start.Add(23 * time.Hour))
				w, err := b.tr.Lookup(ctx, b.biz, "", phone)
				if err != nil || w.Open || !w.ClosesAt.Equal(closes) {
					t.Fatalf("at 24 h: %+v err %v, want closed at %v", w, err, closes)
				}
			})

			// Open keeps the margin before the close (and OpenFor a wait on top of it);
			// Lookup reads the record.
			t.Run("MarginBeforeTheClose", func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				start := b.clk.Now()
				if _, err := b.tr.Touch(ctx, b.biz, []string{phone}, start.Add(-time.Hour)); err != nil {
					t.Fatal(err)
				}
				closes := start.Add(23 * time.Hour)
				b.clk.Set(closes.Add(-DefaultMargin - time.Second))
				if _, open, _ := b.tr.OpenFor(ctx, b.biz, "", 0, phone); !open {
					t.Fatal("closed a second before the margin")
				}
				if _, open, _ := b.tr.OpenFor(ctx, b.biz, "", time.Second, phone); open {
					t.Fatal("open for a send that may wait a second more, into the margin")
				}
				b.clk.Set(closes.Add(-DefaultMargin))
				if c, open, err := b.tr.OpenFor(ctx, b.biz, "", 0, phone); err != nil || open || !c.Equal(closes) {
					t.Fatalf("within the margin: open %v closes %v err %v, want closed for sending, closes %v", open, c, err, closes)
				}
				if w, _ := b.tr.Lookup(ctx, b.biz, "", phone); !w.Open {
					t.Fatal("Lookup applied the margin: the record says open")
				}
				b.tr.SetMargin(0)
				b.clk.Set(closes.Add(-time.Second))
				if _, open, _ := b.tr.OpenFor(ctx, b.biz, "", 0, phone); !open {
					t.Fatal("margin 0: closed a second before 24 h")
				}
				b.clk.Set(closes)
				if _, open, _ := b.tr.OpenFor(ctx, b.biz, "", 0, phone); open {
					t.Fatal("margin 0: open at 24 h")
				}
			})

			t.Run("NeverMovesBack", func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				now := b.clk.Now()
				if _, err := b.tr.Touch(ctx, b.biz, []string{phone}, now.Add(-time.Minute)); err != nil {
					t.Fatal(err)
				}
				moved, err := b.tr.Touch(ctx, b.biz, []string{phone}, now.Add(-3*time.Hour))
				if err != nil || moved {
					t.Fatalf("an older event: moved %v err %v, want nothing moved", moved, err)
				}
				if moved, _ := b.tr.Touch(ctx, b.biz, []string{phone}, now.Add(-time.Minute)); moved {
					t.Fatal("the same event again moved the window")
				}
				closes, _, _ := b.tr.OpenFor(ctx, b.biz, "", 0, phone)
				if want := now.Add(-time.Minute).Add(Length); !closes.Equal(want) {
					t.Fatalf("closes %v, want %v (the newest event)", closes, want)
				}
				if moved, _ := b.tr.Touch(ctx, b.biz, []string{phone}, now); !moved {
					t.Fatal("a newer event did not move the window")
				}
			})

			t.Run("PhoneAndBSUIDForms", func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				now := b.clk.Now()
				if _, err := b.tr.Touch(ctx, b.biz, []string{phone, bsuid}, now); err != nil {
					t.Fatal(err)
				}
				for _, id := range []string{phone, bsuid, "US.13491208655302741918"} {
					if _, open, err := b.tr.OpenFor(ctx, b.biz, "", 0, id); err != nil || !open {
						t.Errorf("%s: open %v err %v", id, open, err)
					}
				}
				// A phone-less customer: the BSUID alone.
				other := "bsuid:BR.99887766554433221100"
				if _, err := b.tr.Touch(ctx, b.biz, []string{other}, now.Add(-2*time.Hour)); err != nil {
					t.Fatal(err)
				}
				if closes, open, _ := b.tr.OpenFor(ctx, b.biz, "", 0, other); !open || !closes.Equal(now.Add(22*time.Hour)) {
					t.Fatalf("BSUID-only: open %v closes %v", open, closes)
				}
				// Known by both, the latest window of either wins.
				if _, err := b.tr.Touch(ctx, b.biz, []string{"+5511987654321"}, now.Add(-5*time.Hour)); err != nil {
					t.Fatal(err)
				}
				closes, open, err := b.tr.OpenFor(ctx, b.biz, "", 0, "+5511987654321", other)
				if err != nil || !open || !closes.Equal(now.Add(22*time.Hour)) {
					t.Fatalf("either id: open %v closes %v err %v", open, closes, err)
				}
			})

			t.Run("BusinessesAreSeparate", func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				if _, err := b.tr.Touch(ctx, b.biz, []string{phone}, b.clk.Now()); err != nil {
					t.Fatal(err)
				}
				if _, open, _ := b.tr.OpenFor(ctx, b.biz+"-other", "", 0, phone); open {
					t.Fatal("another business sees the window")
				}
			})

			t.Run("FutureAndMissingTimesAreNow", func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				now := b.clk.Now()
				if _, err := b.tr.Touch(ctx, b.biz, []string{phone}, now.Add(72*time.Hour)); err != nil {
					t.Fatal(err)
				}
				if closes, _, _ := b.tr.OpenFor(ctx, b.biz, "", 0, phone); !closes.Equal(now.Add(Length)) {
					t.Fatalf("a future event: closes %v, want now + 24 h", closes)
				}
				if _, err := b.tr.Touch(ctx, b.biz, []string{bsuid}, time.Time{}); err != nil {
					t.Fatal(err)
				}
				if closes, _, _ := b.tr.OpenFor(ctx, b.biz, "", 0, bsuid); !closes.Equal(now.Add(Length)) {
					t.Fatalf("no event time: closes %v, want now + 24 h", closes)
				}
			})

			t.Run("AnEventOlderThanTheWindowIsNotRecorded", func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				moved, err := b.tr.Touch(ctx, b.biz, []string{phone}, b.clk.Now().Add(-Length))
				if err != nil || moved {
					t.Fatalf("moved %v err %v", moved, err)
				}
				if n, _ := b.rdb.Exists(ctx, rkeys.ServiceWindow(b.biz, BucketOf(Field(phone)))).Result(); n != 0 {
					t.Fatal("a closed window was written")
				}
			})

			t.Run("NoIDs", func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				if _, err := b.tr.Touch(ctx, b.biz, []string{"", " "}, b.clk.Now()); !errors.Is(err, ErrNoID) {
					t.Fatalf("err %v, want ErrNoID", err)
				}
			})

			t.Run("LookupTakesTheLatestID", func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				now := b.clk.Now()
				ids := []string{"+14155550001", "+14155550002", "+14155550003"}
				for i, id := range ids[:2] {
					if _, err := b.tr.Touch(ctx, b.biz, []string{id}, now.Add(-time.Duration(i+1)*time.Hour)); err != nil {
						t.Fatal(err)
					}
				}
				w, err := b.tr.Lookup(ctx, b.biz, "", ids...)
				if err != nil || w.ID != ids[0] || !w.Open || !w.LastInbound.Equal(now.Add(-time.Hour)) {
					t.Fatalf("lookup: %+v %v, want %s's window", w, err, ids[0])
				}
				if w, err := b.tr.Lookup(ctx, b.biz, "", ids[2]); err != nil || w.Open || !w.ClosesAt.IsZero() || w.ID != "" {
					t.Fatalf("no window: %+v %v", w, err)
				}
			})
		})
	}
}

func TestLayout(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ id, field string }{
		{"+14155552671", "14155552671"},
		{"bsuid:US.13491208655302741918", "US.13491208655302741918"},
		{"US.13491208655302741918", "US.13491208655302741918"},
		{" +5511987654321 ", "5511987654321"},
		{"", ""},
	} {
		if got := Field(c.id); got != c.field {
			t.Errorf("Field(%q) = %q, want %q", c.id, got, c.field)
		}
	}
	// Keys are pinned: every process, and the daily tier's script, must find the same bucket.
	key, field := Locate("6f1c1a9e", "+14155552671")
	if want := "herald:csw:{6f1c1a9e}:" + strconv.Itoa(BucketOf("14155552671")); key != want || field != "14155552671" {
		t.Fatalf("Locate = %q %q, want %q", key, field, want)
	}
	if got := FieldTo("14155552671", NumberDigits("+16044441234")); got != "14155552671>16044441234" {
		t.Fatalf("FieldTo = %q (a change strands every window to a number for a day)", got)
	}
	for in, want := range map[string]string{"+16044441234": "16044441234", " 16044441234 ": "16044441234", "": "",
		"+1 604 444": "", "biz-1": "", "+": ""} {
		if got := NumberDigits(in); got != want {
			t.Errorf("NumberDigits(%q) = %q, want %q", in, got, want)
		}
	}
	if got := BucketOf("14155552671"); got != 12959 {
		t.Fatalf("BucketOf changed: %d (a change strands every open window for a day)", got)
	}
}

// TestRedisErrorsAreWrapped: a Redis failure reaches the caller with its cause.
func TestRedisErrorsAreWrapped(t *testing.T) {
	t.Parallel()
	// A Redis that refuses the dial. Not a closed listener's port: another test process's
	// server may take it before the dial.
	rdb := redis.NewClient(&redis.Options{Dialer: testredis.Refuse, MaxRetries: -1})
	defer rdb.Close()
	tr := New(rdb, func() time.Time { return t0 })
	var netErr net.Error
	_, err := tr.Touch(context.Background(), biz, []string{phone}, t0)
	if !errors.As(err, &netErr) {
		t.Fatalf("touch: %v, want a net.Error inside", err)
	}
	if _, _, err = tr.OpenFor(context.Background(), biz, "", 0, phone); !errors.As(err, &netErr) {
		t.Fatalf("open: %v, want a net.Error inside", err)
	}
}

// Two business numbers: a customer who wrote to one is in a window for a send from it, and
// from no other.
const (
	numberA = "+16044441234"
	numberB = "+16044445678"
)

func TestWindowsPerNumber(t *testing.T) {
	t.Parallel()
	two := Policy{Senders: []string{numberA, numberB}}
	for tier, setup := range setups {
		t.Run(tier, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()

			t.Run("OnlyTheNumberWrittenTo", func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				b.tr.SetPolicy(two)
				now := b.clk.Now()
				if _, err := b.tr.TouchTo(ctx, b.biz, numberA, []string{phone, bsuid}, now.Add(-time.Hour)); err != nil {
					t.Fatal(err)
				}
				for _, id := range []string{phone, bsuid} {
					if closes, open, err := b.tr.OpenFor(ctx, b.biz, numberA, 0, id); err != nil || !open || !closes.Equal(now.Add(23*time.Hour)) {
						t.Errorf("%s from A: open %v closes %v err %v, want open", id, open, closes, err)
					}
					if _, open, err := b.tr.OpenFor(ctx, b.biz, numberB, 0, id); err != nil || open {
						t.Errorf("%s from B: open %v err %v, want closed (the customer wrote to A)", id, open, err)
					}
				}
				// A send that names no number, with two configured, is in no window.
				if _, open, _ := b.tr.OpenFor(ctx, b.biz, "", 0, phone); open {
					t.Error("a send naming no number counted A's window")
				}
				// The number's form does not matter: digits without '+' are the same number.
				if _, open, _ := b.tr.OpenFor(ctx, b.biz, "16044441234", 0, phone); !open {
					t.Error("A without its '+' is another number")
				}
				// Writing to B later opens B's window and leaves A's as it was.
				if _, err := b.tr.TouchTo(ctx, b.biz, numberB, []string{phone}, now); err != nil {
					t.Fatal(err)
				}
				if w, _ := b.tr.Lookup(ctx, b.biz, numberB, phone); !w.Open || w.To != numberB || !w.LastInbound.Equal(now) {
					t.Errorf("from B: %+v, want B's window of now", w)
				}
				if w, _ := b.tr.Lookup(ctx, b.biz, numberA, phone); w.To != numberA || !w.LastInbound.Equal(now.Add(-time.Hour)) {
					t.Errorf("from A: %+v, want A's window of an hour ago", w)
				}
				r, err := b.tr.Record(ctx, b.biz, []string{phone, bsuid})
				if err != nil || len(r.Numbers) != 2 || r.Numbers[0].To != numberA || r.Numbers[1].To != numberB ||
					!r.Numbers[1].LastInbound.Equal(now) || !r.Unnamed.ClosesAt.IsZero() {
					t.Fatalf("record %+v err %v, want A's and B's windows and none without a number", r, err)
				}
				if l := r.Latest(); l.To != numberB {
					t.Errorf("latest %+v, want B's", l)
				}
			})

			// An inbound event that names no business number: whether its window counts is
			// the Policy's one choice.
			t.Run("NoNumberNamed", func(t *testing.T) {
				t.Parallel()
				for _, c := range []struct {
					name   string
					policy Policy
					open   bool
				}{
					{"SenderScopeTwoNumbers", two, false},
					{"BusinessScopeTwoNumbers", Policy{Scope: ScopeBusiness, Senders: two.Senders}, true},
					{"OneNumber", Policy{Senders: []string{numberA}}, true},
					{"NoNumbersConfigured", Policy{}, true},
				} {
					t.Run(c.name, func(t *testing.T) {
						t.Parallel()
						b := setup(t)
						b.tr.SetPolicy(c.policy)
						if _, err := b.tr.TouchTo(ctx, b.biz, "", []string{phone}, b.clk.Now()); err != nil {
							t.Fatal(err)
						}
						sender := numberA
						if len(c.policy.Senders) == 0 {
							sender = ""
						}
						if _, open, err := b.tr.OpenFor(ctx, b.biz, sender, 0, phone); err != nil || open != c.open {
							t.Fatalf("open %v err %v, want %v", open, err, c.open)
						}
						r, err := b.tr.Record(ctx, b.biz, []string{phone})
						if err != nil || !r.Unnamed.Open || len(r.Numbers) != 0 {
							t.Fatalf("record %+v err %v, want the window without a number", r, err)
						}
						if got := r.For(c.policy, sender); got.Open != c.open {
							t.Fatalf("Record.For %+v, want open %v as Lookup", got, c.open)
						}
					})
				}
			})

			// A window Herald recorded before it told numbers apart is a field with no number
			// (the customer's alone): it reads as a window to no known number, per the Policy.
			t.Run("OldRecordsReadPerPolicy", func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				at := b.clk.Now().Add(-time.Hour)
				key, field := Locate(b.biz, phone)
				if err := b.rdb.HSet(ctx, key, field, at.Unix()).Err(); err != nil {
					t.Fatal(err)
				}
				b.tr.SetPolicy(two)
				if _, open, _ := b.tr.OpenFor(ctx, b.biz, numberA, 0, phone); open {
					t.Error("sender scope, two numbers: an old window counted")
				}
				b.tr.SetPolicy(Policy{Scope: ScopeBusiness, Senders: two.Senders})
				if closes, open, _ := b.tr.OpenFor(ctx, b.biz, numberB, 0, phone); !open || !closes.Equal(at.Add(Length)) {
					t.Errorf("business scope: open %v closes %v, want the old window", open, closes)
				}
				b.tr.SetPolicy(Policy{Senders: []string{numberA}})
				if _, open, _ := b.tr.OpenFor(ctx, b.biz, numberA, 0, phone); !open {
					t.Error("one number: an old window did not count")
				}
			})

			// With no sender numbers configured, Herald's sends name no number and nothing
			// is told apart: an event that names a number is recorded with none.
			t.Run("NoNumbersConfiguredRecordsNone", func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				if _, err := b.tr.TouchTo(ctx, b.biz, numberA, []string{phone}, b.clk.Now()); err != nil {
					t.Fatal(err)
				}
				if _, open, _ := b.tr.OpenFor(ctx, b.biz, "", 0, phone); !open {
					t.Error("a send naming no number does not see the window")
				}
				key, field := Locate(b.biz, phone)
				if n, _ := b.rdb.HExists(ctx, key, field).Result(); !n {
					t.Error("not recorded with no number")
				}
			})
		})
	}
}

func TestSources(t *testing.T) {
	t.Parallel()
	key, _ := Locate(biz, phone)
	bkey, _ := Locate(biz, bsuid)
	for _, c := range []struct {
		name   string
		policy Policy
		sender string
		want   []Source
	}{
		{"TwoNumbers", Policy{Senders: []string{numberA, numberB}}, numberB,
			[]Source{{key, "14155552671>16044445678"}, {bkey, "US.13491208655302741918>16044445678"}}},
		{"TwoNumbersBusinessScope", Policy{Scope: ScopeBusiness, Senders: []string{numberA, numberB}}, numberA,
			[]Source{{key, "14155552671>16044441234"}, {bkey, "US.13491208655302741918>16044441234"},
				{key, "14155552671"}, {bkey, "US.13491208655302741918"}}},
		{"TwoNumbersNoneNamed", Policy{Senders: []string{numberA, numberB}}, "", nil},
		{"OneNumberNoneNamed", Policy{Senders: []string{numberA}}, "",
			[]Source{{key, "14155552671>16044441234"}, {bkey, "US.13491208655302741918>16044441234"},
				{key, "14155552671"}, {bkey, "US.13491208655302741918"}}},
		{"NoNumbers", Policy{}, numberA, []Source{{key, "14155552671"}, {bkey, "US.13491208655302741918"}}},
		// A send from a number the config does not list: Herald does not send from one number.
		{"OneNumberAnotherSends", Policy{Senders: []string{numberA}}, numberB,
			[]Source{{key, "14155552671>16044445678"}, {bkey, "US.13491208655302741918>16044445678"}}},
	} {
		if got := c.policy.Sources(biz, c.sender, phone, bsuid); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseScope(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Scope{"": ScopeSender, "sender": ScopeSender, " Business ": ScopeBusiness} {
		if got, err := ParseScope(in); err != nil || got != want {
			t.Errorf("ParseScope(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseScope("number"); err == nil {
		t.Error("ParseScope(number): no error")
	}
}
