package fakeconnectly

import (
	"encoding/json"
	"strings"
	"testing"
)

// rawField returns the bytes of a top-level field of a JSON object as they came.
func rawField(t *testing.T, raw []byte, key string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, raw)
	}
	return string(m[key])
}

// TestReference2_1CallbackEcho: callbackData is "any JSON value ... echoed back" (2.1), with
// no promise of its bytes. CallbackEcho writes it back as sent, as a string holding its
// JSON text, or decoded and written again as a protobuf Value would (keys sorted, numbers as
// float64), on every status event and on the replies that echo it.
func TestReference2_1CallbackEcho(t *testing.T) {
	t.Parallel()
	const number = "+15550001101"
	const sent = `{ "z": 1, "a": {"n": 12345678901234567890, "f": 1.50, "e": 1e2}, "s": "x" }`
	tests := []struct {
		form string
		want string
	}{
		{"", `{"z":1,"a":{"n":12345678901234567890,"f":1.50,"e":1e2},"s":"x"}`},
		{CallbackAsSent, `{"z":1,"a":{"n":12345678901234567890,"f":1.50,"e":1e2},"s":"x"}`},
		{CallbackString, `"{\"z\":1,\"a\":{\"n\":12345678901234567890,\"f\":1.50,\"e\":1e2},\"s\":\"x\"}"`},
		{CallbackReencoded, `{"a":{"e":100,"f":1.5,"n":12345678901234567000},"s":"x","z":1}`},
	}
	for _, tc := range tests {
		t.Run("form "+tc.form, func(t *testing.T) {
			t.Parallel()
			sink := &wireSink{}
			cfg, err := ParseConfig(strings.NewReader(`{"rateLimit":-1,"webhooks":{"callbackEcho":"` + tc.form + `","seed":1}}`))
			if err != nil || cfg.Webhooks.CallbackEcho != tc.form {
				t.Fatalf("ParseConfig: %+v, %v", cfg, err)
			}
			cfg.Webhooks.URL, cfg.Webhooks.Secret = startSink(t, sink), "k"
			cfg.Webhooks.Replies = []Reply{{Numbers: []string{number}, Template: "promo", Button: "Yes", Shape: ReplyButtonContext}}
			s, base := newFake(t, cfg)
			t.Cleanup(func() { s.Close() })
			body := `{"number":"` + number + `","templateName":"promo","language":"en","callbackData":` + sent + `}`
			if a := postTo(t, base+templatePath(testBusiness), body); a.status != 200 {
				t.Fatalf("send: %d %s", a.status, a.body)
			}
			settled(t, s)
			calls := sink.snapshot()
			if len(calls) != 4 {
				t.Fatalf("%d calls, want sent, delivered, read and a reply", len(calls))
			}
			for _, c := range calls {
				if got := rawField(t, c.raw, "callbackData"); got != tc.want {
					t.Errorf("callbackData written %s\nwant                  %s", got, tc.want)
				}
			}
			// The record keeps what was sent.
			if recs := s.Received(); len(recs) != 1 || !strings.Contains(string(recs[0].Message.CallbackData), "12345678901234567890") {
				t.Errorf("record %+v", recs)
			}
		})
	}
	if _, err := New(Config{BusinessID: "b", APIKey: "k", Webhooks: WebhookConfig{CallbackEcho: "bytes"}}); err == nil {
		t.Error("New took CallbackEcho \"bytes\"")
	}
}
