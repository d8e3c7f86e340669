package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/testclock"
)

// A recipient who wrote to the business within 24 h (an open customer service window) is sent
// without taking room in the daily tier; the others still fill it and then wait.
func TestDailyTierSkipsOpenWindow(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.DailyTier = 2
	b := setup(t, cfg)
	clk := testclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	b.worker.now = clk.Now
	ctx := context.Background()
	biz := b.worker.cfg.Limits.BusinessID
	tr := servicewindow.New(b.rdb, clk.Now)
	touch := func(id string) {
		t.Helper()
		if _, err := tr.Touch(ctx, biz, []string{id}, clk.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}

	ps := seedRun(t, b, "run-csw", ledger.AtMostOnce, 4)
	touch(ps[1].To)
	pending, te := drain(t, b, ps)
	if len(pending) != 1 || pending[0].To != ps[3].To || te == nil || te.Reason != "daily tier" {
		t.Fatalf("pending %v (%+v), want only the fourth recipient waiting for the tier", pending, te)
	}
	tier, err := b.rdb.ZRange(ctx, rkeys.Tier(biz), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(tier) != 2 || tier[0] != ps[0].To || tier[1] != ps[2].To {
		t.Fatalf("tier holds %v, want the two recipients without an open window", tier)
	}

	// A BSUID recipient's window is read under the BSUID: with the tier full, the one who
	// wrote is sent, the one who did not waits.
	bs := seedRunNumbers(t, b, "run-csw-bsuid", ledger.AtMostOnce, "bsuid:US.1349120", 2)
	touch(bs[0].To)
	pending, _ = drain(t, b, bs)
	if len(pending) != 1 || pending[0].To != bs[1].To {
		t.Fatalf("pending %v, want only the BSUID without a window waiting", pending)
	}
	if n := len(b.sender.Calls()); n != 4 {
		t.Fatalf("%d requests, want 4", n)
	}
	// The sends into an open window are recorded as such, and counted on their runs; the
	// others are plain accepts.
	wantEntry(t, b, ps[1], ledger.Entry{State: ledger.Accepted, Attempts: 1, Code: ledger.SentInWindow, MessageID: "msg-" + ps[1].To})
	wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Accepted, Attempts: 1, MessageID: "msg-" + ps[0].To})
	wantEntry(t, b, bs[0], ledger.Entry{State: ledger.Accepted, Attempts: 1, Code: ledger.SentInWindow, MessageID: "msg-" + bs[0].To})
	for run, want := range map[string]int64{"run-csw": 1, "run-csw-bsuid": 1} {
		c, err := b.ledger.Counters(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Accepted(ledger.SentInWindow); got != want {
			t.Errorf("run %s: %d accepted in window, want %d", run, got, want)
		}
	}
}

// Without a daily tier a template send's reservation still reads the recipient's window, in
// the same round trip: a send into an open window is recorded as one, one outside a window is
// not, and neither reads the window with a command of its own.
func TestInWindowWithoutTier(t *testing.T) {
	cfg := testConfig()
	b := setup(t, cfg)
	clk := testclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	b.worker.now = clk.Now
	b.worker.windows = servicewindow.New(b.rdb, clk.Now)
	ctx := context.Background()
	biz := b.worker.cfg.Limits.BusinessID
	ps := seedRun(t, b, "run-nt", ledger.AtMostOnce, 2)
	if _, err := b.worker.windows.Touch(ctx, biz, []string{ps[0].To}, clk.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	rec := &cmdRecorder{}
	b.rdb.AddHook(rec)
	if pending, _ := drain(t, b, ps); len(pending) != 0 {
		t.Fatalf("pending %v", pending)
	}
	wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Accepted, Attempts: 1, Code: ledger.SentInWindow, MessageID: "msg-" + ps[0].To})
	wantEntry(t, b, ps[1], ledger.Entry{State: ledger.Accepted, Attempts: 1, MessageID: "msg-" + ps[1].To})
	if got := countersOf(t, b, "run-nt").Accepted(ledger.SentInWindow); got != 1 {
		t.Errorf("%d accepted in window, want 1", got)
	}
	for _, p := range ps {
		key, _ := servicewindow.Locate(biz, p.To)
		scripts := 0
		for _, c := range rec.naming(key) {
			if name := c.Name(); name != "evalsha" && name != "eval" {
				t.Errorf("the window of %s was read outside the reservation: %v", p.To, c.Args())
				continue
			}
			scripts++
		}
		if scripts == 0 {
			t.Errorf("the reservation of %s read no window", p.To)
		}
	}
}

// cmdRecorder is a go-redis hook that records every command sent, alone or in a pipeline.
type cmdRecorder struct {
	mu   sync.Mutex
	cmds []redis.Cmder
}

func (r *cmdRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *cmdRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.record(cmd)
		return next(ctx, cmd)
	}
}

func (r *cmdRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.record(cmds...)
		return next(ctx, cmds)
	}
}

func (r *cmdRecorder) record(cmds ...redis.Cmder) {
	r.mu.Lock()
	r.cmds = append(r.cmds, cmds...)
	r.mu.Unlock()
}

// naming returns the recorded commands that name key among their arguments.
func (r *cmdRecorder) naming(key string) []redis.Cmder {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []redis.Cmder
	for _, c := range r.cmds {
		for _, a := range c.Args() {
			if s, ok := a.(string); ok && s == key {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// On the simulated clock, a window is free room only while it is open: a recipient sent free
// inside their window takes room in the tier once it has closed, and waits when the tier is
// full; one already counted in the tier is sent again; one whose window is open is sent
// without room.
func TestDailyTierWindowCloses(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.DailyTier = 1
	b := setup(t, cfg)
	clk := testclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	b.worker.now = clk.Now
	b.worker.windows = servicewindow.New(b.rdb, clk.Now)
	ctx := context.Background()
	biz := b.worker.cfg.Limits.BusinessID
	touch := func(id string, at time.Time) {
		t.Helper()
		if _, err := b.worker.windows.Touch(ctx, biz, []string{id}, at); err != nil {
			t.Fatal(err)
		}
	}
	ps := seedRun(t, b, "run-day1", ledger.AtMostOnce, 3)
	touch(ps[0].To, clk.Now().Add(-time.Hour)) // closes at 08:00 the next day
	touch(ps[2].To, clk.Now().Add(-time.Hour))
	if pending, _ := drain(t, b, ps[:2]); len(pending) != 0 {
		t.Fatalf("day 1: pending %v, want the one in a window free and the other in the tier's one place", pending)
	}

	clk.Add(23*time.Hour + 30*time.Minute) // ps[0]'s window has closed; the tier still holds ps[1]
	touch(ps[2].To, clk.Now().Add(-time.Minute))
	next := seedRun(t, b, "run-day2", ledger.AtMostOnce, 3)
	pending, te := drain(t, b, next)
	// ps[1] is already one of the tier's unique recipients: sending again takes no new room.
	if len(pending) != 1 || pending[0].To != ps[0].To || te == nil || te.Reason != "daily tier" {
		t.Fatalf("day 2: pending %v (%+v), want only the closed window waiting for the tier", pending, te)
	}
	wantEntry(t, b, next[2], ledger.Entry{State: ledger.Accepted, Attempts: 1, Code: ledger.SentInWindow, MessageID: "msg-" + next[2].To})
}
