package expand

import (
	"context"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/ledger"
)

// Lost is a queued recipient of a run whose send task is gone: its recipient and its audience
// row, as its ledger entry holds them.
type Lost struct {
	Recipient string
	Row       int
}

// RebuildTasks returns the send tasks of lost recipients of run as its expansion wrote them:
// each payload rendered from the run's campaign (SourceOf) and the recipient's audience row,
// under the same task id, queue and options, its send hours and expiry applied as of now. It
// reads the audience once, up to the last row asked for, and only the file the run started
// from (holdAudience). tasks[i] is lost[i]'s; ok[i] is false when its row no longer holds the
// recipient, or no longer renders. An error Permanent reports says no task of the run can be
// rebuilt any more: its campaign or its audience file is gone, or changed since it started.
func (r *Runs) RebuildTasks(ctx context.Context, run ledger.Run, lost []Lost) (tasks []asynqbatch.Task, ok []bool, err error) {
	tasks, ok = make([]asynqbatch.Task, len(lost)), make([]bool, len(lost))
	if len(lost) == 0 {
		return tasks, ok, nil
	}
	def, err := r.SourceOf(ctx, run)
	if err != nil {
		return nil, nil, err
	}
	exp := r.expander(0, nil)
	rd, err := exp.open(def, run)
	if err != nil {
		return nil, nil, err
	}
	defer rd.close()
	keys, err := r.ledger.TaskIDs(ctx)
	if err != nil {
		return nil, nil, err
	}
	ids := keys.ForRun(run.ID)
	want := make(map[int][]int, len(lost)) // row → the indexes of lost on it
	last := 0
	for i, l := range lost {
		want[l.Row] = append(want[l.Row], i)
		last = max(last, l.Row)
	}
	done := make(chan struct{})
	defer close(done)
stream:
	for b := range campaigns.Stream(rd.ar, rd.renderer, done) {
		if b.Err != nil {
			return nil, nil, b.Err
		}
		for _, it := range b.Rows {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			for _, i := range want[it.Row.N] {
				if it.Row.SkipReason != "" || it.RenderErr != nil || it.Row.Recipient != lost[i].Recipient {
					continue
				}
				_, tasks[i] = exp.sendOf(def, run, rd.timing, ids, exp.taskOptions(run), it)
				ok[i] = true
			}
			if it.Row.N >= last {
				break stream
			}
		}
	}
	// The rows read must be the run's: a file rewritten in place as it was read is not.
	if err := rd.held.checkWhole(); err != nil {
		return nil, nil, err
	}
	return tasks, ok, nil
}
