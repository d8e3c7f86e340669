package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/internal/backoff"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// TestServerCompletesRun runs the real asynq server on miniredis: one run of 50 recipients,
// every fifth of whom fails transiently once, must complete with each recipient sent exactly
// once successfully and the counters adding up to the audience.
func TestServerCompletesRun(t *testing.T) {
	t.Parallel()

	const (
		runID = "spring-sale/20260101T0900Z"
		rows  = 50
	)
	cfg := testConfig()
	cfg.Concurrency = 10
	cfg.MaxAttempts = 5
	cfg.DelayedTaskCheckInterval = 100 * time.Millisecond
	cfg.TaskCheckInterval = 50 * time.Millisecond
	cfg.Backoff = backoff.Backoff{Base: 10 * time.Millisecond, Cap: 50 * time.Millisecond}
	cfg.ShutdownTimeout = 2 * time.Second
	b := setup(t, cfg)

	// miniredis expires keys only when told to; asynq's heartbeats and locks rely on TTLs.
	stopClock := make(chan struct{})
	clockDone := make(chan struct{})
	go func() {
		defer close(clockDone)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopClock:
				return
			case <-tick.C:
				b.mr.FastForward(250 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(func() {
		close(stopClock)
		<-clockDone
	})

	ps := seedRun(t, b, runID, ledger.AtMostOnce, rows)
	flaky := map[string]bool{}
	for i, p := range ps {
		if i%5 == 0 {
			flaky[p.To] = true
		}
	}
	var mu sync.Mutex
	failedOnce := map[string]bool{}
	b.sender.SendFunc = func(_ context.Context, msg connectly.TemplateMessage) (connectly.SendResult, error) {
		mu.Lock()
		defer mu.Unlock()
		if flaky[msg.Number] && !failedOnce[msg.Number] {
			failedOnce[msg.Number] = true
			return connectly.SendResult{}, apiError(408, "")
		}
		return connectly.SendResult{ID: "msg-" + msg.Number}, nil
	}

	client := asynq.NewClientFromRedisClient(b.rdb)
	for _, p := range ps {
		if _, err := client.Enqueue(sendTask(t, p)); err != nil {
			t.Fatalf("Enqueue(%s): %v", p.To, err)
		}
	}

	if err := b.worker.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			b.worker.Stop()
			b.worker.Shutdown()
		}
	}
	// Registered after the clock's cleanup, so it runs first: the server stops before
	// miniredis and the clock goroutine go away.
	t.Cleanup(stop)

	deadline := time.Now().Add(20 * time.Second)
	for {
		r := runOf(t, b, runID)
		if r.Status == ledger.RunCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run still %q after 20s: %+v", r.Status, countersOf(t, b, runID).States)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
	stop()

	c := countersOf(t, b, runID)
	if c.Sum() != rows {
		t.Fatalf("counters sum to %d, want %d: %+v", c.Sum(), rows, c.States)
	}
	if c.States[ledger.Accepted] != rows {
		t.Fatalf("%d accepted, want %d: %+v", c.States[ledger.Accepted], rows, c.States)
	}
	wantRetries := int64(len(flaky))
	if c.Retries != wantRetries || c.AcceptedAfterRetry != wantRetries || c.Attempts != rows+wantRetries {
		t.Fatalf("retries %d, accepted after retry %d, attempts %d; want %d, %d, %d",
			c.Retries, c.AcceptedAfterRetry, c.Attempts, wantRetries, wantRetries, rows+wantRetries)
	}
	for _, p := range ps {
		want := 1
		if flaky[p.To] {
			want = 2
		}
		if n := b.sender.CallsTo(p.To); n != want {
			t.Fatalf("%s got %d requests, want %d", p.To, n, want)
		}
		wantEntry(t, b, p, ledger.Entry{State: ledger.Accepted, Attempts: want, MessageID: "msg-" + p.To})
	}
}
