package worker

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// TestSenderNumbersWithTheFake runs the whole path: a customer writes to number A (the fake's
// inbound webhook, signed), Herald's receiver records the window, and the worker sends one
// session message with a fallback template from B and one from A, against the fake, which
// keeps windows per number as WhatsApp does.
//
//   - The webhook names A (the fake's default): from B the fallback goes at once, with no
//     session request; from A the session message is taken.
//   - The webhook names no number, windows.scope sender (the default): Herald cannot place
//     the window and counts it for neither: both send the fallback (a template where a
//     session message from A would have gone), and none is refused.
//   - The webhook names no number, windows.scope business: Herald counts the window for
//     both: from A the session message is taken; from B it is refused by the fake, then the
//     fallback goes (the request the default spares).
func TestSenderNumbersWithTheFake(t *testing.T) {
	const business, key, secret = "biz-fake-numbers", "key-0123456789abcdef", "webhook-secret-numbers"
	// Requests to each recipient as the fake recorded them: the kind, and "!" when refused.
	const session, template, refusedSession = fakeconnectly.KindSession, fakeconnectly.KindTemplate, fakeconnectly.KindSession + "!"
	for _, c := range []struct {
		name         string
		omit         bool
		scope        servicewindow.Scope
		fromB, fromA []string
	}{
		{"NamedNumber", false, servicewindow.ScopeSender, []string{template}, []string{session}},
		{"NoNumberSenderScope", true, servicewindow.ScopeSender, []string{template}, []string{template}},
		{"NoNumberBusinessScope", true, servicewindow.ScopeBusiness, []string{refusedSession, template}, []string{session}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			b := setup(t, testConfig())
			policy := servicewindow.Policy{Scope: c.scope, Senders: []string{numberA, numberB}}
			rc, err := webhooks.New(webhooks.Config{Secrets: []string{secret}, Business: business, OwnNumbers: policy.Senders},
				webhooks.Deps{Redis: b.rdb, Logger: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			hooks := httptest.NewServer(rc)
			t.Cleanup(hooks.Close)
			fake, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: business, APIKey: key, RateLimit: -1,
				Webhooks: fakeconnectly.WebhookConfig{URL: hooks.URL + "/", Secret: secret, NameBusinessNumber: !c.omit}})
			client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: business, APIKey: key})
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig()
			cfg.Limits.BusinessID, cfg.Windows = business, policy
			b.worker = New(cfg, Deps{Redis: b.rdb, Sender: client, Logger: zerolog.Nop()})

			ps := seedRun(t, b, "run-fake-numbers", ledger.AtMostOnce, 2)
			for i := range ps {
				ps[i].Params = []connectly.Parameter{{Name: "body_1", Value: "Ana"}}
			}
			// Both recipients write to A; Herald learns it from the webhook.
			tr := servicewindow.New(b.rdb, nil)
			tr.SetPolicy(servicewindow.Policy{Scope: servicewindow.ScopeBusiness, Senders: policy.Senders})
			for _, p := range ps {
				if _, err := fake.InboundTo(p.To, numberA, fakeconnectly.Reply{Text: "Hi", Shape: fakeconnectly.ReplyText}); err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(10 * time.Second)
				for {
					if w, err := tr.Lookup(ctx, business, numberA, p.To); err == nil && w.Open {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: the receiver recorded no window", p.To)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			fromB := sessionPayload(t, from(numberB, ps)[:1][0], true)
			fromA := sessionPayload(t, from(numberA, ps)[1:][0], true)
			for _, p := range []campaigns.SendPayload{fromB, fromA} {
				if err := handle(t, b, p); err != nil {
					t.Fatalf("from %s: %v", p.Sender, err)
				}
			}
			requests := map[string][]string{}
			for _, r := range fake.Received() {
				k := r.Kind
				if !r.Accepted() {
					k += "!"
				}
				requests[r.Number] = append(requests[r.Number], k)
			}
			if got := requests[fromB.To]; !slices.Equal(got, c.fromB) {
				t.Errorf("requests from B: %v, want %v", got, c.fromB)
			}
			if got := requests[fromA.To]; !slices.Equal(got, c.fromA) {
				t.Errorf("requests from A: %v, want %v", got, c.fromA)
			}
			for _, p := range []campaigns.SendPayload{fromB, fromA} {
				if e := entryOf(t, b, p); e.Attempts != 1 || e.MessageID == "" {
					t.Errorf("%s: %+v, want sent after one attempt", p.To, e)
				}
			}
		})
	}
}
