package webhooks

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// FuzzWebhookHandler sends fuzzed bodies, signed or not, through the whole receiver on a
// miniredis that holds a small run. Every answer must be a 4xx or, for a valid signed body
// that is irrelevant or applied, 200; nothing may panic; an unsigned body never gets past
// 401; and the run's counters must still add up to its recipients.
func FuzzWebhookHandler(f *testing.F) {
	b := setup(f, Config{MaxBody: 64 << 10})
	rcpts := []string{"+15550000001", "+15550000002", "+15550000003"}
	ids := []string{ulidAt(testNow, 1), ulidAt(testNow, 2), ulidAt(testNow, 3)}
	buckets := seedAccepted(f, b, "fz", rcpts, ids)
	for i, r := range rcpts {
		for _, st := range []string{StatusSent, StatusDelivered, StatusRead, StatusDeliveryFailed} {
			f.Add(statusBody("fz", r, buckets[r], ids[i], st, testNow), true)
		}
	}
	f.Add(statusBody("fz", rcpts[0], buckets[rcpts[0]], ids[0], StatusRead, testNow), false)
	for _, s := range []string{
		`{}`, `null`, `[]`, `"x"`, `{"statusUpdate":null}`, `{"message":{"text":"STOP"},"sender":{"id":"+15550000009"}}`,
		`{"message":{"isButtonResponse":true,"text":"Yes"},"callbackData":{"herald_run":"fz","herald_to":"+15550000001","herald_b":0}}`,
		`{"statusUpdate":{"id":"01FRRWW2ZAHD9GJ1SWY4VF2GBD","status":"read","metadata":{"campaignName":"spring"}},"recipient":{"id":"+15550000001"}}`,
		`{"statusUpdate":{"id":"a|b","status":"delivery_failed","error":{"code":"x|y"}},"callbackData":{"herald_run":"fz","herald_to":"+15550000002","herald_b":-1}}`,
		`{"timestamp":"99999999999999999999","statusUpdate":{"id":"1","status":"sent"},"callbackData":"{\"herald_run\":\"fz\"}"}`,
	} {
		f.Add([]byte(s), true)
	}
	// Every inbound shape of the golden tests, those without a message object included, and
	// the quick-reply opt-outs in each shape.
	for _, body := range inboundBodies(f) {
		f.Add(body, true)
	}
	for _, s := range stopShapes {
		f.Add(fmt.Appendf(nil, s.body, `{"id":"+15550000001","channelType":"whatsapp"}`), true)
		f.Add(fmt.Appendf(nil, s.body, `{"id":"US.1349","userId":"US.1349","phoneNumber":""}`), true)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte, sign bool) {
		secret := ""
		if sign {
			secret = testSecret
		}
		w := post(t, b, body, secret)
		switch {
		case !sign && w.Code != http.StatusUnauthorized:
			t.Fatalf("unsigned body answered %d", w.Code)
		case w.Code == http.StatusOK, w.Code == http.StatusBadRequest, w.Code == http.StatusUnauthorized, w.Code == http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		c, err := b.l.Counters(ctx, "fz")
		if err != nil {
			t.Fatal(err)
		}
		if c.Sum() != int64(len(rcpts)) {
			t.Fatalf("counters add up to %d after %q: %v", c.Sum(), body, c.States)
		}
		// Parked events for entries that will never be sent are dropped at once.
		b.now = b.now.Add(time.Hour)
		if _, _, err := b.rc.RetryParked(ctx); err != nil {
			t.Fatal(fmt.Errorf("retry parked: %w", err))
		}
	})
}
