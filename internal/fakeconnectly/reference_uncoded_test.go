package fakeconnectly

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestReference4_1UncodedBodies: where the fake has no documented code or type for its own
// answer (the 401 for the key, the 404 for another business, a 405, a session 400 no code
// names, the webhook API's 404), the body writes the unset enums as ERROR_CODE_UNSPECIFIED and
// ERROR_TYPE_UNSPECIFIED by default (4.1: code and type are ERROR_CODE_* / ERROR_TYPE_*
// enums), "" with UncodedBody "empty", and leaves them out with "absent". A delivery_failed
// whose fate names only a type follows the same setting.
func TestReference4_1UncodedBodies(t *testing.T) {
	t.Parallel()
	const failing = "+15550000801"
	type call struct {
		name, method, path, key, body string
		status                        int
		typ                           string // the documented type, "" for none
	}
	calls := []call{
		{"wrong key", http.MethodPost, templatePath(testBusiness), "nope", `{}`, 401, TypeAuthentication},
		{"wrong business", http.MethodPost, templatePath("other"), testKey, `{}`, 404, ""},
		{"wrong method", http.MethodGet, templatePath(testBusiness), testKey, ``, 405, ""},
		{"unknown path", http.MethodPost, "/v1/businesses/" + testBusiness + "/send/campaigns", testKey, `{}`, 404, ""},
		{"session limit", http.MethodPost, sessionPath(testBusiness), testKey,
			`{"recipient":{"id":"` + customer + `","channelType":"whatsapp"},"message":{"text":"Pick","replyButtonMessage":{"buttons":[]}}}`, 400, TypeInvalidRequest},
		{"unknown webhook", http.MethodDelete, "/v1/businesses/" + testBusiness + "/delete/webhooks/wh_nope", testKey, ``, 404, ""},
	}
	for _, mode := range []string{"", UncodedUnspecified, UncodedEmpty, UncodedAbsent} {
		t.Run("mode "+mode, func(t *testing.T) {
			t.Parallel()
			sink := &wireSink{}
			cfg, err := ParseConfig(strings.NewReader(`{"uncodedBody":"` + mode + `","ignoreWindow":true}`))
			if err != nil || cfg.UncodedBody != mode {
				t.Fatalf("ParseConfig: %+v, %v", cfg, err)
			}
			cfg.RateLimit = -1
			cfg.Webhooks = WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 1,
				Fates: []Fate{{Numbers: []string{failing}, Status: HookDeliveryFailed, Code: TypeAuthentication}}}
			s, base := newFake(t, cfg)
			t.Cleanup(func() { s.Close() })
			// want checks one of the body's fields that the answer has no value of its own for.
			want := func(what string, m map[string]any, raw []byte, key, unspecified string) {
				t.Helper()
				v, present := m[key]
				switch mode {
				case UncodedEmpty:
					if v != "" {
						t.Errorf("%s: %s = %v, want \"\": %s", what, key, v, raw)
					}
				case UncodedAbsent:
					if present {
						t.Errorf("%s: %s present, want it left out: %s", what, key, raw)
					}
				default:
					if v != unspecified {
						t.Errorf("%s: %s = %v, want %s: %s", what, key, v, unspecified, raw)
					}
				}
			}
			for _, c := range calls {
				status, ctype, raw := request(t, c.method, base+c.path, c.key, c.body)
				var m map[string]any
				if status != c.status || ctype != "application/json" || json.Unmarshal(raw, &m) != nil {
					t.Fatalf("%s: %d %q %s, want %d and a JSON body", c.name, status, ctype, raw, c.status)
				}
				want(c.name, m, raw, "code", CodeUnspecified)
				if c.typ != "" {
					if m["type"] != c.typ {
						t.Errorf("%s: type %v, want the documented %s", c.name, m["type"], c.typ)
					}
				} else {
					want(c.name, m, raw, "type", TypeUnspecified)
				}
				for _, k := range []string{"message", "userTitle", "userMessage", "cntTraceId", "details"} {
					if _, ok := m[k]; !ok {
						t.Errorf("%s: %s missing: %s", c.name, k, raw)
					}
				}
			}
			// The record still says the answer had no code of its own.
			for _, r := range s.Received() {
				if r.ErrorCode != "" && !strings.HasPrefix(r.ErrorCode, "HTTP_") {
					t.Errorf("record %+v: want HTTP_<status>", r)
				}
			}
			if a := sendRaw(t, base, failing); a.status != 200 {
				t.Fatalf("send: %d %s", a.status, a.body)
			}
			settled(t, s)
			e, raw := failedError(t, sink.snapshot(), failing)
			if e["type"] != TypeAuthentication {
				t.Errorf("event error %s: want the fate's type", raw)
			}
			want("delivery_failed", e, raw, "code", CodeUnspecified)
		})
	}
	if _, err := New(Config{BusinessID: "b", APIKey: "k", UncodedBody: "null"}); err == nil {
		t.Error("New took UncodedBody \"null\"")
	}
}
