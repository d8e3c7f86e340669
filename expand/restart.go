package expand

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
)

// RestartExpansion enqueues step seq of run's expansion, to run at once, for a run whose chain
// of expansion tasks is gone (removed outside Herald, or deleted with herald task delete
// --force): herald run repair. It is a continuation like any other (campaigns.ExpandPayload
// with the run's campaign and version, Handler runs it), so it carries on from the run's
// cursors: rows already planned are not planned again, and a chain still running unseen
// beside it only makes both step over each other's batches (ledger.ErrStaleBatch) until one
// of them expands the rest. In a cancelled run it plans every row not read yet as
// skipped(cancelled), so the run's states add up to its audience. A run paused because its
// expansion could not go on gets the step that only looks again once it is resumed. seq must
// be 1 or more, and held by no task of the run (one past the highest step seen): it reports
// false, enqueuing nothing, when a task already holds that id.
func (r *Runs) RestartExpansion(ctx context.Context, run ledger.Run, seq int) (bool, error) {
	if seq < 1 {
		return false, fmt.Errorf("run %s: restart its expansion at step %d: want 1 or more", run.ID, seq)
	}
	p := campaigns.ExpandPayload{Run: run.ID, Campaign: run.Campaign, Version: run.Version, Trigger: "repair", Seq: seq,
		Stopped: ExpansionBlocked(run)}
	task, err := campaigns.NewExpandTask(p, 0, 0)
	if err != nil {
		return false, err
	}
	_, err = r.deps.Enqueuer.EnqueueContext(ctx, task)
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("run %s: enqueue expansion step %d: %w", run.ID, seq, err)
	}
	return true, nil
}

// ExpansionBlocked reports whether run is paused because its expansion cannot go on (its
// campaign or audience can no longer be read as it started): nothing of it is expanded until
// an operator resumes it.
func ExpansionBlocked(run ledger.Run) bool {
	return run.Status == ledger.RunPaused && strings.HasPrefix(run.PauseReason, stoppedReason)
}
