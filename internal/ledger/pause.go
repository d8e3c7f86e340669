package ledger

import (
	"context"
	"fmt"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// Pause is what a send needs to know of its run before it goes: whether the run is paused,
// and why, or cancelled.
type Pause struct {
	// Status is the run's status ("" when no run has the id).
	Status RunStatus
	// Reason is the stored pause reason while the run is paused ("" when none was given, and
	// whenever the run is not paused).
	Reason string
}

// Paused reports whether the run is paused.
func (p Pause) Paused() bool { return p.Status == RunPaused }

// PauseState reads a run's status and, while it is paused, its pause reason, in one round
// trip. A run that does not exist reads as Status "" (neither paused nor cancelled). A Redis
// error is returned as it is, never read as a running run: the caller decides (the worker
// tries the task again later).
func (l *Ledger) PauseState(ctx context.Context, runID string) (Pause, error) {
	v, err := l.rdb.HMGet(ctx, rkeys.Run(runID), "status", "pause_reason").Result()
	if err != nil {
		return Pause{}, fmt.Errorf("ledger: pause state of run %s: %w", runID, err)
	}
	if len(v) != 2 {
		return Pause{}, fmt.Errorf("ledger: pause state of run %s: unexpected reply %v", runID, v)
	}
	status, _ := v[0].(string)
	p := Pause{Status: RunStatus(status)}
	if p.Paused() {
		p.Reason, _ = v[1].(string)
	}
	return p, nil
}
