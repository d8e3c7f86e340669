package fakeconnectly

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/testclock"
	"github.com/heraldmsg/herald/internal/ulid"
)

// testHTTP is the HTTP client of the package's tests, with a transport of its own: on
// http.DefaultTransport, a parallel test's httptest.Server.Close (which closes that transport's
// idle connections) can break a request mid-way ("CloseIdleConnections called").
var testHTTP = &http.Client{Transport: &http.Transport{}}

const (
	testBusiness = "6f1c1a9e-8a5b-4d3e-9c2f-0a1b2c3d4e5f"
	testKey      = "test-api-key"
)

var (
	idPattern    = regexp.MustCompile(`^[0-7][0-9A-HJKMNP-TV-Z]{25}$`)
	digitPattern = regexp.MustCompile(`^[0-9]+$`)
)

// newFake starts a fake behind httptest with the test business and key filled in.
func newFake(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.BusinessID == "" {
		cfg.BusinessID = testBusiness
	}
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// wireClient posts template sends as raw JSON over keep-alive connections, as any client of
// Connectly would, and hands back each answer as it came: the fake's tests read the wire,
// not some client's reading of it.
type wireClient struct {
	url, key string
	hc       *http.Client
}

func newClient(t testing.TB, base string) wireClient {
	t.Helper()
	return newClientFor(t, base, testBusiness, testKey)
}

func newClientFor(t testing.TB, base, business, key string) wireClient {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return wireClient{url: base + templatePath(business), key: key, hc: &http.Client{Timeout: 10 * time.Second, Transport: tr}}
}

// send posts m to the template endpoint. The error is a transport error: no answer came (a
// timeout, a dropped connection, a refused one).
func (c wireClient) send(ctx context.Context, m TemplateMessage) (rawAnswer, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return rawAnswer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return rawAnswer{}, err
	}
	req.Header.Set("X-API-Key", c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
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

// accept sends m and returns the id of the 200 answer, failing the test on anything else.
func (c wireClient) accept(t testing.TB, m TemplateMessage) string {
	t.Helper()
	a, err := c.send(context.Background(), m)
	var res sendResult
	if err != nil || a.status != http.StatusOK || json.Unmarshal(a.body, &res) != nil || !idPattern.MatchString(res.ID) {
		t.Fatalf("send to %s: %d %s, %v; want 200 with an id", m.Number, a.status, a.body, err)
	}
	return res.ID
}

// wireError is an error answer's JSON body, decoded field by field.
type wireError struct {
	Status      int    `json:"-"`
	Message     string `json:"message"`
	Type        string `json:"type"`
	Code        any    `json:"code"`
	UserTitle   string `json:"userTitle"`
	UserMessage string `json:"userMessage"`
	TraceID     string `json:"cntTraceId"`
}

// errorOf decodes the error answer of a send that came back (err nil) with an error status.
func errorOf(t testing.TB, a rawAnswer, err error) wireError {
	t.Helper()
	var e wireError
	if err != nil || a.status < 400 || json.Unmarshal(a.body, &e) != nil {
		t.Fatalf("answer %d %s, %v; want an error status with a JSON error body", a.status, a.body, err)
	}
	e.Status = a.status
	return e
}

// errorKey names the outcome of a send: "" for a 2xx, the error body's code, or
// HTTP_<status> for an error answer without a JSON code; "TRANSPORT" when no answer came.
func errorKey(a rawAnswer, err error) string {
	switch {
	case err != nil:
		return "TRANSPORT"
	case a.status < 300:
		return ""
	}
	var e wireError
	if json.Unmarshal(a.body, &e) == nil {
		if code, ok := e.Code.(string); ok && code != "" {
			return code
		}
	}
	return "HTTP_" + strconv.Itoa(a.status)
}

// message is a valid template send to number.
func message(number string) TemplateMessage {
	return TemplateMessage{
		Number:       number,
		TemplateName: "promo",
		Language:     "en",
		Parameters:   []Parameter{{Name: "body_1", Value: "Ana"}},
	}
}

// post sends a raw body and returns the status, the Content-Type and the body.
func post(t *testing.T, base, path, key, body string) (int, string, []byte) {
	t.Helper()
	return request(t, http.MethodPost, base+path, key, body)
}

func request(t *testing.T, method, url, key, body string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), raw
}

// checkErrorBody asserts the documented error body shape and returns it.
func checkErrorBody(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, raw)
	}
	for _, k := range []string{"message", "type", "code", "userTitle", "userMessage", "cntTraceId"} {
		if _, ok := m[k].(string); !ok {
			t.Errorf("error body field %q missing or not a string: %s", k, raw)
		}
	}
	if tr, _ := m["cntTraceId"].(string); !digitPattern.MatchString(tr) {
		t.Errorf("cntTraceId %q is not digits", tr)
	}
	if d, ok := m["details"].(map[string]any); !ok || len(d) != 0 {
		t.Errorf("details = %v, want {}", m["details"])
	}
	if m["message"] == "" {
		t.Errorf("empty message: %s", raw)
	}
	return m
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// newClock is the fake's clock in tests that move it, at a fixed start.
func newClock() *testclock.Clock {
	return testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

func TestAuthAndBusiness(t *testing.T) {
	s, base := newFake(t, Config{})
	body := `{"number":"+15550001234","templateName":"promo","language":"en","parameters":[]}`
	tests := []struct {
		name       string
		key        string
		business   string
		wantStatus int
		wantType   string
		wantMsg    string
		wantRecord string
	}{
		{"missing key", "", testBusiness, 401, TypeAuthentication, "Missing or invalid X-API-Key", "HTTP_401"},
		{"wrong key", "nope", testBusiness, 401, TypeAuthentication, "Missing or invalid X-API-Key", "HTTP_401"},
		{"key prefix", testKey[:4], testBusiness, 401, TypeAuthentication, "Missing or invalid X-API-Key", "HTTP_401"},
		{"auth before business", "nope", "other-business", 401, TypeAuthentication, "Missing or invalid X-API-Key", "HTTP_401"},
		{"wrong business", testKey, "other-business", 404, TypeUnspecified, "other-business", "HTTP_404"},
		{"ok", testKey, testBusiness, 200, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.Reset()
			status, ctype, raw := post(t, base, templatePath(tc.business), tc.key, body)
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", status, tc.wantStatus, raw)
			}
			if ctype != "application/json" {
				t.Errorf("Content-Type = %q", ctype)
			}
			recs := s.Received()
			if len(recs) != 1 || recs[0].Status != tc.wantStatus || recs[0].ErrorCode != tc.wantRecord || recs[0].Number != "+15550001234" {
				t.Errorf("record = %+v", recs)
			}
			if tc.wantStatus == 200 {
				var res sendResult
				if err := json.Unmarshal(raw, &res); err != nil || !idPattern.MatchString(res.ID) {
					t.Fatalf("success body %s: %v", raw, err)
				}
				if recs[0].MessageID != res.ID {
					t.Errorf("recorded id %q, answered %q", recs[0].MessageID, res.ID)
				}
				return
			}
			m := checkErrorBody(t, raw)
			// No documented code for either answer: the unset enum (Config.UncodedBody).
			if m["type"] != tc.wantType || m["code"] != CodeUnspecified {
				t.Errorf("type/code = %v/%v, want %s/%s", m["type"], m["code"], tc.wantType, CodeUnspecified)
			}
			if msg, _ := m["message"].(string); !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message %q does not contain %q", msg, tc.wantMsg)
			}
			if s.AcceptedCount("+15550001234") != 0 {
				t.Error("refused send counted as accepted")
			}
		})
	}

	// A whole send body with a wrong key: the same 401, with every documented field.
	a, err := newClientFor(t, base, testBusiness, "wrong").send(context.Background(), message("+15550001234"))
	if e := errorOf(t, a, err); e.Status != 401 || e.Type != TypeAuthentication || e.Message != "Missing or invalid X-API-Key" ||
		e.UserTitle == "" || e.UserMessage != userMessage || !digitPattern.MatchString(e.TraceID) {
		t.Errorf("error answer = %+v", e)
	}
}

func TestValidation(t *testing.T) {
	s, base := newFake(t, Config{RateLimit: -1})
	path := templatePath(testBusiness)
	// body builds a send body with the given fields replaced; "" keeps the default.
	body := func(number, params string, extra ...string) string {
		if params == "" {
			params = `[{"name":"body_1","value":"Ana"}]`
		}
		fields := []string{`"number":` + number, `"templateName":"promo"`, `"language":"en"`, `"parameters":` + params}
		return "{" + strings.Join(append(fields, extra...), ",") + "}"
	}
	okNumber := `"+15550001234"`
	param := func(name, value string) string {
		b, _ := json.Marshal([]Parameter{{Name: name, Value: value}})
		return string(b)
	}
	callback := func(n int) string { // a JSON string value of n bytes in total
		return `"callbackData":"` + strings.Repeat("x", n-2) + `"`
	}
	const (
		bad     = CodePhoneNumberBadFormat
		input   = CodeTemplateInputInvalid
		sender  = CodeInvalidSenderID
		self    = CodeSelfInvalid
		success = ""
	)
	tests := []struct {
		name     string
		body     string
		wantCode string // "" means accepted
		wantMsg  string
	}{
		{"valid", body(okNumber, ""), success, ""},
		{"empty body", "", input, "empty"},
		{"blank body", "  \n", input, "empty"},
		{"not json", "{", input, "invalid request body"},
		{"json array", "[]", input, "JSON object"},
		{"json null", "null", input, "JSON object"},
		{"unknown field", body(okNumber, "", `"recipient":"x"`), input, `unknown field "recipient"`},
		{"trailing data", body(okNumber, "") + "{}", input, "after the JSON object"},
		{"number of wrong type", body(`15550001234`, ""), input, "number"},
		{"parameters of wrong type", body(okNumber, `{"body_1":"x"}`), input, "parameters"},
		{"missing number", `{"templateName":"promo","language":"en"}`, bad, "number is required"},
		{"empty number", body(`""`, ""), bad, "number is required"},
		{"number without plus", body(`"15550001234"`, ""), bad, "E.164"},
		{"number 7 digits", body(`"+1234567"`, ""), bad, "E.164"},
		{"number 8 digits", body(`"+12345678"`, ""), success, ""},
		{"number 15 digits", body(`"+123456789012345"`, ""), success, ""},
		{"number 16 digits", body(`"+1234567890123456"`, ""), bad, "E.164"},
		{"number with letters", body(`"+1555000abcd"`, ""), bad, "E.164"},
		{"number with spaces", body(`"+1 555 000 1234"`, ""), success, ""}, // normalized (reference 2.1)
		{"number with punctuation", body(`"+1(604) 585-2331"`, ""), success, ""},
		{"punctuated number too short", body(`"+1 (604)"`, ""), bad, "E.164"},
		{"punctuation without plus", body(`"1 604 585 2331"`, ""), bad, "E.164"},
		{"number with leading zero", body(`"+0155500012"`, ""), bad, "E.164"},
		{"bsuid", body(`"bsuid:US.13491208655302741918"`, ""), success, ""},
		{"bsuid alphanumeric", body(`"bsuid:BR.abcDEF123"`, ""), success, ""},
		{"bsuid lowercase country", body(`"bsuid:us.1349"`, ""), bad, "bsuid"},
		{"bsuid without id", body(`"bsuid:US."`, ""), bad, "bsuid"},
		{"bsuid 3-letter country", body(`"bsuid:USA.1349"`, ""), bad, "bsuid"},
		{"bsuid punctuation", body(`"bsuid:US.13-49"`, ""), bad, "bsuid"},
		{"bare bsuid", body(`"US.13491208655302741918"`, ""), bad, "bsuid"},
		{"missing templateName", `{"number":"+15550001234","language":"en"}`, input, "templateName is required"},
		{"missing language", `{"number":"+15550001234","templateName":"promo"}`, input, "language is required"},
		{"no parameters", `{"number":"+15550001234","templateName":"promo","language":"en"}`, success, ""},
		{"null parameters", body(okNumber, "null"), success, ""},
		{"empty parameters", body(okNumber, "[]"), success, ""},
		{"parameter without name", body(okNumber, `[{"value":"x"}]`), input, "parameters[0].name is empty"},
		{"unknown parameter", body(okNumber, param("footer", "x")), input, `"footer" is not a template parameter key`},
		{"body_16", body(okNumber, param("body_16", "x")), input, "body_16"},
		{"body_0", body(okNumber, param("body_0", "x")), input, "body_0"},
		{"body_01", body(okNumber, param("body_01", "x")), input, "body_01"},
		{"button_3_url", body(okNumber, param("button_3_url", "x")), input, "button_3_url"},
		{"every known key", body(okNumber, `[
			{"name":"header_text","value":"Hello"},
			{"name":"header_document","value":"https://example.com/a.pdf"},
			{"name":"body_1","value":"a"},{"name":"body_15","value":"b"},
			{"name":"button_1_url","value":"https://example.com/o/1"},{"name":"button_2_url","value":"o/12345"}]`), success, ""},
		{"header_image https", body(okNumber, param("header_image", "https://example.com/b.png")), success, ""},
		{"header_video https", body(okNumber, param("header_video", "https://cdn.example.com/v.mp4?x=1")), success, ""},
		{"header_image http", body(okNumber, param("header_image", "http://example.com/b.png")), success, ""}, // Strict.HTTPSMedia refuses it
		{"header_image relative", body(okNumber, param("header_image", "/b.png")), input, "absolute http(s) URL"},
		{"header_image ftp", body(okNumber, param("header_image", "ftp://example.com/b.png")), input, "absolute http(s) URL"},
		{"header_document bare name", body(okNumber, param("header_document", "a.pdf")), input, "absolute http(s) URL"},
		{"raw_ parameter", body(okNumber, param("raw_anything", "")), success, ""},
		{"card parameter", body(okNumber, param("card_1_body_1", "x\ny")), success, ""},
		{"quick reply parameter", body(okNumber, param("button_quick_reply_1", "yes")), success, ""},
		// Meta's whitespace rule for text parameters is not in the reference: taken unless
		// Strict.TextWhitespace (TestStrict).
		{"body newline", body(okNumber, param("body_1", "a\nb")), success, ""},
		{"body carriage return", body(okNumber, param("body_2", "a\rb")), success, ""},
		{"body tab", body(okNumber, param("body_1", "a\tb")), success, ""},
		{"body 5 spaces", body(okNumber, param("body_1", "a     b")), success, ""},
		{"body 4 spaces", body(okNumber, param("body_1", "a    b")), success, ""},
		{"header_text newline", body(okNumber, param("header_text", "a\nb")), success, ""},
		{"empty body value", body(okNumber, param("body_1", "")), input, "empty value"},
		{"blank body value", body(okNumber, param("body_1", "  ")), input, "empty value"},
		{"button with space", body(okNumber, param("button_1_url", "a b")), input, "whitespace"},
		{"duplicate parameter", body(okNumber, `[{"name":"body_1","value":"a"},{"name":"body_1","value":"b"}]`), success, ""}, // Strict.DuplicateParams refuses it
		{"callbackData object", body(okNumber, "", `"callbackData":{"campaign_id":"c-42","recipient_id":"r-9001"}`), success, ""},
		{"callbackData 1024 bytes", body(okNumber, "", callback(1024)), success, ""},
		{"callbackData 1025 bytes", body(okNumber, "", callback(1025)), input, "callbackData is 1025 bytes"},
		{"sender E.164", body(okNumber, "", `"sender":"+14151111234"`), success, ""},
		{"sender not E.164", body(okNumber, "", `"sender":"14151111234"`), sender, "sender"},
		{"sender is recipient", body(okNumber, "", `"sender":"+15550001234"`), self, "recipient is the sender"},
		{"campaignName", body(okNumber, "", `"campaignName":"spring"`), success, ""},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.Reset()
			status, ctype, raw := post(t, base, path, testKey, tc.body)
			if ctype != "application/json" {
				t.Errorf("Content-Type = %q", ctype)
			}
			recs := s.Received()
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			if tc.wantCode == success {
				var res sendResult
				if status != 200 || json.Unmarshal(raw, &res) != nil || !idPattern.MatchString(res.ID) {
					t.Fatalf("status %d body %s, want 200 with an id", status, raw)
				}
				if seen[res.ID] {
					t.Errorf("id %s answered twice", res.ID)
				}
				seen[res.ID] = true
				if recs[0].MessageID != res.ID || recs[0].Status != 200 || recs[0].ErrorCode != "" {
					t.Errorf("record = %+v", recs[0])
				}
				return
			}
			if status != 400 {
				t.Fatalf("status = %d, want 400 (%s)", status, raw)
			}
			m := checkErrorBody(t, raw)
			if m["code"] != tc.wantCode || m["type"] != TypeInvalidRequest {
				t.Errorf("code/type = %v/%v, want %s/%s", m["code"], m["type"], tc.wantCode, TypeInvalidRequest)
			}
			if msg, _ := m["message"].(string); !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message %q does not contain %q", msg, tc.wantMsg)
			}
			if recs[0].ErrorCode != tc.wantCode || recs[0].Status != 400 || recs[0].MessageID != "" {
				t.Errorf("record = %+v", recs[0])
			}
			if st := s.Stats(); st.Requests != 1 || st.Errors[tc.wantCode] != 1 || st.Accepted != 0 {
				t.Errorf("stats = %+v", st)
			}
		})
	}

	t.Run("body too large", func(t *testing.T) {
		s.Reset()
		huge := body(okNumber, "", `"campaignName":"`+strings.Repeat("x", maxBody)+`"`)
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(huge))
		req.Header.Set("X-API-Key", testKey)
		rr := httptest.NewRecorder()
		s.Handler().ServeHTTP(rr, req)
		if rr.Code != 400 || checkErrorBody(t, rr.Body.Bytes())["code"] != input {
			t.Errorf("status %d body %.200s", rr.Code, rr.Body.Bytes())
		}
		if recs := s.Received(); len(recs) != 1 || recs[0].ErrorCode != input {
			t.Errorf("records = %+v", recs)
		}
	})
}

func TestTemplatesAndSenders(t *testing.T) {
	_, base := newFake(t, Config{
		Templates: []Template{
			{Name: "promo", Language: "en", Status: TemplateApproved},
			{Name: "promo", Language: "pt_BR", Status: TemplatePending},
			{Name: "welcome", Language: "es"}, // approved by default
			{Name: "old", Language: "en", Status: TemplateRejected},
		},
		Senders: []string{"+14151111234", "+14152222345"},
	})
	c := newClient(t, base)
	tests := []struct {
		name, template, language, sender string
		wantCode                         string
	}{
		{"approved", "promo", "en", "+14151111234", ""},
		{"default status approved", "welcome", "es", "+14152222345", ""},
		{"pending translation", "promo", "pt_BR", "+14151111234", CodeTemplateNotFound},
		{"rejected", "old", "en", "+14151111234", CodeTemplateNotFound},
		{"unknown language", "promo", "fr", "+14151111234", CodeTemplateNotFound},
		{"unknown name", "nope", "en", "+14151111234", CodeTemplateNotFound},
		{"sender required with two numbers", "promo", "en", "", CodeInvalidSenderID},
		{"foreign sender", "promo", "en", "+14153333456", CodeInvalidSenderID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := message("+15550001234")
			m.TemplateName, m.Language, m.Sender = tc.template, tc.language, tc.sender
			if tc.wantCode == "" {
				c.accept(t, m)
				return
			}
			a, err := c.send(context.Background(), m)
			if e := errorOf(t, a, err); e.Status != 400 || e.Code != tc.wantCode {
				t.Errorf("error = %+v, want 400 %s", e, tc.wantCode)
			}
		})
	}
}

func TestPathsAndMethods(t *testing.T) {
	_, base := newFake(t, Config{})
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, templatePath(testBusiness), 405},
		{http.MethodPut, "/v1/businesses/" + testBusiness + "/get/templates", 405},
		{http.MethodGet, "/v1/businesses/" + testBusiness + "/send/messages", 405},
		{http.MethodPost, "/v1/businesses/" + testBusiness + "/send/campaigns", 404},
		{http.MethodPost, "/v1/businesses/", 404},
		{http.MethodPost, "/v2/businesses/" + testBusiness + "/send/whatsapp_templated_messages", 404},
		{http.MethodGet, "/", 404},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			status, ctype, raw := request(t, tc.method, base+tc.path, testKey, "{}")
			if status != tc.want || ctype != "application/json" {
				t.Fatalf("status %d %q, want %d", status, ctype, tc.want)
			}
			checkErrorBody(t, raw)
		})
	}
}

func TestFaultCodesAndStatuses(t *testing.T) {
	const victim, bystander = "+15550000001", "+15550000002"
	tests := []struct {
		name       string
		rule       Rule
		wantStatus int
		wantType   string
		wantCode   string
		wantMsg    string
		wantRecord string
	}{
		{"code phone invalid", Rule{Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"}, 400, TypeInvalidRequest, "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID", "invalid", "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"},
		{"code opted out", Rule{Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"}, 400, TypeInvalidRequest, "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT", "opted out", "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
		{"code reached limits", Rule{Code: "ERROR_CODE_BUSINESS_REACHED_LIMITS"}, 400, TypeInvalidRequest, "ERROR_CODE_BUSINESS_REACHED_LIMITS", "restricted", "ERROR_CODE_BUSINESS_REACHED_LIMITS"},
		{"code unspecified", Rule{Code: "ERROR_CODE_UNSPECIFIED"}, 500, TypeUnspecified, "ERROR_CODE_UNSPECIFIED", "Internal server error", "ERROR_CODE_UNSPECIFIED"},
		{"code key secret absent", Rule{Code: "ERROR_CODE_BUSINESS_KEY_SECRET_ABSENT"}, 401, TypeAuthentication, "ERROR_CODE_BUSINESS_KEY_SECRET_ABSENT", "secret", "ERROR_CODE_BUSINESS_KEY_SECRET_ABSENT"},
		{"type authentication", Rule{Code: TypeAuthentication}, 401, TypeAuthentication, CodeUnspecified, "X-API-Key", "HTTP_401"},
		{"eligibility window at 504", Rule{Code: "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW", Status: 504}, 504, TypeDeadlineExceeded, "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW", "24 hours", "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"},
		{"meta code", Rule{Code: "131049"}, 400, TypeInvalidRequest, "131049", "131049", "131049"},
		{"status 500", Rule{Status: 500}, 500, TypeUnspecified, CodeUnspecified, "Internal server error", CodeUnspecified},
		{"status 502", Rule{Status: 502}, 502, TypeUnspecified, CodeUnspecified, "Internal server error", CodeUnspecified},
		{"status 503", Rule{Status: 503}, 503, TypeUnspecified, CodeUnspecified, "Internal server error", CodeUnspecified},
		{"status 429", Rule{Status: 429}, 429, TypeUnspecified, CodeUnspecified, "Too Many Requests", CodeUnspecified},
		{"status 409", Rule{Status: 409}, 409, TypeUnspecified, CodeUnspecified, "Conflict", "HTTP_409"},
		{"status 401", Rule{Status: 401}, 401, TypeAuthentication, CodeUnspecified, "X-API-Key", "HTTP_401"},
		{"status 400", Rule{Status: 400}, 400, TypeInvalidRequest, CodeUnspecified, "Bad Request", "HTTP_400"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rule := tc.rule
			rule.Numbers = []string{victim}
			s, base := newFake(t, Config{Rules: []Rule{rule}})
			c := newClient(t, base)
			a, err := c.send(context.Background(), message(victim))
			ae := errorOf(t, a, err)
			if ae.Status != tc.wantStatus || ae.Type != tc.wantType || ae.Code != tc.wantCode {
				t.Errorf("error = %d %q %q, want %d %q %q", ae.Status, ae.Type, ae.Code, tc.wantStatus, tc.wantType, tc.wantCode)
			}
			if !strings.Contains(ae.Message, tc.wantMsg) || ae.UserTitle == "" || ae.UserMessage == "" || !digitPattern.MatchString(ae.TraceID) {
				t.Errorf("body = %s, want message containing %q", a.body, tc.wantMsg)
			}
			c.accept(t, message(bystander))
			recs := s.Received()
			if len(recs) != 2 || recs[0].ErrorCode != tc.wantRecord || recs[0].Status != tc.wantStatus || recs[0].MessageID != "" {
				t.Errorf("records = %+v", recs)
			}
			st := s.Stats()
			wantThrottled := 0
			if tc.wantStatus == 429 {
				wantThrottled = 1
			}
			if st.Requests != 2 || st.Accepted != 1 || st.Errors[tc.wantRecord] != 1 || st.Throttled != wantThrottled ||
				st.Statuses[tc.wantStatus] != 1 || st.Statuses[200] != 1 {
				t.Errorf("stats = %+v", st)
			}
			if s.AcceptedCount(victim) != 0 || s.AcceptedCount(bystander) != 1 {
				t.Errorf("accepted counts %d/%d", s.AcceptedCount(victim), s.AcceptedCount(bystander))
			}
		})
	}
}

func TestSuccessStatusRule(t *testing.T) {
	s, base := newFake(t, Config{Rules: []Rule{{Status: 201}}})
	status, _, raw := post(t, base, templatePath(testBusiness), testKey, `{"number":"+15550001234","templateName":"promo","language":"en"}`)
	var res sendResult
	if status != 201 || json.Unmarshal(raw, &res) != nil || !idPattern.MatchString(res.ID) {
		t.Fatalf("status %d body %s", status, raw)
	}
	if recs := s.Received(); recs[0].Status != 201 || recs[0].MessageID != res.ID {
		t.Errorf("record = %+v", recs[0])
	}
}

func TestTimesFailsThenSucceeds(t *testing.T) {
	s, base := newFake(t, Config{Rules: []Rule{{Suffix: "1", Status: 500, Times: 2}}})
	c := newClient(t, base)
	send := func(number string) int {
		t.Helper()
		a, err := c.send(context.Background(), message(number))
		if err != nil {
			t.Fatalf("send to %s: %v", number, err)
		}
		return a.status
	}
	steps := []struct {
		number string
		want   int
	}{
		{"+15550000001", 500},
		{"+15550000001", 500},
		{"+15550000001", 200},
		{"+15550000001", 200},
		{"+15550000011", 500}, // counts are per number
		{"+15550000002", 200}, // does not match
		{"+15550000011", 500},
		{"+15550000011", 200},
	}
	for i, st := range steps {
		if got := send(st.number); got != st.want {
			t.Fatalf("step %d (%s): status %d, want %d", i, st.number, got, st.want)
		}
	}
	if got := s.AcceptedCount("+15550000001"); got != 2 {
		t.Errorf("AcceptedCount = %d, want 2", got)
	}

	// SetRules starts the counts over.
	s.SetRules([]Rule{{Suffix: "1", Status: 500, Times: 2}})
	if got := send("+15550000001"); got != 500 {
		t.Errorf("after SetRules: %d, want 500", got)
	}
	// So does Reset, which keeps the rules.
	s.Reset()
	for i, want := range []int{500, 500, 200} {
		if got := send("+15550000001"); got != want {
			t.Errorf("after Reset, send %d: %d, want %d", i, got, want)
		}
	}
	if st := s.Stats(); st.Requests != 3 || st.Accepted != 1 || st.Errors[CodeUnspecified] != 2 {
		t.Errorf("stats after Reset = %+v", st)
	}
}

func TestRuleSelection(t *testing.T) {
	const a, b9 = "+15550000001", "+15550000009"
	rules := []Rule{
		{Numbers: []string{a}, Template: "promo", Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"},
		{Suffix: "9", Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
		{Template: "other", Status: 503},
		{Numbers: []string{"+15550000003"}, Status: 500, Times: 1},
		{Numbers: []string{"+15550000003"}, Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
	}
	_, base := newFake(t, Config{Rules: rules})
	c := newClient(t, base)
	tests := []struct {
		name, number, template string
		want                   string // error key, "" for accepted
	}{
		{"numbers and template match", a, "promo", "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"},
		{"template differs so next rule", a, "other", "ERROR_CODE_UNSPECIFIED"},
		{"suffix", b9, "promo", "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
		{"first match wins over template rule", b9, "other", "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
		{"no rule", "+15550000002", "promo", ""},
		{"exhausted rule first use", "+15550000003", "promo", "ERROR_CODE_UNSPECIFIED"},
		{"exhausted rule falls through", "+15550000003", "promo", "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
		{"and stays exhausted", "+15550000003", "promo", "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
	}
	for _, tc := range tests {
		m := message(tc.number)
		m.TemplateName = tc.template
		if got := errorKey(c.send(context.Background(), m)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}

	// Matches agrees, ignoring Times.
	if !rules[0].Matches(a, "promo") || rules[0].Matches(a, "other") || rules[0].Matches(b9, "promo") {
		t.Error("Matches disagrees with the Numbers+Template rule")
	}
	if !(Rule{}).Matches("+1", "x") {
		t.Error("a rule without match fields must match everything")
	}
}

func TestLatency(t *testing.T) {
	const slow, lost = "+15550000001", "+15550000002"
	s, base := newFake(t, Config{Rules: []Rule{
		{Numbers: []string{slow}, Latency: 40 * time.Millisecond},
		{Numbers: []string{lost}, Latency: time.Hour, Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"},
	}})
	c := newClient(t, base)

	start := time.Now()
	c.accept(t, message(slow))
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("slow send answered after %v, want >= 40ms", d)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	// The client gives up before the answer: no answer at all, only its own deadline.
	if a, err := c.send(ctx, message(lost)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send = %d %s, %v; want the client's deadline and no answer", a.status, a.body, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("canceled send took %v", d)
	}
	// The fake stops waiting when the client goes away and accepts nothing.
	waitFor(t, "the canceled send to be recorded", func() bool { return s.Stats().Canceled == 1 })
	recs := s.Received()
	if len(recs) != 2 || recs[1].ErrorCode != CodeCanceled || recs[1].Status != 0 || recs[1].MessageID != "" {
		t.Errorf("records = %+v", recs)
	}
	if s.AcceptedCount(lost) != 0 {
		t.Error("canceled send counted as accepted")
	}
}

func TestLoseResponse(t *testing.T) {
	const victim = "+15550000001"
	s, base := StartForTest(t, Config{BusinessID: testBusiness, APIKey: testKey, Rules: []Rule{{Numbers: []string{victim}, LoseResponse: true, Times: 1}}})
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("base URL %q", base)
	}
	c := newClient(t, base)

	// Warm a keep-alive connection first, so the lost answer arrives on a reused one.
	c.accept(t, message("+15550000002"))
	// The connection closes with no answer: a transport error, not a status, and no timeout.
	a, err := c.send(context.Background(), message(victim))
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !(errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset") ||
		strings.Contains(err.Error(), "closed")) {
		t.Fatalf("send = %d %s, %v; want the connection closed without an answer", a.status, a.body, err)
	}
	if got := s.AcceptedCount(victim); got != 1 {
		t.Errorf("AcceptedCount = %d, want 1", got)
	}
	recs := s.Received()
	if len(recs) != 2 || recs[1].Status != 0 || !idPattern.MatchString(recs[1].MessageID) || recs[1].ErrorCode != "" || !recs[1].Accepted() {
		t.Errorf("records = %+v", recs)
	}

	// Times: 1, so the retry is answered, and the recipient now has two accepted messages.
	if id := c.accept(t, message(victim)); id == recs[1].MessageID {
		t.Fatalf("retry answered the lost message's id %s", id)
	}
	if got := s.AcceptedCount(victim); got != 2 {
		t.Errorf("AcceptedCount = %d, want 2", got)
	}
	if st := s.Stats(); st.Requests != 3 || st.Accepted != 3 || st.Lost != 1 || st.DistinctAccepted != 2 || st.Statuses[200] != 2 || len(st.Errors) != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestLoseResponseWithoutHijacker(t *testing.T) {
	// A ResponseWriter that cannot be hijacked gets the response aborted instead.
	s, err := New(Config{BusinessID: testBusiness, APIKey: testKey, Rules: []Rule{{LoseResponse: true}}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, templatePath(testBusiness), strings.NewReader(`{"number":"+15550001234","templateName":"p","language":"en"}`))
	req.Header.Set("X-API-Key", testKey)
	defer func() {
		if r := recover(); r != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler", r)
		}
		if s.AcceptedCount("+15550001234") != 1 {
			t.Error("message not recorded as accepted")
		}
	}()
	s.Handler().ServeHTTP(struct{ http.ResponseWriter }{httptest.NewRecorder()}, req)
}

func TestPercent(t *testing.T) {
	numbers := make([]string, 10000)
	for i := range numbers {
		numbers[i] = fmt.Sprintf("+1555%07d", i)
	}
	pick := func(r Rule) map[string]bool {
		out := map[string]bool{}
		for _, n := range numbers {
			if r.Matches(n, "promo") {
				out[n] = true
			}
		}
		return out
	}
	tests := []struct {
		percent  float64
		lo, hi   int
		saltedLo int
	}{
		{0.5, 25, 80, 0},
		{10, 900, 1100, 0},
		{25, 2350, 2650, 0},
		{50, 4800, 5200, 0},
		{100, 10000, 10000, 10000},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.percent), func(t *testing.T) {
			got := pick(Rule{Percent: tc.percent})
			if len(got) < tc.lo || len(got) > tc.hi {
				t.Errorf("picked %d of 10000, want %d..%d", len(got), tc.lo, tc.hi)
			}
			again := pick(Rule{Percent: tc.percent})
			if len(again) != len(got) {
				t.Fatalf("not stable: %d then %d", len(got), len(again))
			}
			for n := range got {
				if !again[n] {
					t.Fatalf("not stable for %s", n)
				}
			}
		})
	}

	// Different salts pick (nearly) independent sets: two 10% rules overlap on about 1%.
	a, b := pick(Rule{Percent: 10, Salt: "opt-out"}), pick(Rule{Percent: 10, Salt: "server-error"})
	overlap := 0
	for n := range a {
		if b[n] {
			overlap++
		}
	}
	if overlap < 40 || overlap > 200 {
		t.Errorf("two salted 10%% rules overlap on %d numbers, want about 100", overlap)
	}
	// A smaller percentage picks a subset of a larger one with the same salt.
	small, large := pick(Rule{Percent: 5, Salt: "s"}), pick(Rule{Percent: 20, Salt: "s"})
	for n := range small {
		if !large[n] {
			t.Fatalf("%s picked at 5%% but not at 20%%", n)
		}
	}

	// The bucket is FNV-1a 32 of salt+number, modulo 10000.
	for _, tc := range []struct{ salt, number string }{{"", "+15550001234"}, {"x", "bsuid:US.123"}, {"opt-out", "+447700900123"}} {
		h := fnv.New32a()
		h.Write([]byte(tc.salt + tc.number))
		if got, want := HashBucket(tc.salt, tc.number), int(h.Sum32()%10000); got != want {
			t.Errorf("HashBucket(%q, %q) = %d, want %d", tc.salt, tc.number, got, want)
		}
	}

	// Percent in combination with other match fields: all must match.
	r := Rule{Percent: 50, Suffix: "7"}
	for _, n := range numbers {
		if r.Matches(n, "promo") && !strings.HasSuffix(n, "7") {
			t.Fatalf("%s matched without the suffix", n)
		}
	}
}

func TestPercentOverHTTP(t *testing.T) {
	rule := Rule{Percent: 20, Salt: "opt", Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"}
	s, base := newFake(t, Config{RateLimit: -1, Rules: []Rule{rule}})
	c := newClient(t, base)
	want := 0
	for i := range 300 {
		n := fmt.Sprintf("+4477009%05d", i)
		key := errorKey(c.send(context.Background(), message(n)))
		if rule.Matches(n, "promo") {
			want++
			if key != "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT" {
				t.Errorf("%s: %s, want opted out", n, key)
			}
		} else if key != "" {
			t.Errorf("%s: %s, want accepted", n, key)
		}
	}
	if st := s.Stats(); st.Errors["ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"] != want || st.Accepted != 300-want || want == 0 {
		t.Errorf("stats %+v, want %d opted out", st, want)
	}
}

func TestRateLimit(t *testing.T) {
	clock := newClock()
	s, base := newFake(t, Config{RateLimit: 5, Clock: clock.Now})
	path := templatePath(testBusiness)
	valid := `{"number":"+15550001234","templateName":"promo","language":"en"}`
	send := func(key, body string) int {
		t.Helper()
		status, _, raw := post(t, base, path, key, body)
		if status == 429 {
			m := checkErrorBody(t, raw)
			if m["message"] != "Too Many Requests" || m["code"] != CodeUnspecified || m["type"] != TypeUnspecified {
				t.Errorf("429 body = %s", raw)
			}
		}
		return status
	}
	expect := func(step string, key, body string, want ...int) {
		t.Helper()
		for i, w := range want {
			if got := send(key, body); got != w {
				t.Fatalf("%s, request %d: status %d, want %d", step, i, got, w)
			}
		}
	}
	expect("full bucket", testKey, valid, 200, 200, 200, 200, 200, 429, 429)
	clock.Add(199 * time.Millisecond)
	expect("not yet refilled", testKey, valid, 429)
	clock.Add(time.Millisecond)
	expect("one token after 200ms", testKey, valid, 200, 429)
	clock.Add(10 * time.Second)
	expect("burst capped at one second", testKey, valid, 200, 200, 200, 200, 200, 429)

	// Unauthenticated requests and other businesses' requests take no token.
	clock.Add(time.Second)
	expect("bad key", "wrong", valid, 401, 401, 401, 401, 401, 401, 401)
	for range 7 {
		if status, _, _ := post(t, base, templatePath("other"), testKey, valid); status != 404 {
			t.Fatalf("other business: %d", status)
		}
	}
	expect("after refused requests", testKey, valid, 200)
	// Invalid sends do take one.
	expect("invalid bodies", testKey, `{"number":"bad"}`, 400, 400, 400, 400, 429)
	expect("after invalid bodies", testKey, valid, 429)

	st := s.Stats()
	if st.Throttled != 7 || st.Statuses[429] != 7 || st.Errors[CodeUnspecified] != 7 {
		t.Errorf("stats = %+v", st)
	}

	// A whole send body is throttled the same: 429 with the standard body.
	a, err := newClient(t, base).send(context.Background(), message("+15550001234"))
	if e := errorOf(t, a, err); e.Status != 429 || e.Code != CodeUnspecified || e.Type != TypeUnspecified {
		t.Errorf("throttled answer = %+v", e)
	}

	// Reset refills the bucket.
	s.Reset()
	expect("after Reset", testKey, valid, 200, 200, 200, 200, 200, 429)
}

func TestRateLimitDefaultAndDisabled(t *testing.T) {
	tests := []struct {
		name      string
		rateLimit int
		accepted  int
	}{
		{"default 200", 0, DefaultRateLimit},
		{"explicit 50", 50, 50},
		{"disabled", -1, 600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock() // never advances
			s, base := newFake(t, Config{RateLimit: tc.rateLimit, Clock: clock.Now})
			c := newClient(t, base)
			var wg sync.WaitGroup
			for w := range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 60 {
						if _, err := c.send(context.Background(), message(fmt.Sprintf("+1555%03d%04d", w, i))); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			wg.Wait()
			st := s.Stats()
			if st.Requests != 600 || st.Accepted != tc.accepted || st.Throttled != 600-tc.accepted {
				t.Errorf("stats = %+v, want %d accepted", st, tc.accepted)
			}
		})
	}
}

func TestGetTemplates(t *testing.T) {
	path := "/v1/businesses/" + testBusiness + "/get/templates"
	_, base := newFake(t, Config{Templates: []Template{
		{Name: "promo", Language: "en", Status: TemplateApproved},
		{Name: "welcome", Language: "es"},
		{Name: "promo", Language: "pt_BR", Status: TemplatePending},
		{Name: "welcome", Language: "en", MetaStatus: "PAUSED"},
	}})
	for _, body := range []string{"", "{}"} {
		status, ctype, raw := post(t, base, path, testKey, body)
		if status != 200 || ctype != "application/json" {
			t.Fatalf("status %d %q: %s", status, ctype, raw)
		}
		var got struct {
			Entity struct {
				TemplateGroups []struct {
					ID        string `json:"id"`
					Name      string `json:"name"`
					Category  string `json:"category"`
					Templates []struct {
						ID       string `json:"id"`
						Language struct {
							Code string `json:"code"`
						} `json:"language"`
						Status           string `json:"status"`
						ExternalTemplate struct {
							WhatsApp struct {
								Status string `json:"status"`
							} `json:"whatsapp"`
						} `json:"externalTemplate"`
					} `json:"templates"`
				} `json:"templateGroups"`
			} `json:"entity"`
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		groups := got.Entity.TemplateGroups
		if len(groups) != 2 {
			t.Fatalf("groups = %s", raw)
		}
		type tmpl struct{ group, lang, status, meta string }
		var flat []tmpl
		ids := map[string]bool{}
		for _, g := range groups {
			if g.ID != g.Name || g.Category != "MARKETING" {
				t.Errorf("group %+v", g)
			}
			for _, tm := range g.Templates {
				flat = append(flat, tmpl{g.Name, tm.Language.Code, tm.Status, tm.ExternalTemplate.WhatsApp.Status})
				if !digitPattern.MatchString(tm.ID) || ids[tm.ID] {
					t.Errorf("template id %q missing, not digits or repeated", tm.ID)
				}
				ids[tm.ID] = true
			}
		}
		want := []tmpl{
			{"promo", "en", TemplateApproved, "APPROVED"},
			{"promo", "pt_BR", TemplatePending, "PENDING"},
			{"welcome", "es", TemplateApproved, "APPROVED"},
			// Meta paused it; Connectly's status still says approved (reference 7, inferred).
			{"welcome", "en", TemplateApproved, "PAUSED"},
		}
		if fmt.Sprint(flat) != fmt.Sprint(want) {
			t.Errorf("templates = %v, want %v", flat, want)
		}
	}

	if status, _, raw := post(t, base, path, "", "{}"); status != 401 || checkErrorBody(t, raw)["type"] != TypeAuthentication {
		t.Errorf("no key: %d %s", status, raw)
	}
	if status, _, _ := post(t, base, "/v1/businesses/other/get/templates", testKey, "{}"); status != 404 {
		t.Errorf("other business: %d", status)
	}

	// Without configured templates the list is empty, not null.
	_, base2 := newFake(t, Config{})
	if status, _, raw := post(t, base2, path, testKey, ""); status != 200 || string(raw) != `{"entity":{"templateGroups":[]}}` {
		t.Errorf("empty list: %d %s", status, raw)
	}
}

func TestControlEndpoints(t *testing.T) {
	s, base := StartForTest(t, Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1})
	remote := Remote{BaseURL: base}
	ctx := context.Background()

	// Empty record is [], not null.
	if status, ctype, raw := request(t, http.MethodGet, base+"/_fake/received", "", ""); status != 200 || ctype != "application/json" || string(raw) != "[]" {
		t.Errorf("empty received: %d %q %s", status, ctype, raw)
	}

	if err := remote.SetRules(ctx, []Rule{{Numbers: []string{"+15550000009"}, Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"}, {Suffix: "8", Latency: time.Millisecond, Times: 1}}); err != nil {
		t.Fatal(err)
	}
	rules, err := remote.Rules(ctx)
	if err != nil || len(rules) != 2 || rules[1].Latency != time.Millisecond || rules[1].Times != 1 || rules[0].Code != "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT" {
		t.Fatalf("rules = %+v, %v", rules, err)
	}

	c := newClient(t, base)
	m := message("+15550000001")
	m.CallbackData = json.RawMessage(`{"r":"1"}`)
	c.accept(t, m)
	c.accept(t, message("+15550000008"))
	if key := errorKey(c.send(ctx, message("+15550000009"))); key != "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT" {
		t.Fatalf("opted-out send: %s", key)
	}

	// The raw JSON uses camelCase names.
	status, _, raw := request(t, http.MethodGet, base+"/_fake/received", "", "")
	var rawRecs []map[string]any
	if status != 200 || json.Unmarshal(raw, &rawRecs) != nil || len(rawRecs) != 3 {
		t.Fatalf("received: %d %s", status, raw)
	}
	for _, k := range []string{"at", "number", "message", "status", "messageId"} {
		if _, ok := rawRecs[0][k]; !ok {
			t.Errorf("record JSON lacks %q: %s", k, raw)
		}
	}
	if rawRecs[2]["errorCode"] != "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT" {
		t.Errorf("record 2 = %v", rawRecs[2])
	}

	recs, err := remote.Received(ctx)
	if err != nil || len(recs) != 3 {
		t.Fatalf("Remote.Received = %+v, %v", recs, err)
	}
	local := s.Received()
	for i := range recs {
		if recs[i].Number != local[i].Number || recs[i].MessageID != local[i].MessageID || recs[i].Status != local[i].Status ||
			!recs[i].At.Equal(local[i].At) || recs[i].Message.TemplateName != "promo" {
			t.Errorf("remote record %d = %+v, local %+v", i, recs[i], local[i])
		}
	}
	if string(recs[0].Message.CallbackData) != `{"r":"1"}` {
		t.Errorf("callbackData = %s", recs[0].Message.CallbackData)
	}

	st, err := remote.Stats(ctx)
	if err != nil || st.Requests != 3 || st.Accepted != 2 || st.DistinctAccepted != 2 || st.Errors["ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"] != 1 || st.Statuses[200] != 2 || st.Statuses[400] != 1 {
		t.Errorf("Remote.Stats = %+v, %v", st, err)
	}

	if err := remote.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Requests != 0 || len(s.Received()) != 0 || s.AcceptedCount("+15550000001") != 0 {
		t.Errorf("after reset: %+v", st)
	}
	if len(s.Rules()) != 2 {
		t.Error("reset dropped the rules")
	}

	// Errors of the control endpoints.
	tests := []struct {
		method, path, body string
		want               int
	}{
		{http.MethodGet, "/_fake/reset", "", 405},
		{http.MethodPost, "/_fake/stats", "", 405},
		{http.MethodGet, "/_fake/nope", "", 404},
		{http.MethodPost, "/_fake/rules", `[{"percent":101}]`, 400},
		{http.MethodPost, "/_fake/rules", `[{"latency":"soon"}]`, 400},
		{http.MethodPost, "/_fake/rules", `[{"lantency":"1s"}]`, 400},
		{http.MethodPost, "/_fake/rules", `{`, 400},
		{http.MethodPost, "/_fake/rules", `[]`, 200},
	}
	for _, tc := range tests {
		status, _, raw := request(t, tc.method, base+tc.path, "", tc.body)
		if status != tc.want {
			t.Errorf("%s %s %s: %d, want %d (%s)", tc.method, tc.path, tc.body, status, tc.want, raw)
		}
	}
	if len(s.Rules()) != 0 {
		t.Error("POST [] did not clear the rules")
	}
	if err := remote.SetRules(ctx, []Rule{{Status: 42}}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("invalid rules accepted remotely: %v", err)
	}
}

func TestRuleJSON(t *testing.T) {
	in := Rule{Numbers: []string{"+1"}, Suffix: "9", Percent: 12.5, Salt: "s", Template: "promo", Code: "C", Status: 504, Latency: 250 * time.Millisecond, Times: 3}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"numbers":["+1"],"suffix":"9","percent":12.5,"salt":"s","template":"promo","code":"C","status":504,"latency":"250ms","times":3}`
	if string(b) != want {
		t.Errorf("marshal = %s\nwant      %s", b, want)
	}
	var out Rule
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out) != fmt.Sprint(in) {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}
	if err := json.Unmarshal([]byte(`{"loseResponse":true}`), &out); err != nil || !out.LoseResponse || out.Code != "" {
		t.Errorf("unmarshal loseResponse = %+v, %v", out, err)
	}
}

func TestNewAndValidateRules(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok", Config{BusinessID: "b", APIKey: "k"}, ""},
		{"no business", Config{APIKey: "k"}, "business id"},
		{"no key", Config{BusinessID: "b"}, "API key"},
		{"bad rate", Config{BusinessID: "b", APIKey: "k", RateLimit: -2}, "rate limit"},
		{"percent above 100", Config{BusinessID: "b", APIKey: "k", Rules: []Rule{{Percent: 100.5}}}, "percent"},
		{"negative percent", Config{BusinessID: "b", APIKey: "k", Rules: []Rule{{Percent: -1}}}, "percent"},
		{"status 99", Config{BusinessID: "b", APIKey: "k", Rules: []Rule{{Status: 99}}}, "status"},
		{"status 600", Config{BusinessID: "b", APIKey: "k", Rules: []Rule{{Status: 600}}}, "status"},
		{"code with success status", Config{BusinessID: "b", APIKey: "k", Rules: []Rule{{Code: "X", Status: 200}}}, "success status"},
		{"lose and code", Config{BusinessID: "b", APIKey: "k", Rules: []Rule{{}, {LoseResponse: true, Code: "X"}}}, "rule 1"},
		{"lose and status", Config{BusinessID: "b", APIKey: "k", Rules: []Rule{{LoseResponse: true, Status: 500}}}, "loseResponse"},
		{"negative times", Config{BusinessID: "b", APIKey: "k", Rules: []Rule{{Times: -1}}}, "times"},
		{"negative latency", Config{BusinessID: "b", APIKey: "k", Rules: []Rule{{Latency: -1}}}, "latency"},
		{"template without language", Config{BusinessID: "b", APIKey: "k", Templates: []Template{{Name: "x"}}}, "language"},
		{"duplicate template", Config{BusinessID: "b", APIKey: "k", Templates: []Template{{Name: "x", Language: "en"}, {Name: "x", Language: "en"}}}, "twice"},
		{"bad sender", Config{BusinessID: "b", APIKey: "k", Senders: []string{"415"}}, "sender"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("New error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}

	s, _ := New(Config{BusinessID: "b", APIKey: "k"})
	defer func() {
		if recover() == nil {
			t.Error("SetRules accepted an invalid rule")
		}
	}()
	s.SetRules([]Rule{{Percent: 200}})
}

func TestIDs(t *testing.T) {
	var g idGen
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 1000 {
		now := at
		if i%3 == 0 {
			now = at.Add(-time.Second) // the clock stepping back must not repeat or reorder ids
		}
		if i > 500 {
			now = at.Add(time.Duration(i) * time.Millisecond)
		}
		id := g.next(now)
		if !idPattern.MatchString(id) {
			t.Fatalf("id %q is not a ULID", id)
		}
		if id <= prev {
			t.Fatalf("id %q after %q", id, prev)
		}
		prev = id
	}
	// The timestamp is the first 10 characters.
	if got, want := g.next(at.Add(time.Hour))[:10], ulid.Format(uint64(at.Add(time.Hour).UnixMilli())<<16, 0)[:10]; got != want {
		t.Errorf("timestamp part %q, want %q", got, want)
	}
	if got := ulid.Format(0, 0); got != strings.Repeat("0", 26) {
		t.Errorf("Format(0) = %q", got)
	}
	if got := ulid.Format(^uint64(0), ^uint64(0)); got != "7"+strings.Repeat("Z", 25) {
		t.Errorf("Format(max) = %q", got)
	}
}

func TestConcurrentLoad(t *testing.T) {
	clock := newClock() // fixed: every id comes from the same millisecond
	rules := []Rule{
		{Percent: 10, Salt: "optout", Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
		{Percent: 20, Salt: "flaky", Status: 503, Times: 1},
		{Percent: 5, Salt: "lost", LoseResponse: true, Times: 1},
	}
	s, base := newFake(t, Config{RateLimit: -1, Clock: clock.Now, Rules: rules})
	c := newClient(t, base)
	const workers, perWorker = 50, 60
	var (
		mu  sync.Mutex
		ids = map[string]bool{}
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				n := fmt.Sprintf("+1202%03d%04d", w, i)
				for attempt := 0; attempt < 3; attempt++ {
					a, err := c.send(context.Background(), message(n))
					var res sendResult
					if err == nil && a.status == http.StatusOK && json.Unmarshal(a.body, &res) == nil {
						mu.Lock()
						if ids[res.ID] {
							t.Errorf("id %s answered twice", res.ID)
						}
						ids[res.ID] = true
						mu.Unlock()
						break
					}
					// A 5xx or no answer is tried again (the message may or may not have
					// gone); any other error answer is final.
					if err == nil && a.status < 500 {
						break
					}
				}
			}
		}()
	}
	wg.Wait()

	// Work out what the rules should have done to every number.
	var optedOut, flaky, lost, clean int
	for w := range workers {
		for i := range perWorker {
			n := fmt.Sprintf("+1202%03d%04d", w, i)
			switch {
			case rules[0].Matches(n, "promo"):
				optedOut++
				if s.AcceptedCount(n) != 0 {
					t.Errorf("%s opted out but accepted", n)
				}
			case rules[1].Matches(n, "promo"):
				flaky++ // 503 once, then accepted (or lost, then accepted) on retry
				if got, want := s.AcceptedCount(n), 1+b2i(rules[2].Matches(n, "promo")); got != want {
					t.Errorf("%s accepted %d times, want %d", n, got, want)
				}
			case rules[2].Matches(n, "promo"):
				lost++
				if s.AcceptedCount(n) != 2 {
					t.Errorf("%s lost once: accepted %d times, want 2", n, s.AcceptedCount(n))
				}
			default:
				clean++
				if s.AcceptedCount(n) != 1 {
					t.Errorf("%s accepted %d times, want 1", n, s.AcceptedCount(n))
				}
			}
		}
	}
	st := s.Stats()
	errs := 0
	for _, v := range st.Errors {
		errs += v
	}
	if st.Requests != st.Accepted+errs {
		t.Errorf("requests %d != accepted %d + errors %d", st.Requests, st.Accepted, errs)
	}
	if st.Errors["ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"] != optedOut || st.Errors[CodeUnspecified] != flaky {
		t.Errorf("stats %+v, want %d opted out and %d 503s", st, optedOut, flaky)
	}
	if st.DistinctAccepted != workers*perWorker-optedOut || st.Lost == 0 || st.Accepted != len(ids)+st.Lost {
		t.Errorf("stats %+v (ids answered %d)", st, len(ids))
	}
	if len(s.Received()) != st.Requests {
		t.Errorf("%d records for %d requests", len(s.Received()), st.Requests)
	}
	recs := s.Received()
	sort.Slice(recs, func(i, j int) bool { return recs[i].MessageID < recs[j].MessageID })
	for i := 1; i < len(recs); i++ {
		if recs[i].MessageID != "" && recs[i].MessageID == recs[i-1].MessageID {
			t.Fatalf("id %s recorded twice", recs[i].MessageID)
		}
	}
	t.Logf("%d numbers: %d opted out, %d flaky, %d lost, %d clean; %d requests", workers*perWorker, optedOut, flaky, lost, clean, st.Requests)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestMaxReceived(t *testing.T) {
	s, base := newFake(t, Config{MaxReceived: 3})
	c := newClient(t, base)
	for i := range 5 {
		c.accept(t, message(fmt.Sprintf("+1555000000%d", i)))
	}
	if recs, st := s.Received(), s.Stats(); len(recs) != 3 || recs[2].Number != "+15550000002" || st.Requests != 5 || st.DistinctAccepted != 5 {
		t.Errorf("%d records, stats %+v", len(recs), st)
	}
}

func TestStartClose(t *testing.T) {
	s, err := New(Config{BusinessID: testBusiness, APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start("127.0.0.1:0"); err == nil {
		t.Error("second Start succeeded")
	}
	newClient(t, base).accept(t, message("+15550001234"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if a, err := newClient(t, base).send(context.Background(), message("+15550001234")); err == nil {
		t.Errorf("after Close: answered %d %s, want no answer", a.status, a.body)
	}
	// Start again on a fresh port after Close.
	base2, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	newClient(t, base2).accept(t, message("+15550001234"))
	if got := s.AcceptedCount("+15550001234"); got != 2 {
		t.Errorf("AcceptedCount = %d, want 2", got)
	}
}

// BenchmarkSend measures the fake's throughput over loopback, raw JSON sends on keep-alive
// connections, with a Percent rule in the path of every send.
func BenchmarkSend(b *testing.B) {
	s, err := New(Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1, MaxReceived: 1000,
		Rules: []Rule{{Percent: 1, Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"}}})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c := newClient(b, ts.URL)
	var seq sync.Mutex
	next := 0
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			seq.Lock()
			next++
			n := next
			seq.Unlock()
			_, _ = c.send(context.Background(), message(fmt.Sprintf("+1555%07d", n)))
		}
	})
	b.StopTimer()
	if st := s.Stats(); st.Requests != b.N {
		b.Fatalf("%d requests recorded, want %d", st.Requests, b.N)
	}
}
