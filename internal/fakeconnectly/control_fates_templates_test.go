package fakeconnectly

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestControlFates: POST /_fake/fates gives a fake in another process its messages' fates
// (the delivery_failed of reference 5.4 with its 4.1 error, code and details), for the
// messages accepted from then on; GET reads them back, and bad fates are a 400.
func TestControlFates(t *testing.T) {
	t.Parallel()
	const failing, fine = "+15550000501", "+15550000502"
	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 1}})
	t.Cleanup(func() { s.Close() })
	fates := `[{"numbers":["` + failing + `"],"status":"delivery_failed","code":"ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT","details":{"metaCode":131050}}]`
	if a := postTo(t, base+"/_fake/fates", fates); a.status != 200 {
		t.Fatalf("fates: %d %s", a.status, a.body)
	}
	remote := Remote{BaseURL: base}
	got, err := remote.Fates(context.Background())
	if err != nil || len(got) != 1 || got[0].Status != HookDeliveryFailed || got[0].Code != "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT" ||
		string(got[0].Details) != `{"metaCode":131050}` {
		t.Fatalf("fates read back: %+v, %v", got, err)
	}
	for _, n := range []string{failing, fine} {
		if a := sendRaw(t, base, n); a.status != 200 {
			t.Fatalf("send %s: %d", n, a.status)
		}
	}
	settled(t, s)
	calls := sink.snapshot()
	failed := statusEvents(eventsFor(calls, failing))[HookDeliveryFailed]
	if len(failed) != 1 {
		t.Fatalf("%d delivery_failed events for %s", len(failed), failing)
	}
	su := failed[0].body["statusUpdate"].(map[string]any)
	e, _ := su["error"].(map[string]any)
	if e["code"] != "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT" || e["details"].(map[string]any)["metaCode"] != float64(131050) {
		t.Errorf("error %v", e)
	}
	if byStatus := statusEvents(eventsFor(calls, fine)); len(byStatus[HookRead]) != 1 || len(byStatus[HookDeliveryFailed]) != 0 {
		t.Errorf("%s: events %v, want read", fine, byStatus)
	}

	if err := remote.SetFates(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got := s.Fates(); len(got) != 0 {
		t.Errorf("fates after clearing: %+v", got)
	}
	for _, bad := range []string{`[{"status":"bounced"}]`, `[{"status":"read","percent":101}]`, `[{"status":"delivery_failed","details":[1]}]`, `[{"state":"read"}]`} {
		if a := postTo(t, base+"/_fake/fates", bad); a.status != 400 {
			t.Errorf("fates %s: %d %s, want 400", bad, a.status, a.body)
		}
	}
	_, plain := newFake(t, Config{})
	if a := postTo(t, plain+"/_fake/fates", `[]`); a.status != 400 || !strings.Contains(string(a.body), "secret") {
		t.Errorf("fates without webhooks: %d %s, want 400", a.status, a.body)
	}
}

// TestControlTemplates: POST /_fake/templates replaces the business's templates: the send
// endpoint and get/templates agree with them at once (reference 7; a name not there is 400
// ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND, 4.3 #5), a deleted name comes back when set again,
// an empty list takes any name again, and a bad list is a 400 that changes nothing.
func TestControlTemplates(t *testing.T) {
	t.Parallel()
	_, base := newFake(t, Config{RateLimit: -1})
	biz := base + "/v1/businesses/" + testBusiness
	if a := sendTemplate(t, base, customer, "promo", `[]`); a.status != 200 {
		t.Fatalf("any template at first: %d %s", a.status, a.body)
	}
	remote := Remote{BaseURL: base}
	set := []Template{{Name: "order_update", Language: "en", Body: "Hi {{1}}"}, {Name: "promo", Language: "en"}}
	if err := remote.SetTemplates(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	if a := sendTemplate(t, base, customer, "spring", `[]`); a.status != 400 || errorFields(t, a)["code"] != CodeTemplateNotFound {
		t.Errorf("unknown template: %d %s, want 400 %s", a.status, a.body, CodeTemplateNotFound)
	}
	if a := sendTemplate(t, base, customer, "order_update", `[]`); a.status != 400 || errorFields(t, a)["code"] != CodeTemplateInputInvalid {
		t.Errorf("missing body_1: %d %s, want 400 %s", a.status, a.body, CodeTemplateInputInvalid)
	}
	if a := sendTemplate(t, base, customer, "order_update", `[{"name":"body_1","value":"Ana"}]`); a.status != 200 {
		t.Errorf("order_update: %d %s", a.status, a.body)
	}
	if got := listedTemplates(t, base); !slices.Equal(got, []string{"order_update", "promo"}) {
		t.Errorf("get/templates lists %v", got)
	}
	got, err := remote.Templates(context.Background())
	if err != nil || len(got) != 2 || got[0].Status != TemplateApproved || got[0].Body != "Hi {{1}}" {
		t.Errorf("templates read back: %+v, %v", got, err)
	}

	if a := mustCall(t, http.MethodDelete, biz+"/templates/promo", ""); a.status != 200 {
		t.Fatalf("delete promo: %d", a.status)
	}
	if a := sendTemplate(t, base, customer, "promo", `[]`); a.status != 400 {
		t.Fatalf("deleted promo: %d, want 400", a.status)
	}
	if a := postTo(t, base+"/_fake/templates", `[{"name":"promo","language":"en"}]`); a.status != 200 {
		t.Fatalf("templates: %d %s", a.status, a.body)
	}
	if a := sendTemplate(t, base, customer, "promo", `[]`); a.status != 200 {
		t.Errorf("promo set again: %d %s", a.status, a.body)
	}

	for _, bad := range []string{`[{"name":"promo"}]`, `[{"name":"a","language":"en"},{"name":"a","language":"en"}]`,
		`[{"name":"a","language":"en","deliveryDetails":[1]}]`, `[{"title":"a"}]`} {
		if a := postTo(t, base+"/_fake/templates", bad); a.status != 400 {
			t.Errorf("templates %s: %d %s, want 400", bad, a.status, a.body)
		}
	}
	if got := listedTemplates(t, base); !slices.Equal(got, []string{"promo"}) {
		t.Errorf("after the refused lists: %v, want promo alone", got)
	}
	if a := postTo(t, base+"/_fake/templates", `[]`); a.status != 200 {
		t.Fatal(a.status)
	}
	if a := sendTemplate(t, base, customer, "anything", `[]`); a.status != 200 {
		t.Errorf("no templates: %d, want any name taken", a.status)
	}
	var raw []json.RawMessage
	if a := mustCall(t, http.MethodGet, base+"/_fake/templates", ""); a.status != 200 || json.Unmarshal(a.body, &raw) != nil || len(raw) != 0 {
		t.Errorf("GET /_fake/templates: %d %s, want []", a.status, a.body)
	}
}
