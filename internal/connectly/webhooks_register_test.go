package connectly_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
)

// A registration that already points at Herald's address but filters events (another
// integration's campaign_name filter, reference 5.2) is updated to deliver every event, and
// then Herald's address gets the events of a send the filter would have kept away.
func TestEnsureWebhookClearsFilters(t *testing.T) {
	t.Parallel()
	const business, key, secret = "biz-register", "key-0123456789abcdef", "whsec-register"
	var calls atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(receiver.Close)
	srv, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: business, APIKey: key, RateLimit: -1,
		Webhooks: fakeconnectly.WebhookConfig{Secret: secret}})
	c, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: business, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  connectly.WebhookConfiguration
	}{
		{"campaign filter", connectly.WebhookConfiguration{ChannelTypes: []string{"whatsapp"},
			Filters: []connectly.WebhookFilter{{Field: "campaign_name", Expression: "crm-*"}}}},
		{"another channel", connectly.WebhookConfiguration{ChannelTypes: []string{"sms"}}},
	} {
		if _, err := c.CreateWebhook(ctx, connectly.Webhook{Topic: connectly.TopicDeliveryStatus, Address: receiver.URL, Configuration: &tc.cfg}); err != nil {
			t.Fatal(err)
		}
		res, w, err := c.EnsureWebhook(ctx, connectly.TopicDeliveryStatus, receiver.URL)
		if err != nil || res != connectly.WebhookUpdated || w.Address != receiver.URL {
			t.Fatalf("%s: EnsureWebhook = %s, %+v, %v; want updated", tc.name, res, w, err)
		}
		if w.Configuration != nil && (len(w.Configuration.Filters) > 0 || !strings.Contains(strings.Join(w.Configuration.ChannelTypes, ","), "whatsapp")) {
			t.Fatalf("%s: the registration still holds %+v", tc.name, *w.Configuration)
		}
		if res, _, err := c.EnsureWebhook(ctx, connectly.TopicDeliveryStatus, receiver.URL); err != nil || res != connectly.WebhookUnchanged {
			t.Fatalf("%s: a second EnsureWebhook = %s, %v; want unchanged", tc.name, res, err)
		}
	}
	before := srv.WebhookStats()
	if _, err := c.SendTemplate(ctx, connectly.TemplateMessage{Number: "+15550000001", TemplateName: "promo", Language: "en",
		CampaignName: "spring"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for srv.WebhookStats().Pending > 0 || srv.WebhookStats().Events == before.Events {
		if time.Now().After(deadline) {
			t.Fatalf("webhooks still pending: %+v", srv.WebhookStats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := srv.WebhookStats(); st.Filtered != before.Filtered || calls.Load() == 0 {
		t.Fatalf("after the registration: %d events filtered, %d calls at Herald's address", st.Filtered-before.Filtered, calls.Load())
	}
}

// A Connectly that takes the update but still lists the registration with its filter makes
// EnsureWebhook fail and say what the registration holds, rather than report it done.
func TestEnsureWebhookChecksTheRegistration(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	reg := connectly.Webhook{ID: "wh_1", Topic: connectly.TopicDeliveryStatus, Address: "https://old.example/hook",
		Configuration: &connectly.WebhookConfiguration{Filters: []connectly.WebhookFilter{{Field: "campaign_name", Expression: "crm-*"}}}}
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/webhooks"):
			_ = json.NewEncoder(w).Encode(map[string]any{"entity": map[string]any{"webhooks": []connectly.Webhook{reg}}})
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/update/webhooks/wh_1"):
			var upd struct {
				Address string `json:"address"`
			}
			_ = json.NewDecoder(r.Body).Decode(&upd)
			reg.Address = upd.Address // the address changes; the configuration, here, does not
			_, _ = w.Write([]byte("{}"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(stub.Close)
	c, err := connectly.NewClient(connectly.ClientConfig{BaseURL: stub.URL, BusinessID: "biz", APIKey: "key-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := c.EnsureWebhook(context.Background(), connectly.TopicDeliveryStatus, "https://herald.example/hook")
	if err == nil || res != connectly.WebhookUpdated || !strings.Contains(err.Error(), `filter campaign_name="crm-*"`) {
		t.Fatalf("EnsureWebhook = %s, %v; want updated with an error naming the filter", res, err)
	}
}
