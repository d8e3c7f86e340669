package fakeconnectly

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Tests that pin the fake's error answers to the provider reference, section by section. They
// talk HTTP to the fake and read the wire, with no client of Herald's in between.

// referenceCodes is the table of reference 4.3, copied from the text (not from the fake's
// own table): every code the error-codes pages list.
var referenceCodes = []string{
	"ERROR_CODE_INVALID_SENDER_ID",
	"ERROR_CODE_PHONE_NUMBER_BAD_FORMAT",
	"ERROR_CODE_MESSAGE_ATTACHMENTS_NUMBER_INVALID",
	"ERROR_CODE_MESSAGE_TEXT_EMPTY",
	"ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND",
	"ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID",
	"ERROR_CODE_MESSAGE_ATTACHMENT_EMPTY",
	"ERROR_CODE_MESSAGE_ATTACHMENT_INVALID",
	"ERROR_CODE_BUSINESS_MISSES_MATCHING_CHANNEL",
	"ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW",
	"ERROR_CODE_BUSINESS_REACHED_LIMITS",
	"ERROR_CODE_MESSAGE_SELF_INVALID",
	"ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID",
	"ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT",
	"ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION",
	"ERROR_CODE_BUSINESS_KEY_SECRET_ABSENT",
	"ERROR_CODE_MESSAGE_TEMPLATE_DELETED",
	"ERROR_CODE_UNSPECIFIED",
}

// referenceTypes is the table of reference 4.2, plus ERROR_TYPE_FAILED_PRECONDITION, which
// 3.1 says public client code meets on session sends.
var referenceTypes = map[string]bool{
	"ERROR_TYPE_AUTHENTICATION":      true,
	"ERROR_TYPE_INVALID_REQUEST":     true,
	"ERROR_TYPE_DEADLINE_EXCEEDED":   true,
	"ERROR_TYPE_UNSPECIFIED":         true,
	"ERROR_TYPE_FAILED_PRECONDITION": true,
}

// sessionSendTo posts a valid text session send to number, whose window the caller opened.
func sessionSendTo(t *testing.T, base, number string) rawAnswer {
	t.Helper()
	return postSession(t, base, sessionBody(number))
}

// errorFields decodes an error answer and checks the shape of reference 4.1: a JSON object
// with exactly message, type, code, userTitle, userMessage, cntTraceId (digits) and details
// (an object), sent as application/json.
func errorFields(t *testing.T, a rawAnswer) map[string]any {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("error body is not a JSON object: %v: %q", err, a.body)
	}
	if len(m) != 7 {
		t.Errorf("error body has %d fields, want the 7 of reference 4.1: %s", len(m), a.body)
	}
	for _, k := range []string{"message", "type", "code", "userTitle", "userMessage", "cntTraceId"} {
		if _, ok := m[k].(string); !ok {
			t.Errorf("%s is missing or not a string: %s", k, a.body)
		}
	}
	if tr, _ := m["cntTraceId"].(string); !digitPattern.MatchString(tr) {
		t.Errorf("cntTraceId %v is not a string of digits", m["cntTraceId"])
	}
	if _, ok := m["details"].(map[string]any); !ok {
		t.Errorf("details %v is not an object", m["details"])
	}
	return m
}

// TestReference4_3EveryCodeOnBothEndpoints: a rule naming any code of reference 4.3 makes the
// fake answer, on the template and the session endpoint alike, the 4.1 body carrying that
// code and a 4.2 type, with an error status (4xx or 5xx), and no message id.
func TestReference4_3EveryCodeOnBothEndpoints(t *testing.T) {
	t.Parallel()
	for _, code := range referenceCodes {
		t.Run(code, func(t *testing.T) {
			t.Parallel()
			s, base := newFake(t, Config{RateLimit: -1, Rules: []Rule{{Code: code}}})
			if err := s.OpenWindow(customer, time.Time{}); err != nil {
				t.Fatal(err)
			}
			for _, a := range []rawAnswer{sendRaw(t, base, customer), sessionSendTo(t, base, customer)} {
				if a.status < 400 || a.status > 599 {
					t.Errorf("status %d for %s", a.status, code)
				}
				m := errorFields(t, a)
				if m["code"] != code || !referenceTypes[m["type"].(string)] || m["message"] == "" {
					t.Errorf("body %s, want code %s and a type of reference 4.2", a.body, code)
				}
				if _, hasID := m["id"]; hasID {
					t.Errorf("an error answer carries an id: %s", a.body)
				}
			}
			if st := s.Stats(); st.Accepted != 0 || st.Errors[code] != 2 {
				t.Errorf("stats %+v, want two refusals keyed %s", st, code)
			}
		})
	}
}

// TestReference4_2UnspecifiedIsTheReferencePair: ERROR_CODE_UNSPECIFIED comes with
// ERROR_TYPE_UNSPECIFIED, message "Internal server error" and userTitle "Encountered
// unexpected error" (reference 4.2, and the error object of the 5.4 example), whether a rule
// names the code or a bare 5xx status.
func TestReference4_2UnspecifiedIsTheReferencePair(t *testing.T) {
	t.Parallel()
	for _, rule := range []Rule{{Code: CodeUnspecified}, {Status: 500}, {Code: CodeUnspecified, Status: 503}} {
		_, base := newFake(t, Config{Rules: []Rule{rule}})
		a := sendRaw(t, base, customer)
		m := errorFields(t, a)
		if m["message"] != "Internal server error" || m["userTitle"] != "Encountered unexpected error" ||
			m["type"] != TypeUnspecified || m["code"] != CodeUnspecified || m["userMessage"] != userMessage {
			t.Errorf("%+v: body %s, want the reference's UNSPECIFIED body", rule, a.body)
		}
	}
}

// TestReference4_1Details: details is {} by default and carries, when a rule gives one, any
// JSON object ("extra structured info when available", 4.1; Meta codes may travel there,
// 10.4), on a 4xx and on a 5xx whose message went out.
func TestReference4_1Details(t *testing.T) {
	t.Parallel()
	details := json.RawMessage(`{"metaCode":131049,"metaMessage":"This message was not delivered to maintain healthy ecosystem engagement."}`)
	s, base := newFake(t, Config{RateLimit: -1, Rules: []Rule{
		{Numbers: []string{"+15550000001"}, Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT", Details: details},
		{Numbers: []string{"+15550000002"}, Status: 500, Sent: true, Details: details},
		{Numbers: []string{"+15550000003"}, Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
	}})
	for _, n := range []string{"+15550000001", "+15550000002"} {
		m := errorFields(t, sendRaw(t, base, n))
		got, _ := json.Marshal(m["details"])
		var want any
		_ = json.Unmarshal(details, &want)
		wantJSON, _ := json.Marshal(want)
		if string(got) != string(wantJSON) {
			t.Errorf("%s: details %s, want %s", n, got, wantJSON)
		}
	}
	if m := errorFields(t, sendRaw(t, base, "+15550000003")); len(m["details"].(map[string]any)) != 0 {
		t.Errorf("details %v, want {} when the rule gives none", m["details"])
	}
	if s.AcceptedCount("+15550000002") != 1 {
		t.Error("the 500 with details did not send the message")
	}
	for _, bad := range []Rule{
		{Status: 500, Details: json.RawMessage(`[1]`)},
		{Status: 500, Details: json.RawMessage(`{"a":`)},
		{Details: json.RawMessage(`{}`)},
		{Status: 502, Body: BodyEmpty, Details: json.RawMessage(`{}`)},
	} {
		if err := ValidateRules([]Rule{bad}); err == nil || !strings.Contains(err.Error(), "details") {
			t.Errorf("%+v validated (%v)", bad, err)
		}
	}
}

// TestReference4_4RetryAfter: the reference documents no Retry-After on a 429 and leaves its
// presence open (4.4, 8, 10.13). By default no answer has one; asked, the business-wide 429
// carries the whole seconds until a token, and a rule's answer the value it names as is (an
// HTTP-date too), whatever the body shape.
func TestReference4_4RetryAfter(t *testing.T) {
	t.Parallel()
	t.Run("absent by default", func(t *testing.T) {
		t.Parallel()
		_, base := newFake(t, Config{RateLimit: 1, Clock: newClock().Now, Rules: []Rule{{Numbers: []string{"+15550000009"}, Status: 503}}})
		for _, n := range []string{customer, customer, "+15550000009"} {
			if a := sendRaw(t, base, n); len(a.header.Values("Retry-After")) != 0 {
				t.Errorf("%d answer has Retry-After %q", a.status, a.header.Values("Retry-After"))
			}
		}
	})
	t.Run("rate limit", func(t *testing.T) {
		t.Parallel()
		for _, body := range []string{BodyError, BodyEmpty} {
			clock := newClock()
			_, base := newFake(t, Config{RateLimit: 1, RateLimitBody: body, RateLimitRetryAfter: true, Clock: clock.Now})
			if a := sendRaw(t, base, customer); a.status != 200 || a.header.Get("Retry-After") != "" {
				t.Fatalf("first send: %d, Retry-After %q", a.status, a.header.Get("Retry-After"))
			}
			if a := sendRaw(t, base, customer); a.status != 429 || a.header.Get("Retry-After") != "1" {
				t.Errorf("body %s: 429 with Retry-After %q, want 1 (a token a second)", body, a.header.Get("Retry-After"))
			}
			clock.Add(400 * time.Millisecond)
			if a := sendRaw(t, base, customer); a.status != 429 || a.header.Get("Retry-After") != "1" {
				t.Errorf("body %s: 0.6 s short of a token, Retry-After %q, want 1 (rounded up)", body, a.header.Get("Retry-After"))
			}
			clock.Add(600 * time.Millisecond)
			if a := sendRaw(t, base, customer); a.status != 200 {
				t.Errorf("after the wait it named: %d", a.status)
			}
		}
	})
	t.Run("rules", func(t *testing.T) {
		t.Parallel()
		const date = "Wed, 21 Oct 2026 07:28:00 GMT"
		_, base := newFake(t, Config{RateLimit: -1, Rules: []Rule{
			{Numbers: []string{"+15550000001"}, Status: 429, RetryAfter: "0"},
			{Numbers: []string{"+15550000002"}, Status: 429, Body: BodyEmpty, RetryAfter: "30"},
			{Numbers: []string{"+15550000003"}, Status: 503, Body: BodyGateway, RetryAfter: date},
			{Numbers: []string{"+15550000004"}, Code: "ERROR_CODE_BUSINESS_REACHED_LIMITS", RetryAfter: "3600"},
		}})
		for n, want := range map[string]string{"+15550000001": "0", "+15550000002": "30", "+15550000003": date, "+15550000004": "3600"} {
			if a := sendRaw(t, base, n); a.status < 400 || a.header.Get("Retry-After") != want {
				t.Errorf("%s: %d with Retry-After %q, want %q", n, a.status, a.header.Get("Retry-After"), want)
			}
		}
		for _, bad := range []Rule{{RetryAfter: "1"}, {Status: 200, RetryAfter: "1"}, {Status: 429, RetryAfter: "1\r\nX-Evil: 1"}} {
			if err := ValidateRules([]Rule{bad}); err == nil || !strings.Contains(err.Error(), "retryAfter") {
				t.Errorf("%+v validated (%v)", bad, err)
			}
		}
		// The fields travel through the rules' JSON form (rules files, /_fake/rules).
		in := Rule{Status: 429, RetryAfter: date, Details: json.RawMessage(`{"k":1}`)}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out Rule
		if err := json.Unmarshal(b, &out); err != nil || out.RetryAfter != date || string(out.Details) != `{"k":1}` {
			t.Errorf("round trip of %s = %+v, %v", b, out, err)
		}
	})
}

// TestReference1HeaderAndSuccessStatuses: X-API-Key is matched whatever its case (reference 1:
// "HTTP header names are case-insensitive"; the agent pages write x-api-key), and both send
// endpoints may answer 200 or 201 with {"id"} (1, 2.4, 10.3).
func TestReference1HeaderAndSuccessStatuses(t *testing.T) {
	t.Parallel()
	s, base := newFake(t, Config{RateLimit: -1, Rules: []Rule{{Suffix: "1", Status: 201}}})
	req, err := http.NewRequest(http.MethodPost, base+templatePath(testBusiness),
		strings.NewReader(`{"number":"+15550000002","templateName":"promo","language":"en"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header["x-api-key"] = []string{testKey} // sent as written, lowercase
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("lowercase x-api-key: %d, want 200", resp.StatusCode)
	}

	if err := s.OpenWindow("+15550000001", time.Time{}); err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]rawAnswer{
		"template": sendRaw(t, base, "+15550000001"),
		"session":  sessionSendTo(t, base, "+15550000001"),
	} {
		var res map[string]any
		if a.status != 201 || json.Unmarshal(a.body, &res) != nil || len(res) != 1 || !idPattern.MatchString(res["id"].(string)) {
			t.Errorf("%s: %d %s, want 201 with {\"id\": ULID} alone", name, a.status, a.body)
		}
	}
}

// TestReference4_1FreeTypeAndMessage: a rule sets the error body's type and message freely,
// keeping its code: the FAILED_PRECONDITION type public client code meets with the window's
// code (3.1), and Meta's numbered messages that may reach a client (9.2: "for mapping
// details/messages if they appear"). userTitle follows the message, except the UNSPECIFIED
// body's own title (4.2, 5.4); the other fields keep the 4.1 shape.
func TestReference4_1FreeTypeAndMessage(t *testing.T) {
	t.Parallel()
	const pairLimit = "(#131056) (Business Account, Consumer Account) pair rate limit hit"
	const spam = "(#131048) Spam rate limit hit"
	cases := []struct {
		rule                      Rule
		status                    int
		message, typ, code, title string
		sent                      bool
	}{
		{Rule{Code: CodeOutsideWindow, Type: TypeFailedPrecondition}, 400,
			"Failed to send a message because more than 24 hours have passed since the customer last replied",
			TypeFailedPrecondition, CodeOutsideWindow,
			"Failed to send a message because more than 24 hours have passed since the customer last replied", false},
		{Rule{Code: CodeUnspecified, Status: 400, Message: pairLimit}, 400, pairLimit, TypeUnspecified, CodeUnspecified,
			"Encountered unexpected error", false},
		{Rule{Code: "ERROR_CODE_BUSINESS_REACHED_LIMITS", Message: spam}, 400, spam, TypeInvalidRequest,
			"ERROR_CODE_BUSINESS_REACHED_LIMITS", spam, false},
		{Rule{Status: 503, Sent: true, Type: "ERROR_TYPE_UNAVAILABLE", Message: "(#131016) Service unavailable"}, 503,
			"(#131016) Service unavailable", "ERROR_TYPE_UNAVAILABLE", CodeUnspecified, "Encountered unexpected error", true},
		{Rule{Code: CodeOutsideWindow, Status: 504}, 504,
			"Failed to send a message because more than 24 hours have passed since the customer last replied",
			TypeDeadlineExceeded, CodeOutsideWindow,
			"Failed to send a message because more than 24 hours have passed since the customer last replied", false},
	}
	for i, c := range cases {
		s, base := newFake(t, Config{RateLimit: -1, Rules: []Rule{c.rule}})
		if err := s.OpenWindow(customer, time.Time{}); err != nil {
			t.Fatal(err)
		}
		for kind, a := range map[string]rawAnswer{"template": sendRaw(t, base, customer), "session": sessionSendTo(t, base, customer)} {
			if a.status != c.status {
				t.Errorf("case %d %s: status %d, want %d", i, kind, a.status, c.status)
			}
			m := errorFields(t, a)
			if m["message"] != c.message || m["type"] != c.typ || m["code"] != c.code || m["userTitle"] != c.title {
				t.Errorf("case %d %s: body %s, want message %q, type %s, code %s, userTitle %q", i, kind, a.body, c.message, c.typ, c.code, c.title)
			}
		}
		if got := s.AcceptedCount(customer); got != map[bool]int{true: 2}[c.sent] {
			t.Errorf("case %d: AcceptedCount %d", i, got)
		}
		if rec := s.Received(); len(rec) != 2 || rec[0].ErrorCode != c.code {
			t.Errorf("case %d: records %+v, want both keyed by the code %s", i, rec, c.code)
		}
	}
	for _, bad := range []Rule{{Type: TypeFailedPrecondition}, {Message: "x"}, {Status: 200, Message: "x"},
		{Status: 502, Body: BodyEmpty, Type: TypeUnspecified}, {Status: 504, Body: BodyGateway, Message: "x"}} {
		if err := ValidateRules([]Rule{bad}); err == nil || !strings.Contains(err.Error(), "type and message") {
			t.Errorf("%+v validated (%v)", bad, err)
		}
	}
	// Both travel through the rules' JSON form.
	var out []Rule
	if err := json.Unmarshal([]byte(`[{"code":"`+CodeOutsideWindow+`","type":"`+TypeFailedPrecondition+`","message":"`+spam+`"}]`), &out); err != nil ||
		len(out) != 1 || out[0].Type != TypeFailedPrecondition || out[0].Message != spam {
		t.Fatalf("rules %+v, %v", out, err)
	}
	b, _ := json.Marshal(out[0])
	if !strings.Contains(string(b), `"type":"`+TypeFailedPrecondition+`"`) || !strings.Contains(string(b), `"message":"`+spam+`"`) {
		t.Errorf("written back as %s", b)
	}
}
