package conversation_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
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

func mustRecord(t *testing.T, b *joinBundle, run string, bucket int, to string, until time.Time) {
	t.Helper()
	if err := b.idx.Record(context.Background(), run, bucket, to, until); err != nil {
		t.Fatalf("Record(%s, %s): %v", run, to, err)
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
		m := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1})
		t.Cleanup(func() { rdb.Close() })
		idx := conversation.NewIndex(rdb, "biz", nil)
		m.Close()
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
