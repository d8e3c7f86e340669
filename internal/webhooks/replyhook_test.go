package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/rs/zerolog"
)

type recordingHandler struct {
	mu   sync.Mutex
	got  []string
	run  string // the run it joins every message to
	fail error
}

func (h *recordingHandler) HandleReply(_ context.Context, in *Inbound) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := in.Text
	if in.OptOut {
		s += " (opt-out)"
	}
	h.got = append(h.got, s)
	return h.run, h.fail
}

// The reply handler sees every inbound message, repeats included (it is idempotent), an
// opt-out marked as one, and its error makes the receiver answer 503 so the webhook comes
// again.
func TestReceiverReplyHandler(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	h := &recordingHandler{run: "run-joined"}
	rc, err := New(Config{Secrets: []string{testSecret}, Now: func() time.Time { return testNow }},
		Deps{Redis: rdb, Logger: zerolog.Nop(), Replies: h})
	if err != nil {
		t.Fatal(err)
	}
	b := &testBundle{mr: mr, rdb: rdb, rc: rc, now: testNow}
	text := func(id, s string) []byte {
		return fmt.Appendf(nil, `{"timestamp":"%d","sender":{"id":"+15550000001","channelType":"whatsapp"},"message":{"id":%q,"text":%q}}`,
			testNow.Unix(), id, s)
	}
	for _, body := range [][]byte{text("m1", "price please"), text("m1", "price please"), text("m2", "STOP")} {
		if w := post(t, b, body, testSecret); w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", body, w.Code, w.Body)
		}
	}
	if len(h.got) != 3 || h.got[0] != "price please" || h.got[1] != "price please" || h.got[2] != "STOP (opt-out)" {
		t.Fatalf("handler saw %q, want the message twice and the opt-out marked", h.got)
	}
	// Plain text carries no callbackData: the reply counts, once, in the run the handler
	// joined it to; the opt-out is not counted there as a reply.
	if n, err := rdb.HGet(context.Background(), rkeys.Delivery("run-joined"), "replies").Int(); err != nil || n != 1 {
		t.Fatalf("replies counted in the joined run: %d, %v; want 1", n, err)
	}
	h.fail = errors.New("redis down")
	if w := post(t, b, text("m3", "hello"), testSecret); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("handler error: status %d, want 503", w.Code)
	}
}
