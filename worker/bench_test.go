package worker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// roundTrips counts the Redis round trips a client makes: one per command outside a
// pipeline, one per pipeline.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// BenchmarkHandleSend is the handler's cost per accepted send, template and session (window
// open), on miniredis: time, allocations and Redis round trips (roundtrips/op).
func BenchmarkHandleSend(b *testing.B) {
	for _, kind := range []string{"template", "session"} {
		b.Run(kind, func(b *testing.B) {
			cfg := testConfig()
			cfg.Limits.BusinessID = "biz-bench"
			tb := setupWith(b, cfg, &redis.Options{}, nil)
			ctx := context.Background()
			ps := seedRun(b, tb, "run-bench-"+kind, ledger.AtMostOnce, b.N)
			tasks := make([]*asynq.Task, len(ps))
			for i, p := range ps {
				if kind == "session" {
					p = sessionPayload(b, p, false)
					if _, err := servicewindow.New(tb.rdb, nil).Touch(ctx, cfg.Limits.BusinessID, []string{p.To},
						time.Now().Add(-time.Hour)); err != nil {
						b.Fatal(err)
					}
					tb.worker.client = &sessionClient{fakeSender: tb.sender}
				}
				tasks[i] = sendTask(b, p)
			}
			rt := &roundTrips{}
			tb.rdb.AddHook(rt)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := tb.worker.HandleSend(ctx, tasks[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/op")
		})
	}
}
