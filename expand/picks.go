package expand

import (
	"context"
	"sync"
	"time"
)

// pickCacheIdle is how long a retry run's pick set stays in memory after its last expansion
// step asked for it.
const pickCacheIdle = 5 * time.Minute

// pickCache keeps the pick set of the retry run expanded last. A pick set never changes once
// its run is created, so every expansion step of the run in this process reads it from Redis
// once instead of on each step (a million picked recipients: about 2.6 s and 137 MB a read).
// It holds one run: a second retry run expanding at the same time replaces it, and reads its
// own again when it comes back. Idle for pickCacheIdle, it is dropped.
type pickCache struct {
	mu    sync.Mutex
	run   string
	set   map[string]bool
	timer *time.Timer
}

// get returns run's pick set, reading it with load when it is not the one kept.
func (c *pickCache) get(ctx context.Context, run string, load func(context.Context, string) (map[string]bool, error)) (map[string]bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run != run || c.set == nil {
		set, err := load(ctx, run)
		if err != nil {
			return nil, err
		}
		c.run, c.set = run, set
	}
	if c.timer == nil {
		c.timer = time.AfterFunc(pickCacheIdle, c.drop)
	} else {
		c.timer.Reset(pickCacheIdle)
	}
	return c.set, nil
}

// drop forgets the kept pick set.
func (c *pickCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.run, c.set = "", nil
}
