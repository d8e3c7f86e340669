package fakeconnectly

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// wireCall is one webhook call as it came over the wire.
type wireCall struct {
	header http.Header
	raw    []byte
	body   map[string]any
}

// wireSink is a webhook receiver that keeps every call whole and answers status (200 when 0).
type wireSink struct {
	status int
	mu     sync.Mutex
	calls  []wireCall
}

func (ws *wireSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	ws.mu.Lock()
	ws.calls = append(ws.calls, wireCall{header: r.Header.Clone(), raw: raw, body: m})
	ws.mu.Unlock()
	if ws.status != 0 {
		w.WriteHeader(ws.status)
	}
}

func (ws *wireSink) snapshot() []wireCall {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return append([]wireCall(nil), ws.calls...)
}

// startSink serves ws for the test and returns its URL.
func startSink(t *testing.T, ws *wireSink) string {
	t.Helper()
	hs := httptest.NewServer(ws)
	t.Cleanup(hs.Close)
	return hs.URL
}

// settled polls until the fake has no webhook call pending.
func settled(t *testing.T, s *Server) WebhookStats {
	t.Helper()
	waitFor(t, "the webhook calls to settle", func() bool { return s.WebhookStats().Pending == 0 })
	return s.WebhookStats()
}

// statusEvents returns the delivery_status calls, by statusUpdate.status.
func statusEvents(calls []wireCall) map[string][]wireCall {
	out := map[string][]wireCall{}
	for _, c := range calls {
		if su, ok := c.body["statusUpdate"].(map[string]any); ok {
			st, _ := su["status"].(string)
			out[st] = append(out[st], c)
		}
	}
	return out
}

// inboundCalls returns the messages-topic calls (those without a statusUpdate).
func inboundCalls(calls []wireCall) []wireCall {
	var out []wireCall
	for _, c := range calls {
		if _, ok := c.body["statusUpdate"]; !ok {
			out = append(out, c)
		}
	}
	return out
}

// TestReference5_3OnlyA200Acknowledges: "Acknowledge with HTTP 200; any non-200 is treated as
// failure and may be retried" (reference 5.3). A receiver answering 204 (or 202) is not
// acknowledged: the fake tries again and gives up, as it does after a 500.
func TestReference5_3OnlyA200Acknowledges(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusOK, http.StatusAccepted, http.StatusNoContent, http.StatusInternalServerError} {
		sink := &wireSink{status: status}
		s, base := newFake(t, Config{RateLimit: -1, Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Attempts: 2, Seed: 3,
			Fates: []Fate{{Status: HookSent}}}})
		t.Cleanup(func() { s.Close() })
		if a := sendRaw(t, base, customer); a.status != 200 {
			t.Fatalf("send: %d", a.status)
		}
		st := settled(t, s)
		calls := len(sink.snapshot())
		if status == http.StatusOK {
			if st.Delivered != 1 || st.GaveUp != 0 || calls != 1 {
				t.Errorf("receiver answering 200: stats %+v, %d calls; want one call, delivered", st, calls)
			}
			continue
		}
		if st.Delivered != 0 || st.GaveUp != 1 || st.Retries != 1 || calls != 2 {
			t.Errorf("receiver answering %d: stats %+v, %d calls; want two tries and no acknowledgement", status, st, calls)
		}
		if o := s.WebhookOutcomes(); len(o) != 1 || o[0].Highest != "" {
			t.Errorf("receiver answering %d: outcomes %+v, want nothing acknowledged", status, o)
		}
	}
}

// TestReference5_3CallHeadersAndSignature checks a call against the documented example
// headers (content-type text/plain; charset=utf-8 with a JSON body, user-agent go-resty/2.6.0,
// accept-encoding gzip) and recomputes x-connectly-hmac-sha256 independently: Base64
// (standard, padded) of HMAC-SHA256 over the raw body, keyed with the secret.
func TestReference5_3CallHeadersAndSignature(t *testing.T) {
	t.Parallel()
	const secret = "whsec-reference"
	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: secret, Seed: 4,
		Replies: []Reply{{Template: "promo", Button: "Yes", Payload: "YES", Shape: ReplyButtonBare}}}})
	t.Cleanup(func() { s.Close() })
	sendRaw(t, base, customer)
	settled(t, s)
	calls := sink.snapshot()
	if len(calls) != 4 { // sent, delivered, read and the reply
		t.Fatalf("%d calls, want 4", len(calls))
	}
	for _, c := range calls {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(c.raw)
		want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if got := c.header.Get("x-connectly-hmac-sha256"); got != want || len(got) != 44 || !strings.HasSuffix(got, "=") {
			t.Errorf("signature %q, want %q", got, want)
		}
		if ct := c.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" || !json.Valid(c.raw) {
			t.Errorf("Content-Type %q with body %q", ct, c.raw)
		}
		if ua := c.header.Get("User-Agent"); ua != "go-resty/2.6.0" {
			t.Errorf("User-Agent %q", ua)
		}
		if ae := c.header.Get("Accept-Encoding"); ae != "gzip" {
			t.Errorf("Accept-Encoding %q", ae)
		}
	}
}

// TestReference5_4DeliveryFailedIsTheReferenceExample: a delivery_failed event has the shape
// of the reference's example: topic, a string timestamp, the business as sender with a null
// name, statusUpdate {id, status, error} where error is the 4.1 body ("Internal server
// error", ERROR_TYPE_UNSPECIFIED, ERROR_CODE_UNSPECIFIED, "Encountered unexpected error",
// details {}) by default, or a fate's code and details; a success event has error null.
func TestReference5_4DeliveryFailedIsTheReferenceExample(t *testing.T) {
	t.Parallel()
	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 5,
		Fates: []Fate{
			{Numbers: []string{"+15550000001"}, Status: HookDeliveryFailed},
			{Numbers: []string{"+15550000002"}, Status: HookDeliveryFailed, Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT",
				Details: json.RawMessage(`{"metaCode":131050}`)},
			{Numbers: []string{"+15550000003"}, Status: HookDelivered},
		}}})
	t.Cleanup(func() { s.Close() })
	ids := map[string]string{}
	for _, n := range []string{"+15550000001", "+15550000002", "+15550000003"} {
		a := sendRaw(t, base, n)
		var res sendResult
		if a.status != 200 || json.Unmarshal(a.body, &res) != nil {
			t.Fatalf("send to %s: %d %s", n, a.status, a.body)
		}
		ids[n] = res.ID
	}
	settled(t, s)
	byStatus := statusEvents(sink.snapshot())
	failed := map[string]map[string]any{} // recipient -> error
	for _, c := range byStatus[HookDeliveryFailed] {
		if c.body["topic"] != TopicDeliveryStatus {
			t.Errorf("topic %v", c.body["topic"])
		}
		if ts, ok := c.body["timestamp"].(string); !ok || !digitPattern.MatchString(ts) {
			t.Errorf("timestamp %v is not a string of Unix seconds", c.body["timestamp"])
		}
		sender, _ := c.body["sender"].(map[string]any)
		if name, ok := sender["name"]; !ok || name != nil {
			t.Errorf("sender %v, want a null name as in the example", sender)
		}
		recipient, _ := c.body["recipient"].(map[string]any)
		su := c.body["statusUpdate"].(map[string]any)
		if su["id"] != ids[recipient["id"].(string)] {
			t.Errorf("statusUpdate.id %v is not the send's id", su["id"])
		}
		e, _ := su["error"].(map[string]any)
		failed[recipient["id"].(string)] = e
	}
	if len(failed) != 2 {
		t.Fatalf("delivery_failed for %d messages, want 2: %v", len(failed), failed)
	}
	e := failed["+15550000001"]
	if e["message"] != "Internal server error" || e["type"] != TypeUnspecified || e["code"] != CodeUnspecified ||
		e["userTitle"] != "Encountered unexpected error" || e["userMessage"] != userMessage ||
		!digitPattern.MatchString(e["cntTraceId"].(string)) || len(e["details"].(map[string]any)) != 0 || len(e) != 7 {
		t.Errorf("default failure error %v, want the reference's example", e)
	}
	e = failed["+15550000002"]
	if e["code"] != "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT" || e["type"] != TypeInvalidRequest ||
		e["details"].(map[string]any)["metaCode"] != float64(131050) {
		t.Errorf("opted-out failure error %v, want its code and the fate's details", e)
	}
	for _, c := range byStatus[HookDelivered] {
		su := c.body["statusUpdate"].(map[string]any)
		if errv, ok := su["error"]; !ok || errv != nil {
			t.Errorf("delivered event: error %v, want null", errv)
		}
	}
	if _, err := New(Config{BusinessID: "b", APIKey: "k", Webhooks: WebhookConfig{Fates: []Fate{{Status: HookDeliveryFailed, Details: json.RawMessage(`"x"`)}}}}); err == nil {
		t.Error("a fate whose details is not a JSON object validated")
	}
}

// party returns the object at key of a webhook body.
func party(body map[string]any, key string) map[string]any {
	p, _ := body[key].(map[string]any)
	return p
}

// TestReference5_4BSUIDCustomers: on webhooks a customer is written as reference 5.4 and 6
// say. A phone-less customer (sent to as "bsuid:US.…") is {id: BSUID, userId: BSUID,
// phoneNumber: ""}, the BSUID bare (never the template API's "bsuid:" form); a phone
// customer with a BSUID is {id: phone, userId: BSUID, phoneNumber: phone}; a phone customer
// without one has neither field. The customer is the recipient of status events and the
// sender of inbound ones. A reply from a phone customer with a BSUID opens the window of both
// identities, so a session send to the bare BSUID is taken.
func TestReference5_4BSUIDCustomers(t *testing.T) {
	t.Parallel()
	const (
		phoneless  = "bsuid:US.13491208655302741918"
		bare       = "US.13491208655302741918"
		withBSUID  = "+15550000001"
		itsBSUID   = "BR.abc123XYZ"
		phoneOnly  = "+15550000002"
		replyLabel = "Yes"
	)
	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 6,
		BSUIDs:  map[string]string{withBSUID: itsBSUID},
		Replies: []Reply{{Template: "promo", Button: replyLabel, Payload: "YES", Shape: ReplyButtonContext}}}})
	t.Cleanup(func() { s.Close() })
	for _, n := range []string{phoneless, withBSUID, phoneOnly} {
		if a := sendRaw(t, base, n); a.status != 200 {
			t.Fatalf("send to %s: %d %s", n, a.status, a.body)
		}
	}
	settled(t, s)
	calls := sink.snapshot()
	type want struct {
		id, userID string
		phone      *string
	}
	empty, phone := "", withBSUID
	wants := []want{{bare, bare, &empty}, {withBSUID, itsBSUID, &phone}, {phoneOnly, "", nil}}
	check := func(what string, p map[string]any) {
		t.Helper()
		for _, w := range wants {
			if p["id"] != w.id {
				continue
			}
			uid, hasUID := p["userId"]
			pn, hasPN := p["phoneNumber"]
			switch {
			case w.userID == "" && (hasUID || hasPN):
				t.Errorf("%s %v: a phone-only customer has no userId or phoneNumber", what, p)
			case w.userID != "" && (uid != w.userID || !hasPN || pn != *w.phone):
				t.Errorf("%s %v: want userId %q and phoneNumber %q", what, p, w.userID, *w.phone)
			}
			return
		}
		t.Errorf("%s %v names no customer (a bsuid: prefix?)", what, p)
	}
	seen := 0
	for _, c := range calls {
		for _, key := range []string{"sender", "recipient"} {
			if p, _ := json.Marshal(c.body[key]); strings.Contains(string(p), "bsuid:") {
				t.Errorf("%s %s carries the template API's bsuid: form", key, p)
			}
		}
		if _, ok := c.body["statusUpdate"]; ok {
			check("recipient", party(c.body, "recipient"))
		} else {
			check("sender", party(c.body, "sender"))
		}
		seen++
	}
	if seen != 3*4 {
		t.Errorf("%d calls, want 12 (three messages read and answered)", seen)
	}
	// The reply from the phone customer opened the BSUID's window too, and the phone-less
	// customer's reply opened theirs: session sends to either form are taken.
	for _, r := range []string{itsBSUID, bare, withBSUID} {
		if a := sessionSendTo(t, base, r); a.status != 200 {
			t.Errorf("session send to %s after their reply: %d %s", r, a.status, a.body)
		}
	}
	if _, err := New(Config{BusinessID: "b", APIKey: "k", Webhooks: WebhookConfig{BSUIDs: map[string]string{"15550000001": "US.1"}}}); err == nil {
		t.Error("a BSUIDs entry keyed by a number that is not E.164 validated")
	}
	if _, err := New(Config{BusinessID: "b", APIKey: "k", Webhooks: WebhookConfig{BSUIDs: map[string]string{withBSUID: "US-1"}}}); err == nil {
		t.Error("a BSUIDs entry that is not a BSUID validated")
	}
}

// TestReference5_4ButtonReplyWithoutMessage: "several come without a message object; treat a
// body with buttonResponse or context as an inbound reply even then" (reference 5.4). Besides
// the top-level buttonResponse {text, id}, the fake sends context {replyToId} with
// buttonResponse {text, payload} and no message, echoing the callbackData of the message
// replied to, and it is one of the button forms a rotating reply goes through.
func TestReference5_4ButtonReplyWithoutMessage(t *testing.T) {
	t.Parallel()
	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 8}})
	t.Cleanup(func() { s.Close() })
	a := sendRaw(t, base, customer)
	var res sendResult
	if a.status != 200 || json.Unmarshal(a.body, &res) != nil {
		t.Fatalf("send: %d %s", a.status, a.body)
	}
	settled(t, s)
	shape, err := s.Inbound(customer, Reply{Button: "No thanks", Payload: "NO", Shape: ReplyButtonBare})
	if err != nil || shape != ReplyButtonBare {
		t.Fatalf("Inbound = %q, %v", shape, err)
	}
	settled(t, s)
	in := inboundCalls(sink.snapshot())
	if len(in) != 1 {
		t.Fatalf("%d inbound calls, want 1", len(in))
	}
	b := in[0].body
	ctx, br := party(b, "context"), party(b, "buttonResponse")
	if _, hasMsg := b["message"]; hasMsg || ctx["replyToId"] != res.ID || br["text"] != "No thanks" || br["payload"] != "NO" {
		t.Errorf("body %s, want context and buttonResponse without a message", in[0].raw)
	}
	if cb := party(b, "callbackData"); cb["r"] != customer {
		t.Errorf("callbackData %v, want the replied message's", b["callbackData"])
	}
	if party(b, "sender")["id"] != customer {
		t.Errorf("sender %v, want the customer", b["sender"])
	}
	noMessage := 0
	for _, sh := range ButtonShapes {
		if sh == ReplyButtonBare || sh == ReplyButtonTop {
			noMessage++
		}
	}
	if noMessage != 2 {
		t.Errorf("ButtonShapes %v: want both forms without a message object", ButtonShapes)
	}
}

// TestReference5_2Registrations: one address per topic, a new registration for a topic
// replaces the old (5.1); the type is one of the enum (custom by default); an update changes
// only the fields it gives and never the topic; a delete answers 200 {}; an unknown id 404.
func TestReference5_2Registrations(t *testing.T) {
	t.Parallel()
	s, base := newFake(t, Config{})
	t.Cleanup(func() { s.Close() })
	api := base + "/v1/businesses/" + testBusiness
	create := func(body string) (int, map[string]any) {
		t.Helper()
		status, _, raw := request(t, http.MethodPost, api+"/create/webhooks", testKey, body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return status, party(m, "entity")
	}
	list := func() []any {
		t.Helper()
		status, _, raw := request(t, http.MethodGet, api+"/webhooks", testKey, "")
		var m struct {
			Entity struct {
				Webhooks []any `json:"webhooks"`
			} `json:"entity"`
		}
		if status != 200 || json.Unmarshal(raw, &m) != nil {
			t.Fatalf("listing: %d %s", status, raw)
		}
		return m.Entity.Webhooks
	}
	status, first := create(`{"topic":"delivery_status","address":"https://a.example.com/h","configuration":{"echo":false,"channelTypes":["whatsapp"],"filters":[{"field":"campaign_name","expression":"prod-*"}]}}`)
	if status != 200 || first["type"] != "custom" || first["id"] == "" {
		t.Fatalf("create: %d %v", status, first)
	}
	for _, typ := range []string{"zapier", "webengage", "integromat_make"} {
		if status, e := create(`{"topic":"messages","address":"https://b.example.com/h","type":"` + typ + `"}`); status != 200 || e["type"] != typ {
			t.Errorf("type %s: %d %v", typ, status, e)
		}
	}
	if status, _ := create(`{"topic":"messages","address":"https://b.example.com/h","type":"sms"}`); status != 400 {
		t.Errorf("type sms: %d, want 400", status)
	}
	status, second := create(`{"topic":"delivery_status","address":"https://c.example.com/h"}`)
	if status != 200 || second["id"] == first["id"] {
		t.Fatalf("second create: %d %v", status, second)
	}
	if l := list(); len(l) != 2 || l[0].(map[string]any)["address"] != "https://c.example.com/h" {
		t.Errorf("listing %v, want one registration per topic, the newer for delivery_status", l)
	}
	id := second["id"].(string)
	status, _, raw := request(t, http.MethodPut, api+"/update/webhooks/"+id, testKey, `{"configuration":{"echo":true}}`)
	var upd map[string]any
	_ = json.Unmarshal(raw, &upd)
	if e := party(upd, "entity"); status != 200 || e["address"] != "https://c.example.com/h" || party(e, "configuration")["echo"] != true {
		t.Errorf("update of the configuration alone: %d %s", status, raw)
	}
	if status, _, raw := request(t, http.MethodPut, api+"/update/webhooks/"+id, testKey, `{"topic":"messages"}`); status != 400 {
		t.Errorf("topic change: %d %s", status, raw)
	}
	if status, _, _ := request(t, http.MethodPut, api+"/update/webhooks/wh_nope", testKey, `{"address":"https://d.example.com"}`); status != 404 {
		t.Errorf("update of an unknown id: %d", status)
	}
	if status, _, raw := request(t, http.MethodDelete, api+"/delete/webhooks/"+id, testKey, ""); status != 200 || string(raw) != "{}" {
		t.Errorf("delete: %d %s, want 200 {}", status, raw)
	}
	if status, _, _ := request(t, http.MethodDelete, api+"/delete/webhooks/"+id, testKey, ""); status != 404 {
		t.Errorf("second delete: %d", status)
	}
	if status, _, _ := request(t, http.MethodGet, base+"/v1/businesses/other/webhooks", testKey, ""); status != 404 {
		t.Errorf("other business: %d", status)
	}
}

// TestReference5_1ReorderShufflesArrivalOnly: "webhook ordering/duplicates are not guaranteed"
// (5.1), and timestamp is when the status happened (5.4). With every message reordered, the
// events of some messages arrive out of their order, yet every message's timestamps still
// read sent <= delivered <= read, and they are the same on a duplicate.
func TestReference5_1ReorderShufflesArrivalOnly(t *testing.T) {
	t.Parallel()
	clock := newClock()
	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Clock: clock.Now, Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k",
		Seed: 5, Delay: time.Minute, ReorderPercent: 100, DuplicatePercent: 30, Concurrency: 1}})
	t.Cleanup(func() { s.Close() })
	const n = 20
	for i := range n {
		if a := sendRaw(t, base, fmt.Sprintf("+1555000%04d", i)); a.status != 200 {
			t.Fatalf("send: %d %s", a.status, a.body)
		}
	}
	clock.Add(time.Hour)
	kick(s)
	settled(t, s)
	type event struct {
		status string
		at     int64
	}
	byMessage := map[string][]event{}
	for _, c := range sink.snapshot() { // in arrival order: one call at a time
		su := c.body["statusUpdate"].(map[string]any)
		at, err := strconv.ParseInt(c.body["timestamp"].(string), 10, 64)
		if err != nil {
			t.Fatalf("timestamp %v", c.body["timestamp"])
		}
		byMessage[su["id"].(string)] = append(byMessage[su["id"].(string)], event{su["status"].(string), at})
	}
	if len(byMessage) != n {
		t.Fatalf("%d messages had events, want %d", len(byMessage), n)
	}
	rank := map[string]int{HookSent: 0, HookDelivered: 1, HookRead: 2}
	outOfOrder := 0
	for id, evs := range byMessage {
		stamp := map[string]int64{}
		for i, ev := range evs {
			if prev, ok := stamp[ev.status]; ok && prev != ev.at {
				t.Errorf("%s: two %s events stamped %d and %d; a duplicate keeps its timestamp", id, ev.status, prev, ev.at)
			}
			stamp[ev.status] = ev.at
			if i > 0 && rank[ev.status] < rank[evs[i-1].status] {
				outOfOrder++
			}
		}
		if len(stamp) != 3 || stamp[HookSent] > stamp[HookDelivered] || stamp[HookDelivered] > stamp[HookRead] {
			t.Errorf("%s: timestamps %v, want sent <= delivered <= read whatever the arrival order", id, stamp)
		}
	}
	if outOfOrder == 0 {
		t.Error("no message's events arrived out of order; the test shows nothing")
	}
}
