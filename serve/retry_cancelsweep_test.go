package serve_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testclock"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/serve"
	"github.com/heraldmsg/herald/worker"
)

// onFirstScript runs do once, before the first pipeline of Redis scripts that names key
// among its arguments; an error do returns is that pipeline's, and it is not sent. A test
// catches an operation at one script with it: make it fail, as a Redis that went away would,
// or hold it there.
func onFirstScript(key string, do func() error) redis.Hook {
	return &scriptHook{key: key, do: do}
}

type scriptHook struct {
	key  string
	do   func() error
	once sync.Once
}

func (*scriptHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*scriptHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *scriptHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if !strings.EqualFold(c.Name(), "evalsha") && !strings.EqualFold(c.Name(), "eval") {
				continue
			}
			for _, a := range c.Args() {
				if v, ok := a.(string); ok && v == h.key {
					var err error
					h.once.Do(func() { err = h.do() })
					if err != nil {
						return err
					}
				}
			}
		}
		return next(ctx, cmds)
	}
}

// A retry child C may have sent to X (a 500 the fake took: X unknown), and C then queued X
// for its one resend. C is cancelled, and the cancel's sweep has not reached X yet (it failed
// part way, or is still running): X reads queued. A second `run retry` of the parent must be
// refused, as C has maybe sent to X ("a run is retried once per recipient"): expand.Runs.sendsTo
// counts a queued entry with attempts of a cancelled child as one that may have sent (it once
// counted every queued entry as one the sweep skips, and a second child C2 sent X again: the
// fake took X twice under at-most-once).
func TestRetryAgainWhileACancelledChildsResendIsUnsweptIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	c := config.Default()
	sent := send(t, c, rdb, 2, "unknown: {resend_after: 1m}\n")
	x := number(2)
	finish(t, rdb, sent.Run, 2, map[string]string{x: "HTTP_503"})
	rec := audit.Record{Redis: rdb, Actor: "ana"}
	retry := func() (expand.Retried, error) {
		return serve.RetryRun(ctx, serve.RetryParams{Config: c, Redis: rdb, Log: zerolog.Nop(), Audit: rec,
			Retry: expand.RetryParams{Parent: sent.RunID, Class: connectly.ClassTransient}})
	}
	first, err := retry()
	if err != nil {
		t.Fatal(err)
	}
	child := first.Child

	const business, key = "biz-retry", "key-retry"
	fake, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: business, APIKey: key, RateLimit: -1})
	fake.SetRules([]fakeconnectly.Rule{{Numbers: []string{x}, Status: 500, Sent: true, Times: 1}})
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: business, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	clock := testclock.New(time.Now())
	wc := serve.WorkerConfig(c)
	wc.Limits.PairInterval = -1 // the second child's send is not held for the 6 s pair interval
	w := worker.New(wc, worker.Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop(),
		Tasks: asynqbatch.New(rdb), Now: clock.Now})
	in := asynq.NewInspectorFromRedisClient(rdb)
	t.Cleanup(func() { in.Close() })
	sendQueued := func(run ledger.Run) {
		t.Helper()
		ts, err := in.ListPendingTasks(run.Queue)
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range ts {
			if !strings.Contains(string(ti.Payload), run.ID) {
				continue
			}
			if err := w.HandleSend(ctx, asynq.NewTask(ti.Type, ti.Payload)); err != nil {
				t.Logf("send %s: %v", ti.ID, err)
			}
			if err := in.DeleteTask(run.Queue, ti.ID); err != nil {
				t.Fatal(err)
			}
		}
	}

	// C sends X: a 500 the fake took. X is unknown in C, due for its resend after 1m.
	sendQueued(child)
	l := ledger.New(rdb, clock.Now)
	ax := ledger.AddressIn(child.ID, x, child.Buckets)
	if e, _, err := l.Entry(ctx, ax); err != nil || e.State != ledger.Unknown {
		t.Fatalf("X in the child: %+v, %v; want unknown", e, err)
	}
	// The quiet period passes: X is queued for its one resend.
	clock.Add(2 * time.Minute)
	if n, err := w.SweepUnknown(ctx); err != nil || n != 1 {
		t.Fatalf("SweepUnknown = %d, %v; want 1 resend", n, err)
	}
	// The operator cancels C; the sweep fails before it reaches X's bucket.
	crdb := redis.NewClient(rdb.Options())
	t.Cleanup(func() { crdb.Close() })
	crdb.AddHook(onFirstScript(rkeys.LedgerBucket(child.ID, ax.Bucket), func() error {
		return errors.New("connection reset by the test")
	}))
	if _, err := serve.CancelRun(ctx, c, crdb, child.ID, rec); err == nil {
		t.Fatal("cancel: want the sweep's error")
	}
	// A second retry of the parent picks X again: C may have sent to it.
	second, err := retry()
	if err == nil {
		sendQueued(second.Child)
	}
	if got := fake.AcceptedCount(x); got != 1 {
		t.Fatalf("the fake took X %d times (second retry: child %q, err %v); want once", got, second.Child.ID, err)
	}
	if !errors.Is(err, expand.ErrRetried) {
		t.Fatalf("second retry: %v; want ErrRetried naming %s", err, child.ID)
	}
}
