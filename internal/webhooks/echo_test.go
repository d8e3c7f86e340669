package webhooks

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// TestReceiverEchoesRecordNothing: a webhook registered with configuration.echo (reference
// 5.2) also gets the business's own outbound messages on the messages topic. The reference
// shows no echo body; an echo is the inbound form with the parties turned around (the business
// sends, the customer receives) and, for Herald's messages, Herald's callbackData. Before,
// the receiver took such an echo for the customer writing: it opened the business number's
// window, suppressed it when the message said STOP, counted a reply in the run and handed it
// to the follow-ups, where an `any` rule (or a keyword in Herald's own text) sent a follow-up
// to a customer who had written nothing.
func TestReceiverEchoesRecordNothing(t *testing.T) {
	t.Parallel()
	const (
		business = "biz-7"
		own      = "+14155550100"
		customer = "+5511999990001"
	)
	cb := ledger.Address{Run: "promo-1", Recipient: customer, Bucket: 3}
	body := func(sender, recipient string, withCallback bool) []byte {
		extra := ""
		if withCallback {
			extra = fmt.Sprintf(`,"callbackData":{"herald_run":%q,"herald_to":%q,"herald_b":%d}`, cb.Run, cb.Recipient, cb.Bucket)
		}
		return fmt.Appendf(nil, `{"timestamp":"%d","sender":{"id":%q,"channelType":"whatsapp"},`+
			`"recipient":{"id":%q,"channelType":"whatsapp"},"message":{"id":"m-%s","text":"Hi Ana! Reply STOP to opt out"}%s}`,
			testNow.Unix(), sender, recipient, sender, extra)
	}
	tests := []struct {
		name string
		cfg  Config
		body []byte
		echo bool
	}{
		{"FromOwnNumber", Config{OwnNumbers: []string{own}}, body(own, customer, false), true},
		{"ToTheCallbacksCustomer", Config{}, body(own, customer, true), true},
		{"FromTheBusinessID", Config{Business: business}, body(business, customer, false), true},
		// A customer's reply is addressed to the business: it is no echo, callbackData or not.
		{"CustomersReply", Config{OwnNumbers: []string{own}, Business: business}, body(customer, own, true), false},
		{"CustomersPlainText", Config{OwnNumbers: []string{own}, Business: business}, body(customer, own, false), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			mr := miniredis.RunT(t)
			rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { rdb.Close() })
			h := &recordingHandler{run: cb.Run}
			cfg := tc.cfg
			cfg.Secrets, cfg.Now = []string{testSecret}, func() time.Time { return testNow }
			rc, err := New(cfg, Deps{Redis: rdb, Logger: zerolog.Nop(), Replies: h})
			if err != nil {
				t.Fatal(err)
			}
			if w := post(t, &testBundle{mr: mr, rdb: rdb, rc: rc, now: testNow}, tc.body, testSecret); w.Code != http.StatusOK {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			handled := len(h.got) > 0
			windows := servicewindow.New(rdb, func() time.Time { return testNow })
			windows.SetPolicy(servicewindow.Policy{Senders: cfg.OwnNumbers})
			opened := false
			for _, id := range []string{own, customer, business} {
				if _, open, _ := windows.OpenFor(ctx, cfg.Business, own, 0, id); open {
					opened = true
				}
			}
			replies, _ := rdb.HGet(ctx, rkeys.Delivery(cb.Run), "replies").Int()
			suppressed, err := ledger.New(rdb, nil).Suppressed(ctx, []string{own, customer})
			if err != nil {
				t.Fatal(err)
			}
			if tc.echo {
				if handled || opened || replies != 0 || suppressed[0] || suppressed[1] {
					t.Fatalf("echo recorded: handed to the follow-ups %v, a window opened %v, replies %d, suppressed %v",
						handled, opened, replies, suppressed)
				}
				return
			}
			if !handled || !opened || replies != 1 {
				t.Fatalf("customer's message: handed to the follow-ups %v, window opened %v, replies %d; want all",
					handled, opened, replies)
			}
		})
	}
}
