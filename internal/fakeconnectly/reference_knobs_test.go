package fakeconnectly

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Tests of the knobs that give the other reading of a choice the reference leaves open. Each
// pins the default over the wire and shows the knob changing the answer.

// bodyCode decodes an error answer's JSON body keeping numbers as written, and returns its
// code: a string, or a json.Number when the body writes a number.
func bodyCode(t *testing.T, a rawAnswer) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(a.body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("error body is not a JSON object: %v: %q", err, a.body)
	}
	code, ok := m["code"]
	if !ok {
		t.Fatalf("error body has no code: %s", a.body)
	}
	return code
}

// TestReference9_2NumericErrorCode: the reference documents the error body's code as an
// ERROR_CODE_* string (4.1), and Meta's codes are numbers (9.2: 131056, the pair rate
// limit); whether Connectly relays Meta's codes is open (10.4). By default a rule's code is
// written as a string, also when it is digits; numericCode writes it as a JSON number, given
// in the rules of the control endpoint, of --fake-config and of Config, on both send
// endpoints. A numericCode that cannot be a JSON number is refused.
func TestReference9_2NumericErrorCode(t *testing.T) {
	t.Parallel()
	s, base := newFake(t, Config{RateLimit: -1})
	if err := s.OpenWindow(customer, time.Time{}); err != nil {
		t.Fatal(err)
	}

	// By default: "code": "131056".
	setRules(t, base, `[{"code": "131056", "message": "(#131056) (Business Account, Consumer Account) pair rate limit hit"}]`)
	a := sendTemplate(t, base, customer, "promo", `[]`)
	if code := bodyCode(t, a); a.status != http.StatusBadRequest || code != "131056" {
		t.Errorf("by default: %d %s, want 400 with the code as the string \"131056\"", a.status, a.body)
	}
	errorFields(t, a) // every field of 4.1, each a string

	// numericCode: "code": 131056, the rest of the body as before.
	setRules(t, base, `[{"code": "131056", "numericCode": true, "status": 429, "message": "(#131056) pair rate limit hit"}]`)
	for _, send := range []func() rawAnswer{
		func() rawAnswer { return sendTemplate(t, base, customer, "promo", `[]`) },
		func() rawAnswer { return sessionSendTo(t, base, customer) },
	} {
		a := send()
		if !bytes.Contains(a.body, []byte(`"code":131056`)) {
			t.Errorf("numericCode: body %s, want \"code\":131056", a.body)
		}
		if code, ok := bodyCode(t, a).(json.Number); a.status != http.StatusTooManyRequests || !ok || code != "131056" {
			t.Errorf("numericCode: %d %s, want 429 with the code as the number 131056", a.status, a.body)
		}
		var m map[string]any
		if err := json.Unmarshal(a.body, &m); err != nil || m["message"] != "(#131056) pair rate limit hit" ||
			m["type"] != TypeInvalidRequest || m["userMessage"] == nil || m["cntTraceId"] == nil || m["details"] == nil {
			t.Errorf("numericCode: body %s, want the rest of the 4.1 body", a.body)
		}
	}
	recs := s.Received()
	if last := recs[len(recs)-1]; last.ErrorCode != "131056" || last.MessageID != "" {
		t.Errorf("record %+v, want ErrorCode 131056 and nothing sent", last)
	}
	rules, err := Remote{BaseURL: base}.Rules(t.Context())
	if err != nil || len(rules) != 1 || !rules[0].NumericCode {
		t.Errorf("GET /_fake/rules: %+v, %v", rules, err)
	}

	// The same rule from a --fake-config file.
	cfg, err := ParseConfig(strings.NewReader(`{"rateLimit": -1, "rules": [{"code": "130429", "numericCode": true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	_, base2 := newFake(t, cfg)
	if a := sendTemplate(t, base2, customer, "promo", `[]`); bodyCode(t, a) != json.Number("130429") {
		t.Errorf("from --fake-config: %d %s", a.status, a.body)
	}

	for _, bad := range []string{
		`[{"code": "ERROR_CODE_UNSPECIFIED", "numericCode": true}]`,
		`[{"code": "0131056", "numericCode": true}]`,
		`[{"code": "-1", "numericCode": true}]`,
		`[{"status": 500, "numericCode": true}]`,
		`[{"numericCode": true}]`,
	} {
		if a := postTo(t, base+"/_fake/rules", bad); a.status != http.StatusBadRequest {
			t.Errorf("POST /_fake/rules %s: %d %s, want 400", bad, a.status, a.body)
		}
		var rules []Rule
		if err := json.Unmarshal([]byte(bad), &rules); err != nil {
			t.Fatal(err)
		}
		if _, err := New(Config{BusinessID: testBusiness, APIKey: testKey, Rules: rules}); err == nil {
			t.Errorf("New with %s: no error", bad)
		}
	}
}

// TestReference2_1DefaultLanguage: language is "yes (NEW) / optional (GITBOOK)" and the
// GitBook says "in most cases the default is en" (reference 2.1). By default a template send
// without a language is refused as an input error; with defaultLanguage "en" it is taken in
// en: accepted when an approved en translation exists, ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND
// otherwise (only another language, or en not approved), as for a language given. A
// language given is never replaced.
func TestReference2_1DefaultLanguage(t *testing.T) {
	t.Parallel()
	const templates = `[
		{"name": "welcome", "language": "en", "body": "Hi {{1}}"},
		{"name": "welcome", "language": "pt_BR", "body": "Oi {{1}}"},
		{"name": "promo_br", "language": "pt_BR"},
		{"name": "pending", "language": "en", "status": "MESSAGE_TEMPLATE_STATUS_PENDING"}
	]`
	noLanguage := func(name, params string) string {
		return `{"number":"` + customer + `","templateName":"` + name + `","parameters":` + params + `}`
	}
	const ana = `[{"name":"body_1","value":"Ana"}]`

	// By default: refused, with or without an en translation, whether language is absent or "".
	cfg, err := ParseConfig(strings.NewReader(`{"rateLimit": -1, "templates": ` + templates + `}`))
	if err != nil {
		t.Fatal(err)
	}
	s, base := newFake(t, cfg)
	for _, body := range []string{
		noLanguage("welcome", ana),
		`{"number":"` + customer + `","templateName":"welcome","language":"","parameters":` + ana + `}`,
		noLanguage("promo_br", `[]`),
	} {
		a := postTo(t, base+templatePath(testBusiness), body)
		if m := errorFields(t, a); a.status != http.StatusBadRequest || m["code"] != CodeTemplateInputInvalid || m["message"] != "language is required" {
			t.Errorf("by default, %s: %d %s, want 400 ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID", body, a.status, a.body)
		}
	}
	if st := s.Stats(); st.Accepted != 0 {
		t.Errorf("by default: %d accepted, want none", st.Accepted)
	}

	// defaultLanguage "en", from a --fake-config file.
	cfg, err = ParseConfig(strings.NewReader(`{"rateLimit": -1, "defaultLanguage": "en", "templates": ` + templates + `}`))
	if err != nil {
		t.Fatal(err)
	}
	s, base = newFake(t, cfg)
	a := postTo(t, base+templatePath(testBusiness), noLanguage("welcome", ana))
	var res sendResult
	if a.status != http.StatusOK || json.Unmarshal(a.body, &res) != nil || !idPattern.MatchString(res.ID) {
		t.Fatalf("defaultLanguage en, welcome has en: %d %s, want 200 with an id", a.status, a.body)
	}
	if recs := s.Received(); len(recs) != 1 || recs[0].MessageID != res.ID || recs[0].Message.Language != "" {
		t.Errorf("record %+v, want the message taken and the body as sent (no language)", recs)
	}
	// The en translation's body is the one the parameters are checked against.
	a = postTo(t, base+templatePath(testBusiness), noLanguage("welcome", `[]`))
	if m := errorFields(t, a); a.status != http.StatusBadRequest || m["code"] != CodeTemplateInputInvalid ||
		!strings.Contains(m["message"].(string), "(en)") {
		t.Errorf("defaultLanguage en, welcome without body_1: %d %s, want the en body's parameter error", a.status, a.body)
	}
	for _, name := range []string{"promo_br", "pending", "nothing"} {
		a := postTo(t, base+templatePath(testBusiness), noLanguage(name, `[]`))
		if m := errorFields(t, a); a.status != http.StatusBadRequest || m["code"] != CodeTemplateNotFound {
			t.Errorf("defaultLanguage en, %s has no approved en: %d %s, want 400 ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND", name, a.status, a.body)
		}
	}
	// A language given is the one used.
	a = postTo(t, base+templatePath(testBusiness), `{"number":"`+customer+`","templateName":"promo_br","language":"pt_BR"}`)
	if a.status != http.StatusOK {
		t.Errorf("defaultLanguage en, promo_br in pt_BR: %d %s, want 200", a.status, a.body)
	}
	a = postTo(t, base+templatePath(testBusiness), `{"number":"`+customer+`","templateName":"promo_br","language":"en"}`)
	if a.status != http.StatusBadRequest || errorFields(t, a)["code"] != CodeTemplateNotFound {
		t.Errorf("defaultLanguage en, promo_br in en: %d %s, want 400 ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND", a.status, a.body)
	}
	if st := s.Stats(); st.Accepted != 2 {
		t.Errorf("defaultLanguage en: %d accepted, want 2", st.Accepted)
	}

	for _, bad := range []string{" ", "en US", "\"en\""} {
		if _, err := New(Config{BusinessID: testBusiness, APIKey: testKey, DefaultLanguage: bad}); err == nil {
			t.Errorf("New with DefaultLanguage %q: no error", bad)
		}
	}
}
