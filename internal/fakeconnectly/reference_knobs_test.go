package fakeconnectly

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
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

// eventsByID counts the delivery_status calls a sink received, by statusUpdate.id.
func eventsByID(sink *hookSink) map[string]int {
	out := map[string]int{}
	for _, c := range sink.snapshot() {
		if id := hookStatusID(c.body); id != "" && c.body["topic"] == TopicDeliveryStatus {
			out[id]++
		}
	}
	return out
}

// hookStatusID is a webhook body's statusUpdate.id, "" when it has none (an inbound message).
func hookStatusID(body map[string]any) string {
	su, _ := body["statusUpdate"].(map[string]any)
	id, _ := su["id"].(string)
	return id
}

// remoteConversation reads GET /_fake/conversations?number=N.
func remoteConversation(t *testing.T, base, number string) Conversation {
	t.Helper()
	c, err := Remote{BaseURL: base}.Conversation(t.Context(), number)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReference3_1MessageIDDedupe: message.id is "an optional client-chosen id; nothing
// says it deduplicates" (reference 3, 3.1) and idempotency is open (10.6). By default two
// session sends with one message.id are two messages, each with its id, record and
// webhooks. With dedupeMessageId a send repeating the message.id of a message taken is
// answered 200 with that message's id and sends nothing more: the accepted counts, the
// conversation and the webhooks show one message. A retry after a 500 whose message went
// out is answered with the id of the message that went out; a retry after a 500 that sent
// nothing is a new send.
func TestReference3_1MessageIDDedupe(t *testing.T) {
	t.Parallel()
	const msgID = "01FPW47QF69Y5JZH24605VAKQB"
	withID := func(number, id, text string) string {
		return `{"recipient":{"id":"` + number + `","channelType":"whatsapp"},"message":{"id":"` + id + `","text":"` + text + `"}}`
	}
	start := func(t *testing.T, config string) (*Server, string, *hookSink) {
		t.Helper()
		s, base, sink := startWithSink(t, config, nil)
		for _, n := range []string{customer, "+15550009999"} {
			if err := s.OpenWindow(n, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		return s, base, sink
	}

	t.Run("by default two messages", func(t *testing.T) {
		t.Parallel()
		s, base, sink := start(t, `{"rateLimit": -1}`)
		first := messageID(t, postSession(t, base, withID(customer, msgID, "Hi")))
		second := messageID(t, postSession(t, base, withID(customer, msgID, "Hi")))
		if first == second {
			t.Fatalf("both sends answered %s, want two messages", first)
		}
		if n := acceptedOver(t, base)[customer]; n != 2 {
			t.Errorf("GET /_fake/accepted: %d for the customer, want 2", n)
		}
		if c := remoteConversation(t, base, customer); len(c.Messages) != 2 {
			t.Errorf("conversation has %d messages, want 2", len(c.Messages))
		}
		waitIdle(t, s)
		if ev := eventsByID(sink); ev[first] != 3 || ev[second] != 3 {
			t.Errorf("status events %v, want sent, delivered and read for each of %s and %s", ev, first, second)
		}
	})

	t.Run("dedupeMessageId one message", func(t *testing.T) {
		t.Parallel()
		s, base, sink := start(t, `{"rateLimit": -1, "dedupeMessageId": true}`)
		first := messageID(t, postSession(t, base, withID(customer, msgID, "Hi")))
		// The repeat is answered with the first id whatever it carries, also to another
		// customer: the id is the business's.
		for _, body := range []string{withID(customer, msgID, "Hi"), withID(customer, msgID, "Other text"), withID("+15550009999", msgID, "Hi")} {
			a := postSession(t, base, body)
			if a.status != http.StatusOK || messageID(t, a) != first {
				t.Errorf("repeat %s: %d %s, want 200 with %s", body, a.status, a.body, first)
			}
		}
		other := messageID(t, postSession(t, base, withID(customer, "01FPW47QF69Y5JZH24605VAKQC", "Hi")))
		noID := messageID(t, postSession(t, base, sessionBody(customer)))
		noID2 := messageID(t, postSession(t, base, sessionBody(customer)))
		if other == first || noID == noID2 {
			t.Errorf("another message.id, or none, is a new message: %s %s %s %s", first, other, noID, noID2)
		}
		if counts := acceptedOver(t, base); counts[customer] != 4 || counts["+15550009999"] != 0 {
			t.Errorf("GET /_fake/accepted: %v, want 4 for the customer and none for the other", counts)
		}
		c := remoteConversation(t, base, customer)
		if len(c.Messages) != 4 || c.Messages[0].MessageID != first || c.Messages[1].MessageID != other {
			t.Errorf("conversation %+v, want %s, %s and the two without message.id", c.Messages, first, other)
		}
		if c := remoteConversation(t, base, "+15550009999"); len(c.Messages) != 0 {
			t.Errorf("the other customer's conversation %+v, want none", c.Messages)
		}
		recs, err := Remote{BaseURL: base}.Received(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 7 || recs[1].DuplicateOf != first || recs[1].MessageID != "" || recs[1].Status != 200 || recs[3].Number != "+15550009999" || recs[3].DuplicateOf != first {
			t.Errorf("GET /_fake/received: %+v, want the repeats marked duplicateOf %s, without a messageId", recs, first)
		}
		st, err := Remote{BaseURL: base}.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.Deduplicated != 3 || st.Accepted != 4 || st.SessionsAccepted != 4 || st.Requests != 7 || len(st.Errors) != 0 {
			t.Errorf("stats %+v, want 3 deduplicated and 4 accepted of 7", st)
		}
		waitIdle(t, s)
		if ev := eventsByID(sink); len(ev) != 4 || ev[first] != 3 {
			t.Errorf("status events %v, want one set of three for %s and the three other messages", ev, first)
		}
	})

	t.Run("dedupeMessageId retries", func(t *testing.T) {
		t.Parallel()
		// The first send of each number fails with 500: for +...01 after its message went
		// out, for +...02 before.
		s, base, _ := start(t, `{"rateLimit": -1, "dedupeMessageId": true, "rules": [
			{"numbers": ["+15550000001"], "status": 500, "sent": true, "times": 1},
			{"numbers": ["+15550000002"], "status": 500, "times": 1}]}`)
		for _, n := range []string{"+15550000001", "+15550000002"} {
			if err := s.OpenWindow(n, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		if a := postSession(t, base, withID("+15550000001", "m-1", "Hi")); a.status != http.StatusInternalServerError {
			t.Fatalf("first send: %d %s, want 500", a.status, a.body)
		}
		sent := s.Received()[0].MessageID
		if a := postSession(t, base, withID("+15550000001", "m-1", "Hi")); a.status != http.StatusOK || messageID(t, a) != sent {
			t.Errorf("retry after a 500 that sent: %d %s, want 200 with %s", a.status, a.body, sent)
		}
		if a := postSession(t, base, withID("+15550000002", "m-2", "Hi")); a.status != http.StatusInternalServerError {
			t.Fatalf("first send: %d %s, want 500", a.status, a.body)
		}
		retry := postSession(t, base, withID("+15550000002", "m-2", "Hi"))
		if retry.status != http.StatusOK || s.Received()[3].MessageID != messageID(t, retry) || s.Received()[3].DuplicateOf != "" {
			t.Errorf("retry after a 500 that sent nothing: %d %s, want a new message", retry.status, retry.body)
		}
		if counts := s.AcceptedCounts(); counts["+15550000001"] != 1 || counts["+15550000002"] != 1 {
			t.Errorf("accepted %v, want one message each", counts)
		}
	})

	t.Run("dedupeMessageId before the window", func(t *testing.T) {
		t.Parallel()
		clock := newClock()
		s, base := newFake(t, Config{RateLimit: -1, DedupeMessageID: true, Clock: clock.Now})
		if err := s.OpenWindow(customer, time.Time{}); err != nil {
			t.Fatal(err)
		}
		first := messageID(t, postSession(t, base, withID(customer, msgID, "Hi")))
		clock.Add(25 * time.Hour)
		if a := postSession(t, base, withID(customer, msgID, "Hi")); a.status != http.StatusOK || messageID(t, a) != first {
			t.Errorf("repeat after the window closed: %d %s, want 200 with %s", a.status, a.body, first)
		}
		if a := postSession(t, base, withID(customer, "new", "Hi")); a.status != http.StatusBadRequest {
			t.Errorf("a new message after the window closed: %d %s, want 400", a.status, a.body)
		}
		// Reset forgets the ids taken.
		s.Reset()
		if err := s.OpenWindow(customer, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if id := messageID(t, postSession(t, base, withID(customer, msgID, "Hi"))); id == first {
			t.Errorf("after Reset the message.id was still taken")
		}
	})
}

// acceptedOver reads GET /_fake/accepted.
func acceptedOver(t *testing.T, base string) map[string]int {
	t.Helper()
	m, err := Remote{BaseURL: base}.AcceptedCounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// campaignOf returns the campaign name a delivery_status call carries, in either documented
// place (reference 5.4: metadata.campaign_name, or statusUpdate.metadata.campaignName).
func campaignOf(body map[string]any) string {
	if m, ok := body["metadata"].(map[string]any); ok {
		if c, ok := m["campaign_name"].(string); ok {
			return c
		}
	}
	if su, ok := body["statusUpdate"].(map[string]any); ok {
		if m, ok := su["metadata"].(map[string]any); ok {
			c, _ := m["campaignName"].(string)
			return c
		}
	}
	return ""
}

// TestReference10_8CampaignFlows: campaignName "tags this send with a campaign name for
// analytics" (NEW) or "can trigger a whole Flow-Builder sequence" (GITBOOK; reference 2.1,
// 3, 10.8). By default it is a tag only: kept with the message in the record and in its
// webhooks, and nothing else is sent. With campaignFlowMessages N, a send carrying one, on
// either endpoint, also sends the N messages of a flow to its recipient: in the
// conversation as kind "flow" with their own ids and the send's id as startedBy, in the
// send's record, counted apart from the accepted sends, each with its own delivery
// webhooks carrying the campaign, and not replied to.
func TestReference10_8CampaignFlows(t *testing.T) {
	t.Parallel()
	start := func(t *testing.T, config string) (*Server, string, *hookSink) {
		t.Helper()
		return startWithSink(t, config, []Reply{{Text: "thanks"}})
	}
	// Three customers: a template send with a campaign, a session send with one, and a
	// template send without.
	const viaTemplate, viaSession, noCampaign = "+15550000001", "+15550000002", "+15550000003"
	sendAll := func(t *testing.T, s *Server, base string) (tmplID, sessionID string) {
		t.Helper()
		tmplID = sendTemplateTo(t, base, viaTemplate, "spring")
		if err := s.OpenWindow(viaSession, time.Time{}); err != nil {
			t.Fatal(err)
		}
		sessionID = messageID(t, postSession(t, base, `{"recipient":{"id":"`+viaSession+`","channelType":"whatsapp"},`+
			`"message":{"text":"Hi"},"campaignName":"spring"}`))
		if a := postTo(t, base+templatePath(testBusiness), `{"number":"`+noCampaign+`","templateName":"promo","language":"en"}`); a.status != 200 {
			t.Fatalf("send without campaign: %d %s", a.status, a.body)
		}
		return tmplID, sessionID
	}

	t.Run("by default a tag only", func(t *testing.T) {
		t.Parallel()
		s, base, sink := start(t, `{"rateLimit": -1}`)
		tmplID, sessionID := sendAll(t, s, base)
		for number, id := range map[string]string{viaTemplate: tmplID, viaSession: sessionID} {
			c := remoteConversation(t, base, number)
			if len(c.Messages) != 1 || c.Messages[0].MessageID != id || c.Messages[0].CampaignName != "spring" {
				t.Errorf("%s: conversation %+v, want the one message, tagged spring", number, c.Messages)
			}
		}
		recs, err := Remote{BaseURL: base}.Received(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 3 || recs[0].Message.CampaignName != "spring" || recs[1].Message.CampaignName != "spring" || len(recs[0].Flow)+len(recs[1].Flow) != 0 {
			t.Errorf("GET /_fake/received: %+v, want the campaign kept and no flow", recs)
		}
		if st := s.Stats(); st.Flows != 0 || st.FlowMessages != 0 || st.Accepted != 3 {
			t.Errorf("stats %+v, want 3 accepted and no flow", st)
		}
		waitIdle(t, s)
		ev := eventsByID(sink)
		if len(ev) != 3 || ev[tmplID] != 3 || ev[sessionID] != 3 {
			t.Errorf("status events %v, want three for each of the 3 sends only", ev)
		}
		for _, c := range sink.snapshot() {
			if id := hookStatusID(c.body); (id == tmplID || id == sessionID) && campaignOf(c.body) != "spring" {
				t.Errorf("status event %v has no campaign name", c.body)
			}
		}
	})

	t.Run("campaignFlowMessages starts a flow", func(t *testing.T) {
		t.Parallel()
		s, base, sink := start(t, `{"rateLimit": -1, "campaignFlowMessages": 2}`)
		tmplID, sessionID := sendAll(t, s, base)
		flows := map[string][]string{}
		for number, id := range map[string]string{viaTemplate: tmplID, viaSession: sessionID} {
			c := remoteConversation(t, base, number)
			if len(c.Messages) != 3 || c.Messages[0].MessageID != id {
				t.Fatalf("%s: conversation %+v, want the send's message and the flow's two", number, c.Messages)
			}
			for _, m := range c.Messages[1:] {
				if m.Kind != KindFlow || m.StartedBy != id || m.CampaignName != "spring" || !idPattern.MatchString(m.MessageID) ||
					m.MessageID == id || len(m.CallbackData) != 0 {
					t.Errorf("%s: flow message %+v, want kind flow, its own id, startedBy %s, campaign spring", number, m, id)
				}
				flows[id] = append(flows[id], m.MessageID)
			}
			if flows[id][0] == flows[id][1] {
				t.Errorf("%s: the flow's messages share the id %s", number, flows[id][0])
			}
		}
		if c := remoteConversation(t, base, noCampaign); len(c.Messages) != 1 {
			t.Errorf("send without campaign: conversation %+v, want its one message", c.Messages)
		}
		recs, err := Remote{BaseURL: base}.Received(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 3 || !slices.Equal(recs[0].Flow, flows[tmplID]) || !slices.Equal(recs[1].Flow, flows[sessionID]) || recs[2].Flow != nil {
			t.Errorf("GET /_fake/received: %+v, want the flows' ids on the sends with a campaign", recs)
		}
		st, err := Remote{BaseURL: base}.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.Flows != 2 || st.FlowMessages != 4 || st.Accepted != 3 {
			t.Errorf("stats %+v, want 2 flows of 4 messages beside 3 accepted sends", st)
		}
		if counts := acceptedOver(t, base); counts[viaTemplate] != 1 || counts[viaSession] != 1 {
			t.Errorf("GET /_fake/accepted: %v, want the sends only", counts)
		}

		waitIdle(t, s)
		ev := eventsByID(sink)
		if len(ev) != 7 {
			t.Errorf("status events %v, want events for 7 messages", ev)
		}
		for _, id := range append(flows[tmplID], flows[sessionID]...) {
			if ev[id] != 3 {
				t.Errorf("flow message %s: %d status events, want sent, delivered and read", id, ev[id])
			}
		}
		for _, c := range sink.snapshot() {
			if !slices.Contains(flows[tmplID], hookStatusID(c.body)) {
				continue
			}
			if campaignOf(c.body) != "spring" || c.body["callbackData"] != nil || c.body["recipient"].(map[string]any)["id"] != viaTemplate {
				t.Errorf("flow message event %v, want the campaign, the recipient and no callbackData", c.body)
			}
		}
		// The customers reply to the sends' messages only.
		for number, id := range map[string]string{viaTemplate: tmplID, viaSession: sessionID} {
			if in := s.RepliesFrom(number); len(in) != 1 || in[0].ReplyTo != id {
				t.Errorf("%s: replies %+v, want one, to %s", number, in, id)
			}
		}
	})

	t.Run("a refused send starts nothing", func(t *testing.T) {
		t.Parallel()
		s, base := newFake(t, Config{RateLimit: -1, CampaignFlowMessages: 1,
			Rules: []Rule{{Numbers: []string{viaTemplate}, Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"}}})
		a := postTo(t, base+templatePath(testBusiness), `{"number":"`+viaTemplate+`","templateName":"promo","language":"en","campaignName":"spring"}`)
		if a.status != http.StatusBadRequest {
			t.Fatalf("%d %s, want 400", a.status, a.body)
		}
		if st := s.Stats(); st.Flows != 0 || st.FlowMessages != 0 {
			t.Errorf("stats %+v, want no flow", st)
		}
		if _, err := New(Config{BusinessID: testBusiness, APIKey: testKey, CampaignFlowMessages: -1}); err == nil {
			t.Error("New with CampaignFlowMessages -1: no error")
		}
	})
}

// startWithSink starts a fake configured by the JSON config, whose signed webhooks (with
// replies, if any) go to a sink it returns.
func startWithSink(t *testing.T, config string, replies []Reply) (*Server, string, *hookSink) {
	t.Helper()
	sink := &hookSink{secret: "k"}
	hs := httptest.NewServer(sink)
	t.Cleanup(hs.Close)
	cfg, err := ParseConfig(strings.NewReader(config))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Webhooks = WebhookConfig{URL: hs.URL, Secret: "k", Replies: replies}
	s, base := newFake(t, cfg)
	t.Cleanup(func() { s.Close() })
	return s, base, sink
}
