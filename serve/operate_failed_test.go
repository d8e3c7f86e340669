package serve_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/serve"
)

// evalshaPipelines fails, or runs and then calls after, every pipeline of EVALSHA calls: a
// cancel's sweep, a batch of send tasks.
type evalshaPipelines struct {
	fail  bool
	after func()
	n     atomic.Int32
}

func (h *evalshaPipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *evalshaPipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *evalshaPipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "evalsha" {
			return next(ctx, cmds)
		}
		h.n.Add(1)
		if h.fail {
			return errors.New("connection reset by peer")
		}
		err := next(ctx, cmds)
		if h.after != nil {
			h.after()
		}
		return err
	}
}

// An action that failed after it took effect is kept in the audit log as failed, with what
// went wrong: a cancel whose sweep failed once the run was cancelled, a retry that failed once
// its child run existed (named in the entry).
func TestPartlyDoneActionsAreAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rec := func(rdb redis.UniversalClient) audit.Record { return audit.Record{Redis: rdb, Actor: "ana"} }

	t.Run("CancelWhoseSweepFailed", func(t *testing.T) {
		t.Parallel()
		_, rdb := testredis.Mini(t)
		sent := send(t, config.Default(), rdb, 3)
		flaky := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
		defer flaky.Close()
		hook := &evalshaPipelines{fail: true}
		flaky.AddHook(hook)
		res, err := serve.CancelRun(ctx, config.Config{}, flaky, sent.RunID, rec(rdb))
		if err == nil || !res.Changed || hook.n.Load() == 0 {
			t.Fatalf("CancelRun = %+v, %v; want the run cancelled and the sweep's error", res, err)
		}
		if r, _ := ledger.New(rdb, nil).GetRun(ctx, sent.RunID); r.Status != ledger.RunCancelled {
			t.Fatalf("run %s, want cancelled", r.Status)
		}
		log := auditLog(t, rdb)
		if len(log) != 1 || !strings.HasPrefix(log[0], "ana run cancel "+sent.RunID+": failed: 0 recipients skipped: ") ||
			!strings.Contains(log[0], "connection reset by peer") {
			t.Fatalf("audit log %q; want the cancel kept as failed", log)
		}
	})

	t.Run("RetryStoppedOnceItsChildExisted", func(t *testing.T) {
		t.Parallel()
		_, rdb := testredis.Mini(t)
		sent := send(t, config.Default(), rdb, 3)
		finish(t, rdb, sent.Run, 3, map[string]string{"+12015550002": "HTTP_503", "+12015550003": "HTTP_503"})
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stopping := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
		defer stopping.Close()
		stopping.AddHook(&evalshaPipelines{after: cancel}) // stopped once its first tasks are written
		res, err := serve.RetryRun(rctx, serve.RetryParams{Config: config.Default(), Redis: stopping, Log: zerolog.Nop(), Audit: rec(rdb),
			Retry: expand.RetryParams{Parent: sent.RunID, Class: connectly.ClassTransient}})
		if !errors.Is(err, context.Canceled) || res.Child.ID == "" {
			t.Fatalf("RetryRun = child %q, %v; want the child and the context's error", res.Child.ID, err)
		}
		log := auditLog(t, rdb)
		if len(log) != 1 || !strings.HasPrefix(log[0], "ana run retry "+sent.RunID+": failed: child run "+res.Child.ID+" with 2 recipients picked: ") {
			t.Fatalf("audit log %q; want the retry kept as failed, naming its child", log)
		}
	})
}
