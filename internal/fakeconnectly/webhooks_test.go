package fakeconnectly

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
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

// waitIdle polls until the fake has no webhook call pending, with a longer deadline than
// settled's, for the larger runs.
func waitIdle(t *testing.T, s *Server) WebhookStats {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		st := s.WebhookStats()
		if st.Pending == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhooks still pending: %+v", st)
		}
		<-tick.C
	}
}

// sendN sends n template messages, to +15550000000 and on, each accepted.
func sendN(t *testing.T, base string, n int) {
	t.Helper()
	c := newClient(t, base)
	for i := range n {
		// The sends carry a campaignName, so that the fake's events echo it as campaign
		// metadata, and a callbackData.
		c.accept(t, TemplateMessage{
			Number: fmt.Sprintf("+1555000%04d", i), TemplateName: "t", Language: "en", CampaignName: "spring",
			CallbackData: json.RawMessage(fmt.Sprintf(`{"run":"r","to":"+1555000%04d","b":0}`, i)),
		})
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
			Replies: []Reply{{Percent: 100, Salt: "r", Template: "t", Button: "Yes", Payload: "YES"}},
		}})
		sendN(t, base, 40)
		st := settled(t, s)
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

// TestWebhookRegistration: the registration endpoints of reference 5.2 over the wire: create
// ({"entity": ...} with an id, inferred), one address per topic (a second create replaces the
// first, 5.1), update of the address only, the listing {"entity": {"businessId", "webhooks"}},
// delete ({}, then 404), and the refusals; events go to the topic's registered address.
func TestWebhookRegistration(t *testing.T) {
	t.Parallel()
	a, b := &hookSink{secret: "k"}, &hookSink{secret: "k"}
	ha, hb := httptest.NewServer(a), httptest.NewServer(b)
	t.Cleanup(ha.Close)
	t.Cleanup(hb.Close)
	s := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey, Webhooks: WebhookConfig{Secret: "k"}})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := base + "/v1/businesses/" + testBusiness
	// entity decodes a 200 answer {"entity": <webhook>}.
	entity := func(what string, status int, raw []byte) Webhook {
		t.Helper()
		var m struct {
			Entity Webhook `json:"entity"`
		}
		if status != http.StatusOK || json.Unmarshal(raw, &m) != nil || m.Entity.ID == "" {
			t.Fatalf("%s: %d %s, want 200 {\"entity\": {\"id\": ...}}", what, status, raw)
		}
		return m.Entity
	}
	listing := func() (string, []Webhook) {
		t.Helper()
		status, _, raw := request(t, http.MethodGet, api+"/webhooks", testKey, "")
		var m struct {
			Entity struct {
				BusinessID string    `json:"businessId"`
				Webhooks   []Webhook `json:"webhooks"`
			} `json:"entity"`
		}
		if status != http.StatusOK || json.Unmarshal(raw, &m) != nil {
			t.Fatalf("listing: %d %s", status, raw)
		}
		return m.Entity.BusinessID, m.Entity.Webhooks
	}
	// No address yet: events have nowhere to go.
	sendN(t, base, 1)
	if st := settled(t, s); st.NoAddress != 3 {
		t.Fatalf("stats %+v", st)
	}
	if business, list := listing(); business != testBusiness || list == nil || len(list) != 0 {
		t.Fatalf("empty listing: %q %v, want the business id and []", business, list)
	}
	status, _, raw := request(t, http.MethodPost, api+"/create/webhooks", testKey, `{"topic":"delivery_status","address":"`+hb.URL+`"}`)
	first := entity("create delivery_status", status, raw)
	if first.Topic != TopicDeliveryStatus || first.Address != hb.URL || first.Type != "custom" {
		t.Errorf("created %+v, want type custom by default", first)
	}
	status, _, raw = request(t, http.MethodPost, api+"/create/webhooks", testKey, `{"topic":"messages","address":"`+ha.URL+`"}`)
	messages := entity("create messages", status, raw)
	// A second registration for a topic replaces the first.
	status, _, raw = request(t, http.MethodPost, api+"/create/webhooks", testKey, `{"topic":"delivery_status","address":"`+ha.URL+`"}`)
	second := entity("create delivery_status again", status, raw)
	if second.ID == first.ID {
		t.Errorf("the replacing registration kept the id %s", first.ID)
	}
	// Update changes the address only.
	status, _, raw = request(t, http.MethodPut, api+"/update/webhooks/"+second.ID, testKey, `{"address":"`+hb.URL+`"}`)
	if upd := entity("update", status, raw); upd.ID != second.ID || upd.Topic != TopicDeliveryStatus || upd.Address != hb.URL {
		t.Errorf("updated %+v", upd)
	}
	business, list := listing()
	if business != testBusiness || len(list) != 2 || list[0].ID != second.ID || list[0].Address != hb.URL ||
		list[1].ID != messages.ID || list[1].Address != ha.URL {
		t.Fatalf("listing %q %+v", business, list)
	}
	sendN(t, base, 1)
	settled(t, s)
	if n := len(b.snapshot()); n != 3 {
		t.Fatalf("the updated address got %d calls, want 3", n)
	}
	if n := len(a.snapshot()); n != 0 {
		t.Fatalf("the replaced address got %d calls, want 0", n)
	}

	if status, _, raw := request(t, http.MethodDelete, api+"/delete/webhooks/"+second.ID, testKey, ""); status != http.StatusOK || string(raw) != "{}" {
		t.Fatalf("delete: %d %s, want 200 {}", status, raw)
	}
	for _, c := range []struct {
		name, method, path, key, body string
		want                          int
	}{
		{"second delete", http.MethodDelete, "/delete/webhooks/" + second.ID, testKey, "", http.StatusNotFound},
		{"update of a deleted one", http.MethodPut, "/update/webhooks/" + second.ID, testKey, `{"address":"` + ha.URL + `"}`, http.StatusNotFound},
		{"unknown topic", http.MethodPost, "/create/webhooks", testKey, `{"topic":"topic_unspecified","address":"` + ha.URL + `"}`, http.StatusBadRequest},
		{"topic change", http.MethodPut, "/update/webhooks/" + messages.ID, testKey, `{"topic":"delivery_status"}`, http.StatusBadRequest},
		{"wrong key", http.MethodGet, "/webhooks", "wrong", "", http.StatusUnauthorized},
		{"wrong method", http.MethodPost, "/webhooks", testKey, "{}", http.StatusMethodNotAllowed},
	} {
		status, ctype, raw := request(t, c.method, api+c.path, c.key, c.body)
		if status != c.want || ctype != "application/json" {
			t.Errorf("%s: %d %q %s, want %d", c.name, status, ctype, raw, c.want)
			continue
		}
		checkErrorBody(t, raw)
	}
}
