package connectly_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/logx"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with what the client sends now")

const (
	testBusiness = "6f1c1a9e-8a5b-4d3e-9c2f-0a1b2c3d4e5f"
	// testKey is distinctive so a leak into an error string cannot match by accident.
	testKey = "hk_live_9d2f6c1b4a7e8f30SECRET"
	testID  = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
)

// capturedRequest is one request as the fake Connectly saw it.
type capturedRequest struct {
	Method      string
	EscapedPath string
	Header      http.Header
	Body        []byte
}

// fakeConnectly records every request and answers with HandleFunc (200 {"id": testID} when nil).
type fakeConnectly struct {
	HandleFunc func(w http.ResponseWriter, r *http.Request, body []byte)

	mu       sync.Mutex
	requests []capturedRequest
}

func (f *fakeConnectly) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		// The client gave up mid-body; nothing to answer.
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, capturedRequest{
		Method:      r.Method,
		EscapedPath: r.URL.EscapedPath(),
		Header:      r.Header.Clone(),
		Body:        body,
	})
	f.mu.Unlock()
	if f.HandleFunc != nil {
		f.HandleFunc(w, r, body)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"`+testID+`"}`)
}

func (f *fakeConnectly) Requests() []capturedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]capturedRequest(nil), f.requests...)
}

type testBundle struct {
	fake   *fakeConnectly
	srv    *httptest.Server
	client *connectly.Client
}

// setup starts a fake Connectly on 127.0.0.1 and a client built the way production builds it.
func setup(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, body []byte)) *testBundle {
	t.Helper()
	fake := &fakeConnectly{HandleFunc: handle}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &testBundle{fake: fake, srv: srv, client: newClient(t, connectly.ClientConfig{BaseURL: srv.URL})}
}

// newClient fills in the test business and key and fails the test on a config error.
func newClient(tb testing.TB, cfg connectly.ClientConfig) *connectly.Client {
	tb.Helper()
	if cfg.BusinessID == "" {
		cfg.BusinessID = testBusiness
	}
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	c, err := connectly.NewClient(cfg)
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	return c
}

// replyJSON returns a handler answering status with body as JSON and extra headers.
func replyJSON(status int, body string, header ...string) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func message() connectly.TemplateMessage {
	return connectly.TemplateMessage{Number: "+16044441111", TemplateName: "order_update", Language: "en"}
}

// checkGolden compares got, indented with two spaces and ending in a newline, with
// testdata/<name>; with -update it rewrites the file instead.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, got)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", filepath.FromSlash(name))
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(want, buf.Bytes()) {
		t.Errorf("request body differs from %s (run with -update if the change is intended)\n--- want\n%s\n+++ got\n%s", path, want, buf.Bytes())
	}
}

func TestSendTemplateRequestGolden(t *testing.T) {
	t.Parallel()

	allBody := make([]connectly.Parameter, 0, 15)
	for i := 1; i <= 15; i++ {
		allBody = append(allBody, connectly.Parameter{Name: "body_" + strconv.Itoa(i), Value: "value " + strconv.Itoa(i)})
	}
	// Non-ASCII text must go out as UTF-8, not mangled or escaped away.
	allBody[2].Value = "Ação São Paulo ✓"

	tests := []struct {
		name string
		msg  func(m *connectly.TemplateMessage)
	}{
		{"header_text", func(m *connectly.TemplateMessage) {
			m.Parameters = []connectly.Parameter{{Name: "header_text", Value: "Your order shipped"}, {Name: "body_1", Value: "Ana"}}
		}},
		{"header_image", func(m *connectly.TemplateMessage) {
			m.Parameters = []connectly.Parameter{{Name: "header_image", Value: "https://example.com/banner.png"}, {Name: "body_1", Value: "Ana"}}
		}},
		{"header_video", func(m *connectly.TemplateMessage) {
			m.Parameters = []connectly.Parameter{{Name: "header_video", Value: "https://example.com/clip.mp4"}}
		}},
		{"header_document", func(m *connectly.TemplateMessage) {
			m.Parameters = []connectly.Parameter{{Name: "header_document", Value: "https://example.com/invoice-12345.pdf"}}
		}},
		{"body_1_to_15", func(m *connectly.TemplateMessage) {
			m.Parameters = allBody
		}},
		{"url_button_suffixes", func(m *connectly.TemplateMessage) {
			m.Parameters = []connectly.Parameter{
				{Name: "body_1", Value: "#12345"},
				{Name: "button_1_url", Value: "orders/12345?src=wa&lang=en"},
				{Name: "button_2_url", Value: "track/12345"},
			}
		}},
		{"bsuid_recipient", func(m *connectly.TemplateMessage) {
			m.Number = "bsuid:US.13491208655302741918"
			m.Parameters = []connectly.Parameter{{Name: "body_1", Value: "Ana"}}
		}},
		{"no_parameters", func(m *connectly.TemplateMessage) {
			m.Parameters = nil
		}},
		{"sender_callback_campaign", func(m *connectly.TemplateMessage) {
			m.Sender = "+14151111234"
			m.CallbackData = json.RawMessage(`{ "campaign_id": "c-42", "recipient_id": "r-9001" }`)
			m.CampaignName = "spring_sale_2026-03-12"
			m.Parameters = []connectly.Parameter{{Name: "body_1", Value: "Ana"}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			// The golden bodies show every field; TestCampaignNameFollowsWire shows it dropped.
			b.client = newClient(t, connectly.ClientConfig{BaseURL: b.srv.URL, SendCampaignName: true})
			msg := message()
			tc.msg(&msg)

			res, err := b.client.SendTemplate(context.Background(), msg)
			if err != nil {
				t.Fatalf("SendTemplate: %v", err)
			}
			if res.ID != testID {
				t.Errorf("id = %q, want %q", res.ID, testID)
			}
			reqs := b.fake.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			req := reqs[0]
			if req.Method != http.MethodPost {
				t.Errorf("method = %s, want POST", req.Method)
			}
			if want := "/v1/businesses/" + testBusiness + "/send/whatsapp_templated_messages"; req.EscapedPath != want {
				t.Errorf("path = %s, want %s", req.EscapedPath, want)
			}
			if got := req.Header.Values("X-API-Key"); len(got) != 1 || got[0] != testKey {
				t.Errorf("X-API-Key = %q, want exactly [%q]", got, testKey)
			}
			if got := req.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if got := req.Header.Get("Accept"); got != "application/json" {
				t.Errorf("Accept = %q, want application/json", got)
			}
			checkGolden(t, "requests/"+tc.name+".json", req.Body)
		})
	}
}

func TestSendTemplateEmptyParametersSameAsNil(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	msg := message()
	if _, err := b.client.SendTemplate(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	msg.Parameters = []connectly.Parameter{}
	if _, err := b.client.SendTemplate(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	reqs := b.fake.Requests()
	if len(reqs) != 2 || !bytes.Equal(reqs[0].Body, reqs[1].Body) {
		t.Fatalf("nil and empty parameters sent different bodies: %q", reqs)
	}
	if !bytes.Contains(reqs[0].Body, []byte(`"parameters":[]`)) {
		t.Errorf("body %s lacks \"parameters\":[]", reqs[0].Body)
	}
}

func TestSendPathEscapesBusinessID(t *testing.T) {
	t.Parallel()
	if got, want := connectly.SendPath("a/b c"), "/v1/businesses/a%2Fb%20c/send/whatsapp_templated_messages"; got != want {
		t.Errorf("SendPath = %q, want %q", got, want)
	}
}

func TestSendTemplateSuccess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"OK", http.StatusOK, `{"id":"` + testID + `"}`},
		{"Created", http.StatusCreated, `{"id":"` + testID + `"}`},
		{"UnknownFieldsIgnored", http.StatusOK, `{"id":"` + testID + `","extra":{"a":1}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, replyJSON(tc.status, tc.body))
			res, err := b.client.SendTemplate(context.Background(), message())
			if err != nil {
				t.Fatalf("SendTemplate: %v", err)
			}
			if res.ID != testID {
				t.Errorf("id = %q, want %q", res.ID, testID)
			}
		})
	}
}

// A success status whose body carries no usable id may still mean the message was accepted,
// so the outcome must be reported as unknown rather than as a plain failure.
func TestSendTemplateSuccessWithoutIDIsAmbiguous(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		body   string
		errSub string
	}{
		{"EmptyObject", http.StatusOK, `{}`, "without an id"},
		{"EmptyID", http.StatusCreated, `{"id":""}`, "without an id"},
		{"NotJSON", http.StatusOK, `<html>ok</html>`, "decode answer"},
		{"EmptyBody", http.StatusOK, ``, "decode answer"},
		{"NoContent", http.StatusNoContent, ``, "decode answer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, replyJSON(tc.status, tc.body))
			res, err := b.client.SendTemplate(context.Background(), message())
			if err == nil {
				t.Fatalf("SendTemplate succeeded with %+v, want an error", res)
			}
			if !connectly.Ambiguous(err) {
				t.Errorf("Ambiguous(%v) = false, want true", err)
			}
			var te *connectly.TransportError
			if !errors.As(err, &te) || !te.Written {
				t.Errorf("err = %#v, want *TransportError with Written", err)
			}
			if !strings.Contains(err.Error(), tc.errSub) {
				t.Errorf("err = %q, want it to contain %q", err, tc.errSub)
			}
			if got := connectly.ErrorKey(err); got != "NO_RESPONSE" {
				t.Errorf("ErrorKey = %q, want NO_RESPONSE", got)
			}
		})
	}
}

// documentedErrorBody is the error body of reference section 4.1, verbatim.
const documentedErrorBody = `{
  "message": "Failed to send a message because more than 24 hours have passed since the customer last replied",
  "type": "ERROR_TYPE_DEADLINE_EXCEEDED",
  "code": "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW",
  "userTitle": "Failed to send a message because more than 24 hours have passed since the customer last replied",
  "userMessage": "Pass along the connectly trace id 'cnct_trace_id' to the team for more information.",
  "cntTraceId": "11824978358485860716",
  "details": {}
}`

func TestSendTemplateDecodesErrorBody(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 401, 500} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			b := setup(t, replyJSON(status, documentedErrorBody))
			_, err := b.client.SendTemplate(context.Background(), message())
			var ae *connectly.Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %#v, want *connectly.Error", err)
			}
			want := connectly.Error{
				StatusCode: status,
				ErrorBody: connectly.ErrorBody{
					Message:     "Failed to send a message because more than 24 hours have passed since the customer last replied",
					Type:        "ERROR_TYPE_DEADLINE_EXCEEDED",
					Code:        "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW",
					UserTitle:   "Failed to send a message because more than 24 hours have passed since the customer last replied",
					UserMessage: "Pass along the connectly trace id 'cnct_trace_id' to the team for more information.",
					TraceID:     "11824978358485860716",
					Details:     json.RawMessage(`{}`),
				},
			}
			if !reflect.DeepEqual(*ae, want) {
				t.Errorf("error (-want, +got):\n- %+v\n+ %+v", want, *ae)
			}
			if got, want := ae.Key(), "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"; got != want {
				t.Errorf("Key = %q, want %q", got, want)
			}
			wantMsg := fmt.Sprintf("connectly: HTTP %d ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW: Failed to send", status)
			if !strings.HasPrefix(err.Error(), wantMsg) {
				t.Errorf("Error() = %q, want prefix %q", err, wantMsg)
			}
			// The body says why it was refused: the window is closed, whatever the status.
			if connectly.Ambiguous(err) {
				t.Error("a refusal must not be ambiguous")
			}
		})
	}
}

// standardErrorBody is Connectly's error body when nothing is more specific (reference 4.1).
const standardErrorBody = `{"message":"Internal server error","type":"ERROR_TYPE_UNSPECIFIED","code":"ERROR_CODE_UNSPECIFIED","cntTraceId":"1","details":{}}`

// Through the real client, a 5xx with Connectly's standard body (a 503 too: reference 4.4) may
// follow a message that went out, a 400 with it is a refusal, and a 429 with it is a throttle
// keyed by its status.
func TestSendTemplateStandardBodyOutcome(t *testing.T) {
	t.Parallel()
	tbl := defaultTable(t)
	for _, tc := range []struct {
		status  int
		outcome connectly.Outcome
		class   connectly.Class
		key     string
	}{
		{500, connectly.OutcomeMaybeSent, connectly.ClassTransient, "ERROR_CODE_UNSPECIFIED"},
		{502, connectly.OutcomeMaybeSent, connectly.ClassTransient, "ERROR_CODE_UNSPECIFIED"},
		{504, connectly.OutcomeMaybeSent, connectly.ClassTransient, "ERROR_CODE_UNSPECIFIED"},
		{503, connectly.OutcomeMaybeSent, connectly.ClassTransient, "ERROR_CODE_UNSPECIFIED"},
		{400, connectly.OutcomeRefused, connectly.ClassPermanent, "HTTP_400"},
		{429, connectly.OutcomeNotTaken, connectly.ClassThrottle, "HTTP_429"},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			t.Parallel()
			b := setup(t, replyJSON(tc.status, standardErrorBody))
			_, err := b.client.SendTemplate(context.Background(), message())
			d := tbl.Decide(err)
			if d.Outcome != tc.outcome || d.Class != tc.class || d.Key != tc.key {
				t.Errorf("Decide(%v) = %v/%v/%q, want %v/%v/%q", err, d.Outcome, d.Class, d.Key, tc.outcome, tc.class, tc.key)
			}
		})
	}
}

func TestSendTemplateErrorWithoutUsableBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  int
		body    string
		wantKey string
		wantMsg string
	}{
		{"HTMLGateway", http.StatusBadGateway, `<html><body>502 Bad Gateway</body></html>`, "HTTP_502", "connectly: HTTP 502"},
		{"Empty", http.StatusServiceUnavailable, ``, "HTTP_503", "connectly: HTTP 503"},
		{"JSONArray", http.StatusBadRequest, `[1,2,3]`, "HTTP_400", "connectly: HTTP 400"},
		{"Truncated", http.StatusBadRequest, `{"code":"ERROR_CODE_MESSAGE`, "HTTP_400", "connectly: HTTP 400"},
		{"TypeOnly", http.StatusUnauthorized, `{"message":"Missing or invalid X-API-Key","type":"ERROR_TYPE_AUTHENTICATION"}`, "ERROR_TYPE_AUTHENTICATION", "connectly: HTTP 401 ERROR_TYPE_AUTHENTICATION: Missing or invalid X-API-Key"},
		{"CodeWithoutMessage", http.StatusBadRequest, `{"code":"ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"}`, "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID", "connectly: HTTP 400 ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"},
		{"MessageOnly", http.StatusTooManyRequests, `{"message":"Too Many Requests"}`, "HTTP_429", "connectly: HTTP 429"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, replyJSON(tc.status, tc.body, "Content-Type", "text/html"))
			_, err := b.client.SendTemplate(context.Background(), message())
			var ae *connectly.Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %#v, want *connectly.Error", err)
			}
			if ae.StatusCode != tc.status {
				t.Errorf("StatusCode = %d, want %d", ae.StatusCode, tc.status)
			}
			if got := ae.Key(); got != tc.wantKey {
				t.Errorf("Key = %q, want %q", got, tc.wantKey)
			}
			if got := connectly.ErrorKey(err); got != tc.wantKey {
				t.Errorf("ErrorKey = %q, want %q", got, tc.wantKey)
			}
			if got := err.Error(); got != tc.wantMsg {
				t.Errorf("Error() = %q, want %q", got, tc.wantMsg)
			}
		})
	}
}

func TestSendTemplateRetryAfter(t *testing.T) {
	t.Parallel()
	const maxWait = int(connectly.MaxRetryAfter / time.Second)
	tests := []struct {
		name   string
		header []string
		want   int
		// want is the least acceptable value; slack what the clock may take off a date.
		slack int
	}{
		{"Seconds", []string{"Retry-After", "7"}, 7, 0},
		{"Zero", []string{"Retry-After", "0"}, 0, 0},
		{"Absent", nil, 0, 0},
		{"SecondsCapped", []string{"Retry-After", "86400"}, maxWait, 0},
		{"SecondsBeyondInt64Capped", []string{"Retry-After", "99999999999999999999"}, maxWait, 0},
		// An HTTP date 90 s ahead: 90 s, less the part of a second the format drops and the
		// time the round trip took.
		{"HTTPDate", []string{"Retry-After", time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)}, 88, 2},
		{"HTTPDateObsoleteForm", []string{"Retry-After", time.Now().Add(90 * time.Second).UTC().Format("Monday, 02-Jan-06 15:04:05 GMT")}, 88, 2},
		{"HTTPDatePast", []string{"Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"}, 0, 0},
		{"HTTPDateFarCapped", []string{"Retry-After", "Fri, 31 Dec 2199 23:59:59 GMT"}, maxWait, 0},
		{"NegativeIgnored", []string{"Retry-After", "-3"}, 0, 0},
		{"FractionIgnored", []string{"Retry-After", "1.5"}, 0, 0},
		{"GarbageIgnored", []string{"Retry-After", "soon"}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, replyJSON(http.StatusTooManyRequests, `{"message":"Too Many Requests"}`, tc.header...))
			_, err := b.client.SendTemplate(context.Background(), message())
			var ae *connectly.Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %#v, want *connectly.Error", err)
			}
			if ae.RetryAfterSeconds < tc.want || ae.RetryAfterSeconds > tc.want+tc.slack {
				t.Errorf("RetryAfterSeconds = %d, want %d to %d", ae.RetryAfterSeconds, tc.want, tc.want+tc.slack)
			}
		})
	}
}

func TestSendTemplateConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, connectly.ClientConfig{BaseURL: "http://" + addr, Timeout: 5 * time.Second})

	_, err = c.SendTemplate(context.Background(), message())
	var te *connectly.TransportError
	if !errors.As(err, &te) {
		t.Fatalf("err = %#v, want *TransportError", err)
	}
	if te.Written {
		t.Error("Written = true for a refused connection")
	}
	if d := defaultTable(t).Decide(err); d.Outcome != connectly.OutcomeNotTaken {
		t.Errorf("Decide = %v for a refused connection, want not-taken", d.Outcome)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("err = %v, want it to wrap ECONNREFUSED", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) || opErr.Op != "dial" {
		t.Errorf("err = %v, want a dial *net.OpError", err)
	}
	if got := connectly.ErrorKey(err); got != "NOT_SENT" {
		t.Errorf("ErrorKey = %q, want NOT_SENT", got)
	}
	if !strings.HasPrefix(err.Error(), "connectly: request not sent: ") {
		t.Errorf("Error() = %q", err)
	}
}

// A name that does not resolve fails before anything is written: the request was not taken.
// The dialer answers the lookup failure itself, so no resolver is asked.
func TestSendTemplateDNSFailureIsNotTaken(t *testing.T) {
	t.Parallel()
	dnsErr := &net.DNSError{Err: "no such host", Name: "api.connectly.invalid", IsNotFound: true}
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: dnsErr}
	}}
	c := newClient(t, connectly.ClientConfig{BaseURL: "http://api.connectly.invalid", HTTPClient: &http.Client{Transport: tr}})

	_, err := c.SendTemplate(context.Background(), message())
	var te *connectly.TransportError
	if !errors.As(err, &te) || te.Written {
		t.Fatalf("err = %#v, want a *TransportError not written", err)
	}
	var got *net.DNSError
	if !errors.As(err, &got) {
		t.Errorf("err = %v, want it to wrap the *net.DNSError", err)
	}
	if d := defaultTable(t).Decide(err); d.Outcome != connectly.OutcomeNotTaken || d.Key != "NOT_SENT" {
		t.Errorf("Decide = %v/%q, want not-taken/NOT_SENT", d.Outcome, d.Key)
	}
}

// The server reads the whole request and hangs up without a status line: Connectly may have
// accepted the message, so the failure must be reported as ambiguous.
func TestSendTemplateConnectionClosedAfterRequest(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		_ = conn.Close()
	})

	_, err := b.client.SendTemplate(context.Background(), message())
	var te *connectly.TransportError
	if !errors.As(err, &te) {
		t.Fatalf("err = %#v, want *TransportError", err)
	}
	if !te.Written {
		t.Error("Written = false, but the server had read the whole request")
	}
	if !connectly.Ambiguous(err) {
		t.Error("Ambiguous = false, want true")
	}
	if !errors.Is(err, io.EOF) {
		t.Errorf("err = %v, want it to wrap io.EOF", err)
	}
	if got := connectly.ErrorKey(err); got != "NO_RESPONSE" {
		t.Errorf("ErrorKey = %q, want NO_RESPONSE", got)
	}
	if !strings.HasPrefix(err.Error(), "connectly: no response after the request was sent: ") {
		t.Errorf("Error() = %q", err)
	}
	if n := len(b.fake.Requests()); n != 1 {
		t.Errorf("server saw %d requests, want 1 (a POST must not be retried)", n)
	}
}

// hangingServer reads each request, reports it on received, then holds the connection open
// until the client goes away or the test ends.
func hangingServer(t *testing.T) (url string, received <-chan struct{}) {
	t.Helper()
	got := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		select {
		case got <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	// Cleanups run last-in first-out: release the handler before Close waits for it.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv.URL, got
}

func TestSendTemplateClientTimeout(t *testing.T) {
	t.Parallel()
	url, _ := hangingServer(t)
	c := newClient(t, connectly.ClientConfig{BaseURL: url, Timeout: 200 * time.Millisecond})

	start := time.Now()
	_, err := c.SendTemplate(context.Background(), message())
	elapsed := time.Since(start)

	var te *connectly.TransportError
	if !errors.As(err, &te) {
		t.Fatalf("err = %#v, want *TransportError", err)
	}
	// The request was fully written before the server started waiting.
	if !te.Written || !connectly.Ambiguous(err) {
		t.Errorf("Written = %v, Ambiguous = %v, want both true", te.Written, connectly.Ambiguous(err))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(err, context.DeadlineExceeded) = false for %v", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("err = %v, want a net.Error with Timeout() true", err)
	}
	if !strings.Contains(err.Error(), "timeout: ") || !strings.Contains(err.Error(), "Client.Timeout exceeded") {
		t.Errorf("Error() = %q, want it to say timeout", err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("SendTemplate took %v with a 200ms timeout", elapsed)
	}
}

func TestSendTemplateContextCanceled(t *testing.T) {
	t.Parallel()

	t.Run("WhileWaitingForAnswer", func(t *testing.T) {
		t.Parallel()
		url, received := hangingServer(t)
		c := newClient(t, connectly.ClientConfig{BaseURL: url})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			<-received
			cancel()
		}()

		_, err := c.SendTemplate(ctx, message())
		var te *connectly.TransportError
		if !errors.As(err, &te) {
			t.Fatalf("err = %#v, want *TransportError", err)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("errors.Is(err, context.Canceled) = false for %v", err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("cancellation reported as a deadline: %v", err)
		}
		if !te.Written || !connectly.Ambiguous(err) {
			t.Errorf("Written = %v, Ambiguous = %v, want both true", te.Written, connectly.Ambiguous(err))
		}
	})

	t.Run("BeforeSending", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()

		_, err := b.client.SendTemplate(ctx, message())
		var te *connectly.TransportError
		if !errors.As(err, &te) {
			t.Fatalf("err = %#v, want *TransportError", err)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("errors.Is(err, context.Canceled) = false for %v", err)
		}
		if te.Written || connectly.Ambiguous(err) {
			t.Errorf("Written = %v, Ambiguous = %v, want both false", te.Written, connectly.Ambiguous(err))
		}
		if n := len(b.fake.Requests()); n != 0 {
			t.Errorf("server saw %d requests, want 0", n)
		}
	})

	t.Run("ContextDeadline", func(t *testing.T) {
		t.Parallel()
		url, _ := hangingServer(t)
		c := newClient(t, connectly.ClientConfig{BaseURL: url})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()

		_, err := c.SendTemplate(ctx, message())
		var te *connectly.TransportError
		if !errors.As(err, &te) {
			t.Fatalf("err = %#v, want *TransportError", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("errors.Is(err, context.DeadlineExceeded) = false for %v", err)
		}
		if !te.Written {
			t.Error("Written = false, but the server had read the whole request")
		}
	})
}

func TestSendTemplateCallbackDataLimit(t *testing.T) {
	t.Parallel()
	// callbackJSON returns a JSON string value of exactly n bytes whose content is fill repeated.
	callbackJSON := func(n int, fill string) json.RawMessage {
		return json.RawMessage(`"` + strings.Repeat(fill, n-2) + `"`)
	}
	tests := []struct {
		name     string
		callback json.RawMessage
		wantErr  string
	}{
		{"AtLimit", callbackJSON(connectly.MaxCallbackData, "x"), ""},
		{"OverLimit", callbackJSON(connectly.MaxCallbackData+1, "x"), "callbackData is 1025 bytes, limit 1024"},
		{"FarOverLimit", callbackJSON(64<<10, "x"), "callbackData is 65536 bytes, limit 1024"},
		// HTML-sensitive characters must not be expanded to \u003c escapes on the wire, or a
		// value that passes the check would reach Connectly above the documented limit.
		{"AtLimitWithHTMLCharacters", callbackJSON(connectly.MaxCallbackData, "<"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			msg := message()
			msg.CallbackData = tc.callback
			_, err := b.client.SendTemplate(context.Background(), msg)
			reqs := b.fake.Requests()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				var te *connectly.TransportError
				var ae *connectly.Error
				if errors.As(err, &te) || errors.As(err, &ae) {
					t.Errorf("err = %#v, want a plain client error", err)
				}
				if got := connectly.ErrorKey(err); got != "CLIENT_ERROR" {
					t.Errorf("ErrorKey = %q, want CLIENT_ERROR", got)
				}
				if len(reqs) != 0 {
					t.Errorf("server saw %d requests, want none", len(reqs))
				}
				return
			}
			if err != nil {
				t.Fatalf("SendTemplate: %v", err)
			}
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			var sent struct {
				CallbackData json.RawMessage `json:"callbackData"`
			}
			if err := json.Unmarshal(reqs[0].Body, &sent); err != nil {
				t.Fatal(err)
			}
			if len(sent.CallbackData) > connectly.MaxCallbackData {
				t.Errorf("sent callbackData of %d bytes, limit %d: %.80s...", len(sent.CallbackData), connectly.MaxCallbackData, sent.CallbackData)
			}
			if !bytes.Equal(sent.CallbackData, tc.callback) {
				t.Errorf("callbackData changed on the wire:\n got %.80s...\nwant %.80s...", sent.CallbackData, tc.callback)
			}
		})
	}
}

func TestSendTemplateInvalidCallbackData(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	msg := message()
	msg.CallbackData = json.RawMessage(`{"campaign_id":`)
	_, err := b.client.SendTemplate(context.Background(), msg)
	if err == nil || !strings.Contains(err.Error(), "encode request") {
		t.Fatalf("err = %v, want an encode error", err)
	}
	if n := len(b.fake.Requests()); n != 0 {
		t.Errorf("server saw %d requests, want none", n)
	}
}

func TestNewClientValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     connectly.ClientConfig
		wantErr string
	}{
		{"DefaultBaseURL", connectly.ClientConfig{BusinessID: testBusiness, APIKey: testKey}, ""},
		{"TrailingSlash", connectly.ClientConfig{BaseURL: "https://api.connectly.ai/", BusinessID: testBusiness, APIKey: testKey}, ""},
		{"BadScheme", connectly.ClientConfig{BaseURL: "ftp://api.connectly.ai", BusinessID: testBusiness, APIKey: testKey}, `base URL "ftp://api.connectly.ai" is not an absolute http(s) URL`},
		{"NoScheme", connectly.ClientConfig{BaseURL: "api.connectly.ai", BusinessID: testBusiness, APIKey: testKey}, `base URL "api.connectly.ai"`},
		{"NoHost", connectly.ClientConfig{BaseURL: "https://", BusinessID: testBusiness, APIKey: testKey}, `base URL "https://"`},
		{"Unparseable", connectly.ClientConfig{BaseURL: "http://[::1", BusinessID: testBusiness, APIKey: testKey}, `base URL "http://[::1"`},
		{"EmptyBusinessID", connectly.ClientConfig{APIKey: testKey}, "business id is empty"},
		{"EmptyAPIKey", connectly.ClientConfig{BusinessID: testBusiness}, "API key is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := connectly.NewClient(tc.cfg)
			if tc.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("NewClient = %v, %v, want a client", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if c != nil {
				t.Errorf("NewClient returned a client with error %v", err)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("error %q contains the API key", err)
			}
		})
	}
}

func TestTrailingSlashBaseURLPath(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	c := newClient(t, connectly.ClientConfig{BaseURL: b.srv.URL + "/"})
	if _, err := c.SendTemplate(context.Background(), message()); err != nil {
		t.Fatal(err)
	}
	if got, want := b.fake.Requests()[0].EscapedPath, connectly.SendPath(testBusiness); got != want {
		t.Errorf("path = %q, want %q", got, want)
	}
}

// The API key must never reach an error string, whatever went wrong.
func TestAPIKeyNeverInErrors(t *testing.T) {
	t.Parallel()

	var errs []error
	collect := func(err error) {
		if err == nil {
			t.Fatal("expected an error")
		}
		errs = append(errs, err)
	}

	_, err := connectly.NewClient(connectly.ClientConfig{BaseURL: "gopher://x", BusinessID: testBusiness, APIKey: testKey})
	collect(err)
	_, err = connectly.NewClient(connectly.ClientConfig{BaseURL: "https://api.connectly.ai", APIKey: testKey})
	collect(err)

	for _, h := range []func(http.ResponseWriter, *http.Request, []byte){
		replyJSON(401, `{"message":"Missing or invalid X-API-Key","type":"ERROR_TYPE_AUTHENTICATION"}`),
		replyJSON(500, `not json`),
		replyJSON(200, `{}`),
		func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			_ = conn.Close()
		},
	} {
		b := setup(t, h)
		_, err := b.client.SendTemplate(context.Background(), message())
		collect(err)
	}

	b := setup(t, nil)
	big := message()
	big.CallbackData = json.RawMessage(`"` + strings.Repeat("x", 2000) + `"`)
	_, err = b.client.SendTemplate(context.Background(), big)
	collect(err)

	url, _ := hangingServer(t)
	_, err = newClient(t, connectly.ClientConfig{BaseURL: url, Timeout: 100 * time.Millisecond}).SendTemplate(context.Background(), message())
	collect(err)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, err = newClient(t, connectly.ClientConfig{BaseURL: "http://" + addr}).SendTemplate(context.Background(), message())
	collect(err)

	for _, err := range errs {
		for _, s := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err)} {
			if strings.Contains(s, testKey) {
				t.Errorf("error %q contains the API key", s)
			}
		}
	}
}

func TestErrorKeyAndMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		err     error
		wantKey string
		wantMsg string
	}{
		{"Code", &connectly.Error{StatusCode: 400, ErrorBody: connectly.ErrorBody{Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID", Type: "ERROR_TYPE_INVALID_REQUEST", Message: "bad number"}},
			"ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID", "connectly: HTTP 400 ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID: bad number"},
		{"TypeOnly", &connectly.Error{StatusCode: 401, ErrorBody: connectly.ErrorBody{Type: "ERROR_TYPE_AUTHENTICATION"}},
			"ERROR_TYPE_AUTHENTICATION", "connectly: HTTP 401 ERROR_TYPE_AUTHENTICATION"},
		{"StatusOnly", &connectly.Error{StatusCode: 429}, "HTTP_429", "connectly: HTTP 429"},
		// A numeric code is not written against the status, where the two would read as one
		// phone-like number and be masked ("HTTP ******1026").
		{"NumericCode", &connectly.Error{StatusCode: 400, ErrorBody: connectly.ErrorBody{Code: "131026", Message: "Message undeliverable"}},
			"131026", "connectly: HTTP 400 code 131026: Message undeliverable"},
		{"Wrapped", fmt.Errorf("send r-1: %w", &connectly.Error{StatusCode: 404}), "HTTP_404", "send r-1: connectly: HTTP 404"},
		{"NotSent", &connectly.TransportError{Err: errors.New("dial tcp: refused")}, "NOT_SENT", "connectly: request not sent: dial tcp: refused"},
		{"NoResponse", &connectly.TransportError{Written: true, Err: io.EOF}, "NO_RESPONSE", "connectly: no response after the request was sent: EOF"},
		{"Other", errors.New("boom"), "CLIENT_ERROR", "boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := connectly.ErrorKey(tc.err); got != tc.wantKey {
				t.Errorf("ErrorKey = %q, want %q", got, tc.wantKey)
			}
			if got := tc.err.Error(); got != tc.wantMsg {
				t.Errorf("Error() = %q, want %q", got, tc.wantMsg)
			}
		})
	}
	if msg := (&connectly.Error{StatusCode: 400, ErrorBody: connectly.ErrorBody{Code: "131026"}}).Error(); logx.MaskDigits(msg) != msg {
		t.Errorf("MaskDigits(%q) = %q: a Meta code read as a phone number", msg, logx.MaskDigits(msg))
	}
	if connectly.Ambiguous(nil) || connectly.Ambiguous(errors.New("x")) || connectly.Ambiguous(&connectly.Error{StatusCode: 408}) ||
		connectly.Ambiguous(&connectly.TransportError{Err: io.EOF}) {
		t.Error("Ambiguous is true for an answer that says the request was not taken")
	}
	// A 500 or a 503 may follow an accepted send, with or without Connectly's error body.
	if !connectly.Ambiguous(&connectly.Error{StatusCode: 500}) || !connectly.Ambiguous(&connectly.Error{StatusCode: 503}) ||
		!connectly.Ambiguous(&connectly.Error{StatusCode: 500, ErrorBody: connectly.ErrorBody{Code: "ERROR_CODE_UNSPECIFIED", Type: "ERROR_TYPE_UNSPECIFIED"}}) {
		t.Error("Ambiguous is false for a 500")
	}
	if !connectly.Ambiguous(fmt.Errorf("wrapped: %w", &connectly.TransportError{Written: true, Err: io.EOF})) {
		t.Error("Ambiguous is false for a wrapped written transport error")
	}
}

// TestCampaignNameFollowsWire sends a template and a session message carrying a campaign to
// the fake Connectly, with the setting off (the default) and on: off, neither request has a
// campaignName; on, both carry it. Wire's encoders give the bodies the client sent.
func TestCampaignNameFollowsWire(t *testing.T) {
	t.Parallel()
	const to, campaign = "+16044441111", "spring-2026"
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("SendCampaignName=%v", on), func(t *testing.T) {
			t.Parallel()
			fake, base := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1})
			if err := fake.OpenWindow(to, time.Time{}); err != nil {
				t.Fatal(err)
			}
			client := newClient(t, connectly.ClientConfig{BaseURL: base, SendCampaignName: on})
			if got := client.Wire(); got != (connectly.Wire{BSUIDField: connectly.BSUIDInID, CampaignName: on}) {
				t.Errorf("Wire() = %+v", got)
			}
			tm := connectly.TemplateMessage{Number: to, TemplateName: "order_update", Language: "en", CampaignName: campaign}
			sm := connectly.SessionMessage{To: to, CampaignName: campaign, Content: connectly.SessionContent{Text: "hi"}}
			if _, err := client.SendTemplate(context.Background(), tm); err != nil {
				t.Fatalf("SendTemplate: %v", err)
			}
			if _, err := client.SendSession(context.Background(), sm); err != nil {
				t.Fatalf("SendSession: %v", err)
			}
			want := ""
			if on {
				want = campaign
			}
			recs := fake.Received()
			if len(recs) != 2 {
				t.Fatalf("fake received %d requests, want 2", len(recs))
			}
			for _, r := range recs {
				if r.Message.CampaignName != want {
					t.Errorf("%s send: campaignName %q, want %q", r.Kind, r.Message.CampaignName, want)
				}
			}
			tb, err := client.Wire().EncodeTemplate(tm)
			if err != nil {
				t.Fatal(err)
			}
			sb, err := client.Wire().EncodeSession(sm)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range [][]byte{tb, sb} {
				if got := bytes.Contains(b, []byte(`"campaignName"`)); got != on {
					t.Errorf("encoded body %s: campaignName present %v, want %v", b, got, on)
				}
			}
		})
	}
}

// A Meta code written as a JSON number (9.2 relays Meta's codes, which Meta writes as
// numbers) is read as its digits: the pair limit then backs off instead of failing the send.
func TestErrorCodeAsNumber(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"code":131056,"type":"ERROR_TYPE_UNSPECIFIED","message":"(#131056) pair rate limit"}`: "131056",
		`{"code":"131056"}`:                             "131056",
		`{"code":null,"type":"ERROR_TYPE_UNSPECIFIED"}`: "",
		`{"type":"ERROR_TYPE_AUTHENTICATION"}`:          "",
	} {
		var b connectly.ErrorBody
		if err := json.Unmarshal([]byte(body), &b); err != nil || b.Code != want {
			t.Errorf("%s: code %q (%v), want %q", body, b.Code, err, want)
		}
	}
	// Any other shape of a text field is read as its JSON text, never refused: a webhook
	// refused for a field Herald only shows would be refused on every delivery.
	var b connectly.ErrorBody
	body := `{"code":{"x": 1},"type":"ERROR_TYPE_UNSPECIFIED","message":7,"cntTraceId":1234567890123,"userTitle":true,"details":{"a":[1]}}`
	if err := json.Unmarshal([]byte(body), &b); err != nil || b.Code != `{"x":1}` || b.Message != "7" || b.TraceID != "1234567890123" ||
		b.UserTitle != "true" || b.Type != "ERROR_TYPE_UNSPECIFIED" || string(b.Details) != `{"a":[1]}` {
		t.Errorf("%s: %+v (%v)", body, b, err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"code":131056,"type":"ERROR_TYPE_UNSPECIFIED","message":"(#131056) pair rate limit"}`))
	}))
	t.Cleanup(srv.Close)
	c, err := connectly.NewClient(connectly.ClientConfig{BaseURL: srv.URL, BusinessID: "b", APIKey: "key-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.SendTemplate(context.Background(), connectly.TemplateMessage{Number: "+15550000000", TemplateName: "t", Language: "en"})
	if d := defaultTable(t).Decide(err); d.Class != connectly.ClassThrottle || d.Key != "131056" || !d.Rule.PairBackoff {
		t.Fatalf("decision %+v for a numeric 131056, want the pair-limit throttle", d)
	}
}
