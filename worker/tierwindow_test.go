package worker

import (
	"context"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// A recipient who wrote to the business within 24 h (an open customer service window) is sent
// without taking room in the daily tier; the others still fill it and then wait.
func TestDailyTierSkipsOpenWindow(t *testing.T) {
	cfg := testConfig()
	cfg.DailyTier = 2
	b := setup(t, cfg)
	clk := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	b.worker.now = clk.Now
	ctx := context.Background()
	biz := b.worker.cfg.BusinessID
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
	wantEntry(t, b, ps[1], ledger.Entry{State: ledger.Accepted, Attempts: 1, MessageID: "msg-" + ps[1].To})
	wantEntry(t, b, bs[0], ledger.Entry{State: ledger.Accepted, Attempts: 1, MessageID: "msg-" + bs[0].To})
}
