package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// Webhooks in the shapes the provider reference allows, as the fake Connectly sends them
// about the messages the worker sent through it, taken by the real receiver: what each does
// to the recipient's entry, the run's statistics and the suppression list.

const shapesSecret = "whsec-shapes-0123456789"

// hookBench is a worker bundle sending through the real client to a fake Connectly whose
// webhooks reach a real receiver on the same Redis.
type hookBench struct {
	*testBundle
	fake *fakeconnectly.Server
	rc   *webhooks.Receiver
}

// benchOptions adjust a hook bench: the client's configuration, and a handler standing
// between the client and the fake.
type benchOptions struct {
	client func(*connectly.ClientConfig)
	proxy  func(next http.Handler) http.Handler
}

func withHooks(t *testing.T, cfg fakeconnectly.Config, opts benchOptions) *hookBench {
	t.Helper()
	wcfg := testConfig()
	wcfg.Limits.BusinessID = shapesBusiness
	b := setup(t, wcfg)
	return withHooksOn(t, b, cfg, opts)
}

// withHooksOn builds the bench on an existing bundle, whose worker it replaces by one sending
// through the fake.
func withHooksOn(t *testing.T, b *testBundle, cfg fakeconnectly.Config, opts benchOptions) *hookBench {
	t.Helper()
	rc, err := webhooks.New(webhooks.Config{Secrets: []string{shapesSecret}, Business: shapesBusiness},
		webhooks.Deps{Redis: b.rdb, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	hooks := httptest.NewServer(rc)
	t.Cleanup(hooks.Close)
	cfg.BusinessID, cfg.APIKey, cfg.RateLimit = shapesBusiness, shapesKey, -1
	cfg.Webhooks.URL, cfg.Webhooks.Secret = hooks.URL+"/", shapesSecret
	if cfg.Webhooks.Seed == 0 {
		cfg.Webhooks.Seed = 11
	}
	fake, url := fakeconnectly.StartForTest(t, cfg)
	if opts.proxy != nil {
		front := httptest.NewServer(opts.proxy(fake.Handler()))
		t.Cleanup(front.Close)
		url = front.URL
	}
	ccfg := connectly.ClientConfig{BaseURL: url, BusinessID: shapesBusiness, APIKey: shapesKey}
	if opts.client != nil {
		opts.client(&ccfg)
	}
	client, err := connectly.NewClient(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	b.worker.client = client
	return &hookBench{testBundle: b, fake: fake, rc: rc}
}

// settle waits until the fake has no webhook call pending and the receiver no event parked
// (tried again here, as the receiver's loop does every second).
func (h *hookBench) settle(t *testing.T) {
	t.Helper()
	parked := func(ctx context.Context) (int64, error) {
		if _, _, err := h.rc.RetryParked(ctx); err != nil {
			return 0, err
		}
		return h.rc.Parked(ctx)
	}
	if err := h.fake.WaitForWebhooks(t.Context(), parked, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

// sendAll handles every payload, each to an accepted entry.
func (h *hookBench) sendAll(t *testing.T, ps []campaigns.SendPayload) {
	t.Helper()
	for _, p := range ps {
		if err := handle(t, h.testBundle, p); err != nil {
			t.Fatalf("send to %s: %v", p.To, err)
		}
	}
}

// messageOf is the id of the one message the fake took for number.
func (h *hookBench) messageOf(t *testing.T, number string) string {
	t.Helper()
	id := ""
	for _, r := range h.fake.Received() {
		if r.Number == number && r.MessageID != "" {
			if id != "" {
				t.Fatalf("%s: the fake took two messages (%s, %s)", number, id, r.MessageID)
			}
			id = r.MessageID
		}
	}
	if id == "" {
		t.Fatalf("%s: the fake took no message", number)
	}
	return id
}

func (h *hookBench) deliveryStats(t *testing.T, runID string) ledger.DeliveryStats {
	t.Helper()
	d, err := h.ledger.DeliveryStats(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (h *hookBench) suppression(t *testing.T, number string) ledger.Suppression {
	t.Helper()
	ss, err := h.ledger.Suppressions(context.Background(), []string{number})
	if err != nil {
		t.Fatal(err)
	}
	return ss[0]
}

// A delivery_failed's error in every shape the reference allows (4.1: one shape with a send's
// error): Meta's codes as JSON numbers (131056 pair limit, 131050 stopped marketing, 131026
// undeliverable) with other types and messages, details null or left out, fields left out,
// a failure with no sent before it, and the body the fake writes where no code is documented
// (ERROR_CODE_UNSPECIFIED, "", or no code at all). Each recipient ends failed in delivery
// under the code that says most (its class in the statistics), and exactly the opt-out codes
// put them on the suppression list: every message for Connectly's opt-out, marketing only for
// 131050.
func TestDeliveryFailureShapes(t *testing.T) {
	null := json.RawMessage("null")
	type want struct {
		code, class string
		scope       ledger.Scope // "" for no suppression
	}
	cases := []struct {
		name string
		fate fakeconnectly.Fate
		// want is keyed by UncodedBody form; "" holds for every form.
		want map[string]want
	}{
		{"PairLimitNumeric", fakeconnectly.Fate{Code: "131056", NumericCode: true},
			map[string]want{"": {"131056", "throttle", ""}}},
		{"PairLimitNumericFailureOnly", fakeconnectly.Fate{Code: "131056", NumericCode: true, Sequence: []string{fakeconnectly.HookDeliveryFailed}},
			map[string]want{"": {"131056", "throttle", ""}}},
		{"StoppedMarketingNumeric", fakeconnectly.Fate{Code: "131050", NumericCode: true},
			map[string]want{"": {"131050", "permanent", ledger.ScopeMarketing}}},
		{"StoppedMarketingOtherTypeAndMessage", fakeconnectly.Fate{Code: "131050", NumericCode: true, Type: "ERROR_TYPE_INVALID_REQUEST",
			Message: "(#131050) Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business."},
			map[string]want{"": {"131050", "permanent", ledger.ScopeMarketing}}},
		{"StoppedMarketingCodeOnly", fakeconnectly.Fate{Code: "131050", NumericCode: true,
			Omit: []string{"message", "type", "userTitle", "userMessage", "cntTraceId", "details"}},
			map[string]want{"": {"131050", "permanent", ledger.ScopeMarketing}}},
		{"UndeliverableDetailsNull", fakeconnectly.Fate{Code: "131026", NumericCode: true, Details: null},
			map[string]want{"": {"131026", "permanent", ""}}},
		{"UndeliverableNoDetails", fakeconnectly.Fate{Code: "131026", NumericCode: true, Omit: []string{"details"}, Type: "ERROR_TYPE_UNSPECIFIED"},
			map[string]want{"": {"131026", "permanent", ""}}},
		{"OptedOutNoDetails", fakeconnectly.Fate{Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT", Omit: []string{"details"}},
			map[string]want{"": {"ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT", "permanent", ledger.ScopeAll}}},
		{"OptedOutNoType", fakeconnectly.Fate{Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT", Omit: []string{"type"}, Details: null},
			map[string]want{"": {"ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT", "permanent", ledger.ScopeAll}}},
		{"Unspecified", fakeconnectly.Fate{},
			map[string]want{"": {"ERROR_CODE_UNSPECIFIED", "transient", ""}}},
		{"NoCodeButAType", fakeconnectly.Fate{Code: "ERROR_CODE_UNSPECIFIED", Omit: []string{"code"}},
			map[string]want{"": {"ERROR_TYPE_UNSPECIFIED", "transient", ""}}},
		{"NothingSaid", fakeconnectly.Fate{Omit: []string{"code", "type"}},
			map[string]want{"": {"DELIVERY_FAILED", "permanent", ""}}},
		// An error type with no code of its own: the body carries the catch-all code, an empty
		// one or none. The type says more than the catch-all and decides, as on a send.
		{"InvalidRequestType", fakeconnectly.Fate{Code: "ERROR_TYPE_INVALID_REQUEST"},
			map[string]want{"": {"ERROR_TYPE_INVALID_REQUEST", "permanent", ""}}},
		{"TemplateInputInvalidUnspecifiedType", fakeconnectly.Fate{Code: "ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID", Type: "ERROR_TYPE_UNSPECIFIED"},
			map[string]want{"": {"ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID", "permanent", ""}}},
	}
	for _, form := range uncodedForms {
		t.Run(form, func(t *testing.T) {
			const runID = "run-df/20260301T0900Z"
			fates := make([]fakeconnectly.Fate, len(cases))
			h := withHooks(t, fakeconnectly.Config{UncodedBody: form}, benchOptions{})
			ps := bodyParams(seedRun(t, h.testBundle, runID, ledger.AtMostOnce, len(cases)))
			for i, c := range cases {
				f := c.fate
				f.Numbers, f.Status = []string{ps[i].To}, fakeconnectly.HookDeliveryFailed
				fates[i] = f
			}
			if err := h.fake.SetFates(fates); err != nil {
				t.Fatal(err)
			}
			h.sendAll(t, ps)
			h.settle(t)

			byCode, byClass := map[string]int64{}, map[string]int64{}
			for i, c := range cases {
				w, ok := c.want[form]
				if !ok {
					w = c.want[""]
				}
				byCode[w.code]++
				byClass[w.class]++
				p := ps[i]
				e := entryOf(t, h.testBundle, p)
				if e.State != ledger.Failed || e.Code != w.code || e.MessageID != h.messageOf(t, p.To) || e.Attempts != 1 {
					t.Errorf("%s: entry %+v, want failed in delivery with %s (message %s)", c.name, e, w.code, h.messageOf(t, p.To))
				}
				s := h.suppression(t, p.To)
				if s.Scope != w.scope {
					t.Errorf("%s: suppression %+v, want scope %q", c.name, s, w.scope)
				}
			}
			d := h.deliveryStats(t, runID)
			if d.DeliveryFailed != int64(len(cases)) {
				t.Errorf("delivery failures counted %d, want %d", d.DeliveryFailed, len(cases))
			}
			for code, n := range byCode {
				if d.FailedByCode[code] != n {
					t.Errorf("failures by code %v, want %d under %s", d.FailedByCode, n, code)
				}
			}
			for class, n := range byClass {
				if d.FailedByClass[class] != n {
					t.Errorf("failures by class %v, want %d %s", d.FailedByClass, n, class)
				}
			}
			if r := runOf(t, h.testBundle, runID); r.Status != ledger.RunCompleted {
				t.Errorf("run %s, want completed", r.Status)
			}
		})
	}
}

// Statuses in any order and number (reference 5.1 guarantees neither): a failure with no sent
// before it, read with no delivered, delivered before sent, a status twice, read first. Each
// recipient ends at the furthest status it reached (README: "events move each recipient
// forward only"), whatever order the calls arrive in (the fake makes them concurrently), is
// counted once at each level, and gives one time-to-deliver sample when it reached delivered
// or read.
func TestStatusSequences(t *testing.T) {
	const (
		sent, delivered, read, failed = fakeconnectly.HookSent, fakeconnectly.HookDelivered, fakeconnectly.HookRead, fakeconnectly.HookDeliveryFailed
	)
	cases := []struct {
		seq  []string
		want ledger.State
	}{
		{[]string{failed}, ledger.Failed},
		{[]string{read}, ledger.Read},
		{[]string{sent, read}, ledger.Read},
		{[]string{delivered, sent}, ledger.Delivered},
		{[]string{sent, sent, delivered}, ledger.Delivered},
		{[]string{read, delivered, sent}, ledger.Read},
		{[]string{delivered}, ledger.Delivered},
		{[]string{sent}, ledger.Sent},
		{[]string{delivered, delivered, read, read}, ledger.Read},
	}
	const runID = "run-seq/20260301T0900Z"
	h := withHooks(t, fakeconnectly.Config{}, benchOptions{})
	ps := bodyParams(seedRun(t, h.testBundle, runID, ledger.AtMostOnce, len(cases)))
	fates := make([]fakeconnectly.Fate, len(cases))
	for i, c := range cases {
		fates[i] = fakeconnectly.Fate{Numbers: []string{ps[i].To}, Sequence: c.seq}
	}
	if err := h.fake.SetFates(fates); err != nil {
		t.Fatal(err)
	}
	h.sendAll(t, ps)
	h.settle(t)

	var wantSent, wantDelivered, wantRead int64
	for i, c := range cases {
		if e := entryOf(t, h.testBundle, ps[i]); e.State != c.want || e.MessageID != h.messageOf(t, ps[i].To) {
			t.Errorf("%v: entry %+v, want %s", c.seq, e, c.want)
		}
		switch c.want {
		case ledger.Read:
			wantRead++
			fallthrough
		case ledger.Delivered:
			wantDelivered++
			fallthrough
		case ledger.Sent:
			wantSent++
		}
	}
	d := h.deliveryStats(t, runID)
	if d.Sent != wantSent || d.Delivered != wantDelivered || d.Read != wantRead || d.Awaiting != 0 || d.DeliveryFailed != 1 {
		t.Errorf("statistics %+v; want sent %d, delivered %d, read %d, one failure, none awaiting", d, wantSent, wantDelivered, wantRead)
	}
	if d.TimeToDeliver.Samples != wantDelivered {
		t.Errorf("%d time-to-deliver samples, want one per delivered or read recipient (%d)", d.TimeToDeliver.Samples, wantDelivered)
	}
	if r := runOf(t, h.testBundle, runID); r.Status != ledger.RunCompleted {
		t.Errorf("run %s, want completed", r.Status)
	}
}

// Status events lost on Connectly's side (DropPercent): an accepted recipient whose events
// never come stays accepted and the run completes; nothing waits for an event.
func TestDroppedStatusEventsLeaveNothingStuck(t *testing.T) {
	const runID = "run-drop/20260301T0900Z"
	h := withHooks(t, fakeconnectly.Config{Webhooks: fakeconnectly.WebhookConfig{DropPercent: 50}}, benchOptions{})
	ps := bodyParams(seedRun(t, h.testBundle, runID, ledger.AtMostOnce, 40))
	h.sendAll(t, ps)
	h.settle(t)
	st := h.fake.WebhookStats()
	if st.Dropped == 0 || st.Delivered == 0 {
		t.Fatalf("webhook stats %+v: want some events dropped and some delivered", st)
	}
	reached := map[ledger.State]int{}
	for _, p := range ps {
		e := entryOf(t, h.testBundle, p)
		reached[e.State]++
		if e.MessageID != h.messageOf(t, p.To) {
			t.Errorf("%s: entry %+v, want the message the fake took", p.To, e)
		}
	}
	if reached[ledger.Accepted]+reached[ledger.Sent]+reached[ledger.Delivered]+reached[ledger.Read] != len(ps) {
		t.Errorf("states %v: want every recipient accepted or further", reached)
	}
	if r := runOf(t, h.testBundle, runID); r.Status != ledger.RunCompleted {
		t.Errorf("run %s with events lost, want completed", r.Status)
	}
	if n := h.fake.AcceptedCounts(); len(n) != len(ps) {
		t.Errorf("the fake took messages for %d numbers, want %d", len(n), len(ps))
	}
}

// callbackData echoed as a JSON string, or re-encoded with its keys sorted and its numbers as
// floats: the receiver still finds each event's entry (ledger.ParseCallback), for delivered,
// read and failed alike.
func TestCallbackEchoForms(t *testing.T) {
	for _, form := range []string{fakeconnectly.CallbackAsSent, fakeconnectly.CallbackString, fakeconnectly.CallbackReencoded} {
		t.Run(form, func(t *testing.T) {
			const runID = "run-echo/20260301T0900Z"
			h := withHooks(t, fakeconnectly.Config{Webhooks: fakeconnectly.WebhookConfig{CallbackEcho: form}}, benchOptions{})
			// Enough recipients for several ledger buckets (64 a bucket), so herald_b is not
			// always 0.
			ps := bodyParams(seedRun(t, h.testBundle, runID, ledger.AtMostOnce, 200))
			fates := []fakeconnectly.Fate{
				{Numbers: []string{ps[0].To, ps[1].To}, Status: fakeconnectly.HookDeliveryFailed, Code: "131026", NumericCode: true},
				{Numbers: []string{ps[2].To, ps[3].To}, Status: fakeconnectly.HookDelivered},
			}
			if err := h.fake.SetFates(fates); err != nil {
				t.Fatal(err)
			}
			h.sendAll(t, ps)
			h.settle(t)
			buckets := map[int]bool{}
			for i, p := range ps {
				want := ledger.Read
				switch {
				case i < 2:
					want = ledger.Failed
				case i < 4:
					want = ledger.Delivered
				}
				buckets[p.Bucket] = true
				if e := entryOf(t, h.testBundle, p); e.State != want {
					t.Errorf("%s: %+v, want %s", p.To, e, want)
				}
			}
			if len(buckets) < 2 {
				t.Fatalf("recipients in %d ledger bucket(s); the test needs several", len(buckets))
			}
			d := h.deliveryStats(t, runID)
			if d.Read != int64(len(ps)-4) || d.DeliveryFailed != 2 {
				t.Errorf("statistics %+v, want %d read and 2 failed", d, len(ps)-4)
			}
		})
	}
}

// stripCallback is a handler in front of the fake that takes callbackData out of every send
// request, so the fake's webhooks carry none and the receiver finds entries only by the
// campaign name in the event, the customer's number and the message id.
func stripCallback(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) == nil {
			delete(m, "callbackData")
			body, _ = json.Marshal(m)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// The campaign name in a status event at the top (metadata.campaign_name), in the status
// update (statusUpdate.metadata.campaignName with a null top-level metadata), in both, or in
// one or the other by message (reference 5.4: "parse both"): without callbackData, the
// receiver finds each entry by it, and every recipient reaches its last status.
func TestCampaignMetadataPlaces(t *testing.T) {
	for _, place := range []string{fakeconnectly.CampaignMetaTop, fakeconnectly.CampaignMetaStatus, fakeconnectly.CampaignMetaBoth, fakeconnectly.CampaignMetaByID} {
		t.Run(place, func(t *testing.T) {
			const runID = "run-meta/20260301T0900Z"
			h := withHooks(t, fakeconnectly.Config{Webhooks: fakeconnectly.WebhookConfig{CampaignMetadata: place}}, benchOptions{
				client: func(c *connectly.ClientConfig) { c.SendCampaignName = true },
				proxy:  stripCallback,
			})
			ps := bodyParams(seedRun(t, h.testBundle, runID, ledger.AtMostOnce, 12))
			if err := h.fake.SetFates([]fakeconnectly.Fate{
				{Numbers: []string{ps[0].To, ps[1].To}, Status: fakeconnectly.HookDeliveryFailed, Code: "131050", NumericCode: true},
			}); err != nil {
				t.Fatal(err)
			}
			h.sendAll(t, ps)
			h.settle(t)
			for _, r := range h.fake.Received() {
				if len(r.Message.CallbackData) != 0 || r.Message.CampaignName != testCampaign {
					t.Fatalf("the fake got callbackData %s and campaignName %q; want none and %q", r.Message.CallbackData, r.Message.CampaignName, testCampaign)
				}
			}
			for i, p := range ps {
				want := ledger.Read
				if i < 2 {
					want = ledger.Failed
				}
				if e := entryOf(t, h.testBundle, p); e.State != want {
					t.Errorf("%s: %+v, want %s", p.To, e, want)
				}
			}
			if s := h.suppression(t, ps[0].To); s.Scope != ledger.ScopeMarketing {
				t.Errorf("131050 without callbackData: suppression %+v, want marketing", s)
			}
		})
	}
}

// An at-most-once run with unknown.resend_after, against the fake: a send whose answer is
// lost after Connectly took the message leaves the recipient unknown. When every status event
// is lost on Connectly's side (DropPercent 100) nothing settles it, so after the quiet period
// it is sent once more (the documented duplicate: the fake took it twice) and the run
// completes; when the events come they settle it and it is never resent.
func TestLostAnswerAndDroppedEventsResendOnce(t *testing.T) {
	for _, drop := range []float64{100, 0} {
		t.Run(map[float64]string{100: "EventsDropped", 0: "EventsCome"}[drop], func(t *testing.T) {
			rb := setupResend(t)
			rb.worker.cfg.Limits.BusinessID = shapesBusiness
			h := withHooksOn(t, rb.testBundle, fakeconnectly.Config{Webhooks: fakeconnectly.WebhookConfig{DropPercent: drop}}, benchOptions{})
			const runID = "run-lost/20260301T0900Z"
			ps := bodyParams(seedRunWith(t, h.testBundle, ledger.Run{ID: runID, Delivery: ledger.AtMostOnce, ResendAfter: quietPeriod}, "+1555", 3))
			lost := ps[0]
			h.fake.SetRules([]fakeconnectly.Rule{{Numbers: []string{lost.To}, LoseResponse: true, Times: 1}})
			h.sendAll(t, ps)
			h.settle(t)

			e := entryOf(t, h.testBundle, lost)
			if drop == 0 {
				if e.State != ledger.Read || e.MessageID != h.messageOf(t, lost.To) {
					t.Fatalf("lost answer, events came: %+v, want read with the fake's message id", e)
				}
			} else if e.State != ledger.Unknown {
				t.Fatalf("lost answer, events dropped: %+v, want unknown", e)
			}
			rb.clock.Advance(quietPeriod + time.Second)
			n := rb.sweep(t, rb.worker)
			pending := rb.pending(t)
			if drop == 0 {
				if n != 0 || len(pending) != 0 {
					t.Fatalf("settled by its events, yet %d resent (%d tasks)", n, len(pending))
				}
			} else {
				if n != 1 || len(pending) != 1 {
					t.Fatalf("swept %d (%d tasks), want the one resend", n, len(pending))
				}
				if err := rb.runTask(t, pending[0]); err != nil {
					t.Fatalf("resend: %v", err)
				}
				if n := rb.sweep(t, rb.worker); n != 0 {
					t.Fatalf("a second sweep resent %d", n)
				}
			}
			wantTaken := map[float64]int{100: 2, 0: 1}[drop]
			if got := h.fake.AcceptedCount(lost.To); got != wantTaken {
				t.Errorf("the fake took %d messages for the lost answer's recipient, want %d", got, wantTaken)
			}
			for _, p := range ps[1:] {
				if got := h.fake.AcceptedCount(p.To); got != 1 {
					t.Errorf("%s: taken %d times, want 1", p.To, got)
				}
			}
			if e := entryOf(t, h.testBundle, lost); drop == 100 && e.State != ledger.Accepted {
				t.Errorf("after the resend: %+v, want accepted", e)
			}
			if r := runOf(t, h.testBundle, runID); r.Status != ledger.RunCompleted {
				t.Errorf("run %s, want completed", r.Status)
			}
		})
	}
}

// Inbound messages with "topic": "messages" (WebhookConfig.InboundTopic) and the top-level
// "attachments": [] and "location": null of some documented examples (Reply.TopLevelEmpty), in
// every inbound shape, with callbackData echoed as sent, as a string or re-encoded: each is
// taken as the customer's message (their window opens), a STOP in any shape that carries
// words suppresses them for every message, and each reply that names the run's message
// (callbackData) counts once in the run, a tap under its button.
func TestInboundShapesWithTopicAndTopLevelEmpties(t *testing.T) {
	for _, echo := range []string{fakeconnectly.CallbackAsSent, fakeconnectly.CallbackString, fakeconnectly.CallbackReencoded} {
		t.Run(echo, func(t *testing.T) {
			ctx := context.Background()
			const runID = "run-inbound/20260301T0900Z"
			h := withHooks(t, fakeconnectly.Config{Webhooks: fakeconnectly.WebhookConfig{InboundTopic: true, CallbackEcho: echo,
				// Replies in every shape, whatever the message shows: the receiver is under test.
				TapUnknownTemplates: true}}, benchOptions{})
			shapes := fakeconnectly.InboundShapes
			ps := bodyParams(seedRun(t, h.testBundle, runID, ledger.AtMostOnce, 2*len(shapes)))
			stoppers, tappers := ps[:len(shapes)], ps[len(shapes):]
			var replies []fakeconnectly.Reply
			for i, s := range shapes {
				replies = append(replies,
					fakeconnectly.Reply{Numbers: []string{stoppers[i].To}, Text: "STOP", Shape: s, TopLevelEmpty: true},
					fakeconnectly.Reply{Numbers: []string{tappers[i].To}, Button: "Yes", Payload: "YES", Shape: s, TopLevelEmpty: true})
			}
			if err := h.fake.SetReplies(replies); err != nil {
				t.Fatal(err)
			}
			h.sendAll(t, ps)
			records := map[string]fakeconnectly.InboundRecord{}
			testredis.WaitUntil(t, 20*time.Second, "every reply delivered", func() bool {
				for _, p := range ps {
					rs := h.fake.RepliesFrom(p.To)
					if len(rs) != 1 || !rs[0].Delivered {
						return false
					}
					records[p.To] = rs[0]
				}
				return true
			})
			h.settle(t)

			tracker := servicewindow.New(h.rdb, nil)
			var withCallback, optOuts, taps int64
			for i, s := range shapes {
				for _, p := range []campaigns.SendPayload{stoppers[i], tappers[i]} {
					rec := records[p.To]
					if rec.Shape != s {
						t.Fatalf("%s: the fake sent shape %q, want %q", p.To, rec.Shape, s)
					}
					w, err := tracker.Lookup(ctx, shapesBusiness, "", p.To)
					if err != nil || !w.Open {
						t.Errorf("%s (%s): window %+v, %v; want open: the message was taken as inbound", p.To, s, w, err)
					}
					if len(rec.CallbackData) > 0 {
						withCallback++
					}
				}
				// The shapes that carry no words: a file, a location, a reaction (its emoji).
				worded := s != fakeconnectly.ReplyMedia && s != fakeconnectly.ReplyLocation && s != fakeconnectly.ReplyReaction
				sup := h.suppression(t, stoppers[i].To)
				if worded && !sup.Covers(ledger.ScopeAll) {
					t.Errorf("STOP as %s: suppression %+v, want every message", s, sup)
				}
				if !worded && sup.Listed() {
					t.Errorf("%s with no words: suppression %+v, want none", s, sup)
				}
				if worded && len(records[stoppers[i].To].CallbackData) > 0 {
					optOuts++
				}
				if sup := h.suppression(t, tappers[i].To); sup.Listed() {
					t.Errorf("Yes as %s: suppression %+v, want none", s, sup)
				}
				switch s {
				case fakeconnectly.ReplyButtonLegacy, fakeconnectly.ReplyButtonContext, fakeconnectly.ReplyButtonTop, fakeconnectly.ReplyButtonBare:
					if len(records[tappers[i].To].CallbackData) > 0 {
						taps++
					}
				}
			}
			if withCallback == 0 || taps == 0 {
				t.Fatalf("%d replies with callbackData, %d taps: the test proves nothing", withCallback, taps)
			}
			d := h.deliveryStats(t, runID)
			if d.Replies != withCallback || d.OptOutsReceived != optOuts || d.ButtonReplies["Yes"] != taps {
				t.Errorf("run statistics: %d replies, %d opt-outs, taps %v; want %d, %d, %d Yes (each reply with callbackData once)",
					d.Replies, d.OptOutsReceived, d.ButtonReplies, withCallback, optOuts, taps)
			}
		})
	}
}

// A template whose every message fails at delivery (Template.DeliveryFailure) with the rest of
// its error in each shape: Meta's paused-template code as a JSON number with details null, and
// an error type with no code of its own. Each recipient sent is failed in delivery under the
// code that says most, with that code's class. A code that stops the run (the template paused
// or deleted) pauses it at its first failure: the sends after it are held, neither sent nor
// failed, so no more messages go out to fail the same way.
func TestTemplateDeliveryFailureShapes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		tpl         fakeconnectly.Template
		code, class string
	}{
		{"PausedNumeric", fakeconnectly.Template{DeliveryFailure: "132015", DeliveryNumericCode: true, DeliveryDetails: json.RawMessage("null"),
			DeliveryType: "ERROR_TYPE_INVALID_REQUEST", DeliveryMessage: "(#132015) Template is paused"}, "132015", "stop-run"},
		{"TypeOnly", fakeconnectly.Template{DeliveryFailure: "ERROR_TYPE_INVALID_REQUEST", DeliveryOmit: []string{"details"}},
			"ERROR_TYPE_INVALID_REQUEST", "permanent"},
		{"DeletedNoType", fakeconnectly.Template{DeliveryFailure: "ERROR_CODE_MESSAGE_TEMPLATE_DELETED", DeliveryOmit: []string{"type", "message"}},
			"ERROR_CODE_MESSAGE_TEMPLATE_DELETED", "stop-run"},
	} {
		for _, form := range uncodedForms {
			t.Run(tc.name+"/"+form, func(t *testing.T) {
				const runID = "run-tpl/20260301T0900Z"
				tpl := tc.tpl
				tpl.Name, tpl.Language = "spring_sale", "en"
				h := withHooks(t, fakeconnectly.Config{UncodedBody: form, Templates: []fakeconnectly.Template{tpl}}, benchOptions{})
				ps := bodyParams(seedRun(t, h.testBundle, runID, ledger.AtMostOnce, 4))
				stops := tc.class == "stop-run"
				for _, p := range ps {
					h.settle(t) // each failure is in before the next send
					if err := handle(t, h.testBundle, p); err != nil {
						if !stops || !strings.Contains(err.Error(), "run paused") {
							t.Fatalf("send to %s: %v", p.To, err)
						}
					}
				}
				h.settle(t)
				took := map[string]int{}
				for _, r := range h.fake.Received() {
					if r.MessageID != "" {
						took[r.Number]++
					}
				}
				failed := 0
				for _, p := range ps {
					e := entryOf(t, h.testBundle, p)
					switch {
					case e.State == ledger.Failed && e.Code == tc.code && took[p.To] == 1 && e.MessageID == h.messageOf(t, p.To):
						failed++
					case stops && e.State == ledger.Queued && took[p.To] == 0:
						// held: the run was paused before its send
					default:
						t.Errorf("%s: %+v, want failed in delivery with %s", p.To, e, tc.code)
					}
				}
				want := 4
				if stops {
					want = 1
					r, err := h.ledger.GetRun(t.Context(), runID)
					if err != nil || r.Status != ledger.RunPaused || !strings.Contains(r.PauseReason, tc.code) {
						t.Errorf("run %+v (%v), want paused for %s", r, err, tc.code)
					}
				}
				if d := h.deliveryStats(t, runID); failed != want || d.FailedByCode[tc.code] != int64(want) || d.FailedByClass[tc.class] != int64(want) {
					t.Errorf("%d failed, statistics %+v; want %d failures %s of class %s", failed, d, want, tc.code, tc.class)
				}
			})
		}
	}
}
