package fakeconnectly

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// exampleConfig is a `herald fake-connectly --fake-config` file reaching knobs no flag reaches.
const exampleConfig = `{
  "businessId": "` + testBusiness + `",
  "apiKey": "` + testKey + `",
  "rateLimit": -1,
  "rules": [
    {"numbers": ["+15550000601"], "code": "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW", "type": "ERROR_TYPE_FAILED_PRECONDITION"},
    {"endpoint": "templates", "status": 503, "times": 1}
  ],
  "templates": [{"name": "order_update", "language": "en", "body": "Hi {{1}}"}],
  "strict": {"httpsMedia": true},
  "webhooks": {
    "secret": "k",
    "delay": "250ms",
    "reorderPercent": 10,
    "fates": [{"suffix": "9", "status": "delivery_failed", "code": "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"}],
    "replies": [{"percent": 5, "salt": "r", "button": "Yes", "media": "video", "name": "Ana"}]
  }
}`

// TestParseConfig: a JSON Config sets the knobs by their camelCase names, and a fake made
// from it answers by them over the wire.
func TestParseConfig(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig(strings.NewReader(exampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Webhooks.Delay != 250*time.Millisecond || cfg.Webhooks.ReorderPercent != 10 || len(cfg.Webhooks.Fates) != 1 ||
		len(cfg.Webhooks.Replies) != 1 || cfg.Webhooks.Replies[0].Media != MediaVideo || !cfg.Strict.HTTPSMedia ||
		cfg.RateLimit != -1 || len(cfg.Rules) != 2 || cfg.Rules[1].Endpoint != EndpointTemplates {
		t.Fatalf("config %+v", cfg)
	}
	// The parsed config is served as it says (without its webhooks, which need a receiver).
	cfg.Webhooks = WebhookConfig{}
	_, base := newFake(t, cfg)
	a := sendTemplate(t, base, "+15550000601", "order_update", `[{"name":"body_1","value":"Ana"}]`)
	if m := errorFields(t, a); a.status != 400 || m["type"] != TypeFailedPrecondition || m["code"] != CodeOutsideWindow {
		t.Errorf("rule from the file: %d %s", a.status, a.body)
	}
	if a := sendTemplate(t, base, customer, "promo", `[]`); a.status != 400 || errorFields(t, a)["code"] != CodeTemplateNotFound {
		t.Errorf("templates from the file: %d %s", a.status, a.body)
	}
	if a := postTo(t, base+"/v1/businesses/"+testBusiness+"/get/templates", ""); a.status != 503 {
		t.Errorf("management rule from the file: %d %s", a.status, a.body)
	}

	// A duration may also be nanoseconds; the written form is read back the same.
	cfg, err = ParseConfig(strings.NewReader(`{"webhooks": {"delay": 1000000}}`))
	if err != nil || cfg.Webhooks.Delay != time.Millisecond {
		t.Errorf("delay in nanoseconds: %v, %v", cfg.Webhooks.Delay, err)
	}
	b, err := json.Marshal(WebhookConfig{Secret: "k", Delay: 2 * time.Second})
	if err != nil || !strings.Contains(string(b), `"delay":"2s"`) {
		t.Errorf("written as %s, %v", b, err)
	}
	var back WebhookConfig
	if err := json.Unmarshal(b, &back); err != nil || back.Delay != 2*time.Second || back.Secret != "k" {
		t.Errorf("read back %+v, %v", back, err)
	}

	for _, bad := range []string{
		`{"bussinessId": "x"}`,
		`{"webhooks": {"dealy": "1s"}}`,
		`{"webhooks": {"delay": "soon"}}`,
		`{"webhooks": {"fates": [{"state": "read"}]}}`,
		`{"rules": [{"statuss": 500}]}`,
		`{"strict": {"https": true}}`,
		`{"clock": 1}`,
		`{} {}`,
	} {
		if _, err := ParseConfig(strings.NewReader(bad)); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}
