package fakeconnectly

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Tests of the management endpoints' failures (Rule.Endpoint), over the wire. Reference 5.2
// documents "Errors 400/401/404/500" for update/webhooks and "errors 401/404/500" for
// delete/webhooks, and 1 lists 500 "internal error" for the API at large: the webhook and
// template endpoints fail like the sends, with the 4.1 body, no body or a proxy page, slowly
// or at once, and a failed call changes nothing.

// manageCall makes a call (a management call, or trySend's) with the test key and its own
// connection; ctx may end it early.
func manageCall(t *testing.T, ctx context.Context, method, url, body string) (rawAnswer, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", testKey)
	req.Header.Set("Content-Type", "application/json")
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		return rawAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return rawAnswer{}, err
	}
	return rawAnswer{resp.StatusCode, resp.Header, raw}, nil
}

// mustCall is manageCall that fails the test on a transport error.
func mustCall(t *testing.T, method, url, body string) rawAnswer {
	t.Helper()
	a, err := manageCall(t, context.Background(), method, url, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return a
}

// setRules posts rules (JSON) to /_fake/rules.
func setRules(t *testing.T, base, rules string) {
	t.Helper()
	if a := postTo(t, base+"/_fake/rules", rules); a.status != 200 {
		t.Fatalf("rules %s: %d %s", rules, a.status, a.body)
	}
}

// listedWebhooks returns the registrations GET webhooks lists.
func listedWebhooks(t *testing.T, base string) []Webhook {
	t.Helper()
	a := mustCall(t, http.MethodGet, base+"/v1/businesses/"+testBusiness+"/webhooks", "")
	var m struct {
		Entity struct {
			Webhooks []Webhook `json:"webhooks"`
		} `json:"entity"`
	}
	if a.status != 200 || json.Unmarshal(a.body, &m) != nil {
		t.Fatalf("list webhooks: %d %s", a.status, a.body)
	}
	return m.Entity.Webhooks
}

// listedTemplates returns the names get/templates lists.
func listedTemplates(t *testing.T, base string) []string {
	t.Helper()
	a := mustCall(t, http.MethodPost, base+"/v1/businesses/"+testBusiness+"/get/templates", "{}")
	var m struct {
		Entity struct {
			TemplateGroups []struct{ Name string } `json:"templateGroups"`
		} `json:"entity"`
	}
	if a.status != 200 || json.Unmarshal(a.body, &m) != nil {
		t.Fatalf("get templates: %d %s", a.status, a.body)
	}
	var names []string
	for _, g := range m.Entity.TemplateGroups {
		names = append(names, g.Name)
	}
	return names
}

// TestReference5_2WebhookCallsFail: an "endpoint": "webhooks" rule makes every one of the four
// registration calls fail with the rule's answer (the 4.1 body with its status, code, type
// and message), and the registrations stay as they were; "times" counts calls, so "fails
// once, then works" is one rule.
func TestReference5_2WebhookCallsFail(t *testing.T) {
	t.Parallel()
	s, base := newFake(t, Config{})
	t.Cleanup(func() { s.Close() })
	biz := base + "/v1/businesses/" + testBusiness
	id := register(t, base, `{"topic":"delivery_status","address":"https://hooks.example.com/a"}`)

	setRules(t, base, `[{"endpoint":"webhooks","code":"ERROR_CODE_UNSPECIFIED"}]`)
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/create/webhooks", `{"topic":"messages","address":"https://hooks.example.com/b"}`},
		{http.MethodGet, "/webhooks", ""},
		{http.MethodPut, "/update/webhooks/" + id, `{"address":"https://hooks.example.com/c"}`},
		{http.MethodDelete, "/delete/webhooks/" + id, ""},
	} {
		a := mustCall(t, c.method, biz+c.path, c.body)
		if a.status != 500 {
			t.Errorf("%s %s: %d %s, want 500", c.method, c.path, a.status, a.body)
		}
		m := errorFields(t, a)
		if m["code"] != CodeUnspecified || m["type"] != TypeUnspecified || m["message"] != "Internal server error" {
			t.Errorf("%s %s: body %s, want the UNSPECIFIED body", c.method, c.path, a.body)
		}
	}
	setRules(t, base, `[]`)
	if got := listedWebhooks(t, base); len(got) != 1 || got[0].ID != id || got[0].Address != "https://hooks.example.com/a" {
		t.Errorf("after the failed calls: %+v, want the first registration unchanged", got)
	}

	// 404 with a message of its own, once; then the update goes through.
	setRules(t, base, `[{"endpoint":"webhooks","status":404,"message":"webhook not found","times":1}]`)
	a := mustCall(t, http.MethodPut, biz+"/update/webhooks/"+id, `{"address":"https://hooks.example.com/d"}`)
	if m := errorFields(t, a); a.status != 404 || m["message"] != "webhook not found" {
		t.Errorf("first update: %d %s, want 404 with the rule's message", a.status, a.body)
	}
	if a := mustCall(t, http.MethodPut, biz+"/update/webhooks/"+id, `{"address":"https://hooks.example.com/d"}`); a.status != 200 {
		t.Errorf("second update: %d %s, want 200 (times 1)", a.status, a.body)
	}
	if got := listedWebhooks(t, base); len(got) != 1 || got[0].Address != "https://hooks.example.com/d" {
		t.Errorf("after the update: %+v", got)
	}

	// The key is checked first: a call without one is a 401 whatever the rules.
	setRules(t, base, `[{"endpoint":"webhooks","status":503}]`)
	if status, _, raw := request(t, http.MethodGet, biz+"/webhooks", "", ""); status != 401 {
		t.Errorf("no key: %d %s, want 401", status, raw)
	}
}

// TestReference7TemplateCallsFail: an "endpoint": "templates" rule fails get/templates and
// DELETE templates/{name}, with no body or a proxy page if it says so; a failed delete
// deletes nothing.
func TestReference7TemplateCallsFail(t *testing.T) {
	t.Parallel()
	_, base := newFake(t, Config{Templates: []Template{{Name: "promo", Language: "en"}}})
	biz := base + "/v1/businesses/" + testBusiness

	setRules(t, base, `[{"endpoint":"templates","status":503,"body":"empty"}]`)
	for _, c := range []struct{ method, path string }{{http.MethodPost, "/get/templates"}, {http.MethodDelete, "/templates/promo"}} {
		a := mustCall(t, c.method, biz+c.path, "")
		if a.status != 503 || len(a.body) != 0 || a.header.Get("Content-Type") != "" {
			t.Errorf("%s %s: %d %q %q, want a bare 503", c.method, c.path, a.status, a.header.Get("Content-Type"), a.body)
		}
	}
	setRules(t, base, `[{"endpoint":"templates","status":502,"body":"gateway","retryAfter":"5"}]`)
	a := mustCall(t, http.MethodPost, biz+"/get/templates", "")
	if a.status != 502 || a.header.Get("Content-Type") != "text/html" || !strings.Contains(string(a.body), "502 Bad Gateway") ||
		a.header.Get("Retry-After") != "5" {
		t.Errorf("gateway: %d %v %s", a.status, a.header, a.body)
	}
	setRules(t, base, `[]`)
	if got := listedTemplates(t, base); len(got) != 1 || got[0] != "promo" {
		t.Errorf("after the failed delete: %v, want promo still there", got)
	}
}

// TestReference4_4ManagementLatency: a management rule's latency delays the answer; with no
// error the call then goes on as usual, and a client that times out first leaves it undone.
func TestReference4_4ManagementLatency(t *testing.T) {
	t.Parallel()
	_, base := newFake(t, Config{Templates: []Template{{Name: "promo", Language: "en"}, {Name: "offer", Language: "en"}}})
	biz := base + "/v1/businesses/" + testBusiness

	setRules(t, base, `[{"endpoint":"templates","latency":"1h"}]`)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := manageCall(t, ctx, http.MethodDelete, biz+"/templates/promo", "")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow delete: %v, want the client's timeout", err)
	}
	setRules(t, base, `[{"endpoint":"templates","latency":"20ms"}]`)
	start := time.Now()
	if a := mustCall(t, http.MethodDelete, biz+"/templates/offer", ""); a.status != 200 || string(a.body) != "{}" {
		t.Errorf("delete after a latency: %d %s, want 200 {}", a.status, a.body)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("answered after %v, want the rule's 20ms at least", d)
	}
	setRules(t, base, `[]`)
	if got := listedTemplates(t, base); len(got) != 1 || got[0] != "promo" {
		t.Errorf("templates %v, want promo (its delete timed out) and not offer", got)
	}
}

// TestRuleEndpointsAreSeparate: a send rule never touches a management call and a
// management rule never touches a send; management rules take no match field, no
// loseResponse or sent, and no success status.
func TestRuleEndpointsAreSeparate(t *testing.T) {
	t.Parallel()
	s, base := newFake(t, Config{RateLimit: -1})
	t.Cleanup(func() { s.Close() })
	setRules(t, base, `[{"status":500},{"endpoint":"send","code":"ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"}]`)
	if got := listedWebhooks(t, base); len(got) != 0 {
		t.Errorf("webhooks %v", got)
	}
	setRules(t, base, `[{"endpoint":"webhooks","status":500},{"endpoint":"templates","status":500}]`)
	if a := sendRaw(t, base, customer); a.status != 200 {
		t.Errorf("send under management rules: %d %s", a.status, a.body)
	}
	for _, bad := range []string{
		`[{"endpoint":"webhooks","numbers":["+15550000001"],"status":500}]`,
		`[{"endpoint":"templates","kind":"session","status":500}]`,
		`[{"endpoint":"webhooks","loseResponse":true}]`,
		`[{"endpoint":"webhooks","status":500,"sent":true}]`,
		`[{"endpoint":"templates","status":201}]`,
		`[{"endpoint":"assets","status":500}]`,
	} {
		if a := postTo(t, base+"/_fake/rules", bad); a.status != 400 || !strings.Contains(string(a.body), "endpoint") {
			t.Errorf("rules %s: %d %s, want 400 naming the endpoint", bad, a.status, a.body)
		}
	}
}
