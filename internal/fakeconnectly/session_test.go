package fakeconnectly

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	customer     = "+15550001234"
	businessNum  = "+14155550100"
	sessionBSUID = "US.13491208655302741918"
)

// templatePath and sessionPath are the two send endpoints (reference 2 and 3).
func templatePath(business string) string {
	return "/v1/businesses/" + business + "/send/whatsapp_templated_messages"
}

func sessionPath(business string) string { return "/v1/businesses/" + business + "/send/messages" }

// sessionBody is a valid text session send to number.
func sessionBody(number string) string {
	return `{"recipient":{"id":"` + number + `","channelType":"whatsapp"},"message":{"text":"Hi"}}`
}

// postSession posts a raw body to the session endpoint with the test key.
func postSession(t *testing.T, base, body string) rawAnswer {
	t.Helper()
	return postTo(t, base+sessionPath(testBusiness), body)
}

func postTo(t *testing.T, url, body string) rawAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
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
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return rawAnswer{resp.StatusCode, resp.Header, buf.Bytes()}
}

// sessionCase is one file of testdata/session: a request, the recipient's window when it is
// made, and the exact answer and record. In the answer, cntTraceId is "(digits)" and a
// message id "(ulid)" (both are checked for their shape).
type sessionCase struct {
	// Window is the recipient's window on the fake's clock: "open" (wrote an hour ago),
	// "expired" (25 hours ago) or "never".
	Window     string          `json:"window"`
	Request    json.RawMessage `json:"request,omitempty"`
	RequestRaw string          `json:"requestRaw,omitempty"`
	Status     int             `json:"status"`
	Response   json.RawMessage `json:"response"`
	Record     goldenRecord    `json:"record"`
}

type goldenRecord struct {
	Kind          string          `json:"kind"`
	Number        string          `json:"number"`
	Content       string          `json:"content,omitempty"`
	Accepted      bool            `json:"accepted"`
	ErrorCode     string          `json:"errorCode,omitempty"`
	OutsideWindow bool            `json:"outsideWindow,omitempty"`
	Sender        string          `json:"sender,omitempty"`
	CallbackData  json.RawMessage `json:"callbackData,omitempty"`
	CampaignName  string          `json:"campaignName,omitempty"`
}

// normalizeAnswer replaces the answer's random parts after checking their shape.
func normalizeAnswer(t *testing.T, raw []byte) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, raw)
	}
	if tr, ok := m["cntTraceId"]; ok {
		if !digitPattern.MatchString(fmt.Sprint(tr)) {
			t.Errorf("cntTraceId %v is not digits", tr)
		}
		m["cntTraceId"] = "(digits)"
	}
	if id, ok := m["id"]; ok {
		if !idPattern.MatchString(fmt.Sprint(id)) {
			t.Errorf("id %v is not a ULID", id)
		}
		m["id"] = "(ulid)"
	}
	out, err := json.MarshalIndent(m, "    ", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSessionGolden runs every request of testdata/session against a fresh fake whose only
// sender is +14155550100, and compares the answer and the record with the file's. Run with
// -update to rewrite the answers (then read the diff).
func TestSessionGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "session", "*.json"))
	if err != nil || len(files) < 30 {
		t.Fatalf("%d golden files, %v", len(files), err)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var tc sessionCase
			if err := json.Unmarshal(raw, &tc); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			clock := newClock()
			s, base := newFake(t, Config{Clock: clock.Now, RateLimit: -1, Senders: []string{businessNum}})
			body := tc.RequestRaw
			if body == "" {
				body = string(tc.Request)
			}
			loose := decodeSessionLoose([]byte(body))
			for _, n := range loose.customers() {
				switch tc.Window {
				case "open":
					_ = s.OpenWindow(n, clock.Now().Add(-time.Hour))
				case "expired":
					_ = s.OpenWindow(n, clock.Now().Add(-25*time.Hour))
				case "never":
				default:
					t.Fatalf("window %q", tc.Window)
				}
			}
			a := postSession(t, base, body)
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			recs := s.Received()
			if len(recs) != 1 {
				t.Fatalf("%d records", len(recs))
			}
			r := recs[0]
			got := tc
			got.Status = a.status
			got.Response = normalizeAnswer(t, a.body)
			got.Record = goldenRecord{Kind: r.Kind, Number: r.Number, Content: r.Content, Accepted: r.Accepted(),
				ErrorCode: r.ErrorCode, OutsideWindow: r.OutsideWindow, Sender: r.Message.Sender,
				CallbackData: r.Message.CallbackData, CampaignName: r.Message.CampaignName}
			if r.Accepted() {
				var res struct{ ID string }
				_ = json.Unmarshal(a.body, &res)
				if res.ID != r.MessageID {
					t.Errorf("answered id %q, recorded %q", res.ID, r.MessageID)
				}
			}
			if *update {
				var out bytes.Buffer
				enc := json.NewEncoder(&out)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				if err := enc.Encode(got); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			gotRec, _ := json.Marshal(got.Record)
			wantRec, _ := json.Marshal(tc.Record)
			if got.Status != tc.Status || !jsonEqual(gotRec, wantRec) {
				t.Errorf("status %d, record %s\nwant status %d, record %s", got.Status, gotRec, tc.Status, wantRec)
			}
			if !jsonEqual(got.Response, tc.Response) {
				t.Errorf("answer %s\nwant %s", got.Response, tc.Response)
			}
		})
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// TestWindowExpiredIsTheReferenceExample checks the expired window's answer against the
// error body of reference 4.1, field for field (the trace id differs by nature).
func TestWindowExpiredIsTheReferenceExample(t *testing.T) {
	t.Parallel()
	clock := newClock()
	s, base := newFake(t, Config{Clock: clock.Now})
	if err := s.OpenWindow(customer, clock.Now().Add(-30*time.Hour)); err != nil {
		t.Fatal(err)
	}
	a := postSession(t, base, sessionBody(customer))
	if a.status != 400 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	const example = `{
	  "message": "Failed to send a message because more than 24 hours have passed since the customer last replied",
	  "type": "ERROR_TYPE_DEADLINE_EXCEEDED",
	  "code": "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW",
	  "userTitle": "Failed to send a message because more than 24 hours have passed since the customer last replied",
	  "userMessage": "Pass along the connectly trace id 'cnct_trace_id' to the team for more information.",
	  "cntTraceId": "11824978358485860716",
	  "details": {}
	}`
	var got, want map[string]any
	if err := json.Unmarshal(a.body, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(example), &want); err != nil {
		t.Fatal(err)
	}
	if !digitPattern.MatchString(fmt.Sprint(got["cntTraceId"])) {
		t.Errorf("cntTraceId %v", got["cntTraceId"])
	}
	got["cntTraceId"] = want["cntTraceId"]
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("body\n%v\nwant\n%v", got, want)
	}
}

// TestSessionLimits covers the limits too long for a golden file, at and past each bound.
func TestSessionLimits(t *testing.T) {
	t.Parallel()
	clock := newClock()
	s, base := newFake(t, Config{Clock: clock.Now, RateLimit: -1})
	if err := s.OpenWindow(customer, time.Time{}); err != nil {
		t.Fatal(err)
	}
	withMessage := func(msg string) string {
		return `{"recipient":{"id":"` + customer + `","channelType":"whatsapp"},"message":` + msg + `}`
	}
	text := func(n int, r string) string { return withMessage(`{"text":"` + strings.Repeat(r, n) + `"}`) }
	buttons := func(n int, label string) string {
		var bs []string
		for i := range n {
			bs = append(bs, fmt.Sprintf(`{"id":"b%d","text":%q}`, i, label))
		}
		return withMessage(`{"text":"Pick","replyButtonMessage":{"buttons":[` + strings.Join(bs, ",") + `]}}`)
	}
	list := func(rows int) string {
		var rs []string
		for i := range rows {
			rs = append(rs, fmt.Sprintf(`{"id":"r%d","text":"Row %d"}`, i, i))
		}
		return withMessage(`{"text":"Pick","listMessage":{"button":{"text":"Open"},"sections":[{"rows":[` + strings.Join(rs, ",") + `]}]}}`)
	}
	callback := func(n int) string {
		return `{"recipient":{"id":"` + customer + `","channelType":"whatsapp"},"message":{"text":"Hi"},"callbackData":"` +
			strings.Repeat("x", n-2) + `"}`
	}
	tests := []struct {
		name, body string
		status     int
		msg        string
		code       string // "" for the generic invalid request
	}{
		{"text 4096", text(4096, "a"), 200, "", ""},
		{"text 4097", text(4097, "a"), 400, "message.text is 4097 characters, WhatsApp's limit is 4096", ""},
		{"text 4096 accented letters count once", text(4096, "é"), 200, "", ""},
		{"3 buttons", buttons(3, "Yes"), 200, "", ""},
		{"0 buttons", buttons(0, "Yes"), 400, "replyButtonMessage has 0 buttons; WhatsApp allows 1 to 3", ""},
		{"button 20 characters", buttons(1, strings.Repeat("ç", 20)), 200, "", ""},
		{"button 21 characters", buttons(1, strings.Repeat("b", 21)), 400, "replyButtonMessage.buttons[0].text is 21 characters; WhatsApp allows 20", ""},
		{"button without text", buttons(1, " "), 400, "replyButtonMessage.buttons[0].text is empty", ""},
		{"10 rows", list(10), 200, "", ""},
		{"11 rows", list(11), 400, "listMessage has 11 rows; WhatsApp allows 10 in all", ""},
		{"callbackData 1024 bytes", callback(1024), 200, "", ""},
		{"callbackData 1025 bytes", callback(1025), 400, "callbackData is 1025 bytes, the limit is 1024", ""},
		{"duplicate button id", withMessage(`{"text":"Pick","replyButtonMessage":{"buttons":[{"id":"a","text":"A"},{"id":"a","text":"B"}]}}`), 400, `replyButtonMessage.buttons[1].id "a" is used twice`, ""},
		{"list without button text", withMessage(`{"text":"Pick","listMessage":{"sections":[{"rows":[{"id":"a","text":"A"}]}]}}`), 400, "listMessage.button.text is required", ""},
		{"list without body", withMessage(`{"listMessage":{"button":{"text":"Open"},"sections":[{"rows":[{"id":"a","text":"A"}]}]}}`), 400, "message.text (the body) is required with listMessage", CodeTextEmpty},
		{"location with text", withMessage(`{"text":"here","location":{"latitude":1,"longitude":2}}`), 400, "message.text cannot go with a location", ""},
		{"latitude out of range", withMessage(`{"location":{"latitude":91,"longitude":2}}`), 400, "message.location.latitude 91 is outside -90..90", ""},
		{"attachment type missing", withMessage(`{"attachments":[{"url":"https://example.com/a.png"}]}`), 400, `message.attachments[0].type "": want image, video, audio or document`, ""},
		{"attachment relative url", withMessage(`{"attachments":[{"type":"image","url":"/a.png"}]}`), 400, `message.attachments[0].url "/a.png" is not an absolute http(s) URL`, CodeAttachmentInvalid},
		{"multi product with text", withMessage(`{"text":"Our picks","multiProductMessage":{"sections":[]}}`), 200, "", ""},
		{"single product not an object", withMessage(`{"singleProductMessage":["sku"]}`), 400, "message.singleProductMessage must be a JSON object", ""},
		{"both spellings", withMessage(`{"text":"Pick","listMessage":{},"list_message":{}}`), 400, "invalid request body: message.list_message and message.listMessage are the same field", ""},
		{"trailing data", sessionBody(customer) + "{}", 400, "invalid request body: unexpected data after the JSON object", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := postSession(t, base, tc.body)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if tc.status == 400 {
				checkStandardBody(t, a, tc.msg, TypeInvalidRequest, cmp.Or(tc.code, CodeUnspecified), tc.msg)
			}
		})
	}
}

// TestSessionWindowOnClock opens windows directly and checks them on an injected clock: open
// until 24 hours after the inbound message, closed from then on, never open for a customer
// who never wrote, and a new message reopens it.
func TestSessionWindowOnClock(t *testing.T) {
	t.Parallel()
	clock := newClock()
	s, base := newFake(t, Config{Clock: clock.Now, RateLimit: -1})
	const stranger = "+15550009999"
	send := func(number string) (int, string) {
		t.Helper()
		a := postSession(t, base, sessionBody(number))
		var m map[string]any
		_ = json.Unmarshal(a.body, &m)
		code, _ := m["code"].(string)
		return a.status, code
	}
	expect := func(step, number string, status int, code string) {
		t.Helper()
		if gotStatus, gotCode := send(number); gotStatus != status || gotCode != code {
			t.Fatalf("%s: %d %q, want %d %q", step, gotStatus, gotCode, status, code)
		}
	}

	expect("never wrote", customer, 400, CodeNoConversation)
	t0 := clock.Now()
	if err := s.OpenWindow(customer, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if w := s.WindowOf(customer); !w.Open || !w.LastInbound.Equal(t0) || !w.ClosesAt.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("window %+v", w)
	}
	expect("just wrote", customer, 200, "")
	expect("another customer", stranger, 400, CodeNoConversation)
	clock.Add(24*time.Hour - time.Nanosecond)
	expect("last instant", customer, 200, "")
	clock.Add(time.Nanosecond)
	expect("24 hours on", customer, 400, CodeOutsideWindow)
	if w := s.WindowOf(customer); w.Open || !w.ClosesAt.Equal(clock.Now()) {
		t.Fatalf("window at 24h %+v", w)
	}
	clock.Add(time.Hour)
	if err := s.OpenWindow(customer, time.Time{}); err != nil {
		t.Fatal(err)
	}
	expect("wrote again", customer, 200, "")

	// A message planned for later (a reply still on its way) opens nothing yet; an older
	// one does not shorten the window.
	later := clock.Now().Add(time.Hour)
	_ = s.OpenWindow(stranger, later)
	expect("reply not yet written", stranger, 400, CodeNoConversation)
	clock.Add(time.Hour)
	expect("reply written", stranger, 200, "")
	_ = s.OpenWindow(stranger, clock.Now().Add(-48*time.Hour))
	if w := s.WindowOf(stranger); !w.Open || !w.LastInbound.Equal(later) {
		t.Fatalf("an older message moved the window: %+v", w)
	}

	// The record: refusals flagged OutsideWindow, accepted sends not.
	st := s.Stats()
	if st.Sessions != 8 || st.SessionsAccepted != 4 || st.OutsideWindow != 4 || st.Errors[CodeNoConversation] != 3 || st.Errors[CodeOutsideWindow] != 1 {
		t.Errorf("stats %+v", st)
	}
	for _, r := range s.Received() {
		if r.Kind != KindSession || r.OutsideWindow == r.Accepted() {
			t.Errorf("record %+v", r)
		}
	}
	if err := s.OpenWindow("5550001234", time.Time{}); err == nil {
		t.Error("OpenWindow accepted a number without +")
	}
	s.ClearWindows()
	expect("after ClearWindows", customer, 400, CodeNoConversation)
}

// TestWindowAnswers checks the other answers a closed window can get, and IgnoreWindow.
func TestWindowAnswers(t *testing.T) {
	t.Parallel()
	const never, expired = "+15550000001", "+15550000002"
	failedPrecondition := "The message cannot be sent now: the customer's 24-hour window is not open"
	outside := "Failed to send a message because more than 24 hours have passed since the customer last replied"
	tests := []struct {
		answer                     string
		neverStatus, expiredStatus int
		neverType, expiredType     string
		neverCode, expiredCode     string
		neverMsg, expiredMsg       string
	}{
		{"", 400, 400, TypeInvalidRequest, TypeDeadlineExceeded, CodeNoConversation, CodeOutsideWindow,
			"The customer has not started a conversation", outside},
		{WindowAnswerDeadline504, 400, 504, TypeInvalidRequest, TypeDeadlineExceeded, CodeNoConversation, CodeOutsideWindow,
			"The customer has not started a conversation", outside},
		{WindowAnswerPrecondition, 400, 400, TypeFailedPrecondition, TypeFailedPrecondition, "", "", failedPrecondition, failedPrecondition},
	}
	for _, tc := range tests {
		t.Run("answer "+tc.answer, func(t *testing.T) {
			t.Parallel()
			clock := newClock()
			s, base := newFake(t, Config{Clock: clock.Now, WindowAnswer: tc.answer})
			_ = s.OpenWindow(expired, clock.Now().Add(-25*time.Hour))
			a := postSession(t, base, sessionBody(never))
			if a.status != tc.neverStatus {
				t.Fatalf("never: %d %s", a.status, a.body)
			}
			checkStandardBody(t, a, tc.neverMsg, tc.neverType, cmp.Or(tc.neverCode, CodeUnspecified), tc.neverMsg)
			a = postSession(t, base, sessionBody(expired))
			if a.status != tc.expiredStatus {
				t.Fatalf("expired: %d %s", a.status, a.body)
			}
			checkStandardBody(t, a, tc.expiredMsg, tc.expiredType, cmp.Or(tc.expiredCode, CodeUnspecified), tc.expiredMsg)
			if st := s.Stats(); st.OutsideWindow != 2 || st.Accepted != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
	if _, err := New(Config{BusinessID: "b", APIKey: "k", WindowAnswer: "maybe"}); err == nil {
		t.Error("an unknown WindowAnswer was accepted")
	}

	t.Run("IgnoreWindow", func(t *testing.T) {
		t.Parallel()
		s, base := newFake(t, Config{IgnoreWindow: true})
		if a := postSession(t, base, sessionBody(never)); a.status != 200 {
			t.Fatalf("%d %s", a.status, a.body)
		}
		r := s.Received()[0]
		if !r.Accepted() || !r.OutsideWindow || s.Stats().OutsideWindow != 1 {
			t.Errorf("record %+v stats %+v", r, s.Stats())
		}
	})
}

// TestSessionAuthBusinessAndSharedRateLimit checks the checks made before the body, and that
// both send endpoints draw from one bucket. Requests outside a window are flagged even when
// refused before the window is looked at.
func TestSessionAuthBusinessAndSharedRateLimit(t *testing.T) {
	t.Parallel()
	clock := newClock()
	s, base := newFake(t, Config{Clock: clock.Now, RateLimit: 3})
	_ = s.OpenWindow(customer, time.Time{})

	a := postTo(t, base+sessionPath("other-business"), sessionBody(customer))
	if a.status != 404 {
		t.Fatalf("other business: %d", a.status)
	}
	req, _ := http.NewRequest(http.MethodPost, base+sessionPath(testBusiness), strings.NewReader(sessionBody(customer)))
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("no key: %d", resp.StatusCode)
	}
	if a := sendRaw(t, base, customer); a.status != 200 {
		t.Fatalf("template: %d", a.status)
	}
	if a := postSession(t, base, sessionBody(customer)); a.status != 200 {
		t.Fatalf("session: %d", a.status)
	}
	if a := sendRaw(t, base, "+15550004321"); a.status != 200 {
		t.Fatalf("template: %d", a.status)
	}
	a = postSession(t, base, sessionBody(customer))
	if a.status != 429 {
		t.Fatalf("4th send: %d, want 429", a.status)
	}
	checkStandardBody(t, a, "Too Many Requests", TypeUnspecified, CodeUnspecified, "Rate limit exceeded")
	if a := sendRaw(t, base, customer); a.status != 429 {
		t.Fatalf("template after the session's 429: %d", a.status)
	}
	// Throttled and outside a window: flagged.
	if a := postSession(t, base, sessionBody("+15550007777")); a.status != 429 {
		t.Fatalf("%d", a.status)
	}
	clock.Add(time.Second)
	if a := postSession(t, base, sessionBody(customer)); a.status != 200 {
		t.Fatalf("after a second: %d", a.status)
	}

	recs := s.Received()
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, fmt.Sprintf("%s:%d:%v", r.Kind, r.Status, r.OutsideWindow))
	}
	want := []string{"session:404:false", "session:401:false", "template:200:false", "session:200:false",
		"template:200:false", "session:429:false", "template:429:false", "session:429:true", "session:200:false"}
	if !slices.Equal(kinds, want) {
		t.Errorf("records %v\nwant    %v", kinds, want)
	}
	if n := s.AcceptedCount(customer); n != 3 {
		t.Errorf("AcceptedCount(%s) = %d, want 3 (1 template + 2 session)", customer, n)
	}
	if st := s.Stats(); st.Requests != 9 || st.Sessions != 6 || st.SessionsAccepted != 2 || st.Accepted != 4 || st.Throttled != 3 || st.OutsideWindow != 1 {
		t.Errorf("stats %+v", st)
	}
	if r := recs[3]; r.Content != ContentText || r.Session == nil || r.Session.Message.Text != "Hi" || r.Message.Number != customer {
		t.Errorf("session record %+v", r)
	}
}

// TestSessionRules checks that the fault rules apply to session sends, by kind.
func TestSessionRules(t *testing.T) {
	t.Parallel()
	const victim = "+15550000001"
	tests := []struct {
		name            string
		rule            Rule
		session, tmpl   int // statuses answered
		sessionAccepted bool
	}{
		{"500 sent, session only", Rule{Kind: KindSession, Status: 500, Sent: true}, 500, 200, true},
		{"503, template only", Rule{Kind: KindTemplate, Status: 503}, 200, 503, true},
		{"bare 429, both kinds", Rule{Numbers: []string{victim}, Status: 429, Body: BodyEmpty}, 429, 429, false},
		{"template name never matches a session", Rule{Template: "promo", Code: CodeTemplateNotFound}, 200, 400, true},
		{"failed precondition inside a window", Rule{Kind: KindSession, Code: TypeFailedPrecondition}, 400, 200, false},
		{"lost answer", Rule{Kind: KindSession, LoseResponse: true}, 0, 200, true},
		{"gateway page", Rule{Kind: KindSession, Status: 502, Body: BodyGateway}, 502, 200, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, base := newFake(t, Config{RateLimit: -1, Rules: []Rule{tc.rule}})
			_ = s.OpenWindow(victim, time.Time{})
			status := 0
			req, _ := http.NewRequest(http.MethodPost, base+sessionPath(testBusiness), strings.NewReader(sessionBody(victim)))
			req.Header.Set("X-API-Key", testKey)
			if resp, err := testHTTP.Do(req); err == nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
			if status != tc.session {
				t.Errorf("session answered %d, want %d", status, tc.session)
			}
			if a := sendRaw(t, base, victim); a.status != tc.tmpl {
				t.Errorf("template answered %d, want %d", a.status, tc.tmpl)
			}
			r := s.Received()[0]
			if r.Kind != KindSession || r.Accepted() != tc.sessionAccepted || r.OutsideWindow {
				t.Errorf("session record %+v", r)
			}
		})
	}
	if err := ValidateRules([]Rule{{Kind: "sms"}}); err == nil {
		t.Error("kind sms accepted")
	}
	var r Rule
	if err := json.Unmarshal([]byte(`{"kind":"session","status":500,"sent":true}`), &r); err != nil || r.Kind != KindSession {
		t.Errorf("rule JSON: %+v, %v", r, err)
	}
	if b, _ := json.Marshal(r); !strings.Contains(string(b), `"kind":"session"`) {
		t.Errorf("rule JSON %s", b)
	}
	if !(Rule{Kind: KindSession}).MatchesSend(KindSession, victim, "") || (Rule{Kind: KindSession}).Matches(victim, "promo") {
		t.Error("MatchesSend / Matches ignore the kind")
	}
}

// TestSessionWebhooksAndRepliesOpenWindows sends templates whose readers reply (every reply
// shape), checks that each reply opened that customer's window and no one else's, sends a
// session message into each open window, and checks its delivery webhooks.
func TestSessionWebhooksAndRepliesOpenWindows(t *testing.T) {
	t.Parallel()
	sink := &hookSink{secret: "sess"}
	hs := httptest.NewServer(sink)
	t.Cleanup(hs.Close)
	clock := newClock()
	const bsuidNumber = "bsuid:" + sessionBSUID
	s := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1, Clock: clock.Now,
		Senders: []string{businessNum}, Webhooks: WebhookConfig{
			URL: hs.URL, Secret: "sess", Seed: 9,
			Fates:   []Fate{{Suffix: "9", Status: HookDelivered}}, // not read: no reply
			Replies: []Reply{{Percent: 50, Salt: "r", Button: "Yes", Payload: "YES", Shape: ReplyRotate}, {Numbers: []string{bsuidNumber}, Text: "hi"}},
		}})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sendN(t, base, 20)
	if a := sendRawTemplate(t, base, bsuidNumber); a.status != 200 {
		t.Fatalf("bsuid template: %d %s", a.status, a.body)
	}
	waitIdle(t, s)
	repliers := map[string]bool{} // by the record's key: a BSUID comes bare in webhooks (5.4, 6)
	for _, c := range sink.snapshot() {
		if c.body["statusUpdate"] == nil {
			sender, _ := c.body["sender"].(map[string]any)
			repliers[customerKey(fmt.Sprint(sender["id"]))] = true
		}
	}
	if len(repliers) < 5 || !repliers[bsuidNumber] {
		t.Fatalf("repliers %v: too few to test", repliers)
	}
	for _, r := range s.Received() {
		if w := s.WindowOf(r.Number); w.Open != repliers[r.Number] {
			t.Errorf("%s replied %v, window %+v", r.Number, repliers[r.Number], w)
		}
	}
	if got := len(s.Windows()); got != len(repliers) {
		t.Errorf("%d windows, %d repliers", got, len(repliers))
	}

	// A session message into each open window, with callbackData and a campaign.
	ids := map[string]string{}
	for n := range repliers {
		recipient := `"id":"` + n + `"`
		if n == bsuidNumber {
			recipient = `"userId":"` + sessionBSUID + `"`
		}
		a := postSession(t, base, `{"sender":{"id":"`+businessNum+`","channelType":"whatsapp"},"recipient":{`+recipient+
			`,"channelType":"whatsapp"},"message":{"text":"Here it is"},"callbackData":{"s":"`+n+`"},"campaignName":"followup"}`)
		if a.status != 200 {
			t.Fatalf("session to %s: %d %s", n, a.status, a.body)
		}
		var res struct{ ID string }
		_ = json.Unmarshal(a.body, &res)
		ids[res.ID] = n
	}
	// And one outside: refused, no webhook.
	if a := postSession(t, base, sessionBody("+15550000009")); a.status != 400 {
		t.Fatalf("closed window: %d", a.status)
	}
	waitIdle(t, s)
	events := map[string][]string{}
	for _, c := range sink.snapshot() {
		su, _ := c.body["statusUpdate"].(map[string]any)
		id := fmt.Sprint(su["id"])
		n, ok := ids[id]
		if !ok {
			continue
		}
		events[id] = append(events[id], fmt.Sprint(su["status"]))
		recipient, _ := c.body["recipient"].(map[string]any)
		sender, _ := c.body["sender"].(map[string]any)
		cb, _ := c.body["callbackData"].(map[string]any)
		if customerKey(fmt.Sprint(recipient["id"])) != n || sender["id"] != businessNum || cb["s"] != n {
			t.Errorf("event %v for %s", c.body, n)
		}
		meta, _ := c.body["metadata"].(map[string]any)
		sum, _ := su["metadata"].(map[string]any)
		if meta["campaign_name"] != "followup" && sum["campaignName"] != "followup" {
			t.Errorf("event without the campaign: %v", c.body)
		}
	}
	if len(events) != len(ids) {
		t.Fatalf("events for %d of %d session messages", len(events), len(ids))
	}
	for id, evs := range events {
		if !slices.Contains(evs, HookSent) {
			t.Errorf("%s: events %v", id, evs)
		}
	}
	if st := s.Stats(); st.SessionsAccepted != len(ids) || st.OutsideWindow != 1 {
		t.Errorf("stats %+v", st)
	}
}

// sendRawTemplate posts a valid template send to number (any form) and returns the answer.
func sendRawTemplate(t *testing.T, base, number string) rawAnswer {
	t.Helper()
	return postTo(t, base+templatePath(testBusiness),
		`{"number":"`+number+`","templateName":"promo","language":"en","callbackData":{"r":"`+number+`"}}`)
}

// TestInboundOpensWindow checks the control that opens a window with a webhook (Inbound) and
// the one that opens it without (/_fake/windows), through Remote.
func TestInboundOpensWindow(t *testing.T) {
	t.Parallel()
	sink := &hookSink{secret: "w"}
	hs := httptest.NewServer(sink)
	t.Cleanup(hs.Close)
	clock := newClock()
	s := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey, Clock: clock.Now,
		Webhooks: WebhookConfig{URL: hs.URL, Secret: "w"}})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	remote := Remote{BaseURL: base}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := remote.Inbound(ctx, customer, Reply{Text: "Do you ship to Porto?"}); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, s)
	if len(sink.snapshot()) != 1 {
		t.Fatalf("calls %v", sink.snapshot())
	}
	if a := postSession(t, base, sessionBody(customer)); a.status != 200 {
		t.Fatalf("after Inbound: %d %s", a.status, a.body)
	}

	const quiet = "+15550002222"
	w, err := remote.OpenWindow(ctx, quiet, clock.Now().Add(-23*time.Hour))
	if err != nil || !w.Open || w.Number != quiet || !w.ClosesAt.Equal(clock.Now().Add(time.Hour)) {
		t.Fatalf("OpenWindow = %+v, %v", w, err)
	}
	if a := postSession(t, base, sessionBody(quiet)); a.status != 200 {
		t.Fatalf("after OpenWindow: %d %s", a.status, a.body)
	}
	waitIdle(t, s)
	for _, c := range sink.snapshot() {
		if sender, _ := c.body["sender"].(map[string]any); sender["id"] == quiet {
			t.Errorf("OpenWindow sent a webhook: %v", c.body)
		}
	}
	if _, err := remote.OpenWindow(ctx, "bsuid:"+sessionBSUID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ws, err := remote.Windows(ctx)
	if err != nil || len(ws) != 3 || ws[0].Number != customer || ws[1].Number != quiet || ws[2].Number != "bsuid:"+sessionBSUID {
		t.Fatalf("Windows = %+v, %v", ws, err)
	}
	if _, err := remote.OpenWindow(ctx, "not a number", time.Time{}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("bad number: %v", err)
	}
	// Reset keeps the windows; ClearWindows forgets them.
	if err := remote.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if ws, _ := remote.Windows(ctx); len(ws) != 3 {
		t.Errorf("Reset dropped windows: %+v", ws)
	}
	if err := remote.ClearWindows(ctx); err != nil {
		t.Fatal(err)
	}
	if ws, _ := remote.Windows(ctx); len(ws) != 0 {
		t.Errorf("windows after ClearWindows: %+v", ws)
	}
	// Remote's record carries the kind and the flags.
	recs, err := remote.Received(ctx)
	if err != nil || len(recs) != 0 {
		t.Fatalf("received after reset: %v %v", recs, err)
	}
	if a := postSession(t, base, sessionBody(customer)); a.status != 400 {
		t.Fatalf("after ClearWindows: %d", a.status)
	}
	recs, err = remote.Received(ctx)
	if err != nil || len(recs) != 1 || recs[0].Kind != KindSession || !recs[0].OutsideWindow || recs[0].Session == nil ||
		recs[0].ErrorCode != CodeNoConversation {
		t.Fatalf("remote record %+v, %v", recs, err)
	}
	st, err := remote.Stats(ctx)
	if err != nil || st.OutsideWindow != 1 || st.Sessions != 1 {
		t.Errorf("remote stats %+v, %v", st, err)
	}
}

// TestDemoRepliesOpenWindows runs the demo's webhook mix and checks that exactly the
// customers who replied have an open window.
func TestDemoRepliesOpenWindows(t *testing.T) {
	t.Parallel()
	sink := &hookSink{secret: "demo"}
	hs := httptest.NewServer(sink)
	t.Cleanup(hs.Close)
	hooks := DemoWebhooks(hs.URL, "demo", 0)
	hooks.Seed = 11
	s := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1, Webhooks: hooks})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sendN(t, base, 300)
	waitIdle(t, s)
	repliers := map[string]bool{} // by the record's key: a BSUID comes bare in webhooks (5.4, 6)
	for _, c := range sink.snapshot() {
		if c.body["statusUpdate"] == nil {
			sender, _ := c.body["sender"].(map[string]any)
			repliers[customerKey(fmt.Sprint(sender["id"]))] = true
		}
	}
	if len(repliers) < 3 {
		t.Fatalf("only %d demo repliers in 300", len(repliers))
	}
	open := 0
	for i := range 300 {
		n := fmt.Sprintf("+1555000%04d", i)
		w := s.WindowOf(n)
		if w.Open != repliers[n] {
			t.Errorf("%s replied %v, window %+v", n, repliers[n], w)
		}
		if w.Open {
			open++
		}
	}
	if open != len(repliers) {
		t.Errorf("%d open windows, %d repliers", open, len(repliers))
	}
}

func TestWindowStore(t *testing.T) {
	t.Parallel()
	ws := newWindowStore()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const to = "+14155550100"
	ws.add(sessionBSUID, to, t0)
	if w := ws.get("bsuid:"+sessionBSUID, to, t0); !w.Open || w.Number != "bsuid:"+sessionBSUID {
		t.Errorf("bare and prefixed BSUID differ: %+v", w)
	}
	ws.add(customer, to, t0.Add(2*time.Hour))
	ws.add(customer, to, t0)
	ws.add(customer, to, t0.Add(time.Hour))
	if w := ws.get(customer, to, t0.Add(90*time.Minute)); !w.LastInbound.Equal(t0.Add(time.Hour)) {
		t.Errorf("latest past message: %+v", w)
	}
	if n := len(ws.inbound[customer][to]); n != 2 {
		t.Errorf("%d times kept, want 2 (the latest past one and the future one)", n)
	}
	if w := ws.get(customer, to, t0.Add(26*time.Hour-time.Nanosecond)); !w.Open || !w.ClosesAt.Equal(t0.Add(26*time.Hour)) {
		t.Errorf("just before 26h: %+v", w)
	}
	if w := ws.get(customer, to, t0.Add(26*time.Hour)); w.Open {
		t.Errorf("at 26h: %+v", w)
	}
	if w := ws.get("+15550000000", to, t0); w.Open || !w.LastInbound.IsZero() || !w.ClosesAt.IsZero() {
		t.Errorf("stranger %+v", w)
	}
}

// TestWindowStorePerNumber: a customer's window is the business number's they wrote to; a
// window opened to every number (OpenWindow) counts for each; the number's form (with or
// without '+') does not matter.
func TestWindowStorePerNumber(t *testing.T) {
	t.Parallel()
	ws := newWindowStore()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const a, b = "+16044441234", "+16044445678"
	ws.add(customer, a, t0)
	if w := ws.get(customer, "16044441234", t0); !w.Open || w.To != a {
		t.Errorf("from A: %+v, want A's window open", w)
	}
	if w := ws.get(customer, b, t0); w.Open || !w.LastInbound.IsZero() {
		t.Errorf("from B: %+v, want no window (the customer wrote to A)", w)
	}
	ws.add(customer, anyNumber, t0.Add(time.Hour))
	if w := ws.get(customer, b, t0.Add(time.Hour)); !w.Open || w.To != anyNumber {
		t.Errorf("from B after a window opened to every number: %+v", w)
	}
	if w := ws.latest(customer, t0.Add(time.Hour)); !w.LastInbound.Equal(t0.Add(time.Hour)) {
		t.Errorf("latest %+v", w)
	}
	if all := ws.all(t0.Add(time.Hour)); len(all) != 2 || all[0].To != anyNumber || all[1].To != a {
		t.Errorf("all %+v, want the window to every number and A's", all)
	}
	ws.remove(customer, a, t0)
	if w := ws.get(customer, a, t0); w.Open {
		t.Errorf("after remove: %+v", w)
	}
}

// BenchmarkHandlerByKind measures the fake's own cost per accepted send, without the network,
// on each endpoint: the session body is read twice (camelCase keys, then strictly), so it
// costs more than a template's.
func BenchmarkHandlerByKind(b *testing.B) {
	bodies := map[string]func(n string) string{
		KindTemplate: func(n string) string {
			return `{"number":"` + n + `","templateName":"promo","language":"en","parameters":[{"name":"body_1","value":"Ana"}]}`
		},
		KindSession: func(n string) string {
			return `{"recipient":{"id":"` + n + `","channelType":"whatsapp"},"message":{"text":"Your order shipped."},"callbackData":{"r":"1"}}`
		},
	}
	paths := map[string]string{KindTemplate: templatePath(testBusiness), KindSession: sessionPath(testBusiness)}
	for _, kind := range []string{KindTemplate, KindSession} {
		b.Run(kind, func(b *testing.B) {
			s, err := New(Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1, MaxReceived: 1000})
			if err != nil {
				b.Fatal(err)
			}
			const numbers = 1000
			reqs := make([]string, numbers)
			for i := range reqs {
				n := fmt.Sprintf("+1555%07d", i)
				_ = s.OpenWindow(n, time.Time{})
				reqs[i] = bodies[kind](n)
			}
			for i := 0; b.Loop(); i++ {
				req := httptest.NewRequest(http.MethodPost, paths[kind], strings.NewReader(reqs[i%numbers]))
				req.Header.Set("X-API-Key", testKey)
				w := httptest.NewRecorder()
				s.Handler().ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
