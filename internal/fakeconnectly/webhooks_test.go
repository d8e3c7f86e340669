package fakeconnectly

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/connectly"
)

// hookSink is a webhook receiver that records every call and can refuse the first ones.
type hookSink struct {
	mu      sync.Mutex
	calls   []hookCall
	refuse  int // answer 503 to this many calls first
	badSigs int
	secret  string
}

type hookCall struct {
	body map[string]any
	ct   string
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if Sign(body, h.secret) != r.Header.Get("X-Connectly-Hmac-Sha256") {
		h.badSigs++
	}
	if h.refuse > 0 {
		h.refuse--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	h.calls = append(h.calls, hookCall{body: m, ct: r.Header.Get("Content-Type")})
}

func (h *hookSink) snapshot() []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookCall(nil), h.calls...)
}

// waitIdle polls until the fake has no webhook call pending.
func waitIdle(t *testing.T, s *Server) WebhookStats {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := s.WebhookStats()
		if st.Pending == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhooks still pending: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sendN(t *testing.T, base string, n int) {
	t.Helper()
	// The sends carry a campaignName, so that the fake's events echo it as campaign metadata.
	c, err := connectly.NewClient(connectly.ClientConfig{BaseURL: base, BusinessID: testBusiness, APIKey: testKey, SendCampaignName: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		_, err := c.SendTemplate(context.Background(), connectly.TemplateMessage{
			Number: fmt.Sprintf("+1555000%04d", i), TemplateName: "t", Language: "en", CampaignName: "spring",
			CallbackData: json.RawMessage(fmt.Sprintf(`{"herald_run":"r","herald_to":"+1555000%04d","herald_b":0}`, i)),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestWebhookEmission(t *testing.T) {
	t.Parallel()

	t.Run("SignedEventsFollowEachFate", func(t *testing.T) {
		t.Parallel()
		sink := &hookSink{secret: "s3", refuse: 3}
		hs := httptest.NewServer(sink)
		t.Cleanup(hs.Close)
		s, base := StartForTest(t, Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1, Webhooks: WebhookConfig{
			URL: hs.URL, Secret: "s3", Seed: 7, DuplicatePercent: 30, ReorderPercent: 50,
			Fates: []Fate{
				{Suffix: "0", Status: HookDeliveryFailed, Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
				{Suffix: "1", Status: HookSent}, {Suffix: "2", Status: HookDelivered},
			},
			Replies: []Reply{{Percent: 100, Salt: "r", Button: "Yes", Payload: "YES"}},
		}})
		sendN(t, base, 40)
		st := waitIdle(t, s)
		if st.GaveUp != 0 || st.Retries != 3 || st.Delivered != st.Events || sink.badSigs != 0 {
			t.Fatalf("stats %+v, %d bad signatures", st, sink.badSigs)
		}
		calls := sink.snapshot()
		if len(calls) != st.Events {
			t.Fatalf("%d calls for %d events", len(calls), st.Events)
		}
		seen := map[string]int{}
		topLevel, nested := 0, 0
		for _, c := range calls {
			if c.ct != "text/plain; charset=utf-8" {
				t.Fatalf("content type %q", c.ct)
			}
			if su, ok := c.body["statusUpdate"].(map[string]any); ok {
				seen[su["status"].(string)]++
				if _, ok := c.body["timestamp"].(string); !ok {
					t.Fatalf("timestamp is not a string: %v", c.body)
				}
				if c.body["callbackData"] == nil {
					t.Fatal("status event without callbackData")
				}
				if m, ok := c.body["metadata"].(map[string]any); ok && m["campaign_name"] == "spring" {
					topLevel++
				} else if m, ok := su["metadata"].(map[string]any); ok && m["campaignName"] == "spring" {
					nested++
				}
				if su["status"] == HookDeliveryFailed {
					if e, _ := su["error"].(map[string]any); e["code"] != "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT" {
						t.Fatalf("failure without its code: %v", su)
					}
				}
			} else if c.body["buttonResponse"] != nil {
				seen["reply"]++
			}
		}
		if topLevel == 0 || nested == 0 {
			t.Fatalf("campaign metadata in one place only: %d top-level, %d nested", topLevel, nested)
		}
		if seen[HookSent] < 40 || seen[HookDeliveryFailed] < 4 || seen[HookRead] < 24 || seen["reply"] < 24 || st.Events <= 40+4+28+24+24 {
			t.Fatalf("events by status %v (%d events: no duplicates?)", seen, st.Events)
		}
		want := map[byte]string{'0': HookDeliveryFailed, '1': HookSent, '2': HookDelivered}
		for _, o := range s.WebhookOutcomes() {
			w := want[o.Number[len(o.Number)-1]]
			if w == "" {
				w = HookRead
			}
			if o.Planned != w || o.Highest != w {
				t.Errorf("%s: planned %s, highest %s, want %s", o.Number, o.Planned, o.Highest, w)
			}
		}
	})

	t.Run("NoSecretNoCalls", func(t *testing.T) {
		t.Parallel()
		sink := &hookSink{secret: ""}
		hs := httptest.NewServer(sink)
		t.Cleanup(hs.Close)
		s := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey, Webhooks: WebhookConfig{URL: hs.URL}})
		base, err := s.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sendN(t, base, 3)
		if st := s.WebhookStats(); st.Events != 0 {
			t.Fatalf("stats %+v", st)
		}
	})

	t.Run("InvalidConfig", func(t *testing.T) {
		t.Parallel()
		for _, c := range []WebhookConfig{
			{Fates: []Fate{{Status: "bounced"}}}, {Replies: []Reply{{Percent: 5}}}, {DuplicatePercent: 101}, {URL: "ftp://x"},
		} {
			if _, err := New(Config{BusinessID: testBusiness, APIKey: testKey, Webhooks: c}); err == nil {
				t.Errorf("%+v accepted", c)
			}
		}
	})
}

func newTestServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestWebhookRegistration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := &hookSink{secret: "k"}, &hookSink{secret: "k"}
	ha, hb := httptest.NewServer(a), httptest.NewServer(b)
	t.Cleanup(ha.Close)
	t.Cleanup(hb.Close)
	s := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey, Webhooks: WebhookConfig{Secret: "k"}})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := connectly.NewClient(connectly.ClientConfig{BaseURL: base, BusinessID: testBusiness, APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	// No address yet: events have nowhere to go.
	sendN(t, base, 1)
	if st := waitIdle(t, s); st.NoAddress != 3 {
		t.Fatalf("stats %+v", st)
	}
	for _, step := range []struct {
		topic, addr string
		want        connectly.EnsureResult
	}{
		{connectly.TopicDeliveryStatus, ha.URL, connectly.WebhookCreated},
		{connectly.TopicMessages, ha.URL, connectly.WebhookCreated},
		{connectly.TopicDeliveryStatus, ha.URL, connectly.WebhookUnchanged},
		{connectly.TopicDeliveryStatus, hb.URL, connectly.WebhookUpdated},
	} {
		got, w, err := c.EnsureWebhook(ctx, step.topic, step.addr)
		if err != nil || got != step.want || w.Address != step.addr || w.ID == "" {
			t.Fatalf("EnsureWebhook(%s, %s) = %s, %+v, %v; want %s", step.topic, step.addr, got, w, err, step.want)
		}
	}
	list, err := c.ListWebhooks(ctx)
	if err != nil || len(list) != 2 || list[0].Topic != connectly.TopicDeliveryStatus || list[0].Address != hb.URL || list[1].Address != ha.URL {
		t.Fatalf("ListWebhooks = %+v, %v", list, err)
	}
	// The listing names the business (reference 5.2: {"entity": {"businessId": ...}}).
	status, _, raw := request(t, http.MethodGet, base+"/v1/businesses/"+testBusiness+"/webhooks", testKey, "")
	var listing struct {
		Entity struct {
			BusinessID string `json:"businessId"`
		} `json:"entity"`
	}
	if status != http.StatusOK || json.Unmarshal(raw, &listing) != nil || listing.Entity.BusinessID != testBusiness {
		t.Fatalf("listing %d %s, want the business id %s", status, raw, testBusiness)
	}
	sendN(t, base, 1)
	waitIdle(t, s)
	if n := len(b.snapshot()); n != 3 {
		t.Fatalf("the updated address got %d calls, want 3", n)
	}
	if err := c.DeleteWebhook(ctx, list[0].ID); err != nil {
		t.Fatal(err)
	}
	var ae *connectly.Error
	if err := c.DeleteWebhook(ctx, list[0].ID); !asError(err, &ae) || ae.StatusCode != http.StatusNotFound {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := c.CreateWebhook(ctx, connectly.Webhook{Topic: "topic_unspecified", Address: ha.URL}); !asError(err, &ae) || ae.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad topic: %v", err)
	}
	bad, err := connectly.NewClient(connectly.ClientConfig{BaseURL: base, BusinessID: testBusiness, APIKey: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.ListWebhooks(ctx); !asError(err, &ae) || ae.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong key: %v", err)
	}
	// Wrong method on a registration path.
	resp, err := http.Post(base+"/v1/businesses/"+testBusiness+"/webhooks", "application/json", bytes.NewReader([]byte("{}")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST webhooks: %d", resp.StatusCode)
	}
}

func asError(err error, target **connectly.Error) bool {
	e, ok := err.(*connectly.Error)
	if ok {
		*target = e
	}
	return ok
}
