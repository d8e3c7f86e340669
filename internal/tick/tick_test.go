package tick_test

import (
	"context"
	"errors"
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
}

func TestEveryWaitsOnePeriodBeforeTheFirstCall(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tick.Every(ctx, time.Hour, func(context.Context) { t.Fatal("fn called before the first period") })
}

// An ended context ends a sleep even when there is nothing to wait: a paced send whose slot
// has already come must still learn that its task ended.
func TestSleepEndedContext(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, d := range []time.Duration{-time.Second, 0, time.Hour} {
		if err := tick.Sleep(ended, d); !errors.Is(err, context.Canceled) {
			t.Errorf("Sleep(ended, %v) = %v, want context.Canceled", d, err)
		}
	}
	if err := tick.Sleep(context.Background(), 0); err != nil {
		t.Errorf("Sleep(live, 0) = %v, want nil", err)
	}
	if err := tick.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep(live, 1ms) = %v, want nil", err)
	}
}

// TestEveryOff: a period of 0 or less is off: fn is never called (before, a negative period
// panicked in time.NewTicker) and Every returns when ctx ends.
func TestEveryOff(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		ctx, cancel := context.WithCancel(context.Background())
		returned := make(chan struct{})
		go func() {
			defer close(returned)
			tick.Every(ctx, d, func(context.Context) { t.Errorf("period %v: fn called", d) })
		}()
		select {
		case <-returned:
			t.Fatalf("period %v: Every returned before its context ended", d)
		default:
		}
		cancel()
		select {
		case <-returned:
		case <-time.After(10 * time.Second):
			t.Fatalf("period %v: Every did not return after its context ended", d)
		}
	}
}
