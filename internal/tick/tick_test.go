package tick_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/tick"
)

func TestEveryCallsUntilTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick.Every(ctx, time.Millisecond, func(c context.Context) {
			if c != ctx {
				t.Error("fn got another context")
			}
			calls.Add(1)
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in 10 s at a 1 ms period", calls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after its context ended")
	}
	after := calls.Load()
	time.Sleep(5 * time.Millisecond)
	if calls.Load() != after {
		t.Fatalf("fn called after Every returned: %d then %d", after, calls.Load())
	}
}

func TestEveryWaitsOnePeriodBeforeTheFirstCall(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tick.Every(ctx, time.Hour, func(context.Context) { t.Fatal("fn called before the first period") })
}
