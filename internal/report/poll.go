package report

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrInterval is wrapped by PollRun's error for an interval that is not positive.
var ErrInterval = errors.New("the interval between reads must be positive")

// ReadFunc reads a run's report as of now: ReadRun's, or ShowRun's for the fields `run show`
// adds.
type ReadFunc func(ctx context.Context, now time.Time) (Run, error)

// PollRun reads a run's report with read every interval and calls each with it, until the
// run has ended, each returns an error, or ctx is done (ctx's error). It returns the last
// report. An interval that is not positive reads nothing and returns an error wrapping
// ErrInterval.
func PollRun(ctx context.Context, every time.Duration, read ReadFunc, each func(Run, time.Duration) error) (Run, error) {
	if every <= 0 {
		return Run{}, fmt.Errorf("poll a run every %s: %w", every, ErrInterval)
	}
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rep, err := read(ctx, time.Now())
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
