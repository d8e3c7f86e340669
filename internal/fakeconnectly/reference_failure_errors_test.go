package fakeconnectly

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// Tests of reference 4.1's "synchronous API errors and statusUpdate.error in webhooks share
// this shape": a delivery_failed event's error can be any body a send's error answer can be.
// They read the raw webhook bodies a test receiver got.

// failedError returns the statusUpdate.error of the one delivery_failed call about number,
// and the call's raw body.
func failedError(t *testing.T, calls []wireCall, number string) (map[string]any, []byte) {
	t.Helper()
	failed := statusEvents(eventsFor(calls, number))[HookDeliveryFailed]
	if len(failed) != 1 {
		t.Fatalf("%s: %d delivery_failed calls, want 1", number, len(failed))
	}
	su := failed[0].body["statusUpdate"].(map[string]any)
	e, ok := su["error"].(map[string]any)
	if !ok {
		t.Fatalf("%s: statusUpdate.error %v is not an object: %s", number, su["error"], failed[0].raw)
	}
	return e, failed[0].raw
}

// withoutTrace is an error body without its cntTraceId, which differs on every body.
func withoutTrace(e map[string]any) map[string]any {
	out := maps.Clone(e)
	delete(out, "cntTraceId")
	return out
}

// TestReference4_1FateErrorsShareTheSendShape: a Fate's Type, Message, NumericCode and Details
// give the delivery_failed error what a Rule's give a send's answer, field for field, and a
// template's delivery failure takes the same fields.
func TestReference4_1FateErrorsShareTheSendShape(t *testing.T) {
	t.Parallel()
	const meta, typed, viaRule, viaTemplate = "+15550000701", "+15550000702", "+15550000703", "+15550000704"
	const metaMessage = "(#131049) This message was not delivered to maintain healthy ecosystem engagement."
	metaFate := Fate{Numbers: []string{meta}, Status: HookDeliveryFailed, Code: "131049", NumericCode: true,
		Message: metaMessage, Details: json.RawMessage(`{"metaCode":131049}`)}
	typedFate := Fate{Numbers: []string{typed}, Status: HookDeliveryFailed, Code: CodeOutsideWindow, Type: TypeFailedPrecondition}
	sameRule := Rule{Numbers: []string{viaRule}, Code: "131049", NumericCode: true, Message: metaMessage,
		Details: json.RawMessage(`{"metaCode":131049}`)}
	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Rules: []Rule{sameRule},
		Templates: []Template{{Name: "promo", Language: "en"}, {Name: "paused", Language: "en", DeliveryFailure: "132015",
			DeliveryNumericCode: true, DeliveryType: TypeUnspecified, DeliveryMessage: "(#132015) Template is paused",
			DeliveryDetails: json.RawMessage(`{"metaCode":132015}`)}},
		Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 1, Fates: []Fate{metaFate, typedFate}}})
	t.Cleanup(func() { s.Close() })
	for _, n := range []string{meta, typed} {
		if a := sendRaw(t, base, n); a.status != 200 {
			t.Fatalf("send %s: %d %s", n, a.status, a.body)
		}
	}
	if a := sendTemplate(t, base, viaTemplate, "paused", `[]`); a.status != 200 {
		t.Fatalf("send with the paused template: %d %s", a.status, a.body)
	}
	answer := sendRaw(t, base, viaRule)
	if answer.status != 400 {
		t.Fatalf("send answered by the rule: %d %s", answer.status, answer.body)
	}
	settled(t, s)
	calls := sink.snapshot()

	e, raw := failedError(t, calls, meta)
	if !strings.Contains(string(raw), `"code":131049`) {
		t.Errorf("raw body %s: want the code written as the JSON number 131049", raw)
	}
	if e["message"] != metaMessage || e["userTitle"] != metaMessage || e["type"] != TypeInvalidRequest ||
		e["details"].(map[string]any)["metaCode"] != float64(131049) || len(e) != 7 {
		t.Errorf("error %v", e)
	}
	var sendBody map[string]any
	if err := json.Unmarshal(answer.body, &sendBody); err != nil {
		t.Fatal(err)
	}
	if got, want := withoutTrace(e), withoutTrace(sendBody); !maps.EqualFunc(got, want, func(a, b any) bool {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		return string(ja) == string(jb)
	}) {
		t.Errorf("event error %v\nsend answer %v\nwant the same body from the same fields", got, want)
	}

	e, _ = failedError(t, calls, typed)
	if e["type"] != TypeFailedPrecondition || e["code"] != CodeOutsideWindow ||
		e["message"] != "Failed to send a message because more than 24 hours have passed since the customer last replied" {
		t.Errorf("typed fate's error %v", e)
	}

	e, raw = failedError(t, calls, viaTemplate)
	if !strings.Contains(string(raw), `"code":132015`) || e["type"] != TypeUnspecified || e["message"] != "(#132015) Template is paused" ||
		e["details"].(map[string]any)["metaCode"] != float64(132015) {
		t.Errorf("template's failure %v in %s", e, raw)
	}
}

// TestFateErrorFieldsInJSON: the fields travel in the JSON of /_fake/fates, /_fake/templates
// and --fake-config, and nonsense is refused.
func TestFateErrorFieldsInJSON(t *testing.T) {
	t.Parallel()
	const number = "+15550000711"
	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 1}})
	t.Cleanup(func() { s.Close() })
	fates := `[{"numbers":["` + number + `"],"status":"delivery_failed","code":"131026","numericCode":true,` +
		`"type":"ERROR_TYPE_UNSPECIFIED","message":"(#131026) Message undeliverable"}]`
	if a := postTo(t, base+"/_fake/fates", fates); a.status != 200 {
		t.Fatalf("fates: %d %s", a.status, a.body)
	}
	if got := s.Fates(); len(got) != 1 || !got[0].NumericCode || got[0].Type != TypeUnspecified || got[0].Message != "(#131026) Message undeliverable" {
		t.Fatalf("fates read back %+v", got)
	}
	if a := sendRaw(t, base, number); a.status != 200 {
		t.Fatalf("send: %d", a.status)
	}
	settled(t, s)
	e, raw := failedError(t, sink.snapshot(), number)
	if !strings.Contains(string(raw), `"code":131026`) || e["type"] != TypeUnspecified || e["message"] != "(#131026) Message undeliverable" {
		t.Errorf("error %v in %s", e, raw)
	}

	templates := `[{"name":"paused","language":"en","deliveryFailure":"132015","deliveryNumericCode":true,` +
		`"deliveryType":"ERROR_TYPE_UNSPECIFIED","deliveryMessage":"paused"}]`
	if a := postTo(t, base+"/_fake/templates", templates); a.status != 200 {
		t.Fatalf("templates: %d %s", a.status, a.body)
	}
	if got := s.Templates(); len(got) != 1 || !got[0].DeliveryNumericCode || got[0].DeliveryType != TypeUnspecified || got[0].DeliveryMessage != "paused" {
		t.Errorf("templates read back %+v", got)
	}
	cfg, err := ParseConfig(strings.NewReader(`{"webhooks":{"fates":` + fates + `},"templates":` + templates + `}`))
	if err != nil || !cfg.Webhooks.Fates[0].NumericCode || cfg.Webhooks.Fates[0].Message == "" || !cfg.Templates[0].DeliveryNumericCode {
		t.Errorf("ParseConfig = %+v, %v", cfg, err)
	}

	for _, bad := range []string{
		`[{"status":"read","type":"ERROR_TYPE_UNSPECIFIED"}]`,                // no failure to carry it
		`[{"status":"delivery_failed","numericCode":true}]`,                  // ERROR_CODE_UNSPECIFIED is no number
		`[{"status":"delivery_failed","code":"0131026","numericCode":true}]`, // leading zero
	} {
		if a := postTo(t, base+"/_fake/fates", bad); a.status != 400 {
			t.Errorf("fates %s: %d %s, want 400", bad, a.status, a.body)
		}
	}
	for _, bad := range []string{
		`[{"name":"a","language":"en","deliveryType":"ERROR_TYPE_UNSPECIFIED"}]`,
		`[{"name":"a","language":"en","deliveryFailure":"ERROR_CODE_UNSPECIFIED","deliveryNumericCode":true}]`,
	} {
		if a := postTo(t, base+"/_fake/templates", bad); a.status != 400 {
			t.Errorf("templates %s: %d %s, want 400", bad, a.status, a.body)
		}
	}
}
