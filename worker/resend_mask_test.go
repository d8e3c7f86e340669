package worker

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// failWith is a go-redis hook that fails, while on, every command whose arguments hold match.
type failWith struct {
	on    atomic.Bool
	match string
}

func (f *failWith) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *failWith) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f.on.Load() {
			for _, a := range cmd.Args() {
				if s, ok := a.(string); ok && strings.Contains(s, f.match) {
					err := errors.New("LOADING Redis is loading the dataset in memory")
					cmd.SetErr(err)
					return err
				}
			}
		}
		return next(ctx, cmd)
	}
}

func (f *failWith) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// When Redis fails to release a recipient for its resend, the sweep logs the failure with the
// recipient masked.
func TestResendSweepLogsRecipientMasked(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	var log strings.Builder
	clock := newTestClock()
	sender := &fakeSender{}
	w := New(testConfig(), Deps{Redis: rdb, Sender: sender, Logger: zerolog.New(&log), Now: clock.Now})
	b := &testBundle{mr: mr, rdb: rdb, ledger: ledger.New(rdb, clock.Now), sender: sender, worker: w}
	const runID = "spring-sale/masked"
	ps := seedRunWith(t, b, ledger.Run{ID: runID, Delivery: ledger.AtMostOnce, ResendAfter: quietPeriod}, "+1415", 1)
	b.sender.SendFunc = answer(&connectly.TransportError{Written: true, Err: io.ErrUnexpectedEOF})
	if err := handle(t, b, ps[0]); err != nil {
		t.Fatal(err)
	}
	digits := strings.TrimPrefix(ps[0].To, "+")
	hook := &failWith{match: digits}
	rdb.AddHook(hook)
	hook.on.Store(true)
	clock.Advance(quietPeriod)
	if n, err := w.SweepUnknown(context.Background()); n != 0 || err != nil {
		t.Fatalf("SweepUnknown = %d, %v; want nothing resent, the failure logged", n, err)
	}
	if !strings.Contains(log.String(), "could not resend") {
		t.Fatalf("no warning logged: %s", log.String())
	}
	if strings.Contains(log.String(), digits[:len(digits)-4]) || !strings.Contains(log.String(), digits[len(digits)-4:]) {
		t.Errorf("the warning does not mask the recipient to its last 4 digits: %s", log.String())
	}
}
