package expand

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
)

// A retry run's pick set is read once while the run expands: later steps of the run use the
// kept set, another run reads its own, and a dropped set is read again.
func TestPickCacheReadsARunOnce(t *testing.T) {
	var reads []string
	load := func(_ context.Context, run string) (map[string]bool, error) {
		reads = append(reads, run)
		if run == "broken" {
			return nil, errors.New("redis down")
		}
		return map[string]bool{run + "-member": true}, nil
	}
	var c pickCache
	ctx := context.Background()
	for _, run := range []string{"r1", "r1", "r1", "r2", "r2", "r1"} {
		set, err := c.get(ctx, run, load)
		if err != nil || !set[run+"-member"] || len(set) != 1 {
			t.Fatalf("get(%s) = %v, %v", run, set, err)
		}
	}
	if fmt.Sprint(reads) != "[r1 r2 r1]" {
		t.Errorf("reads %v, want one per change of run", reads)
	}
	if _, err := c.get(ctx, "broken", load); err == nil {
		t.Error("a failed read was not returned")
	}
	// A failed read of another run leaves the kept set as it was.
	if _, err := c.get(ctx, "r1", load); err != nil || fmt.Sprint(reads) != "[r1 r2 r1 broken]" {
		t.Errorf("after a failed read of another run: reads %v (%v)", reads, err)
	}
	c.drop()
	if _, err := c.get(ctx, "r1", load); err != nil || len(reads) != 5 {
		t.Errorf("after drop: reads %v (%v), want r1 read again", reads, err)
	}
	c.timer.Stop()
}

// BenchmarkRetryStepFilter is the cost of one expansion step's filter of a retry run with
// 20,000 picked recipients on miniredis: read from Redis on every step (as before the
// cache), against kept after the first step.
func BenchmarkRetryStepFilter(b *testing.B) {
	_, rdb := testredis.Mini(b)
	ctx := context.Background()
	l := ledger.New(rdb, time.Now)
	picked := make([]string, 20_000)
	for i := range picked {
		picked[i] = fmt.Sprintf("+1555%07d", i)
	}
	run := ledger.Run{ID: "promo-retry", Campaign: "promo", Delivery: ledger.AtMostOnce, Buckets: 1, Created: time.Now()}
	if err := l.CreateRetryRun(ctx, run, picked); err != nil {
		b.Fatal(err)
	}
	run.Picked = len(picked)
	b.Run("ReadEachStep", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if set, err := l.PickSet(ctx, run.ID); err != nil || len(set) != len(picked) {
				b.Fatal(len(set), err)
			}
		}
	})
	b.Run("Kept", func(b *testing.B) {
		r := &Runs{ledger: l}
		if _, err := r.keepOf(ctx, run); err != nil { // the run's first step reads the set
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if keep, err := r.keepOf(ctx, run); err != nil || !keep(picked[0]) {
				b.Fatal(err)
			}
		}
		r.picks.timer.Stop()
	})
}
