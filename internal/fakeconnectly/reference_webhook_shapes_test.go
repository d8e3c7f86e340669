package fakeconnectly

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"
)

// register creates a webhook registration through the API and returns its id.
func register(t *testing.T, base, body string) string {
	t.Helper()
	status, _, raw := request(t, http.MethodPost, base+"/v1/businesses/"+testBusiness+"/create/webhooks", testKey, body)
	var m struct {
		Entity Webhook `json:"entity"`
	}
	if status != 200 || json.Unmarshal(raw, &m) != nil || m.Entity.ID == "" {
		t.Fatalf("create webhook: %d %s", status, raw)
	}
	return m.Entity.ID
}

// TestReference5_4Reaction: a reaction (reference 5.4: callbackData is echoed on
// "reactions") comes as message {id, reaction {messageId, emoji}} with context {replyToId}
// and the reacted message's callbackData, from Inbound, the control API and a reply rule.
func TestReference5_4Reaction(t *testing.T) {
	t.Parallel()
	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 11,
		Fates:   []Fate{{Numbers: []string{"+15550000001"}, Status: HookDelivered}},
		Replies: []Reply{{Numbers: []string{"+15550000002"}, Text: "❤️", Shape: ReplyReaction}}}})
	t.Cleanup(func() { s.Close() })
	ids := map[string]string{}
	for _, n := range []string{"+15550000001", "+15550000002"} {
		a := sendRaw(t, base, n)
		var res sendResult
		if a.status != 200 || json.Unmarshal(a.body, &res) != nil {
			t.Fatalf("send: %d %s", a.status, a.body)
		}
		ids[n] = res.ID
	}
	settled(t, s)
	if shape, err := s.Inbound("+15550000001", Reply{Text: "👍", Shape: ReplyReaction}); err != nil || shape != ReplyReaction {
		t.Fatalf("Inbound: %q %v", shape, err)
	}
	if shape, err := (Remote{BaseURL: base}).Inbound(context.Background(), "+15550000001", Reply{Text: "😮", Shape: ReplyReaction}); err != nil || shape != ReplyReaction {
		t.Fatalf("control inbound: %q %v", shape, err)
	}
	settled(t, s)
	emojis := map[string][]string{}
	for _, c := range inboundCalls(sink.snapshot()) {
		from := party(c.body, "sender")["id"].(string)
		msg := party(c.body, "message")
		r := party(msg, "reaction")
		if replyShapeOf(c.body) != ReplyReaction || msg["id"] == "" || msg["text"] != nil {
			t.Errorf("reaction body %v", c.body)
		}
		if r["messageId"] != ids[from] || party(c.body, "context")["replyToId"] != ids[from] {
			t.Errorf("reaction to %v / %v, want %s", r["messageId"], c.body["context"], ids[from])
		}
		if cb := party(c.body, "callbackData"); cb["r"] != from {
			t.Errorf("callbackData %v, want the reacted message's", c.body["callbackData"])
		}
		emojis[from] = append(emojis[from], r["emoji"].(string))
	}
	slices.Sort(emojis["+15550000001"])
	if !slices.Equal(emojis["+15550000001"], []string{"👍", "😮"}) || !slices.Equal(emojis["+15550000002"], []string{"❤️"}) {
		t.Errorf("reactions %v", emojis)
	}
	if st := s.WebhookStats(); st.Replies[ReplyReaction] != 3 {
		t.Errorf("stats %+v, want 3 reactions", st)
	}
}

// TestReference5_2Echo: a registration whose configuration has echo: true gets every
// outbound message echoed (reference 5.2), in the form of echoBody: no topic, the business
// as sender, the customer as recipient, message.id the send's id, the message sent (a
// session message's object, a known template's rendered body), the callbackData (2.1). A
// registration without echo, and the configured receivers, get no echo; an echo opens no
// window and is no inbound message.
func TestReference5_2Echo(t *testing.T) {
	t.Parallel()
	echoes, plain := &wireSink{}, &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Senders: []string{"+14155550100"},
		Templates: []Template{{Name: "order", Language: "en", Body: "Hi {{1}}, order {{2}} shipped."}, {Name: "promo", Language: "en"}},
		Webhooks:  WebhookConfig{URL: startSink(t, plain), Secret: "k", Seed: 12, Fates: []Fate{{Status: HookSent}}}})
	t.Cleanup(func() { s.Close() })
	register(t, base, `{"topic":"messages","address":"`+startSink(t, echoes)+`","configuration":{"echo":true}}`)

	var res sendResult
	a := sendTemplate(t, base, "+15550000001", "order", `[{"name":"body_1","value":"Ana"},{"name":"body_2","value":"#12"}]`)
	if a.status != 200 || json.Unmarshal(a.body, &res) != nil {
		t.Fatalf("template send: %d %s", a.status, a.body)
	}
	templateID := res.ID
	a = sendTemplate(t, base, "+15550000001", "promo", `[]`)
	if a.status != 200 || json.Unmarshal(a.body, &res) != nil {
		t.Fatalf("template send: %d %s", a.status, a.body)
	}
	unknownID := res.ID
	if err := s.OpenWindow("+15550000002", s.clock()); err != nil {
		t.Fatal(err)
	}
	a = postSession(t, base, `{"recipient":{"id":"+15550000002","channelType":"whatsapp"},"message":{"text":"Pick","replyButtonMessage":{"buttons":[{"id":"y","text":"Yes"}]}},"callbackData":{"s":1}}`)
	if a.status != 200 || json.Unmarshal(a.body, &res) != nil {
		t.Fatalf("session send: %d %s", a.status, a.body)
	}
	sessionID := res.ID
	settled(t, s)

	got := map[string]map[string]any{}
	for _, c := range echoes.snapshot() {
		if _, ok := c.body["statusUpdate"]; ok {
			t.Errorf("a status event went to the messages registration: %s", c.raw)
			continue
		}
		if _, ok := c.body["topic"]; ok {
			t.Errorf("echo with a topic: %s", c.raw)
		}
		msg := party(c.body, "message")
		got[msg["id"].(string)] = c.body
	}
	if len(got) != 3 {
		t.Fatalf("%d echoes, want 3: %v", len(got), got)
	}
	for id, want := range map[string]string{templateID: "+15550000001", unknownID: "+15550000001", sessionID: "+15550000002"} {
		b := got[id]
		if party(b, "sender")["id"] != "+14155550100" || party(b, "recipient")["id"] != want {
			t.Errorf("echo %s: sender %v recipient %v, want the business and %s", id, b["sender"], b["recipient"], want)
		}
	}
	if m := party(got[templateID], "message"); m["text"] != "Hi Ana, order #12 shipped." {
		t.Errorf("template echo message %v, want the rendered body", m)
	}
	if m := party(got[unknownID], "message"); len(m) != 1 {
		t.Errorf("echo of a template with no known body: message %v, want {id}", m)
	}
	if m := party(got[sessionID], "message"); m["text"] != "Pick" || party(m, "replyButtonMessage") == nil || party(got[sessionID], "callbackData")["s"] != 1.0 {
		t.Errorf("session echo %v", got[sessionID])
	}
	if cb := party(got[templateID], "callbackData"); cb["r"] != "+15550000001" {
		t.Errorf("template echo callbackData %v", got[templateID]["callbackData"])
	}
	for _, c := range plain.snapshot() {
		if _, ok := c.body["statusUpdate"]; !ok {
			t.Errorf("the configured receiver got an echo: %s", c.raw)
		}
	}
	if w := s.WindowOf("+15550000001"); !w.LastInbound.IsZero() || len(s.RepliesFrom("+15550000001")) != 0 {
		t.Errorf("an echo opened a window or counts as inbound: %+v", w)
	}
	if st := s.WebhookStats(); st.ByStatus["echo"] != 3 {
		t.Errorf("stats %+v, want 3 echoes", st)
	}

	// Without echo in its configuration a registration gets none.
	quiet := &wireSink{}
	register(t, base, `{"topic":"messages","address":"`+startSink(t, quiet)+`","configuration":{"echo":false}}`)
	sendRaw(t, base, "+15550000003")
	settled(t, s)
	if n := len(quiet.snapshot()); n != 0 {
		t.Errorf("registration without echo got %d calls", n)
	}
}

// TestReference5_1DeliveryFailureSpelling: the README's "delivery_failure" is sent when
// WebhookConfig.FailedStatus asks for it; "delivery_failed" stays the default (5.1).
func TestReference5_1DeliveryFailureSpelling(t *testing.T) {
	t.Parallel()
	for _, spelling := range []string{"", HookDeliveryFailed, HookDeliveryFailure} {
		sink := &wireSink{}
		s, base := newFake(t, Config{RateLimit: -1, Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 13,
			FailedStatus: spelling, Fates: []Fate{{Status: HookDeliveryFailed}}}})
		t.Cleanup(func() { s.Close() })
		sendRaw(t, base, customer)
		settled(t, s)
		byStatus := statusEvents(sink.snapshot())
		want := cmp.Or(spelling, HookDeliveryFailed)
		if len(byStatus[want]) != 1 || len(byStatus) != 2 {
			t.Errorf("spelling %q: events %v, want sent and %s", spelling, byStatus, want)
		}
		if e, ok := party(byStatus[want][0].body, "statusUpdate")["error"].(map[string]any); !ok || e["code"] != CodeUnspecified {
			t.Errorf("spelling %q: error %v", spelling, e)
		}
		if o := s.WebhookOutcomes(); len(o) != 1 || o[0].Planned != HookDeliveryFailed || o[0].Highest != HookDeliveryFailed {
			t.Errorf("spelling %q: outcomes %+v", spelling, o)
		}
	}
	if _, err := New(Config{BusinessID: "b", APIKey: "k", Webhooks: WebhookConfig{FailedStatus: "failed"}}); err == nil {
		t.Error("FailedStatus failed was taken")
	}
}

// TestReference5_2Filters: a registration's filters and channel types apply to the events
// sent to it (reference 5.2): with campaign_name "prod-*" only the delivery statuses of
// messages whose campaign matches go out (several filters on the field are alternatives);
// inbound messages, which carry no campaign, still go to a filtered messages registration;
// channelTypes without whatsapp keeps everything away.
func TestReference5_2Filters(t *testing.T) {
	t.Parallel()
	statuses, inbound := &wireSink{}, &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Webhooks: WebhookConfig{Secret: "k", Seed: 14, Fates: []Fate{{Status: HookSent}},
		Replies: []Reply{{Numbers: []string{"+15550000004"}, Text: "hi"}}}})
	t.Cleanup(func() { s.Close() })
	register(t, base, `{"topic":"delivery_status","address":"`+startSink(t, statuses)+`","configuration":{"filters":[`+
		`{"field":"campaign_name","expression":"prod-*"},{"field":"campaign_name","expression":"vip"}]}}`)
	register(t, base, `{"topic":"messages","address":"`+startSink(t, inbound)+`","configuration":{"filters":[{"field":"campaign_name","expression":"prod-*"}]}}`)
	send := func(number, campaign string) {
		t.Helper()
		extra := ""
		if campaign != "" {
			extra = `,"campaignName":"` + campaign + `"`
		}
		if a := postTo(t, base+templatePath(testBusiness), `{"number":"`+number+`","templateName":"promo","language":"en"`+extra+`}`); a.status != 200 {
			t.Fatalf("send: %d %s", a.status, a.body)
		}
	}
	send("+15550000001", "prod-spring")
	send("+15550000002", "test-spring")
	send("+15550000003", "")
	send("+15550000005", "vip")
	settled(t, s)
	if _, err := s.Inbound("+15550000004", Reply{Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	st := settled(t, s)
	var to []string
	for _, c := range statuses.snapshot() {
		to = append(to, party(c.body, "recipient")["id"].(string))
	}
	slices.Sort(to)
	if !slices.Equal(to, []string{"+15550000001", "+15550000005"}) {
		t.Errorf("filtered statuses went to %v, want the prod-* and vip campaigns only", to)
	}
	if n := len(inboundCalls(inbound.snapshot())); n != 1 {
		t.Errorf("%d inbound messages reached the filtered messages registration, want 1", n)
	}
	if st.Filtered != 2 {
		t.Errorf("stats %+v, want 2 events filtered", st)
	}

	// Channel types without whatsapp.
	register(t, base, `{"topic":"delivery_status","address":"`+startSink(t, statuses)+`","configuration":{"channelTypes":["sms"]}}`)
	before := len(statuses.snapshot())
	send("+15550000001", "prod-spring")
	if st := settled(t, s); len(statuses.snapshot()) != before || st.Filtered != 3 {
		t.Errorf("channelTypes sms: %d calls, stats %+v", len(statuses.snapshot())-before, st)
	}
}

func TestGlob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"prod-*", "prod-spring", true}, {"prod-*", "prod-", true}, {"prod-*", "test-prod-x", false}, {"prod-*", "", false},
		{"*", "", true}, {"*", "a/b", true}, {"a?c", "abc", true}, {"a?c", "ac", false}, {"*-2026", "spring-2026", true},
		{"a*b*c", "aXbYbZc", true}, {"a*b*c", "aXbYbZ", false}, {"vip", "vip", true}, {"vip", "VIP", false}, {"", "", true},
	} {
		if got := glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// TestListReplyForms: the list reply's shape is not in the reference (5.4); its guess
// (listResponse {id, text}) is the default, and ListReply picks another reading.
func TestListReplyForms(t *testing.T) {
	t.Parallel()
	rec := Received{Number: "+15550001234", MessageID: "01HZX3J5Q6R8S9T0V1W2X3Y4Z5", Message: TemplateMessage{CallbackData: json.RawMessage(`{"a":1}`)}}
	in := InboundRecord{ID: "01HZX3K7M8N9P0Q1R2S3T4V5W6", To: "+14155550100", Shape: ReplyList, Label: "Sneakers", Payload: "ROW_SNEAKERS"}
	for form, want := range map[string]string{
		"":                `"message":{"id":"01HZX3K7M8N9P0Q1R2S3T4V5W6"},"context":{"replyToId":"01HZX3J5Q6R8S9T0V1W2X3Y4Z5"},"listResponse":{"id":"ROW_SNEAKERS","text":"Sneakers"}`,
		ListReplyResponse: `"message":{"id":"01HZX3K7M8N9P0Q1R2S3T4V5W6"},"context":{"replyToId":"01HZX3J5Q6R8S9T0V1W2X3Y4Z5"},"listResponse":{"id":"ROW_SNEAKERS","text":"Sneakers"}`,
		ListReplyTitle:    `"message":{"id":"01HZX3K7M8N9P0Q1R2S3T4V5W6"},"context":{"replyToId":"01HZX3J5Q6R8S9T0V1W2X3Y4Z5"},"listResponse":{"id":"ROW_SNEAKERS","title":"Sneakers"}`,
		ListReplyButton:   `"message":{"id":"01HZX3K7M8N9P0Q1R2S3T4V5W6","text":"Sneakers"},"context":{"replyToId":"01HZX3J5Q6R8S9T0V1W2X3Y4Z5"},"buttonResponse":{"text":"Sneakers","payload":"ROW_SNEAKERS"}`,
	} {
		body := string(replyBody(rec, in, "", inboundForm{ListReply: form, Recipient: true}))
		prefix := `{"timestamp":"-62135596800","sender":{"id":"+15550001234","channelType":"whatsapp","name":null},"recipient":{"id":"+14155550100","channelType":"whatsapp","name":null},`
		if body != prefix+want+`,"callbackData":{"a":1}}` {
			t.Errorf("form %q:\n%s\nwant\n%s", form, body, prefix+want+`,"callbackData":{"a":1}}`)
		}
	}
	if _, err := New(Config{BusinessID: "b", APIKey: "k", Webhooks: WebhookConfig{ListReply: "rows"}}); err == nil {
		t.Error("ListReply rows was taken")
	}
}

// TestReference5_2FilterHoldsForDeletedTemplateFailures: the delivery_failed event that takes
// the place of an in-flight message's delivery when its template is deleted (reference 7)
// is about that message and its campaign, so a registration's campaign_name filter (5.2)
// applies to it as to the message's other events: a test-1 message's failure does not reach
// an address that asked for prod-* only, a prod-1 message's does.
func TestReference5_2FilterHoldsForDeletedTemplateFailures(t *testing.T) {
	t.Parallel()
	clock := newClock()
	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Clock: clock.Now, Templates: []Template{{Name: "promo", Language: "en"}},
		Webhooks: WebhookConfig{Secret: "k", Seed: 5, Delay: time.Hour}})
	t.Cleanup(func() { s.Close() })
	register(t, base, `{"topic":"delivery_status","address":"`+startSink(t, sink)+`","configuration":{"filters":[{"field":"campaign_name","expression":"prod-*"}]}}`)
	ids := map[string]string{}
	for number, campaign := range map[string]string{"+15550001201": "test-1", "+15550001202": "prod-1"} {
		a := postTo(t, base+templatePath(testBusiness), `{"number":"`+number+`","templateName":"promo","language":"en","campaignName":"`+campaign+`"}`)
		var res sendResult
		if a.status != 200 || json.Unmarshal(a.body, &res) != nil {
			t.Fatalf("send: %d %s", a.status, a.body)
		}
		ids[res.ID] = campaign
	}
	if status, _, raw := request(t, http.MethodDelete, base+"/v1/businesses/"+testBusiness+"/templates/promo", testKey, ""); status != 200 {
		t.Fatalf("delete: %d %s", status, raw)
	}
	clock.Add(10 * time.Hour)
	kick(s)
	st := settled(t, s)
	got := map[string][]string{}
	for _, c := range sink.snapshot() {
		su := party(c.body, "statusUpdate")
		got[ids[su["id"].(string)]] = append(got[ids[su["id"].(string)]], su["status"].(string))
	}
	if got["test-1"] != nil {
		t.Errorf("the filtered address got %v for the test-1 message, want nothing", got["test-1"])
	}
	if s := got["prod-1"]; !slices.Contains(s, HookSent) || !slices.Contains(s, HookDeliveryFailed) {
		t.Errorf("prod-1 message: %v, want sent and delivery_failed", s)
	}
	if st.Filtered != 2 {
		t.Errorf("webhook stats %+v, want the test-1 message's sent and delivery_failed filtered", st)
	}
}
