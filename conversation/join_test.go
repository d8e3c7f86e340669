package conversation_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type joinBundle struct {
	rdb   redis.UniversalClient
	idx   *conversation.Index
	clock *clock
	biz   string
	// forward moves the clock, and Redis's clock with it where the test can.
	forward func(d time.Duration)
}

// joinSuite runs fn on miniredis and, with HERALD_TEST_REDIS set, on a real Redis (keys
// under a business id of the test's own, so no flush is needed).
func joinSuite(t *testing.T, fn func(t *testing.T, b *joinBundle)) {
	t.Run("Miniredis", func(t *testing.T) {
		t.Parallel()
		m, rdb := testredis.Mini(t)
		c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		m.SetTime(c.t)
		b := &joinBundle{rdb: rdb, clock: c, biz: "biz", idx: conversation.NewIndex(rdb, "biz", c.now)}
		b.forward = func(d time.Duration) { c.t = c.t.Add(d); m.SetTime(c.t); m.FastForward(d) }
		fn(t, b)
	})
	t.Run("Redis", func(t *testing.T) {
		if os.Getenv(testredis.Env) == "" {
			t.Skipf("integration test: set %s to run it against a real Redis", testredis.Env)
		}
		t.Parallel()
		rdb := redis.NewClient(testredis.Options(t, testredis.OffsetShared))
		biz := "convtest-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000000")
		t.Cleanup(func() {
			ctx := context.Background()
			keys, _ := rdb.Keys(ctx, rkeys.Prefix+"conv:{"+biz+"}*").Result()
			if len(keys) > 0 {
				rdb.Del(ctx, keys...)
			}
			rdb.Close()
		})
		// The script's clock is ARGV, so the index's answers follow the test clock; Redis's own
		// TTLs run on real time and are only checked to be set.
		c := &clock{t: time.Now()}
		b := &joinBundle{rdb: rdb, clock: c, biz: biz, idx: conversation.NewIndex(rdb, biz, c.now)}
		b.forward = func(d time.Duration) { c.t = c.t.Add(d) }
		fn(t, b)
	})
}

func textFrom(phone, bsuid string) conversation.Reply {
	return conversation.Reply{Kind: webhooks.ReplyText, Text: "hi", From: webhooks.Customer{Phone: phone, BSUID: bsuid}}
}

func mustJoin(t *testing.T, b *joinBundle, r conversation.Reply) (conversation.Entry, bool) {
	t.Helper()
	e, ok, err := b.idx.Join(context.Background(), r)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	return e, ok
}

// mustRecord gives run an entry for to in ledger bucket bucket, accepted with no message id
// (so it reached the customer at no known time), and records the send in the index until
// until. The run's keys are deleted when the test ends (the Redis suite shares its database).
func mustRecord(t *testing.T, b *joinBundle, run string, bucket int, to string, until time.Time) {
	t.Helper()
	seedEntry(t, b.rdb, b.clock, run, ledger.Address{Run: run, Bucket: bucket, Recipient: to}, ledger.Accepted)
	recordOnly(t, b, run, bucket, to, until)
}

// recordOnly records run's send to to in the index until until, with no ledger entry.
func recordOnly(t *testing.T, b *joinBundle, run string, bucket int, to string, until time.Time) {
	t.Helper()
	if err := b.idx.Record(context.Background(), run, bucket, to, until); err != nil {
		t.Fatalf("Record(%s, %s): %v", run, to, err)
	}
}

// seedEntry creates run in the ledger (64 buckets) unless it exists, and gives it a's entry
// in state st (planned, queued, or claimed once and finished as st, with no message id).
func seedEntry(t *testing.T, rdb redis.UniversalClient, c *clock, run string, a ledger.Address, st ledger.State) {
	t.Helper()
	ctx := context.Background()
	campaign := "c-" + run
	t.Cleanup(func() {
		keys, _ := rdb.Keys(ctx, rkeys.Run(run)+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.ZRem(ctx, rkeys.Runs(), run)
		rdb.Del(ctx, rkeys.CampaignRuns(campaign))
		rdb.ZRem(ctx, rkeys.Campaigns(), campaign)
	})
	l := ledger.New(rdb, c.now)
	err := l.CreateRun(ctx, ledger.Run{ID: run, Campaign: campaign, Delivery: ledger.AtMostOnce, Buckets: 64, Created: c.t})
	if err != nil && !errors.Is(err, ledger.ErrRunExists) {
		t.Fatal(err)
	}
	from, err := rdb.HGet(ctx, rkeys.Run(run), "planned_to").Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	pe := ledger.PlanEntry{Recipient: a.Recipient, Bucket: a.Bucket, Row: from + 1}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: run, From: from, To: from + 1, Entries: []ledger.PlanEntry{pe}}); err != nil {
		t.Fatal(err)
	}
	if st == ledger.Queued || st == ledger.Planned {
		return
	}
	if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if st == ledger.Submitting {
		return
	}
	if _, err := l.Finish(ctx, a, ledger.Outcome{State: st, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
}

func TestJoin(t *testing.T) {
	t.Parallel()

	t.Run("CallbackNamesTheEntry", func(t *testing.T) {
		joinSuite(t, func(t *testing.T, b *joinBundle) {
			r := textFrom("+15550001111", "")
			r.Callback = &ledger.Address{Run: "run-a", Recipient: "+15550001111", Bucket: 12}
			e, ok := mustJoin(t, b, r)
			want := conversation.Entry{Run: "run-a", Bucket: 12, Recipient: "+15550001111", Via: conversation.ViaCallback}
			if !ok || e != want {
				t.Fatalf("Join = %+v, %v; want %+v", e, ok, want)
			}
		})
	})

	t.Run("NewestAnswerableRunWins", func(t *testing.T) {
		joinSuite(t, func(t *testing.T, b *joinBundle) {
			now := b.clock.t
			mustRecord(t, b, "run-old", 1, "+15550001111", now.Add(48*time.Hour))
			mustRecord(t, b, "run-new", 2, "+15550001111", now.Add(24*time.Hour))
			e, ok := mustJoin(t, b, textFrom("+15550001111", ""))
			want := conversation.Entry{Run: "run-new", Bucket: 2, Recipient: "+15550001111", Via: conversation.ViaRecent}
			if !ok || e != want {
				t.Fatalf("Join = %+v, %v; want %+v", e, ok, want)
			}
			// Once run-new's until passes, the older run still answerable takes the reply.
			b.forward(25 * time.Hour)
			e, ok = mustJoin(t, b, textFrom("+15550001111", ""))
			if !ok || e.Run != "run-old" || e.Bucket != 1 {
				t.Fatalf("after run-new's until: Join = %+v, %v; want run-old", e, ok)
			}
			b.forward(24 * time.Hour)
			if e, ok := mustJoin(t, b, textFrom("+15550001111", "")); ok {
				t.Fatalf("after every until: Join = %+v, want none", e)
			}
		})
	})

	t.Run("UnknownCustomerJoinsNothing", func(t *testing.T) {
		joinSuite(t, func(t *testing.T, b *joinBundle) {
			mustRecord(t, b, "run-a", 1, "+15550001111", b.clock.t.Add(time.Hour))
			if e, ok := mustJoin(t, b, textFrom("+15550002222", "")); ok {
				t.Fatalf("Join = %+v, want none", e)
			}
			if e, ok := mustJoin(t, b, conversation.Reply{Kind: webhooks.ReplyText}); ok {
				t.Fatalf("Join with no customer id = %+v, want none", e)
			}
		})
	})

	t.Run("BSUIDRecipient", func(t *testing.T) {
		joinSuite(t, func(t *testing.T, b *joinBundle) {
			mustRecord(t, b, "run-b", 4, "bsuid:US.13491208655302741918", b.clock.t.Add(time.Hour))
			e, ok := mustJoin(t, b, textFrom("", "US.13491208655302741918"))
			if !ok || e.Recipient != "bsuid:US.13491208655302741918" || e.Run != "run-b" || e.Bucket != 4 {
				t.Fatalf("Join = %+v, %v", e, ok)
			}
			// A customer who now shows a phone too is still found by the BSUID.
			e, ok = mustJoin(t, b, textFrom("+15550003333", "US.13491208655302741918"))
			if !ok || e.Run != "run-b" {
				t.Fatalf("Join by phone and BSUID = %+v, %v", e, ok)
			}
		})
	})

	t.Run("PastUntilRecordsNothing", func(t *testing.T) {
		joinSuite(t, func(t *testing.T, b *joinBundle) {
			mustRecord(t, b, "run-a", 0, "+15550001111", b.clock.t)
			if e, ok := mustJoin(t, b, textFrom("+15550001111", "")); ok {
				t.Fatalf("Join = %+v, want none", e)
			}
			err := b.idx.Record(context.Background(), "run-a", 0, " ", b.clock.t.Add(time.Hour))
			if !errors.Is(err, conversation.ErrNoRecipient) {
				t.Fatalf("Record(empty recipient) = %v, want ErrNoRecipient", err)
			}
		})
	})

	t.Run("RedisErrorIsWrapped", func(t *testing.T) {
		t.Parallel()
		// A Redis that refuses the dial: not a closed miniredis, whose freed port another test
		// process's server may take before the dial.
		rdb := redis.NewClient(&redis.Options{Dialer: testredis.Refuse, MaxRetries: -1})
		t.Cleanup(func() { rdb.Close() })
		idx := conversation.NewIndex(rdb, "biz", nil)
		err := idx.Record(context.Background(), "run-a", 0, "+15550001111", time.Now().Add(time.Hour))
		var ne net.Error
		if !errors.As(err, &ne) {
			t.Fatalf("Record on a closed Redis = %v, want the network error wrapped", err)
		}
		if _, _, err := idx.Join(context.Background(), textFrom("+15550001111", "")); !errors.As(err, &ne) {
			t.Fatalf("Join on a closed Redis = %v, want the network error wrapped", err)
		}
	})
}
