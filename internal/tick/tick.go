// Package tick runs a piece of work at a fixed period until its context ends: the loop of
// every background poller in Herald (the cron scheduler's reload, the receiver's parked
// events, the worker's resends); and Sleep, the one default behind every injectable wait
// (the worker's paced sends and retries, an expansion task held for room).
package tick

import (
	"context"
	"time"
)

// Every calls fn(ctx) every d, the first time d after the call, until ctx ends; it returns
// when ctx ends. A call that takes longer than d delays the next one (ticks are dropped, not
// queued). fn sees the same ctx and should return soon after it ends. A d of 0 or less is
// off, Herald's one spelling of it for a period: fn is never called and Every only waits for
// ctx to end (callers give 0 their default before they get here).
func Every(ctx context.Context, d time.Duration, fn func(context.Context)) {
	if d <= 0 {
		<-ctx.Done()
		return
	}
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

// Sleep waits d, or until ctx ends. A ctx already ended is an error even when there is
// nothing to wait (d <= 0), so a caller that waits for a slot whose time has come still
// learns that it must not go.
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
