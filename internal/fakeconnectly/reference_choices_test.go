package fakeconnectly

import (
	"cmp"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStrict: the refusals the reference does not state are off by default and each
// Strict option turns one on.
func TestStrict(t *testing.T) {
	t.Parallel()
	tmpl := func(params string) string {
		return `{"number":"+15550001234","templateName":"promo","language":"en","parameters":` + params + `}`
	}
	session := func(recipient, sender string) string {
		return `{"recipient":` + recipient + sender + `,"message":{"text":"Hi"}}`
	}
	tests := []struct {
		name   string
		strict Strict
		kind   string
		body   string
		msg    string // the strict refusal's message
		code   string
	}{
		{"text new-line", Strict{TextWhitespace: true}, KindTemplate, tmpl(`[{"name":"body_1","value":"a\nb"}]`), "parameter body_1 contains a new-line character", CodeTemplateInputInvalid},
		{"text tab", Strict{TextWhitespace: true}, KindTemplate, tmpl(`[{"name":"header_text","value":"a\tb"}]`), "parameter header_text contains a tab character", CodeTemplateInputInvalid},
		{"text 5 spaces", Strict{TextWhitespace: true}, KindTemplate, tmpl(`[{"name":"body_2","value":"a     b"}]`), "parameter body_2 contains more than 4 consecutive spaces", CodeTemplateInputInvalid},
		{"http media", Strict{HTTPSMedia: true}, KindTemplate, tmpl(`[{"name":"header_image","value":"http://example.com/a.png"}]`),
			`parameter header_image must be an absolute https URL, got "http://example.com/a.png"`, CodeTemplateInputInvalid},
		{"duplicate key", Strict{DuplicateParams: true}, KindTemplate, tmpl(`[{"name":"body_1","value":"a"},{"name":"body_1","value":"b"}]`),
			"parameter body_1 is given more than once", CodeTemplateInputInvalid},
		{"recipient without channelType", Strict{ChannelType: true}, KindSession, session(`{"id":"`+customer+`"}`, ""),
			`recipient.channelType is required: "whatsapp"`, ""},
		{"sender without channelType", Strict{ChannelType: true}, KindSession,
			session(`{"id":"`+customer+`","channelType":"whatsapp"}`, `,"sender":{"id":"+14155550100"}`), `sender.channelType is required: "whatsapp"`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, strict := range []bool{false, true} {
				cfg := Config{RateLimit: -1}
				if strict {
					cfg.Strict = tc.strict
				}
				s, base := newFake(t, cfg)
				if err := s.OpenWindow(customer, time.Time{}); err != nil {
					t.Fatal(err)
				}
				path := templatePath(testBusiness)
				if tc.kind == KindSession {
					path = sessionPath(testBusiness)
				}
				a := postTo(t, base+path, tc.body)
				switch {
				case !strict && a.status != http.StatusOK:
					t.Errorf("by default: %d %s, want 200", a.status, a.body)
				case strict && a.status != http.StatusBadRequest:
					t.Errorf("strict: %d %s, want 400", a.status, a.body)
				case strict:
					checkStandardBody(t, a, tc.msg, TypeInvalidRequest, cmp.Or(tc.code, CodeUnspecified), tc.msg)
				}
			}
		})
	}
}

// TestReference3LocationFieldsLeftOpen: the reference's list of a location's fields is cut
// off (3: "latitude, longitude, …"), so url and other fields are taken and kept in the
// record; a documented name spelled another way is still refused; text with a location is
// two content types (3: "exactly one content type").
func TestReference3LocationFieldsLeftOpen(t *testing.T) {
	t.Parallel()
	s, base := newFake(t, Config{RateLimit: -1})
	if err := s.OpenWindow(customer, time.Time{}); err != nil {
		t.Fatal(err)
	}
	body := func(loc string) string {
		return `{"recipient":{"id":"` + customer + `","channelType":"whatsapp"},"message":{"location":` + loc + `}}`
	}
	a := postSession(t, base, body(`{"latitude":41.1,"longitude":-8.6,"name":"Shop","url":"https://maps.example.com/x","placeId":"p-1"}`))
	if a.status != 200 {
		t.Fatalf("location with url: %d %s", a.status, a.body)
	}
	recs := s.Received()
	loc := recs[len(recs)-1].Session.Message.Location
	if loc == nil || loc.URL != "https://maps.example.com/x" || string(loc.Extra["placeId"]) != `"p-1"` || *loc.Latitude != 41.1 {
		t.Fatalf("recorded location %+v", loc)
	}
	out, _ := json.Marshal(loc)
	if want := `{"address":"","latitude":41.1,"longitude":-8.6,"name":"Shop","placeId":"p-1","url":"https://maps.example.com/x"}`; string(out) != strings.Replace(want, `"address":"",`, "", 1) {
		t.Errorf("location written back as %s", out)
	}
	for loc, msg := range map[string]string{
		`{"Latitude":1,"longitude":2}`: `invalid request body: unknown field "Latitude"`,
		`{"longitude":2,"url":"x"}`:    "message.location needs latitude and longitude",
	} {
		a := postSession(t, base, body(loc))
		if a.status != 400 {
			t.Errorf("%s: %d %s", loc, a.status, a.body)
			continue
		}
		checkStandardBody(t, a, msg, TypeInvalidRequest, CodeUnspecified, msg)
	}
}

// TestReference2_1NumberPunctuation: "+1(604) 585 2331" is the reference's old example,
// "(inferred: the server normalises punctuation)" (2.1). By default the fake takes such a
// number as its clean E.164 form, on both endpoints, and knows the customer by it (record,
// rules, window, webhooks); NumbersRefused refuses it as badly formatted.
func TestReference2_1NumberPunctuation(t *testing.T) {
	t.Parallel()
	const clean, messy = "+16045852331", "+1(604) 585-2331"
	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Rules: []Rule{{Numbers: []string{clean}, Kind: KindSession, Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"}},
		Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 15, Fates: []Fate{{Status: HookSent}}}})
	t.Cleanup(func() { s.Close() })
	if a := sendRaw(t, base, messy); a.status != 200 {
		t.Fatalf("template send to %q: %d %s", messy, a.status, a.body)
	}
	if n := s.AcceptedCount(clean); n != 1 {
		t.Errorf("AcceptedCount(%s) = %d, want 1", clean, n)
	}
	settled(t, s)
	if calls := sink.snapshot(); len(calls) != 1 || party(calls[0].body, "recipient")["id"] != clean {
		t.Errorf("webhooks %v, want one to %s", calls, clean)
	}
	if err := s.OpenWindow(clean, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// The window and the rule see the clean number: the window is open, the rule applies.
	a := postSession(t, base, `{"recipient":{"id":"`+messy+`","channelType":"whatsapp"},"message":{"text":"Hi"}}`)
	if a.status != 400 || !strings.Contains(string(a.body), "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT") {
		t.Errorf("session send to %q: %d %s, want the rule for %s", messy, a.status, a.body, clean)
	}

	_, strict := newFake(t, Config{RateLimit: -1, NumberPunctuation: NumbersRefused})
	a = sendRaw(t, strict, messy)
	if a.status != 400 || !strings.Contains(string(a.body), CodePhoneNumberBadFormat) {
		t.Errorf("NumbersRefused: %d %s", a.status, a.body)
	}
	if a := sendRaw(t, strict, clean); a.status != 200 {
		t.Errorf("NumbersRefused, clean number: %d %s", a.status, a.body)
	}
	if _, err := New(Config{BusinessID: "b", APIKey: "k", NumberPunctuation: "strip"}); err == nil {
		t.Error("NumberPunctuation strip was taken")
	}
}

// TestReference3WindowCodeChoices: the reference gives two codes for a closed window and
// does not say which comes when (3, 3.1). The default goes by their meanings (never wrote:
// NO_CONVERSATION_INITIATION; expired: OUTSIDE_OF_ELIGIBILITY_WINDOW); WindowAnswerOutsideWindow
// and WindowAnswerNoConversation answer both with one of them.
func TestReference3WindowCodeChoices(t *testing.T) {
	t.Parallel()
	const stranger, lapsed = "+15550009998", "+15550009999"
	for answer, want := range map[string][2]string{
		"":                         {CodeNoConversation, CodeOutsideWindow},
		WindowAnswerCodes:          {CodeNoConversation, CodeOutsideWindow},
		WindowAnswerOutsideWindow:  {CodeOutsideWindow, CodeOutsideWindow},
		WindowAnswerNoConversation: {CodeNoConversation, CodeNoConversation},
	} {
		clock := newClock()
		s, base := newFake(t, Config{RateLimit: -1, Clock: clock.Now, WindowAnswer: answer})
		if err := s.OpenWindow(lapsed, clock.Now().Add(-25*time.Hour)); err != nil {
			t.Fatal(err)
		}
		for i, n := range []string{stranger, lapsed} {
			a := sessionSendTo(t, base, n)
			info := codeTable[want[i]]
			if a.status != 400 {
				t.Errorf("answer %q, %s: %d %s", answer, n, a.status, a.body)
				continue
			}
			checkStandardBody(t, a, info.Message, info.Type, want[i], info.Message)
		}
	}
}
