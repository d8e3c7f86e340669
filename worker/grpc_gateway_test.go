package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
)

// handleAsAsynq runs the send handler on p's task as asynq would: again after every error
// that asks for a retry (a throttle, a hold, a transient failure), at most max times. It
// returns how many times the handler ran.
func handleAsAsynq(t *testing.T, b *testBundle, p campaigns.SendPayload, max int) int {
	t.Helper()
	for n := 1; ; n++ {
		err := handle(t, b, p)
		if err == nil || errors.Is(err, asynq.SkipRetry) || n == max {
			return n
		}
	}
}

// Answers in grpc-gateway's default error body (the backend reference 1 infers), through the
// fake, the real client and the worker, at-most-once. A 504 {"code":4} (DEADLINE_EXCEEDED)
// after the message went out is sent once and ends unknown: it was read as Meta's code 4, a
// throttle, and sent again on every delivery of the task. A 400 {"code":3} (INVALID_ARGUMENT)
// fails that recipient alone: it was read as Meta's 3 and paused the run on every resume. The
// others are accepted and the run completes. The same for session messages.
func TestGatewayErrorBodiesThroughTheWorker(t *testing.T) {
	for _, session := range []bool{false, true} {
		name := "template"
		if session {
			name = "session"
		}
		t.Run(name, func(t *testing.T) {
			const runID = "run-gateway/20260301T0900Z"
			fake, b := withFakeOf(t, fakeconnectly.Config{}, shapesBusiness, shapesKey)
			ps := bodyParams(seedRun(t, b, runID, ledger.AtMostOnce, 4))
			timedOut, invalid := ps[0], ps[1]
			rules := []fakeconnectly.Rule{
				{Numbers: []string{timedOut.To}, Code: "DEADLINE_EXCEEDED", Body: fakeconnectly.BodyGRPC, Sent: true},
				{Numbers: []string{invalid.To}, Code: "INVALID_ARGUMENT", Body: fakeconnectly.BodyGRPC},
			}
			if session {
				asSessions(t, b, fake, ps, rules)
				timedOut, invalid = ps[0], ps[1]
			}
			fake.SetRules(rules)
			for _, p := range ps {
				handleAsAsynq(t, b, p, 10)
			}

			if n := requestsTo(fake, timedOut.To); n != 1 {
				t.Errorf("504 DEADLINE_EXCEEDED: %d requests, want 1 (at-most-once: the message may have gone out)", n)
			}
			if n := fake.AcceptedCount(timedOut.To); n != 1 {
				t.Errorf("504 DEADLINE_EXCEEDED: the fake took the message %d times, want 1", n)
			}
			if e := entryOf(t, b, timedOut); e.State != ledger.Unknown || e.Attempts != 1 {
				t.Errorf("504 DEADLINE_EXCEEDED: %+v, want unknown after one attempt", e)
			}
			if e := entryOf(t, b, invalid); e.State != ledger.Failed || e.Code != "GRPC_INVALID_ARGUMENT" || e.Attempts != 1 {
				t.Errorf("400 INVALID_ARGUMENT: %+v, want failed with GRPC_INVALID_ARGUMENT after one attempt", e)
			}
			if n := requestsTo(fake, invalid.To); n != 1 {
				t.Errorf("400 INVALID_ARGUMENT: %d requests, want 1 (never retried)", n)
			}
			for _, p := range ps[2:] {
				if e := entryOf(t, b, p); e.State != ledger.Accepted || fake.AcceptedCount(p.To) != 1 {
					t.Errorf("%s: %+v, accepted %d times; want accepted once", p.To, e, fake.AcceptedCount(p.To))
				}
			}
			if r := runOf(t, b, runID); r.Status != ledger.RunCompleted {
				t.Errorf("run %s (%q), want completed", r.Status, r.PauseReason)
			}
		})
	}
}

// The same through asynq on a real Redis: the tasks are delivered and retried as in
// production, and the run completes with the 504 sent once.
func TestIntegrationGatewayDeadlineSentOnce(t *testing.T) {
	rdb := testredis.Open(t, testredis.OffsetWorker)
	ctx := context.Background()
	fake, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: shapesBusiness, APIKey: shapesKey, RateLimit: -1})
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: shapesBusiness, APIKey: shapesKey})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Limits.BusinessID = shapesBusiness
	cfg.Concurrency = 4
	cfg.ThrottleDelay = 100 * time.Millisecond
	cfg.HoldDelay = 100 * time.Millisecond
	cfg.DelayedTaskCheckInterval = 100 * time.Millisecond
	cfg.TaskCheckInterval = 50 * time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	w := New(cfg, Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop()})
	b := &testBundle{ledger: ledger.New(rdb, nil), worker: w}
	const runID = "it-gateway/20260101T0900Z"
	ps := bodyParams(seedRunNumbers(t, b, runID, ledger.AtMostOnce, "+1557", 4))
	timedOut, invalid := ps[0], ps[1]
	fake.SetRules([]fakeconnectly.Rule{
		{Numbers: []string{timedOut.To}, Code: "DEADLINE_EXCEEDED", Body: fakeconnectly.BodyGRPC, Sent: true},
		{Numbers: []string{invalid.To}, Code: "INVALID_ARGUMENT", Body: fakeconnectly.BodyGRPC},
	})
	stop := enqueueAndStart(t, rdb, w, ps)
	testredis.WaitUntil(t, 30*time.Second, "the run completed", func() bool {
		r, err := b.ledger.GetRun(ctx, runID)
		return err == nil && r.Status == ledger.RunCompleted
	})
	stop()
	if n := requestsTo(fake, timedOut.To); n != 1 {
		t.Errorf("504 DEADLINE_EXCEEDED: %d requests, want 1", n)
	}
	want := map[string]ledger.State{timedOut.To: ledger.Unknown, invalid.To: ledger.Failed, ps[2].To: ledger.Accepted, ps[3].To: ledger.Accepted}
	for _, p := range ps {
		if e := entryOf(t, b, p); e.State != want[p.To] {
			t.Errorf("%s: %+v, want %s", p.To, e, want[p.To])
		}
	}
}
