package worker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// TestKeepPlaceDeadlineOnInjectedClock: a send keeping its place gives up when KeepPlaceFor
// has passed on the worker's clock (Deps.Now, moved by Deps.Sleep), though no real time
// passed: its slot, 10 s away, is beyond the 3 s it may keep its place, so it goes back to the
// queue unclaimed after waiting about 3 s, not 10.
func TestKeepPlaceDeadlineOnInjectedClock(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.SenderRates = map[string]float64{testSender: 0.1} // a slot every 10 s
	cfg.Limits.MaxWait = 10 * time.Millisecond
	cfg.KeepPlaceFor = 3 * time.Second
	sim := &simClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	b := setupWith(t, cfg, &redis.Options{}, sim.Sleep)
	b.worker = New(cfg, Deps{Redis: b.rdb, Sender: b.sender, Logger: zerolog.Nop(), Now: sim.Now, Sleep: sim.Sleep})
	sim.use(b)
	ps := seedRun(t, b, "run-keep-deadline", ledger.AtMostOnce, 3)
	if err := handle(t, b, ps[0]); err != nil {
		t.Fatal(err)
	}
	wantAs[*ThrottledError](t, handle(t, b, ps[1])) // refused: the worker paces from now on
	if sim.Slept() != 0 {
		t.Fatalf("slept %v before keeping a place", sim.Slept())
	}
	te := wantAs[*ThrottledError](t, handle(t, b, ps[2]))
	if te.Reason != "rate limit" || te.RetryAfter <= 0 {
		t.Fatalf("throttle %+v, want the rate limit's remaining wait", te)
	}
	if got := sim.Slept(); got < cfg.KeepPlaceFor || got > cfg.KeepPlaceFor+100*time.Millisecond {
		t.Fatalf("kept its place for %v of simulated time, want KeepPlaceFor (%v)", got, cfg.KeepPlaceFor)
	}
	if n := b.sender.CallsTo(ps[2].To); n != 0 {
		t.Fatalf("%d requests, want none: the deadline passed before the slot", n)
	}
	if e := entryOf(t, b, ps[2]); e.State != ledger.Queued || e.Attempts != 0 {
		t.Fatalf("entry %+v, want queued with no attempt", e)
	}
}

// failRunReads is a hook that fails every HMGET of one run's hash, the read of its pause
// state, and counts them.
type failRunReads struct {
	key string
	mu  sync.Mutex
	n   int
}

func (f *failRunReads) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *failRunReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); cmd.Name() == "hmget" && len(args) > 1 && args[1] == f.key {
			f.mu.Lock()
			f.n++
			f.mu.Unlock()
			err := errors.New("LOADING Redis is loading the dataset in memory")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (f *failRunReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (f *failRunReads) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// TestPauseStateErrorTriesLater: while its sender paces, a send reads its run's pause state
// before it keeps a place. When that read fails the run is not taken for running: the task
// tries again later (a throttle, not a held or a sent one), and reserves and claims nothing.
func TestPauseStateErrorTriesLater(t *testing.T) {
	b, sim, p := keepPlaceSetup(t, "run-pause-err")
	if _, err := b.ledger.Pause(context.Background(), p.Run, "operator"); err != nil {
		t.Fatal(err)
	}
	hook := &failRunReads{key: rkeys.Run(p.Run)}
	b.rdb.AddHook(hook)
	slept := sim.Slept()
	te := wantAs[*ThrottledError](t, handle(t, b, p))
	if te.Reason != "limits or ledger unreachable" || te.RetryAfter != b.worker.cfg.ThrottleDelay {
		t.Fatalf("throttle %+v, want the retry of an unreachable Redis", te)
	}
	if hook.count() != 1 {
		t.Fatalf("%d failed reads of the run's pause state, want 1", hook.count())
	}
	if got := sim.Slept() - slept; got != 0 {
		t.Fatalf("kept a place for %v after the pause state could not be read", got)
	}
	if e := entryOf(t, b, p); e.State != ledger.Queued || e.Attempts != 0 {
		t.Fatalf("entry %+v, want queued with no attempt", e)
	}
	if n := b.sender.CallsTo(p.To); n != 0 {
		t.Fatalf("%d requests, want none", n)
	}
}
