package report

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrInterval is wrapped by PollRun's error for an interval that is not positive.
var ErrInterval = errors.New("the interval between reads must be positive")

// ErrNeverEnds is wrapped by PollRun's error for a follow-up run ("RUN~RULE"): it stays open
// for as long as replies may come, so polling it until it ends would never return.
var ErrNeverEnds = errors.New("a follow-up run never ends")

// ReadFunc reads a run's report as of now: ReadRun's, or ShowRun's for the fields `run show`
// adds.
type ReadFunc func(ctx context.Context, now time.Time) (Run, error)

// PollRun reads a run's report with read every interval and calls each with it, until the
// run has ended, each returns an error, or ctx is done (ctx's error). It returns the last
// report. An interval that is not positive reads nothing and returns an error wrapping
// ErrInterval. A follow-up run is read once, not passed to each, and its report returned with an
// error wrapping ErrNeverEnds.
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
		if rep.Follows != "" {
			return rep, fmt.Errorf("poll run %s (follows %s, on_reply rule %s): %w", rep.Run, rep.Follows, rep.Rule, ErrNeverEnds)
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
