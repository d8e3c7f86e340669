package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testclock"
)

// A request Connectly refused for good (here a 400 with ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID)
// sent no message: the refused person must not keep a place in the daily tier (Meta counts unique
// people messaged) nor a mark under the frequency cap.
func TestRefusedSendKeepsNoRoom(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.DailyTier = 1
	cfg.Limits.FrequencyCaps = map[string]FrequencyCap{"marketing": {Max: 1, Period: 7 * 24 * time.Hour}}
	b := setup(t, cfg)
	clk := testclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	b.worker.now = clk.Now
	ps := seedRun(t, b, "run-refused", ledger.AtMostOnce, 2)
	for i := range ps {
		ps[i].Category = "marketing"
	}
	b.sender.SendFunc = func(_ context.Context, m connectly.TemplateMessage) (connectly.SendResult, error) {
		if m.Number == ps[0].To {
			return connectly.SendResult{}, apiError(400, "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID")
		}
		return connectly.SendResult{ID: "msg-" + m.Number}, nil
	}
	if err := handle(t, b, ps[0]); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("refused: %v", err)
	}
	if err := handle(t, b, ps[1]); err != nil {
		t.Errorf("second person: %v; the tier's one place is held by a person who got no message", err)
	}
	// The refused person, in another run, is not capped: they received nothing.
	again := seedRun(t, b, "run-refused-2", ledger.AtMostOnce, 1)
	again[0].Category = "marketing"
	b.sender.SendFunc = nil
	clk.Add(25 * time.Hour)
	if err := handle(t, b, again[0]); err != nil {
		t.Fatal(err)
	}
	if e := entryOf(t, b, again[0]); e.State != ledger.Accepted {
		t.Errorf("entry %+v: the refused person is capped by a message they never got", e)
	}
}

// A request not taken (a 408: nothing went out, the task retries) holds no place in the daily
// tier between its attempts: the retry books the place again when it sends.
func TestNotTakenSendKeepsNoRoom(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.DailyTier = 1
	b := setup(t, cfg)
	b.worker.now = testclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)).Now
	ps := seedRun(t, b, "run-not-taken", ledger.AtMostOnce, 1)
	b.sender.SendFunc = func(context.Context, connectly.TemplateMessage) (connectly.SendResult, error) {
		return connectly.SendResult{}, apiError(408, "")
	}
	if err := handle(t, b, ps[0]); err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("not taken: %v, want a retry", err)
	}
	if n, err := b.rdb.ZCard(context.Background(), rkeys.Tier(b.worker.cfg.Limits.BusinessID)).Result(); err != nil || n != 0 {
		t.Errorf("tier holds %d people (%v) after a request that was not taken, want 0", n, err)
	}
}
