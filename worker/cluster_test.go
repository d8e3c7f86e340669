package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// TestClusterSendPath runs the send handler on a Redis Cluster (HERALD_TEST_REDIS_CLUSTER),
// for a business and a run of its own, with every limit on (rates, pair, daily tier,
// frequency cap, adaptive rate): the reservation and the claim pipelined together, a 429 with
// Retry-After (the sender held, the throttle counted), a pair-limit refusal (131056: the pair
// backs off), and accepted sends. The throttled recipients are sent once their wait is over;
// every recipient ends accepted after one accepted request. Every script's KEYS must lie in
// one slot. The test's keys are deleted afterwards.
func TestClusterSendPath(t *testing.T) {
	cc := testredis.Cluster(t)
	ctx := context.Background()
	biz, run := testredis.UniqueName("worker-cluster"), testredis.UniqueName("worker-cluster-run")
	testredis.DeleteAtCleanup(t, cc, biz)
	testredis.DeleteRunsAtCleanup(t, cc, testCampaign, run)

	const throttled, pairRefused = 0, 1 // the recipients the provider refuses once
	sender := &fakeSender{}
	refusedOnce := map[int]bool{}
	var ps []string
	sender.SendFunc = func(_ context.Context, msg connectly.TemplateMessage) (connectly.SendResult, error) {
		switch {
		case msg.Number == ps[throttled] && !refusedOnce[throttled]:
			refusedOnce[throttled] = true
			return connectly.SendResult{}, &connectly.Error{StatusCode: 429, RetryAfterSeconds: 1,
				ErrorBody: connectly.ErrorBody{Type: "ERROR_TYPE_UNSPECIFIED", Code: "ERROR_CODE_UNSPECIFIED"}}
		case msg.Number == ps[pairRefused] && !refusedOnce[pairRefused]:
			refusedOnce[pairRefused] = true
			return connectly.SendResult{}, apiError(400, "131056")
		}
		return connectly.SendResult{ID: "m-" + msg.Number}, nil
	}
	cfg := testConfig()
	// A pair interval of 1 s, not Meta's 6 s: the refused pair's next send comes within seconds.
	cfg.Limits = limits.Config{BusinessID: biz, DailyTier: 1000, SenderRates: map[string]float64{testSender: 100},
		PairInterval: time.Second, FrequencyCaps: map[string]limits.FrequencyCap{"marketing": {Max: 3, Period: time.Hour}}}
	w := New(cfg, Deps{Redis: cc, Sender: sender, Logger: zerolog.Nop()})
	b := &testBundle{ledger: ledger.New(cc, nil), sender: sender, worker: w}
	payloads := seedRunWith(t, b, ledger.Run{ID: run, Delivery: ledger.AtMostOnce}, "+1555", 12)
	for _, p := range payloads {
		ps = append(ps, p.To)
	}

	var retry []int
	for i, p := range payloads {
		err := handle(t, b, p)
		var te *ThrottledError
		switch {
		case i == throttled || i == pairRefused:
			if !errors.As(err, &te) {
				t.Fatalf("%s: %v, want throttled", p.To, err)
			}
			retry = append(retry, i)
		case err != nil:
			t.Fatalf("%s: %v", p.To, err)
		}
	}
	// The 429 held the sender and counted a throttle; 131056 backed the pair off.
	if ttl, err := cc.PTTL(ctx, rkeys.SenderLimit(biz, testSender)).Result(); err != nil || ttl <= 0 {
		t.Errorf("sender limit expires in %v, %v: not held after a 429 with Retry-After", ttl, err)
	}
	if n, err := cc.Get(ctx, rkeys.PairBackoff(biz, testSender, ps[pairRefused])).Int(); err != nil || n != 1 {
		t.Errorf("pair backoff = %d, %v; want 1 refusal", n, err)
	}
	// Their sends go once the hold and the backoff are over.
	for _, i := range retry {
		testredis.WaitUntil(t, 20*time.Second, "the send to "+ps[i]+" after its wait", func() bool {
			err := handle(t, b, payloads[i])
			var te *ThrottledError
			if err != nil && !errors.As(err, &te) {
				t.Fatalf("%s: %v", ps[i], err)
			}
			return err == nil
		})
	}
	for _, p := range payloads {
		if e := entryOf(t, b, p); e.State != ledger.Accepted {
			t.Errorf("%s: entry %+v, want accepted", p.To, e)
		}
		if n := sender.CallsTo(p.To); n != 1 && !(n == 2 && (p.To == ps[throttled] || p.To == ps[pairRefused])) {
			t.Errorf("%s: %d requests", p.To, n)
		}
	}
	c := countersOf(t, b, run)
	if c.States[ledger.Accepted] != int64(len(payloads)) {
		t.Errorf("counters %v, want %d accepted", c.States, len(payloads))
	}
	if r := runOf(t, b, run); r.Status != ledger.RunCompleted {
		t.Errorf("run %s, want completed", r.Status)
	}
}
