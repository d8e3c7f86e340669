package conversation_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/ledger"
)

func TestCachedResolver(t *testing.T) {
	t.Parallel()

	type bundle struct {
		loads   map[string]int
		mu      sync.Mutex
		resolve conversation.Resolver
	}
	setup := func(t *testing.T, size int) *bundle {
		t.Helper()
		b := &bundle{loads: map[string]int{}}
		b.resolve = conversation.CachedResolver(func(_ context.Context, id string) (conversation.RunInfo, bool, error) {
			b.mu.Lock()
			b.loads[id]++
			b.mu.Unlock()
			switch id {
			case "missing":
				return conversation.RunInfo{}, false, nil
			case "broken":
				return conversation.RunInfo{}, false, errors.New("connection reset")
			}
			return conversation.RunInfo{Run: ledger.Run{ID: id}}, true, nil
		}, size)
		return b
	}
	ctx := context.Background()
	get := func(t *testing.T, b *bundle, id string) {
		t.Helper()
		info, ok, err := b.resolve(ctx, id)
		if err != nil || !ok || info.Run.ID != id {
			t.Fatalf("%s: %+v %v %v", id, info, ok, err)
		}
	}

	t.Run("KeepsAtMostSizeRunsLeastRecentlyUsedOut", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 2)
		get(t, b, "a")
		get(t, b, "b")
		get(t, b, "a") // a is now the most recent
		get(t, b, "c") // b goes
		get(t, b, "a")
		get(t, b, "c")
		get(t, b, "b")
		if b.loads["a"] != 1 || b.loads["c"] != 1 || b.loads["b"] != 2 {
			t.Fatalf("loads %v, want a and c once, b twice", b.loads)
		}
	})

	t.Run("MissingAndFailedRunsAreAskedAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 2)
		for range 2 {
			if _, ok, err := b.resolve(ctx, "missing"); ok || err != nil {
				t.Fatalf("missing: %v %v", ok, err)
			}
			if _, _, err := b.resolve(ctx, "broken"); err == nil {
				t.Fatal("broken: no error")
			}
		}
		if b.loads["missing"] != 2 || b.loads["broken"] != 2 {
			t.Fatalf("loads %v", b.loads)
		}
	})

	t.Run("ConcurrentUseStaysBounded", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 8)
		var wg sync.WaitGroup
		var calls atomic.Int64
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 200 {
					id := "run-" + strconv.Itoa((i*7+g)%32)
					if info, ok, err := b.resolve(ctx, id); err != nil || !ok || info.Run.ID != id {
						t.Errorf("%s: %+v %v %v", id, info, ok, err)
						return
					}
					calls.Add(1)
				}
			}()
		}
		wg.Wait()
		// 32 runs through 8 places: some were loaded again, none more than once per call.
		total := 0
		for _, n := range b.loads {
			total += n
		}
		if total <= 32 || int64(total) > calls.Load() {
			t.Fatalf("%d loads for %d calls", total, calls.Load())
		}
	})
}
