package webhooks

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/ledger"
)

// TestInboundRepeatsCountOnce sends the same inbound message again, sequentially and from
// many goroutines through two receivers on one Redis (two replicas): each message adds one
// reply and one tap to its run, whatever the number of copies.
func TestInboundRepeatsCountOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const run = "run-dup"
	// tap is a button reply with Herald's callbackData (run's, for its sender); with id "" it
	// has no message object, the shape whose only identity is the body itself.
	tap := func(id, from string, ts int64) []byte {
		cb := ledger.Address{Run: run, Recipient: from, Bucket: 0}
		body := fmt.Sprintf(`{"timestamp":"%d","sender":{"id":%q,"channelType":"whatsapp"},`+
			`"buttonResponse":{"text":"Yes, please","payload":"YES"},"callbackData":%s`, ts, from, cb.Callback())
		if id != "" {
			body += fmt.Sprintf(`,"message":{"id":%q,"text":"Yes, please","isButtonResponse":true}`, id)
		}
		return []byte(body + "}")
	}
	stats := func(t *testing.T, b *testBundle) ledger.DeliveryStats {
		t.Helper()
		d, err := b.l.DeliveryStats(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	t.Run("Sequential", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		bodies := [][]byte{
			tap("01JIN00000000000000000000A", "+15550000001", testNow.Unix()),
			tap("", "+15550000002", testNow.Unix()),
			tap("", "+15550000002", testNow.Unix()+5), // a second tap, seconds later
		}
		for range 3 {
			for _, body := range bodies {
				if w := post(t, b, body, testSecret); w.Code != http.StatusOK {
					t.Fatalf("%s: %d %s", body, w.Code, w.Body)
				}
			}
		}
		// The same message id in a body that differs (a field added on a retry) is the same
		// message.
		again := bytes.Replace(bodies[0], []byte(`"timestamp"`), []byte(`"attempt":2,"timestamp"`), 1)
		if w := post(t, b, again, testSecret); w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		d := stats(t, b)
		if d.Replies != 3 || d.ButtonReplies["Yes, please"] != 3 {
			t.Fatalf("replies %d, taps %v; want 3 and 3 (three messages, each sent three or four times)", d.Replies, d.ButtonReplies)
		}
	})

	t.Run("ConcurrentReplicas", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		second, err := New(Config{Secrets: []string{testSecret}, Now: b.rc.cfg.Now}, Deps{Redis: b.rdb, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		replicas := []*Receiver{b.rc, second}
		bodies := [][]byte{
			tap("01JIN00000000000000000000B", "+15550000001", testNow.Unix()),
			tap("", "+15550000003", testNow.Unix()),
		}
		const copies = 16
		var wg sync.WaitGroup
		for i := range copies * len(bodies) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := bodies[i%len(bodies)]
				req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
				req.Header.Set(SignatureHeader, Sign(body, testSecret))
				w := httptest.NewRecorder()
				replicas[(i/len(bodies))%len(replicas)].ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					t.Errorf("copy %d: %d %s", i, w.Code, w.Body)
				}
			}()
		}
		wg.Wait()
		d := stats(t, b)
		if d.Replies != 2 || d.ButtonReplies["Yes, please"] != 2 {
			t.Fatalf("replies %d, taps %v; want 2 and 2 (two messages, %d copies each)", d.Replies, d.ButtonReplies, copies)
		}
	})
}
