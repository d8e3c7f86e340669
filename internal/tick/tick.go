// Package tick runs a piece of work at a fixed period until its context ends: the loop of
// every background poller in Herald (the cron scheduler's reload, the receiver's parked
// events, the worker's resends).
package tick

import (
	"context"
	"time"
)

// Every calls fn(ctx) every d, the first time d after the call, until ctx ends; it returns
// when ctx ends. A call that takes longer than d delays the next one (ticks are dropped, not
// queued). fn sees the same ctx and should return soon after it ends.
func Every(ctx context.Context, d time.Duration, fn func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}
