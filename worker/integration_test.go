package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
)

// sentButAnswered500 wraps the fake Connectly: the first accepted send to each chosen number
// goes through to the fake (which records it as accepted) and then has its answer replaced by
// a 500 carrying Connectly's standard error body, as when the answer fails after the message
// went out. The fake's record says what was really accepted.
type sentButAnswered500 struct {
	fake   *fakeconnectly.Server
	chosen func(number string) bool

	mu       sync.Mutex
	replaced map[string]bool
}

func (h *sentButAnswered500) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/send/whatsapp_templated_messages") {
		h.fake.Handler().ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var msg struct {
		Number string `json:"number"`
	}
	_ = json.Unmarshal(body, &msg)
	rec := httptest.NewRecorder()
	h.fake.Handler().ServeHTTP(rec, r)

	h.mu.Lock()
	replace := rec.Code/100 == 2 && h.chosen(msg.Number) && !h.replaced[msg.Number]
	if replace {
		h.replaced[msg.Number] = true
	}
	h.mu.Unlock()
	if replace {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"message":"Internal server error","type":"ERROR_TYPE_UNSPECIFIED","code":"ERROR_CODE_UNSPECIFIED","userTitle":"Internal server error","userMessage":"","cntTraceId":"1","details":{}}`)
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// TestIntegrationStandardBody500NotResentAtMostOnce runs the real asynq server on a real Redis
// against the fake Connectly, whose answer to one recipient in five is replaced, the first time
// it accepts their message, by a 500 with Connectly's JSON error body. The fake's record
// judges: under at-most-once no number is accepted twice and those recipients end unknown;
// under at-least-once they are sent again (the record shows the duplicate it accepts).
func TestIntegrationStandardBody500NotResentAtMostOnce(t *testing.T) {
	rdb := testredis.Open(t, testredis.OffsetWorker)
	ctx := context.Background()

	const businessID, apiKey, rows = "it-business", "it-key-0123456789", 100
	fake, err := fakeconnectly.New(fakeconnectly.Config{BusinessID: businessID, APIKey: apiKey, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	chosen := func(number string) bool { return fakeconnectly.HashBucket("500-after-send", number) < 2000 }
	srv := httptest.NewServer(&sentButAnswered500{fake: fake, chosen: chosen, replaced: map[string]bool{}})
	t.Cleanup(srv.Close)
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: srv.URL, BusinessID: businessID, APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}

	cfg := testConfig()
	cfg.Limits.BusinessID = businessID
	cfg.Concurrency = 10
	cfg.MaxAttempts = 5
	cfg.DelayedTaskCheckInterval = 100 * time.Millisecond
	cfg.TaskCheckInterval = 50 * time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	w := New(cfg, Deps{Redis: rdb, Sender: client, Logger: zerolog.Nop()})
	b := &testBundle{ledger: ledger.New(rdb, nil), worker: w}

	// Two runs side by side, to different numbers (the fake counts acceptances per number).
	const mostRun, leastRun = "it-most/20260101T0900Z", "it-least/20260101T0900Z"
	most := seedRunNumbers(t, b, mostRun, ledger.AtMostOnce, "+1555", rows)
	least := seedRunNumbers(t, b, leastRun, ledger.AtLeastOnce, "+1556", rows)
	// The fake checks parameter keys as Connectly does: name the body variable by position.
	for _, ps := range [][]campaigns.SendPayload{most, least} {
		for i := range ps {
			ps[i].Params = []connectly.Parameter{{Name: "body_1", Value: ps[i].Params[0].Value}}
		}
	}

	stop := enqueueAndStart(t, rdb, w, append(append([]campaigns.SendPayload(nil), most...), least...))

	deadline := time.Now().Add(60 * time.Second)
	for _, runID := range []string{mostRun, leastRun} {
		for {
			r, err := b.ledger.GetRun(ctx, runID)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status == ledger.RunCompleted {
				break
			}
			if time.Now().After(deadline) {
				c, _ := b.ledger.Counters(ctx, runID)
				t.Fatalf("run %s still %q after 60s: %v", runID, r.Status, c.States)
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-t.Context().Done():
				t.Fatal(t.Context().Err())
			}
		}
	}
	stop()

	victims := 0
	for _, p := range most {
		n := fake.AcceptedCount(p.To)
		if n != 1 {
			t.Errorf("at-most-once: %s accepted %d times by the fake, want exactly once", p.To, n)
		}
		e := entryOf(t, b, p)
		want := ledger.Accepted
		if chosen(p.To) {
			victims++
			want = ledger.Unknown
		}
		if e.State != want || e.Attempts != 1 {
			t.Errorf("at-most-once: %s entry %+v, want %s after one attempt", p.To, e, want)
		}
	}
	if victims == 0 || victims == rows {
		t.Fatalf("%d of %d recipients got the 500-after-send; the test proves nothing", victims, rows)
	}
	for _, p := range least {
		want := 1
		if chosen(p.To) {
			want = 2
		}
		if n := fake.AcceptedCount(p.To); n != want {
			t.Errorf("at-least-once: %s accepted %d times, want %d", p.To, n, want)
		}
		if e := entryOf(t, b, p); e.State != ledger.Accepted {
			t.Errorf("at-least-once: %s entry %+v, want accepted", p.To, e)
		}
	}
}

// enqueueAndStart enqueues a send task for each payload and starts the worker's asynq server.
// The returned stop (also run at cleanup) stops it once.
func enqueueAndStart(t *testing.T, rdb redis.UniversalClient, w *Worker, ps []campaigns.SendPayload) func() {
	t.Helper()
	enq := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { enq.Close() })
	for _, p := range ps {
		if _, err := enq.Enqueue(sendTask(t, p)); err != nil {
			t.Fatalf("Enqueue(%s): %v", p.To, err)
		}
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			w.Stop()
			w.Shutdown()
		}
	}
	t.Cleanup(stop)
	return stop
}
