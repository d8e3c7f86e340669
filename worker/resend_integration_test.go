package worker

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// dropWebhooks stands between the fake's webhook calls and the receiver: calls about the
// chosen numbers are answered 200 and never reach the receiver, as when a delivery webhook is
// lost for good (Connectly does not send again after a 2xx).
type dropWebhooks struct {
	next    http.Handler
	digits  [][]byte // the chosen numbers without '+', as they appear in the bodies
	dropped atomic.Int64
}

func (d *dropWebhooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, n := range d.digits {
		if bytes.Contains(body, n) {
			d.dropped.Add(1)
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	d.next.ServeHTTP(w, r)
}

// resendTestRedis is the Redis of the resend integration test: the database named by
// HERALD_TEST_REDIS (flushed), else an in-process miniredis.
func resendTestRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	if os.Getenv(testredis.Env) != "" {
		return testredis.Open(t, testredis.OffsetWorker)
	}
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// TestIntegrationResendUnknownWithTheFake runs a whole at-most-once run with
// unknown.resend_after through the real asynq server, the fake Connectly and the webhook
// receiver. Some sends lose their answer: a 500 for a message that never left, or the fake
// accepts the message and drops the connection. Some recipients' webhooks never reach the
// receiver. The fake's record then says, per recipient:
//
//   - everyone is accepted exactly once, whatever happened to their first answer;
//   - except those whose answer was lost after a real send AND whose webhooks were lost: no
//     delivery event came in the quiet period, so they got the one resend, and the documented
//     duplicate (accepted twice);
//   - and those whose resend also never left: not accepted at all, and never tried a third time.
func TestIntegrationResendUnknownWithTheFake(t *testing.T) {
	rdb := resendTestRedis(t)
	ctx := context.Background()
	const (
		businessID, apiKey, secret = "it-business", "it-key-0123456789", "it-webhook-secret-0123456789"
		rows                       = 80
		runID                      = "it-resend/20260101T0900Z"
		quiet                      = 3 * time.Second
	)

	// Who gets what, by row (i % 10).
	const (
		neverLeft       = 1 // a 500 for a message that was not sent: unknown, then resent
		lostAfterSend   = 2 // accepted, answer lost; its webhooks settle it in the quiet period
		lostNoWebhook   = 3 // accepted, answer lost, every webhook lost: the documented duplicate
		neverLeftTwice  = 4 // the send and its resend both answered 500 without sending
		acceptedNoHook  = 5 // accepted normally, webhooks lost: stays accepted
		neverLeftNoHook = 6 // like neverLeft, with its webhooks lost too
	)
	b := &testBundle{ledger: ledger.New(rdb, nil)}
	cfg := testConfig()
	cfg.Limits.BusinessID = businessID
	cfg.Concurrency = 10
	cfg.DelayedTaskCheckInterval = 100 * time.Millisecond
	cfg.TaskCheckInterval = 50 * time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.ResendSweepEvery = 100 * time.Millisecond
	cfg.ResendLease = 5 * time.Second

	// The run, seeded as the expander would; its quiet period is short for the test (the
	// campaign file's minimum is a minute).
	ps := seedRunWith(t, b, ledger.Run{ID: runID, Delivery: ledger.AtMostOnce, ResendAfter: quiet}, "+1557", rows)
	group := map[string]int{}
	byGroup := map[int][]string{}
	var dropDigits [][]byte
	for i := range ps {
		// The fake checks parameter names as Connectly does.
		ps[i].Params = []connectly.Parameter{{Name: "body_1", Value: ps[i].Params[0].Value}}
		g := i % 10
		group[ps[i].To] = g
		byGroup[g] = append(byGroup[g], ps[i].To)
		if g == lostNoWebhook || g == acceptedNoHook || g == neverLeftNoHook {
			dropDigits = append(dropDigits, []byte(strings.TrimPrefix(ps[i].To, "+")))
		}
	}

	rc, err := webhooks.New(webhooks.Config{Secrets: []string{secret}, RetryEvery: 50 * time.Millisecond},
		webhooks.Deps{Redis: rdb, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	rcCtx, rcStop := context.WithCancel(ctx)
	rc.Start(rcCtx)
	t.Cleanup(func() { rcStop(); rc.Stop() })
	drop := &dropWebhooks{next: rc, digits: dropDigits}
	hookSrv := httptest.NewServer(drop)
	t.Cleanup(hookSrv.Close)

	rules := []fakeconnectly.Rule{
		{Numbers: append(slices.Clone(byGroup[neverLeft]), byGroup[neverLeftNoHook]...), Status: 500, Times: 1},
		{Numbers: append(slices.Clone(byGroup[lostAfterSend]), byGroup[lostNoWebhook]...), LoseResponse: true, Times: 1},
		{Numbers: byGroup[neverLeftTwice], Status: 500, Times: 2},
	}
	fake, fakeURL := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: businessID, APIKey: apiKey, RateLimit: -1, Rules: rules,
		Webhooks: fakeconnectly.WebhookConfig{URL: hookSrv.URL + "/", Secret: secret, Seed: 7, DuplicatePercent: 10}})
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: fakeURL, BusinessID: businessID, APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}

	w := New(cfg, Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop()})
	stop := enqueueAndStart(t, rdb, w, ps)

	deadline := time.Now().Add(90 * time.Second)
	for {
		r, err := b.ledger.GetRun(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		parked, perr := rc.Parked(ctx)
		if r.Status == ledger.RunCompleted && perr == nil && parked == 0 && fake.WebhookStats().Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			c, _ := b.ledger.Counters(ctx, runID)
			t.Fatalf("run %s still %q after 90s (parked %d): %v, waiting for a resend %d", runID, r.Status, parked, c.States, c.ResendWaiting)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
	stop()

	requests := map[string]int{}
	for _, rec := range fake.Received() {
		requests[rec.Number]++
	}
	pastAccepted := map[ledger.State]bool{ledger.Accepted: true, ledger.Sent: true, ledger.Delivered: true, ledger.Read: true}
	var resent int64
	for _, p := range ps {
		g := group[p.To]
		e := entryOf(t, b, p)
		hist, err := b.ledger.History(ctx, ledger.Address{Run: runID, Bucket: p.Bucket, Recipient: p.To})
		if err != nil {
			t.Fatal(err)
		}
		resends := 0
		for _, h := range hist {
			if h.Outcome == "resend" {
				resends++
			}
		}
		resent += int64(resends)
		accepted := fake.AcceptedCount(p.To)
		wantAccepted, wantRequests, wantResends := 1, 1, 0
		switch g {
		case neverLeft, neverLeftNoHook:
			wantRequests, wantResends = 2, 1
		case lostNoWebhook:
			// The documented trade-off: sent, answer lost, no delivery event ever came.
			wantAccepted, wantRequests, wantResends = 2, 2, 1
		case neverLeftTwice:
			wantAccepted, wantRequests, wantResends = 0, 2, 1
		}
		if accepted != wantAccepted || requests[p.To] != wantRequests || resends != wantResends {
			t.Errorf("row group %d, %s: accepted %d times in %d requests with %d resends, want %d in %d with %d (entry %+v)",
				g, p.To, accepted, requests[p.To], resends, wantAccepted, wantRequests, wantResends, e)
		}
		switch {
		case g == neverLeftTwice:
			if e.State != ledger.Unknown || e.Attempts != 2 {
				t.Errorf("%s: entry %+v, want unknown after its send and its one resend", p.To, e)
			}
		case g == lostAfterSend:
			if e.State != ledger.Read || e.Attempts != 1 {
				t.Errorf("%s: entry %+v, want read (settled by its webhooks) after one attempt", p.To, e)
			}
		case !pastAccepted[e.State]:
			t.Errorf("%s (group %d): entry %+v, want accepted or later", p.To, g, e)
		}
	}
	c, err := b.ledger.Counters(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	wantResent := int64(len(byGroup[neverLeft]) + len(byGroup[neverLeftNoHook]) + len(byGroup[lostNoWebhook]) + len(byGroup[neverLeftTwice]))
	if c.ResentUnknown != wantResent || resent != wantResent || c.ResendWaiting != 0 {
		t.Errorf("resent_unknown %d (histories: %d), waiting %d; want %d resent, none waiting", c.ResentUnknown, resent, c.ResendWaiting, wantResent)
	}
	if drop.dropped.Load() == 0 {
		t.Error("no webhook was dropped; the test proves nothing about lost webhooks")
	}
	if got := fake.Stats().Lost; got != len(byGroup[lostAfterSend])+len(byGroup[lostNoWebhook]) {
		t.Errorf("the fake lost %d answers, want %d", got, len(byGroup[lostAfterSend])+len(byGroup[lostNoWebhook]))
	}
}
