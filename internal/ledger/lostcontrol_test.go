package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// TestRunControlWhoseReplyIsLost: pause, resume and cancel each run their script, lose its
// reply, and go-redis sends it again. The second run finds the change made under the call's
// own token and answers as the first did: the call reads the change as its own (the operator
// is told it paused, resumed or cancelled the run, and the audit log records it), not as a run
// already in that state. On miniredis, and on real Redis with HERALD_TEST_REDIS.
func TestRunControlWhoseReplyIsLost(t *testing.T) {
	t.Parallel()
	story := func(t *testing.T, b *testBundle, upstream, runID string) {
		ctx := context.Background()
		l, d, lose := lossyLedger(t, upstream, b.rdb.Options().DB)
		if err := l.CreateRun(ctx, Run{ID: runID, Campaign: "spring-sale", Delivery: AtMostOnce, Buckets: 1, Created: testNow}); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name   string
			script *redis.Script
			call   func() (bool, error)
			want   RunStatus
		}{
			{"pause", pauseCmd, func() (bool, error) { return l.Pause(ctx, runID, "test") }, RunPaused},
			{"resume", resumeCmd, func() (bool, error) { return l.Resume(ctx, runID) }, RunRunning},
			{"cancel", cancelCmd, func() (bool, error) { ok, _, err := l.Cancel(ctx, runID, "test"); return ok, err }, RunCancelled},
		}
		for i, s := range steps {
			lose(s.script)
			changed, err := s.call()
			if d.Dropped() != i+1 {
				t.Fatalf("%s: %d replies dropped, want %d", s.name, d.Dropped(), i+1)
			}
			if err != nil || !changed {
				t.Fatalf("%s whose first reply was lost: changed %v, %v; want the change read as the call's own", s.name, changed, err)
			}
			if got := getRun(t, b, runID); got.Status != s.want {
				t.Fatalf("after %s: status %s, want %s", s.name, got.Status, s.want)
			}
		}
		// Another call finds the run already cancelled: not its own change.
		if ok, _, err := l.Cancel(ctx, runID, "again"); err != nil || ok {
			t.Errorf("a second cancel: %v, %v; want the run found cancelled already", ok, err)
		}
	}
	t.Run("Miniredis", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		story(t, b, b.mr.Addr(), "lost-control")
	})
	t.Run("RealRedis", func(t *testing.T) {
		t.Parallel()
		runID := "lost-control-" + time.Now().Format("150405.000000000")
		b := realRedis(t, runID)
		t.Cleanup(func() { b.rdb.ZRem(context.Background(), rkeys.ActiveRuns(), runID) })
		story(t, b, b.rdb.Options().Addr, runID)
	})
}

// TestMarkRetryWhoseReplyIsLost: the retry mark is written, its reply is lost, and go-redis
// sends the script again: the second run finds the call's own child named and answers
// recorded, where it took the mark for another retry's (and run retry refused to start).
func TestMarkRetryWhoseReplyIsLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	l, d, lose := lossyLedger(t, b.mr.Addr(), 0)
	if err := l.CreateRun(ctx, Run{ID: "parent", Campaign: "spring-sale", Delivery: AtMostOnce, Buckets: 1, Created: testNow}); err != nil {
		t.Fatal(err)
	}
	lose(retryMarkCmd)
	ok, err := l.MarkRetry(ctx, "parent", nil, "parent-retry-1")
	if d.Dropped() != 1 {
		t.Fatalf("%d replies dropped, want 1", d.Dropped())
	}
	if err != nil || !ok {
		t.Fatalf("MarkRetry whose first reply was lost: %v, %v; want recorded", ok, err)
	}
	if got := getRun(t, b, "parent"); len(got.RetriedBy) != 1 || got.RetriedBy[0].Child != "parent-retry-1" {
		t.Fatalf("retried by %+v, want the one child once", got.RetriedBy)
	}
	// Another retry that has not checked the first is still refused.
	if ok, err := l.MarkRetry(ctx, "parent", nil, "parent-retry-2"); err != nil || ok {
		t.Errorf("an unchecked second retry: %v, %v; want refused", ok, err)
	}
}

// lossyLedger is a ledger whose client reaches upstream (database db) through a proxy that can
// lose a reply (testredis.ReplyDropper), and that sends a command again as go-redis does; lose
// arms the proxy against script s, loaded first so that the EVALSHA whose reply is lost ran it.
func lossyLedger(t *testing.T, upstream string, db int) (l *Ledger, d *testredis.ReplyDropper, lose func(s *redis.Script)) {
	t.Helper()
	d, err := testredis.StartReplyDropper(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: d.Addr(), DB: db, MaxRetries: 3})
	t.Cleanup(func() { rdb.Close() })
	lose = func(s *redis.Script) {
		t.Helper()
		if err := s.Load(context.Background(), rdb).Err(); err != nil {
			t.Fatal(err)
		}
		d.DropReplyTo([]byte(s.Hash()))
	}
	return New(rdb, func() time.Time { return testNow }), d, lose
}
