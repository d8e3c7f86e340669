package fakeconnectly

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// tapTemplates are a template with quick-reply buttons and one with a URL button only, as in
// configs/fake-templates.json: a customer can tap "Yes, show me" under the first, nothing
// under the second.
var tapTemplates = []Template{
	{Name: "spring_promo", Language: "en", Buttons: []TemplateButton{
		{Type: "URL", Text: "Shop now", URL: "https://shop.example.com/spring?code={{1}}"},
		{Type: "QUICK_REPLY", Text: "Yes, show me"}, {Type: "QUICK_REPLY", Text: "No thanks"}}},
	{Name: "order_status", Language: "en", Buttons: []TemplateButton{
		{Type: "URL", Text: "Track it", URL: "https://shop.example.com/orders/{{1}}"}}},
}

// startTaps starts a fake with templates and replies whose webhooks go to a sink.
func startTaps(t *testing.T, templates []Template, hooks WebhookConfig) (*Server, string) {
	t.Helper()
	hs := httptest.NewServer(&hookSink{secret: "k"})
	t.Cleanup(hs.Close)
	hooks.URL, hooks.Secret, hooks.Seed = hs.URL, "k", 7
	s := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1, Templates: templates, Webhooks: hooks})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return s, base
}

// sendNamedTemplate sends template name (language en) to number; it returns the message id.
func sendNamedTemplate(t *testing.T, base, number, name string) string {
	t.Helper()
	a := postTo(t, base+templatePath(testBusiness), `{"number":"`+number+`","templateName":"`+name+`","language":"en",`+
		`"parameters":[],"callbackData":{"to":"`+number+`"}}`)
	if a.status != 200 {
		t.Fatalf("template %s to %s: %d %s", name, number, a.status, a.body)
	}
	return messageID(t, a)
}

// sendSessionMessage sends the session message object message to number, opening its window
// first; it returns the message id.
func sendSessionMessage(t *testing.T, s *Server, base, number, message string) string {
	t.Helper()
	if err := s.OpenWindow(number, time.Now()); err != nil {
		t.Fatal(err)
	}
	a := postSession(t, base, `{"recipient":{"id":"`+number+`","channelType":"whatsapp"},"message":`+message+`,"callbackData":{"to":"`+number+`"}}`)
	if a.status != 200 {
		t.Fatalf("session message to %s: %d %s", number, a.status, a.body)
	}
	return messageID(t, a)
}

// inboundSummary is what a test checks of an inbound message.
type inboundSummary struct {
	Rule           int
	Shape          string
	Label, Payload string
	ReplyTo        string
}

func summarize(list []InboundRecord) []inboundSummary {
	out := []inboundSummary{}
	for _, in := range list {
		out = append(out, inboundSummary{Rule: in.Rule, Shape: in.Shape, Label: in.Label, Payload: in.Payload, ReplyTo: in.ReplyTo})
	}
	return out
}

// A reader taps only a quick-reply button the template shows (the fake's template store,
// reference 7): "Yes, show me" under spring_promo, never under order_status, whose reader
// falls to the next reply that can answer it (a typed text). A typed word rotated through
// the button and list shapes is typed under a template with no such button.
func TestTapsOnlyOnTheTemplatesButtons(t *testing.T) {
	t.Parallel()
	const promo1, promo2, order1, order2, stopper = "+15550300001", "+15550300002", "+15550300003", "+15550300004", "+15550300005"
	s, base := startTaps(t, tapTemplates, WebhookConfig{Replies: []Reply{
		{Numbers: []string{promo1, promo2, order1, order2}, Button: "Yes, show me", Payload: "SPRING_YES", Shape: ReplyRotate, Shapes: ButtonShapes},
		{Numbers: []string{order1, order2}, Text: "where is my order?"},
		{Numbers: []string{stopper}, Text: "STOP", Shape: ReplyRotate},
	}})
	ids := map[string]string{}
	for _, n := range []string{promo1, promo2} {
		ids[n] = sendNamedTemplate(t, base, n, "spring_promo")
	}
	for _, n := range []string{order1, order2} {
		ids[n] = sendNamedTemplate(t, base, n, "order_status")
	}
	var stops []string
	for range 5 {
		stops = append(stops, sendNamedTemplate(t, base, stopper, "order_status"))
	}
	waitIdle(t, s)

	for i, n := range []string{promo1, promo2} {
		got := summarize(s.RepliesFrom(n))
		want := []inboundSummary{{Rule: 0, Shape: ButtonShapes[i], Label: "Yes, show me", Payload: "SPRING_YES", ReplyTo: ids[n]}}
		if !slices.Equal(got, want) {
			t.Errorf("spring_promo reader %s: %+v, want %+v", n, got, want)
		}
	}
	for _, n := range []string{order1, order2} {
		got := summarize(s.RepliesFrom(n))
		want := []inboundSummary{{Rule: 1, Shape: ReplyText, Label: "where is my order?", Payload: "where is my order?", ReplyTo: ids[n]}}
		if !slices.Equal(got, want) {
			t.Errorf("order_status reader %s: %+v, want %+v (no tap on a button the template lacks)", n, got, want)
		}
	}
	got := summarize(s.RepliesFrom(stopper))
	if len(got) != len(stops) {
		t.Fatalf("STOP: %d replies to %d messages: %+v", len(got), len(stops), got)
	}
	for _, in := range got {
		if in.Shape != ReplyText || in.Label != "STOP" || !slices.Contains(stops, in.ReplyTo) {
			t.Errorf("STOP under order_status: %+v, want it typed", in)
		}
	}
	if st := s.WebhookStats(); st.Replies[ReplyList] != 0 || st.Replies[ReplyButtonContext] != 1 {
		t.Errorf("reply shapes %v: want one tap in the context form (spring_promo's second reader) and no list pick", st.Replies)
	}
}

// Under a session message a reader taps one of its reply buttons (reference 3.1:
// replyButtonMessage.buttons) or picks one of its list rows (listMessage rows), matched by
// text or by id, and the reply carries that button's or row's own text and id; a button a
// message does not show is never tapped, nor a list row taken for a button or the other way.
func TestTapsOnlyOnTheSessionMessagesChoices(t *testing.T) {
	t.Parallel()
	const (
		buttons     = `{"text":"Your code is ready","replyButtonMessage":{"buttons":[{"id":"use-now","text":"Use it now"},{"id":"later","text":"Maybe later"}]}}`
		list        = `{"text":"Pick a size","listMessage":{"button":{"text":"Choose"},"sections":[{"title":"Shoes","rows":[{"id":"row-1","text":"Sneakers"},{"id":"row-2","text":"Boots"}]}]}}`
		plain       = `{"text":"Here it is"}`
		byText      = "+15550310001"
		byID        = "+15550310002"
		rowByText   = "+15550310003"
		rowByID     = "+15550310004"
		noButton    = "+15550310005"
		rowAsButton = "+15550310006"
		buttonAsRow = "+15550310007"
		plainReader = "+15550310008"
	)
	s, base := startTaps(t, nil, WebhookConfig{Replies: []Reply{
		{Numbers: []string{byText}, Button: "Use it now", Shape: ReplyButtonContext},
		{Numbers: []string{byID}, Button: "Later!", Payload: "later", Shape: ReplyButtonTop},
		{Numbers: []string{rowByText}, Text: "Sneakers", Shape: ReplyList},
		{Numbers: []string{rowByID}, Text: "Tall boots", Payload: "row-2", Shape: ReplyList},
		{Numbers: []string{noButton}, Button: "Yes", Shape: ReplyButtonLegacy},
		{Numbers: []string{rowAsButton}, Button: "Sneakers", Payload: "row-1", Shape: ReplyButtonBare},
		{Numbers: []string{buttonAsRow}, Text: "Use it now", Payload: "use-now", Shape: ReplyList},
		{Numbers: []string{plainReader}, Button: "Use it now", Shapes: ButtonShapes},
		// Those whose message has no such choice fall here: a typed text answers anything.
		{Numbers: []string{noButton, plainReader}, Text: "hi"},
	}})
	ids := map[string]string{}
	for n, m := range map[string]string{byText: buttons, byID: buttons, rowByText: list, rowByID: list, noButton: buttons,
		rowAsButton: list, buttonAsRow: buttons, plainReader: plain} {
		ids[n] = sendSessionMessage(t, s, base, n, m)
	}
	waitIdle(t, s)

	for n, want := range map[string][]inboundSummary{
		byText:      {{Rule: 0, Shape: ReplyButtonContext, Label: "Use it now", Payload: "use-now", ReplyTo: ids[byText]}},
		byID:        {{Rule: 1, Shape: ReplyButtonTop, Label: "Maybe later", Payload: "later", ReplyTo: ids[byID]}},
		rowByText:   {{Rule: 2, Shape: ReplyList, Label: "Sneakers", Payload: "row-1", ReplyTo: ids[rowByText]}},
		rowByID:     {{Rule: 3, Shape: ReplyList, Label: "Boots", Payload: "row-2", ReplyTo: ids[rowByID]}},
		noButton:    {{Rule: 8, Shape: ReplyText, Label: "hi", Payload: "hi", ReplyTo: ids[noButton]}},
		rowAsButton: {},
		buttonAsRow: {},
		plainReader: {{Rule: 8, Shape: ReplyText, Label: "hi", Payload: "hi", ReplyTo: ids[plainReader]}},
	} {
		if got := summarize(s.RepliesFrom(n)); !slices.Equal(got, want) {
			t.Errorf("%s: %+v, want %+v", n, got, want)
		}
	}
}

// A template the fake has no definition of (no templates configured: any name is taken)
// shows no button the fake knows of, so by default no reader taps one, nor picks a list row
// (a template has none). A reply that names the template (Reply.Template) says it has the
// reply's button; WebhookConfig.TapUnknownTemplates takes any tap on such a template, as the
// fake did before it checked taps.
func TestTapsOnTemplatesTheFakeDoesNotKnow(t *testing.T) {
	t.Parallel()
	const plain, vouched, otherTemplate, row, typed = "+15550320001", "+15550320002", "+15550320003", "+15550320004", "+15550320005"
	replies := []Reply{
		{Numbers: []string{plain}, Button: "Yes", Payload: "YES"},
		{Numbers: []string{vouched, otherTemplate}, Template: "promo", Button: "Yes", Payload: "YES", Shape: ReplyButtonLegacy},
		{Numbers: []string{row}, Text: "Sneakers", Payload: "ROW_1", Shape: ReplyList},
		{Numbers: []string{typed}, Text: "price?"},
	}
	for _, anyTap := range []bool{false, true} {
		s, base := startTaps(t, nil, WebhookConfig{Replies: replies, TapUnknownTemplates: anyTap})
		ids := map[string]string{}
		for n, name := range map[string]string{plain: "promo", vouched: "promo", otherTemplate: "other", row: "promo", typed: "other"} {
			ids[n] = sendNamedTemplate(t, base, n, name)
		}
		waitIdle(t, s)
		want := map[string][]inboundSummary{
			plain:         {},
			vouched:       {{Rule: 1, Shape: ReplyButtonLegacy, Label: "Yes", Payload: "YES", ReplyTo: ids[vouched]}},
			otherTemplate: {},
			row:           {},
			typed:         {{Rule: 3, Shape: ReplyText, Label: "price?", Payload: "price?", ReplyTo: ids[typed]}},
		}
		if anyTap {
			want[plain] = []inboundSummary{{Rule: 0, Shape: ReplyButtonContext, Label: "Yes", Payload: "YES", ReplyTo: ids[plain]}}
			want[row] = []inboundSummary{{Rule: 2, Shape: ReplyList, Label: "Sneakers", Payload: "ROW_1", ReplyTo: ids[row]}}
		}
		for n, w := range want {
			if got := summarize(s.RepliesFrom(n)); !slices.Equal(got, w) {
				t.Errorf("tapUnknownTemplates %v, %s: %+v, want %+v", anyTap, n, got, w)
			}
		}
	}
	// A known template's buttons decide, whatever the reply names or the knob says.
	s, base := startTaps(t, tapTemplates, WebhookConfig{TapUnknownTemplates: true, Replies: []Reply{
		{Template: "order_status", Button: "Yes, show me"}}})
	sendNamedTemplate(t, base, plain, "order_status")
	waitIdle(t, s)
	if got := s.RepliesFrom(plain); len(got) != 0 {
		t.Errorf("tap under order_status, which the fake knows has no such button: %+v", got)
	}
}

// Reply.Template is read and written as "template", and a reply to session messages cannot
// name one.
func TestReplyTemplateField(t *testing.T) {
	t.Parallel()
	var back []Reply
	if err := json.Unmarshal([]byte(`[{"template": "promo", "button": "Yes"}]`), &back); err != nil || back[0].Template != "promo" {
		t.Fatalf("%+v, %v", back, err)
	}
	cfg, err := ParseConfig(strings.NewReader(`{"webhooks": {"tapUnknownTemplates": true}}`))
	if err != nil || !cfg.Webhooks.TapUnknownTemplates {
		t.Errorf("tapUnknownTemplates: %+v, %v", cfg.Webhooks, err)
	}
	if err := ValidateReplies([]Reply{{Kind: KindSession, Template: "promo", Text: "hi"}}); err == nil {
		t.Error("a reply to session messages naming a template is valid")
	}
	if err := ValidateReplies([]Reply{{Kind: KindTemplate, Template: "promo", Text: "hi"}}); err != nil {
		t.Error(err)
	}
}
