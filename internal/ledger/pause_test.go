package ledger

import (
	"context"
	"testing"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// TestPauseState follows a run through pause, resume and cancel, and reads a run that does
// not exist.
func TestPauseState(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	seedRun(t, b, "run-ps", AtLeastOnce, recipients(2), true)
	want := func(step string, w Pause) {
		t.Helper()
		got, err := b.l.PauseState(ctx, "run-ps")
		if err != nil {
			t.Fatalf("%s: PauseState: %v", step, err)
		}
		if got != w || got.Paused() != (w.Status == RunPaused) {
			t.Fatalf("%s: PauseState = %+v (paused %v), want %+v", step, got, got.Paused(), w)
		}
	}
	want("created", Pause{Status: RunRunning})
	if _, err := b.l.Pause(ctx, "run-ps", "operator"); err != nil {
		t.Fatal(err)
	}
	want("paused", Pause{Status: RunPaused, Reason: "operator"})
	if _, err := b.l.Resume(ctx, "run-ps"); err != nil {
		t.Fatal(err)
	}
	want("resumed", Pause{Status: RunRunning})
	// A pause reason left behind on a run that is not paused is not reported.
	if err := b.rdb.HSet(ctx, rkeys.Run("run-ps"), "pause_reason", "stale").Err(); err != nil {
		t.Fatal(err)
	}
	want("stale reason", Pause{Status: RunRunning})
	if _, _, err := b.l.Cancel(ctx, "run-ps", "operator"); err != nil {
		t.Fatal(err)
	}
	want("cancelled", Pause{Status: RunCancelled})

	got, err := b.l.PauseState(ctx, "run-none")
	if err != nil || got != (Pause{}) || got.Paused() {
		t.Fatalf("PauseState(missing run) = %+v, %v; want the zero Pause and no error", got, err)
	}
}

// TestPauseStateRedisError: a Redis that does not answer is an error, not a running run.
func TestPauseStateRedisError(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	seedRun(t, b, "run-ps-err", AtLeastOnce, recipients(1), true)
	if _, err := b.l.Pause(ctx, "run-ps-err", "operator"); err != nil {
		t.Fatal(err)
	}
	b.mr.SetError("LOADING Redis is loading the dataset in memory")
	defer b.mr.SetError("")
	got, err := b.l.PauseState(ctx, "run-ps-err")
	if err == nil {
		t.Fatalf("PauseState with Redis failing = %+v, nil; want an error", got)
	}
	if got.Paused() || got.Status != "" {
		t.Fatalf("PauseState with Redis failing = %+v, want the zero Pause beside the error", got)
	}
}
