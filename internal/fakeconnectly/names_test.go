package fakeconnectly

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The bodies below are the reference's own examples, with their JSON names exactly as the
// reference writes them, so that a field the fake reads under another name fails here.

// referenceTemplateSend is the template send example of reference 2.1, verbatim, with the
// campaignName of its field table.
const referenceTemplateSend = `{
  "sender": "+14151111234",
  "number": "+16044441111",
  "templateName": "order_update",
  "language": "en",
  "parameters": [
    { "name": "header_image", "value": "https://example.com/banner.png" },
    { "name": "body_1", "value": "Ana" },
    { "name": "body_2", "value": "#12345" },
    { "name": "button_1_url", "value": "https://example.com/orders/12345" }
  ],
  "callbackData": { "campaign_id": "c-42", "recipient_id": "r-9001" },
  "campaignName": "test_campaign_2022-03-12"
}`

// referenceFAQSend is the FAQ's template send example quoted in reference 2.1.
const referenceFAQSend = `{"sender": "+14151111234", "number": "+16044441111", "templateName": "my_template", "language": "en", "parameters": []}`

// sendAnswer is the whole success answer of both send endpoints (reference 2.3 and 3).
var sendAnswer = regexp.MustCompile(`^\{"id":"[0-7][0-9A-HJKMNP-TV-Z]{25}"\}$`)

// TestTemplateSendNames sends the reference's template examples, checks that every field
// lands where the reference says, and that each name spelled any other way is refused as an
// unknown field, also the snake_case spelling the session endpoint reads.
func TestTemplateSendNames(t *testing.T) {
	t.Parallel()
	s, base := newFake(t, Config{RateLimit: -1})
	path := templatePath(testBusiness)

	want := TemplateMessage{
		Sender:       "+14151111234",
		Number:       "+16044441111",
		TemplateName: "order_update",
		Language:     "en",
		Parameters: []Parameter{
			{Name: "header_image", Value: "https://example.com/banner.png"},
			{Name: "body_1", Value: "Ana"},
			{Name: "body_2", Value: "#12345"},
			{Name: "button_1_url", Value: "https://example.com/orders/12345"},
		},
		CallbackData: json.RawMessage(`{ "campaign_id": "c-42", "recipient_id": "r-9001" }`),
		CampaignName: "test_campaign_2022-03-12",
	}
	faq := TemplateMessage{Sender: "+14151111234", Number: "+16044441111", TemplateName: "my_template", Language: "en", Parameters: []Parameter{}}
	for _, tc := range []struct {
		name, body string
		want       TemplateMessage
	}{{"2.1 example", referenceTemplateSend, want}, {"FAQ example", referenceFAQSend, faq}} {
		s.Reset()
		status, _, raw := post(t, base, path, testKey, tc.body)
		if status != 200 || !sendAnswer.Match(raw) {
			t.Fatalf("%s: answered %d %s, want 200 {\"id\": ...}", tc.name, status, raw)
		}
		if got := s.Received()[0].Message; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: decoded\n%+v\nwant\n%+v", tc.name, got, tc.want)
		}
	}

	for _, re := range []struct{ from, to string }{
		{`"sender"`, `"Sender"`},
		{`"number"`, `"Number"`},
		{`"templateName"`, `"TemplateName"`},
		{`"templateName"`, `"templatename"`},
		{`"templateName"`, `"template_name"`},
		{`"language"`, `"LANGUAGE"`},
		{`"parameters"`, `"Parameters"`},
		{`"name": "body_1"`, `"Name": "body_1"`},
		{`"value": "Ana"`, `"Value": "Ana"`},
		{`"callbackData"`, `"CallbackData"`},
		{`"callbackData"`, `"callback_data"`},
		{`"campaignName"`, `"campaignname"`},
		{`"campaignName"`, `"campaign_name"`},
	} {
		key := strings.Trim(strings.Fields(re.to)[0], `":`)
		body := strings.Replace(referenceTemplateSend, re.from, re.to, 1)
		status, _, raw := post(t, base, path, testKey, body)
		m := checkErrorBody(t, raw)
		if wantMsg := `invalid request body: unknown field "` + key + `"`; status != 400 || m["code"] != CodeTemplateInputInvalid || m["message"] != wantMsg {
			t.Errorf("%s for %s: answered %d %s, want 400 %s %q", re.to, re.from, status, raw, CodeTemplateInputInvalid, wantMsg)
		}
	}
}

// TestSessionSendNames sends one session message of every kind reference 3 and 3.1 show,
// each field named as there, checks what the fake read, and refuses the names spelled any
// other way than the camelCase or the snake_case of the reference (3.1: the GitBook spells
// list_message and reply_button_message).
func TestSessionSendNames(t *testing.T) {
	t.Parallel()
	s, base := newFake(t, Config{RateLimit: -1})
	const number = "+16315555500"
	if err := s.OpenWindow(number, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// envelope wraps a message object in the fields reference 3 lists around it.
	envelope := func(message string) string {
		return `{"sender": {"id": "+14151111234", "channelType": "whatsapp"},
			"recipient": {"id": "` + number + `", "channelType": "whatsapp", "name": "Customer"},
			"message": ` + message + `,
			"callbackData": {"campaign_id": "c-42"}, "campaignName": "spring"}`
	}
	f := func(v float64) *float64 { return &v }
	head, foot := &TextObject{Text: "Order A-1001"}, &TextObject{Text: "Herald"}
	cases := []struct {
		name, message string
		want          SessionContent
	}{
		{"text", `{"id": "01FPW47QF69Y5JZH24605VAKQB", "text": "Your parcel is at the door"}`,
			SessionContent{ID: "01FPW47QF69Y5JZH24605VAKQB", Text: "Your parcel is at the door"}},
		{"attachment", `{"attachments": [{"type": "document", "url": "https://example.com/invoice.pdf", "caption": "Invoice", "filename": "invoice.pdf"}], "text": "Here it is"}`,
			SessionContent{Text: "Here it is", Attachments: []Attachment{{Type: "document", URL: "https://example.com/invoice.pdf", Caption: "Invoice", Filename: "invoice.pdf"}}}},
		{"location", `{"location": {"latitude": 41.1496, "longitude": -8.611, "name": "Shop", "address": "Rua A 1"}}`,
			SessionContent{Location: &Location{Latitude: f(41.1496), Longitude: f(-8.611), Name: "Shop", Address: "Rua A 1"}}},
		{"reply buttons", `{"text": "Still want it?", "replyButtonMessage": {"buttons": [{"id": "1", "text": "Yes"}], "header": {"text": "Order A-1001"}, "footer": {"text": "Herald"}}}`,
			SessionContent{Text: "Still want it?", ReplyButtonMessage: &ReplyButtonMessage{Buttons: []ReplyButton{{ID: "1", Text: "Yes"}}, Header: head, Footer: foot}}},
		{"list", `{"text": "Pick a size", "listMessage": {"button": {"text": "Choose"}, "sections": [{"title": "Sizes", "rows": [{"id": "1", "text": "Small", "description": "S"}]}], "header": {"text": "Order A-1001"}, "footer": {"text": "Herald"}}}`,
			SessionContent{Text: "Pick a size", ListMessage: &ListMessage{Button: &TextObject{Text: "Choose"},
				Sections: []ListSection{{Title: "Sizes", Rows: []ListRow{{ID: "1", Text: "Small", Description: "S"}}}}, Header: head, Footer: foot}}},
		{"list, GitBook spelling", `{"text": "Pick a size", "list_message": {"button": {"text": "Choose"}, "sections": [{"rows": [{"id": "1", "text": "Small"}]}]}}`,
			SessionContent{Text: "Pick a size", ListMessage: &ListMessage{Button: &TextObject{Text: "Choose"}, Sections: []ListSection{{Rows: []ListRow{{ID: "1", Text: "Small"}}}}}}},
		{"single product", `{"singleProductMessage": {"catalogId": "c1", "productId": "p1"}}`,
			SessionContent{SingleProductMessage: json.RawMessage(`{"catalogId":"c1","productId":"p1"}`)}},
	}
	for _, tc := range cases {
		s.Reset()
		status, _, raw := post(t, base, sessionPath(testBusiness), testKey, envelope(tc.message))
		if status != 200 || !sendAnswer.Match(raw) {
			t.Errorf("%s: answered %d %s, want 200 {\"id\": ...}", tc.name, status, raw)
			continue
		}
		want := SessionMessage{
			Sender:       &SessionSender{ID: "+14151111234", ChannelType: "whatsapp"},
			Recipient:    SessionRecipient{ID: number, ChannelType: "whatsapp", Name: "Customer"},
			Message:      tc.want,
			CallbackData: json.RawMessage(`{"campaign_id":"c-42"}`),
			CampaignName: "spring",
		}
		rec := s.Received()[0]
		if rec.Session == nil || !reflect.DeepEqual(*rec.Session, want) {
			t.Errorf("%s: decoded\n%+v\nwant\n%+v", tc.name, rec.Session, want)
		}
		shared := TemplateMessage{Number: number, Sender: "+14151111234", CallbackData: want.CallbackData, CampaignName: "spring"}
		if !reflect.DeepEqual(rec.Message, shared) {
			t.Errorf("%s: recorded %+v, want %+v", tc.name, rec.Message, shared)
		}
	}

	buttons := envelope(cases[3].message)
	list := envelope(cases[4].message)
	for _, tc := range []struct{ body, from, to string }{
		{buttons, `"recipient"`, `"Recipient"`},
		{buttons, `"channelType": "whatsapp", "name"`, `"ChannelType": "whatsapp", "name"`},
		{buttons, `"name": "Customer"`, `"Name": "Customer"`},
		{buttons, `"message"`, `"Message"`},
		{buttons, `"replyButtonMessage"`, `"replybuttonmessage"`},
		{buttons, `"buttons"`, `"Buttons"`},
		{buttons, `"header"`, `"Header"`},
		{buttons, `"callbackData"`, `"callbackdata"`},
		{buttons, `"campaignName"`, `"CampaignName"`},
		{list, `"rows"`, `"Rows"`},
		{list, `"description"`, `"Description"`},
		{envelope(cases[1].message), `"url"`, `"URL"`},
		{envelope(cases[2].message), `"latitude"`, `"Latitude"`},
	} {
		key := strings.Trim(tc.to, `"`)
		key, _, _ = strings.Cut(key, `"`)
		status, _, raw := post(t, base, sessionPath(testBusiness), testKey, strings.Replace(tc.body, tc.from, tc.to, 1))
		m := checkErrorBody(t, raw)
		if wantMsg := `invalid request body: unknown field "` + key + `"`; status != 400 || m["code"] != CodeUnspecified || m["message"] != wantMsg {
			t.Errorf("%s for %s: answered %d %s, want 400 %q", tc.to, tc.from, status, raw, wantMsg)
		}
	}
}
