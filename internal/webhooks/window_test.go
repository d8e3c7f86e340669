package webhooks

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/servicewindow"
)

// TestInboundOpensTheServiceWindow posts every inbound shape of reference 5.4
// (testdata/inbound) and finds the customer's window open under every id the event carries,
// closing 24 h after the event's time.
func TestInboundOpensTheServiceWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, body := range inboundBodies(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{Business: "biz-7"})
			ev, err := Parse(body)
			if err != nil || ev.Kind != KindInbound || len(ev.Customer) == 0 {
				t.Fatalf("parse: kind %v customer %v err %v", ev.Kind, ev.Customer, err)
			}
			sent := ev.At
			if sent.IsZero() {
				sent = testNow
			}
			b.now = sent.Add(time.Hour)
			tr := servicewindow.New(b.rdb, func() time.Time { return b.now })
			for _, id := range ev.Customer {
				if _, open, _ := tr.OpenFor(ctx, "biz-7", "", 0, id); open {
					t.Fatalf("%s: open before the message", id)
				}
			}
			if w := post(t, b, body, testSecret); w.Code != http.StatusOK {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			for _, id := range ev.Customer {
				closes, open, err := tr.OpenFor(ctx, "biz-7", "", 0, id)
				if err != nil || !open || !closes.Equal(sent.Add(servicewindow.Length)) {
					t.Errorf("%s: open %v closes %v err %v, want open until %v", id, open, closes, err, sent.Add(servicewindow.Length))
				}
				if _, open, _ := tr.OpenFor(ctx, "another-business", "", 0, id); open {
					t.Errorf("%s: open for another business", id)
				}
			}
		})
	}
}

// TestInboundWindowTimes: the event's own time opens the window; a time in the future is
// taken as the time it arrived; a missing one too; a status event opens nothing.
func TestInboundWindowTimes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, Config{})
	tr := servicewindow.New(b.rdb, func() time.Time { return b.now })
	body := func(from string, ts string) []byte {
		return fmt.Appendf(nil, `{%s"sender":{"id":%q,"channelType":"whatsapp"},"message":{"text":"hi"}}`, ts, from)
	}
	cases := []struct {
		name, from, ts string
		closes         time.Time
	}{
		{"EventTime", "+15550001001", fmt.Sprintf(`"timestamp":"%d",`, testNow.Add(-2*time.Hour).Unix()), testNow.Add(22 * time.Hour)},
		{"FutureIsNow", "+15550001002", fmt.Sprintf(`"timestamp":"%d",`, testNow.Add(5*time.Hour).Unix()), testNow.Add(24 * time.Hour)},
		{"MissingIsNow", "+15550001003", "", testNow.Add(24 * time.Hour)},
	}
	for _, c := range cases {
		if w := post(t, b, body(c.from, c.ts), testSecret); w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", c.name, w.Code, w.Body)
		}
		if closes, open, err := tr.OpenFor(ctx, "", "", 0, c.from); err != nil || !open || !closes.Equal(c.closes) {
			t.Errorf("%s: open %v closes %v err %v, want until %v", c.name, open, closes, err, c.closes)
		}
	}
	// A copy of the undated message delivered again ten hours later leaves its window where
	// its first copy put it: a redelivery must not stretch the window past Meta's.
	first := b.now
	b.now = first.Add(10 * time.Hour)
	if w := post(t, b, body("+15550001003", ""), testSecret); w.Code != http.StatusOK {
		t.Fatal(w.Code)
	}
	if closes, _, _ := tr.OpenFor(ctx, "", "", 0, "+15550001003"); !closes.Equal(first.Add(24 * time.Hour)) {
		t.Errorf("a later copy of an undated message moved the window to %v, want %v", closes, first.Add(24*time.Hour))
	}
	b.now = first
	// An older event after a newer one leaves the window where it was.
	if w := post(t, b, body("+15550001001", fmt.Sprintf(`"timestamp":"%d",`, testNow.Add(-20*time.Hour).Unix())), testSecret); w.Code != http.StatusOK {
		t.Fatal(w.Code)
	}
	if closes, _, _ := tr.OpenFor(ctx, "", "", 0, "+15550001001"); !closes.Equal(testNow.Add(22 * time.Hour)) {
		t.Errorf("an older event moved the window to %v", closes)
	}
	// A delivery status names the customer as recipient: it is no message from them.
	if w := post(t, b, statusBody("", "+15550001004", 0, "01JX", "read", testNow), testSecret); w.Code != http.StatusOK {
		t.Fatal(w.Code)
	}
	if _, open, _ := tr.OpenFor(ctx, "", "", 0, "+15550001004"); open {
		t.Error("a delivery status opened a window")
	}
}

// TestInboundWindowFailureIsRetried: when the window cannot be recorded the webhook is
// answered 503, so Connectly sends it again.
func TestInboundWindowFailureIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.mr.SetError("LOADING Redis is loading the dataset in memory")
	w := post(t, b, []byte(`{"sender":{"id":"+15550001005"},"message":{"text":"hi"}}`), testSecret)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("%d, want 503", w.Code)
	}
}

// TestInboundWindowPerBusinessNumber: a customer opens a window by writing to one business
// number. With two sender numbers configured, an inbound message names the number it was sent
// to in its recipient (every fixture of reference 5.4's shapes does): the window is that
// number's, and a send from the other number is outside it. A message that names no number
// opens a window that counts for a send from either only under windows.scope business.
func TestInboundWindowPerBusinessNumber(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const numberA, numberB = "+16044441234", "+16044445678"
	two := []string{numberA, numberB}
	for name, body := range inboundBodies(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{Business: "biz-7", OwnNumbers: two})
			ev, _ := Parse(body)
			if ev.BusinessNumber() != numberA {
				t.Fatalf("business number %q, want %s (the fixture's recipient)", ev.BusinessNumber(), numberA)
			}
			if w := post(t, b, body, testSecret); w.Code != http.StatusOK {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			tr := servicewindow.New(b.rdb, func() time.Time { return b.now })
			for _, scope := range servicewindow.Scopes {
				tr.SetPolicy(servicewindow.Policy{Scope: scope, Senders: two})
				for _, id := range ev.Customer {
					if _, open, err := tr.OpenFor(ctx, "biz-7", numberA, 0, id); err != nil || !open {
						t.Errorf("%s, %s from A: open %v err %v, want open", scope, id, open, err)
					}
					if _, open, _ := tr.OpenFor(ctx, "biz-7", numberB, 0, id); open {
						t.Errorf("%s, %s from B: open, want closed (the customer wrote to A)", scope, id)
					}
				}
			}
		})
	}
	t.Run("NoNumberNamed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Business: "biz-7", OwnNumbers: two})
		customer := "+15550001009"
		if w := post(t, b, fmt.Appendf(nil, `{"timestamp":"%d","sender":{"id":%q,"channelType":"whatsapp"},"message":{"text":"hi"}}`,
			testNow.Unix(), customer), testSecret); w.Code != http.StatusOK {
			t.Fatal(w.Code)
		}
		tr := servicewindow.New(b.rdb, func() time.Time { return b.now })
		for _, c := range []struct {
			policy servicewindow.Policy
			open   bool
		}{
			{servicewindow.Policy{Senders: two}, false},
			{servicewindow.Policy{Scope: servicewindow.ScopeBusiness, Senders: two}, true},
			{servicewindow.Policy{Senders: two[:1]}, true},
		} {
			tr.SetPolicy(c.policy)
			for _, from := range c.policy.Senders {
				if _, open, err := tr.OpenFor(ctx, "biz-7", from, 0, customer); err != nil || open != c.open {
					t.Errorf("%+v, from %s: open %v err %v, want %v", c.policy, from, open, err, c.open)
				}
			}
		}
	})
	// With no sender numbers configured Herald's sends name no number: a message that names
	// one opens the window every send reads.
	t.Run("NoNumbersConfigured", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Business: "biz-7"})
		customer := "+15550001010"
		if w := post(t, b, fmt.Appendf(nil, `{"sender":{"id":%q},"recipient":{"id":%q},"message":{"text":"hi"}}`,
			customer, numberA), testSecret); w.Code != http.StatusOK {
			t.Fatal(w.Code)
		}
		if _, open, err := servicewindow.New(b.rdb, func() time.Time { return b.now }).OpenFor(ctx, "biz-7", "", 0, customer); err != nil || !open {
			t.Fatalf("open %v err %v, want open", open, err)
		}
	})
}
