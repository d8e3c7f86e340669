package testredis

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// FailPipelineOnce is a go-redis hook that fails, once, the first pipeline holding a command
// Match accepts, with Err, before it reaches Redis: as a timeout on the node holding that
// command's keys would. Every command of the pipeline gets Err.
type FailPipelineOnce struct {
	Match func(redis.Cmder) bool
	Err   error
	done  atomic.Bool
}

func (f *FailPipelineOnce) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (f *FailPipelineOnce) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (f *FailPipelineOnce) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if f.Match(c) && f.done.CompareAndSwap(false, true) {
				for _, c := range cmds {
					c.SetErr(f.Err)
				}
				return f.Err
			}
		}
		return next(ctx, cmds)
	}
}

// Failed reports whether the hook has failed its pipeline.
func (f *FailPipelineOnce) Failed() bool { return f.done.Load() }
