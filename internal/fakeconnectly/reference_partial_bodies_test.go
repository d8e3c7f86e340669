package fakeconnectly

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// keysOf returns the sorted keys of a JSON object.
func keysOf(t *testing.T, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, raw)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestReference4_1PartialErrorBodies: reference 4.1 says details carries structured info
// "when available"; nothing promises the seven fields or an object. A rule's (and a fate's)
// Omit leaves fields out and its Details may be null, over the wire, on a send's answer and
// on a delivery_failed's error alike.
func TestReference4_1PartialErrorBodies(t *testing.T) {
	t.Parallel()
	const trimmed, nullDetails, bare, failing = "+15550001001", "+15550001002", "+15550001003", "+15550001004"
	rules := `[
		{"numbers":["` + trimmed + `"],"code":"ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT","omit":["details","userTitle","cntTraceId"]},
		{"numbers":["` + nullDetails + `"],"status":500,"details":null},
		{"numbers":["` + bare + `"],"status":503,"omit":["message","type","code","userTitle","userMessage","cntTraceId","details"]}]`
	fates := `[{"numbers":["` + failing + `"],"status":"delivery_failed","details":null,"omit":["userMessage","cntTraceId"]}]`
	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 1}})
	t.Cleanup(func() { s.Close() })
	for path, body := range map[string]string{"/_fake/rules": rules, "/_fake/fates": fates} {
		if a := postTo(t, base+path, body); a.status != 200 {
			t.Fatalf("%s: %d %s", path, a.status, a.body)
		}
	}
	// The rules read back as given, details null included.
	if status, _, raw := request(t, http.MethodGet, base+"/_fake/rules", "", ""); status != 200 ||
		!strings.Contains(string(raw), `"omit":["details","userTitle","cntTraceId"]`) || !strings.Contains(string(raw), `"details":null`) {
		t.Errorf("rules read back: %d %s", status, raw)
	}

	a := sendRaw(t, base, trimmed)
	if got, want := keysOf(t, a.body), []string{"code", "message", "type", "userMessage"}; a.status != 400 || !slices.Equal(got, want) {
		t.Errorf("trimmed body %d %s: fields %v, want %v", a.status, a.body, got, want)
	}
	if !strings.Contains(string(a.body), `"code":"ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"`) {
		t.Errorf("trimmed body %s lost its code", a.body)
	}
	a = sendRaw(t, base, nullDetails)
	if a.status != 500 || !strings.HasSuffix(string(a.body), `"details":null}`) || len(keysOf(t, a.body)) != 7 {
		t.Errorf("null details body %d %s", a.status, a.body)
	}
	a = sendRaw(t, base, bare)
	if a.status != 503 || string(a.body) != "{}" || a.header.Get("Content-Type") != "application/json" {
		t.Errorf("every field left out: %d %q %s, want an empty JSON object", a.status, a.header.Get("Content-Type"), a.body)
	}
	if recs := recordOf(s, trimmed); len(recs) != 1 || recs[0].ErrorCode != "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT" {
		t.Errorf("record %+v", recs)
	}

	if a := sendRaw(t, base, failing); a.status != 200 {
		t.Fatalf("send: %d %s", a.status, a.body)
	}
	settled(t, s)
	e, raw := failedError(t, sink.snapshot(), failing)
	if _, ok := e["userMessage"]; ok || e["details"] != nil || len(e) != 5 || !strings.Contains(string(raw), `"details":null`) {
		t.Errorf("event error %s: want no userMessage or cntTraceId, details null", raw)
	}

	for path, bad := range map[string]string{
		"/_fake/rules":     `[{"code":"X","omit":["trace"]}]`,
		"/_fake/fates":     `[{"status":"read","omit":["details"]}]`,
		"/_fake/templates": `[{"name":"a","language":"en","deliveryOmit":["details"]}]`,
	} {
		if a := postTo(t, base+path, bad); a.status != 400 {
			t.Errorf("%s %s: %d %s, want 400", path, bad, a.status, a.body)
		}
	}
	for _, bad := range []Rule{
		{Omit: []string{"details"}},                            // no error
		{Status: 502, Body: BodyEmpty, Omit: []string{"code"}}, // no JSON body
		{Status: 500, Details: json.RawMessage(`[1]`)},         // neither object nor null
	} {
		if err := ValidateRules([]Rule{bad}); err == nil {
			t.Errorf("rule %+v validated", bad)
		}
	}
}
