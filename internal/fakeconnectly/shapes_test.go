package fakeconnectly

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawAnswer is an HTTP answer as it came over the wire.
type rawAnswer struct {
	status int
	header http.Header
	body   []byte
}

// sendRaw posts a valid template send to number and returns the answer untouched.
func sendRaw(t *testing.T, base, number string) rawAnswer {
	t.Helper()
	body := `{"number":"` + number + `","templateName":"promo","language":"en","callbackData":{"r":"` + number + `"}}`
	req, err := http.NewRequest(http.MethodPost, base+templatePath(testBusiness), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawAnswer{resp.StatusCode, resp.Header, raw}
}

// checkStandardBody asserts a JSON error body with exactly the seven documented fields and
// the given message, type, code and userTitle.
func checkStandardBody(t *testing.T, a rawAnswer, message, typ, code, title string) {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("body is not JSON: %v: %q", err, a.body)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"cntTraceId", "code", "details", "message", "type", "userMessage", "userTitle"}; !slices.Equal(keys, want) {
		t.Errorf("body fields %v, want %v", keys, want)
	}
	if m["message"] != message || m["type"] != typ || m["code"] != code || m["userTitle"] != title || m["userMessage"] != userMessage {
		t.Errorf("body = %s, want message %q type %q code %q userTitle %q", a.body, message, typ, code, title)
	}
	if tr, _ := m["cntTraceId"].(string); !digitPattern.MatchString(tr) {
		t.Errorf("cntTraceId %v is not a string of digits", m["cntTraceId"])
	}
	if d, ok := m["details"].(map[string]any); !ok || len(d) != 0 {
		t.Errorf("details = %v, want {}", m["details"])
	}
}

// TestAnswerShapes checks, for every error shape a rule can give, the answer byte for byte,
// the record, the totals and the delivery webhooks of the messages that went out anyway.
func TestAnswerShapes(t *testing.T) {
	t.Parallel()
	const internalMsg, internalTitle = "Internal server error", "Encountered unexpected error"
	tests := []struct {
		name        string
		rule        Rule
		status      int
		body        string // BodyError, BodyEmpty or BodyGateway
		message     string // for BodyError: message, and userTitle
		title       string
		code        string // for BodyError: the body's code
		wantPage    string // for BodyGateway: the exact page
		sent        bool
		recordError string
	}{
		{name: "500 error body sent", rule: Rule{Status: 500, Sent: true}, status: 500, body: BodyError,
			message: internalMsg, title: internalTitle, code: CodeUnspecified, sent: true, recordError: CodeUnspecified},
		{name: "500 error body not sent", rule: Rule{Status: 500}, status: 500, body: BodyError,
			message: internalMsg, title: internalTitle, code: CodeUnspecified, recordError: CodeUnspecified},
		{name: "code unspecified sent", rule: Rule{Code: CodeUnspecified, Sent: true}, status: 500, body: BodyError,
			message: internalMsg, title: internalTitle, code: CodeUnspecified, sent: true, recordError: CodeUnspecified},
		{name: "500 empty sent", rule: Rule{Status: 500, Body: BodyEmpty, Sent: true}, status: 500, body: BodyEmpty, sent: true, recordError: "HTTP_500"},
		{name: "500 empty not sent", rule: Rule{Status: 500, Body: BodyEmpty}, status: 500, body: BodyEmpty, recordError: "HTTP_500"},
		{name: "502 gateway not sent", rule: Rule{Status: 502, Body: BodyGateway}, status: 502, body: BodyGateway,
			wantPage:    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
			recordError: "HTTP_502"},
		{name: "502 gateway sent", rule: Rule{Status: 502, Body: BodyGateway, Sent: true}, status: 502, body: BodyGateway,
			wantPage: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
			sent:     true, recordError: "HTTP_502"},
		{name: "502 empty not sent", rule: Rule{Status: 502, Body: BodyEmpty}, status: 502, body: BodyEmpty, recordError: "HTTP_502"},
		{name: "504 gateway sent", rule: Rule{Status: 504, Body: BodyGateway, Sent: true}, status: 504, body: BodyGateway,
			wantPage: "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n",
			sent:     true, recordError: "HTTP_504"},
		{name: "504 empty sent", rule: Rule{Status: 504, Body: BodyEmpty, Sent: true}, status: 504, body: BodyEmpty, sent: true, recordError: "HTTP_504"},
		{name: "504 error body not sent", rule: Rule{Status: 504}, status: 504, body: BodyError,
			message: internalMsg, title: internalTitle, code: CodeUnspecified, recordError: CodeUnspecified},
		{name: "503 error body", rule: Rule{Status: 503}, status: 503, body: BodyError,
			message: internalMsg, title: internalTitle, code: CodeUnspecified, recordError: CodeUnspecified},
		{name: "429 error body", rule: Rule{Status: 429}, status: 429, body: BodyError,
			message: "Too Many Requests", title: "Rate limit exceeded", code: CodeUnspecified, recordError: CodeUnspecified},
		{name: "429 explicit error body", rule: Rule{Status: 429, Body: BodyError}, status: 429, body: BodyError,
			message: "Too Many Requests", title: "Rate limit exceeded", code: CodeUnspecified, recordError: CodeUnspecified},
		{name: "429 bare", rule: Rule{Status: 429, Body: BodyEmpty}, status: 429, body: BodyEmpty, recordError: "HTTP_429"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const victim, bystander = "+15550000001", "+15550000002"
			sink := &hookSink{secret: "sh"}
			hs := httptest.NewServer(sink)
			t.Cleanup(hs.Close)
			rule := tc.rule
			rule.Numbers = []string{victim}
			s, base := newFake(t, Config{RateLimit: -1, Rules: []Rule{rule}, Webhooks: WebhookConfig{URL: hs.URL, Secret: "sh", Seed: 1}})
			t.Cleanup(func() { s.Close() })

			// Twice, to show that a number answered this way twice is counted twice.
			for range 2 {
				a := sendRaw(t, base, victim)
				if a.status != tc.status {
					t.Fatalf("status %d, want %d (%q)", a.status, tc.status, a.body)
				}
				if ra := a.header.Values("Retry-After"); len(ra) != 0 {
					t.Errorf("Retry-After %q on a %d", ra, a.status)
				}
				switch tc.body {
				case BodyError:
					checkStandardBody(t, a, tc.message, typeFor(tc.code), tc.code, tc.title)
				case BodyEmpty:
					if len(a.body) != 0 || a.header.Get("Content-Type") != "" || a.header.Get("Content-Length") != "0" {
						t.Errorf("bare answer: body %q, Content-Type %q, Content-Length %q", a.body, a.header.Get("Content-Type"), a.header.Get("Content-Length"))
					}
				case BodyGateway:
					if string(a.body) != tc.wantPage || a.header.Get("Content-Type") != "text/html" ||
						a.header.Get("Content-Length") != strconv.Itoa(len(tc.wantPage)) || json.Valid(a.body) {
						t.Errorf("gateway answer: %q (Content-Type %q)", a.body, a.header.Get("Content-Type"))
					}
				}
			}
			if a := sendRaw(t, base, bystander); a.status != 200 {
				t.Fatalf("bystander: %d %s", a.status, a.body)
			}

			recs := s.Received()
			if len(recs) != 3 {
				t.Fatalf("%d records, want 3", len(recs))
			}
			for _, r := range recs[:2] {
				if r.Number != victim || r.Status != tc.status || r.ErrorCode != tc.recordError || r.Body != tc.body ||
					r.Accepted() != tc.sent || r.SentDespiteError() != tc.sent || (tc.sent && !idPattern.MatchString(r.MessageID)) {
					t.Errorf("record %+v, want status %d errorCode %s body %s sent %v", r, tc.status, tc.recordError, tc.body, tc.sent)
				}
			}
			if recs[2].ErrorCode != "" || recs[2].Body != "" || !recs[2].Accepted() {
				t.Errorf("bystander record %+v", recs[2])
			}
			wantSent := 0
			if tc.sent {
				wantSent = 2
			}
			st := s.Stats()
			wantErrors := map[string]int{}
			if !tc.sent {
				wantErrors[tc.recordError] = 2
			}
			wantThrottled := 0
			if tc.status == 429 {
				wantThrottled = 2
			}
			if s.AcceptedCount(victim) != wantSent || st.Accepted != wantSent+1 || st.SentWithError != wantSent ||
				st.Statuses[tc.status] != 2 || st.Throttled != wantThrottled || !mapsEqual(st.Errors, wantErrors) {
				t.Errorf("accepted %d, stats %+v", s.AcceptedCount(victim), st)
			}
			if got := s.AcceptedCounts(); got[victim] != wantSent || got[bystander] != 1 {
				t.Errorf("AcceptedCounts = %v", got)
			}

			// Messages that went out get their delivery webhooks like any accepted one.
			waitIdle(t, s)
			events := map[string][]string{} // message id -> statuses
			for _, c := range sink.snapshot() {
				su, _ := c.body["statusUpdate"].(map[string]any)
				if su == nil {
					t.Fatalf("unexpected call %v", c.body)
				}
				id := su["id"].(string)
				events[id] = append(events[id], su["status"].(string))
			}
			if sink.badSigs != 0 {
				t.Errorf("%d calls with a bad signature", sink.badSigs)
			}
			want := 1 + wantSent
			if len(events) != want {
				t.Fatalf("webhooks for %d messages, want %d: %v", len(events), want, events)
			}
			for _, r := range recs {
				if !r.Accepted() {
					continue
				}
				// Calls go out concurrently, so their arrival order is not the plan's.
				got := slices.Sorted(slices.Values(events[r.MessageID]))
				if !slices.Equal(got, []string{HookDelivered, HookRead, HookSent}) {
					t.Errorf("events of %s: %v, want sent, delivered and read", r.MessageID, got)
				}
			}
		})
	}
}

func typeFor(code string) string {
	if code == "" {
		return ""
	}
	return TypeUnspecified
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRateLimitBodies checks the two shapes of the business-wide limit's 429.
func TestRateLimitBodies(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", BodyError, BodyEmpty} {
		t.Run("body="+body, func(t *testing.T) {
			t.Parallel()
			clock := newClock()
			s, base := newFake(t, Config{RateLimit: 1, RateLimitBody: body, Clock: clock.Now})
			if a := sendRaw(t, base, "+15550000001"); a.status != 200 {
				t.Fatalf("first send: %d", a.status)
			}
			a := sendRaw(t, base, "+15550000001")
			if a.status != 429 || len(a.header.Values("Retry-After")) != 0 {
				t.Fatalf("second send: %d %v", a.status, a.header)
			}
			rec := s.Received()[1]
			if body == BodyEmpty {
				if len(a.body) != 0 || a.header.Get("Content-Type") != "" || rec.ErrorCode != "HTTP_429" || rec.Body != BodyEmpty {
					t.Errorf("bare 429: %q %v, record %+v", a.body, a.header, rec)
				}
			} else {
				checkStandardBody(t, a, "Too Many Requests", TypeUnspecified, CodeUnspecified, "Rate limit exceeded")
				if rec.ErrorCode != CodeUnspecified || rec.Body != BodyError {
					t.Errorf("record %+v", rec)
				}
			}
			if st := s.Stats(); st.Throttled != 1 || st.Accepted != 1 || rec.Accepted() {
				t.Errorf("stats %+v, record %+v", st, rec)
			}
		})
	}
	if _, err := New(Config{BusinessID: "b", APIKey: "k", RateLimitBody: BodyGateway}); err == nil || !strings.Contains(err.Error(), "rate limit body") {
		t.Errorf("gateway rate-limit body accepted: %v", err)
	}
}

func TestShapeRuleValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rule Rule
		want string
	}{
		{Rule{Status: 429, Sent: true}, "sent needs"},
		{Rule{Status: 503, Body: BodyEmpty}, ""},
		{Rule{Status: 503, Sent: true}, ""},
		{Rule{Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT", Sent: true}, "sent needs"},
		{Rule{Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT", Status: 500, Sent: true}, ""},
		{Rule{Code: CodeUnspecified, Sent: true}, ""},
		{Rule{Sent: true}, "sent needs"},
		{Rule{Status: 200, Sent: true}, "sent needs"},
		{Rule{LoseResponse: true, Sent: true}, ""},
		{Rule{LoseResponse: true, NotSent: true}, ""},
		{Rule{Latency: time.Second, Sent: true}, ""},
		{Rule{Latency: time.Second, Status: 201, Sent: true}, ""},
		{Rule{Latency: time.Second, Status: 429, Sent: true}, "sent needs"},
		{Rule{Latency: time.Second, NotSent: true}, ""},
		{Rule{Sent: true, NotSent: true}, "contradict"},
		{Rule{Body: BodyEmpty}, "needs an error status"},
		{Rule{Status: 201, Body: BodyGateway}, "needs an error status"},
		{Rule{Code: CodeUnspecified, Body: BodyGateway}, "JSON error body"},
		{Rule{Code: CodeUnspecified, Body: BodyError}, ""},
		{Rule{Status: 500, Body: "html"}, "body \"html\""},
	}
	for _, tc := range tests {
		err := ValidateRules([]Rule{tc.rule})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.rule, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one mentioning %q", tc.rule, err, tc.want)
		}
	}

	// The new fields travel through JSON, so rules files and /_fake/rules reach every shape.
	in := []Rule{{Percent: 1, Salt: "a", Status: 500, Sent: true}, {Status: 429, Body: BodyEmpty}, {Status: 502, Body: BodyGateway, Times: 1}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"percent":1,"salt":"a","status":500,"sent":true},{"status":429,"body":"empty"},{"status":502,"body":"gateway","times":1}]`
	if string(b) != want {
		t.Errorf("marshal = %s\nwant      %s", b, want)
	}
	var out []Rule
	if err := json.Unmarshal(b, &out); err != nil || len(out) != 3 || !out[0].Sent || out[1].Body != BodyEmpty || out[2].Body != BodyGateway {
		t.Errorf("round trip = %+v, %v", out, err)
	}
}

// TestAcceptedOverControl reads the per-number counts through the control endpoint after a
// 500 whose message went out was answered twice to the same number.
func TestAcceptedOverControl(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1,
		Rules: []Rule{{Numbers: []string{"+15550000001"}, Status: 500, Sent: true, Times: 1}}})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{500, 200} {
		if a := sendRaw(t, base, "+15550000001"); a.status != want {
			t.Fatalf("status %d, want %d", a.status, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := Remote{BaseURL: base}.AcceptedCounts(ctx)
	if err != nil || len(got) != 1 || got["+15550000001"] != 2 {
		t.Fatalf("AcceptedCounts = %v, %v; want the number taken as sent twice", got, err)
	}
	recs, err := Remote{BaseURL: base}.Received(ctx)
	if err != nil || len(recs) != 2 || !recs[0].SentDespiteError() || recs[0].Body != BodyError || recs[1].SentDespiteError() {
		t.Fatalf("Remote.Received = %+v, %v", recs, err)
	}
	if st := s.Stats(); st.SentWithError != 1 || st.Accepted != 2 || st.DistinctAccepted != 1 {
		t.Fatalf("stats %+v", st)
	}
}
