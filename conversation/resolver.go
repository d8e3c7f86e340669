package conversation

import (
	"container/list"
	"context"
	"sync"
)

// DefaultResolverCache is CachedResolver's size when none is given: runs whose campaign a
// process keeps at once.
const DefaultResolverCache = 256

// CachedResolver returns a Resolver that asks load once per run and keeps the answers of at
// most size runs (DefaultResolverCache when size <= 0), dropping the least recently used
// first: a run's campaign version and rules never change, and a receiver or worker that
// lives for months sees an unbounded number of runs. Runs that do not exist and errors are
// not kept, so they are asked again. It is safe for concurrent use; two callers missing the
// same run at once may both ask load.
func CachedResolver(load Resolver, size int) Resolver {
	if size <= 0 {
		size = DefaultResolverCache
	}
	c := &runCache{size: size, items: map[string]*list.Element{}, order: list.New()}
	return func(ctx context.Context, run string) (RunInfo, bool, error) {
		if info, ok := c.get(run); ok {
			return info, true, nil
		}
		info, ok, err := load(ctx, run)
		if err != nil || !ok {
			return info, ok, err
		}
		c.put(run, info)
		return info, true, nil
	}
}

// runCache is a least-recently-used map of run id → RunInfo.
type runCache struct {
	mu    sync.Mutex
	size  int
	items map[string]*list.Element // run → element of order holding a cached
	order *list.List               // most recently used first
}

type cached struct {
	run  string
	info RunInfo
}

func (c *runCache) get(run string) (RunInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[run]
	if !ok {
		return RunInfo{}, false
	}
	c.order.MoveToFront(e)
	return e.Value.(cached).info, true
}

func (c *runCache) put(run string, info RunInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[run]; ok {
		e.Value = cached{run, info}
		c.order.MoveToFront(e)
		return
	}
	c.items[run] = c.order.PushFront(cached{run, info})
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(cached).run)
	}
}
