package ledger

import (
	"context"
	"errors"
	"testing"
)

// A retry run is created with its pick set in one step; PickSet reads it back and
// PickOverlap counts what another pick shares with it. A run that is not a retry has none.
func TestRetryRunPickSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	picked := recipients(2500) // more than one slice of the script's SADD, and of SMISMEMBER
	if err := b.l.CreateRetryRun(ctx, Run{ID: "child", Campaign: "c", Parent: "parent", Buckets: 40}, picked); err != nil {
		t.Fatal(err)
	}
	r := getRun(t, b, "child")
	if r.Picked != 2500 || r.Parent != "parent" {
		t.Fatalf("run %+v; want 2500 picked", r)
	}
	got, err := b.l.PickSet(ctx, "child")
	if err != nil || len(got) != 2500 || !got[picked[0]] || !got[picked[2499]] {
		t.Fatalf("PickSet = %d recipients, %v", len(got), err)
	}
	other := append(recipients(3000)[2000:], "+19990000000") // 500 shared, 501 not
	if n, err := b.l.PickOverlap(ctx, "child", other); err != nil || n != 500 {
		t.Fatalf("PickOverlap = %d, %v; want 500", n, err)
	}
	// The id taken: nothing changes, the pick set included.
	if err := b.l.CreateRetryRun(ctx, Run{ID: "child", Campaign: "c", Buckets: 1}, []string{"+19990000000"}); !errors.Is(err, ErrRunExists) {
		t.Fatalf("second create = %v, want ErrRunExists", err)
	}
	if n, _ := b.l.PickOverlap(ctx, "child", []string{"+19990000000"}); n != 0 {
		t.Fatal("a refused create added to the pick set")
	}
	seedRun(t, b, "plain", AtMostOnce, recipients(2), false)
	if got, err := b.l.PickSet(ctx, "plain"); err != nil || len(got) != 0 || getRun(t, b, "plain").Picked != 0 {
		t.Fatalf("a run that is not a retry: PickSet %v, %v", got, err)
	}
}
