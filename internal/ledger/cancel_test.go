package ledger

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
)

// failSweep fails every pipeline of EVALSHA calls: the cancel's sweep.
type failSweep struct{}

func (failSweep) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (failSweep) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (failSweep) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "evalsha" {
			return errors.New("connection reset")
		}
		return next(ctx, cmds)
	}
}

// A cancel whose sweep fails after the run was cancelled says so: the run was cancelled by
// this call, with the sweep's error. Cancelled again, it sweeps what is left.
func TestCancelReportsACancelWhoseSweepFailed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	seedRun(t, b, "r1", AtMostOnce, recipients(3), true)
	flaky := redis.NewClient(b.rdb.Options())
	defer flaky.Close()
	flaky.AddHook(failSweep{})
	ok, n, err := New(flaky, nil).Cancel(ctx, "r1", "operator")
	if err == nil || !ok || n != 0 {
		t.Fatalf("Cancel = %v, %d, %v; want cancelled, nothing swept, the sweep's error", ok, n, err)
	}
	ok, n, err = b.l.Cancel(ctx, "r1", "operator")
	if err != nil || ok || n != 3 {
		t.Fatalf("second Cancel = %v, %d, %v; want not cancelled again, 3 swept", ok, n, err)
	}
	if c := getCounters(t, b, "r1"); c.States[Skipped] != 3 || c.States[Queued] != 0 {
		t.Fatalf("counters %v", c.States)
	}
}
