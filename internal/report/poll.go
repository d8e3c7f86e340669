package report

import (
	"context"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
)

// PollRun reads a run's report every interval and calls each with it, until the run has
// ended, each returns an error, or ctx is done (ctx's error). It returns the last report.
func PollRun(ctx context.Context, l *ledger.Ledger, runID string, every time.Duration, each func(Run, time.Duration) error) (Run, error) {
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rep, err := ReadRun(ctx, l, runID, time.Now())
		if err != nil {
			return rep, err
		}
		if err := each(rep, time.Since(start)); err != nil || rep.Ended() {
			return rep, err
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-t.C:
		}
	}
}
