package connectly_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/heraldmsg/herald/internal/connectly"
)

// sessionMsg is a minimal valid text message.
func sessionMsg() connectly.SessionMessage {
	return connectly.SessionMessage{To: "+16044441111", Content: connectly.SessionContent{Text: "Hello Ana"}}
}

// threeButtons is a valid reply-button content at Meta's limits.
func threeButtons() *connectly.ReplyButtons {
	return &connectly.ReplyButtons{Buttons: []connectly.Button{{ID: "yes", Text: "Yes"}, {ID: "no", Text: "No"}, {ID: "later", Text: "Ask me later"}}}
}

// twoSections is a valid list of two titled sections.
func twoSections() *connectly.List {
	return &connectly.List{
		Button: "Choose a slot",
		Sections: []connectly.Section{
			{Title: "Morning", Rows: []connectly.Row{{ID: "m9", Text: "09:00", Description: "Front desk"}, {ID: "m11", Text: "11:00"}}},
			{Title: "Afternoon", Rows: []connectly.Row{{ID: "a15", Text: "15:00", Description: "Room 2"}}},
		},
	}
}

// sessionCases are one message per content kind and per envelope option; each has a golden
// request body in testdata/session/<name>.json.
var sessionCases = []struct {
	name  string
	bsuid connectly.BSUIDField
	msg   func(m *connectly.SessionMessage)
}{
	{"text", "", func(m *connectly.SessionMessage) {
		// Non-ASCII and HTML-sensitive characters go out as written.
		m.Content.Text = "Olá Ana! Your order <#12345> & receipt: ✓"
	}},
	{"attachment_image", "", func(m *connectly.SessionMessage) {
		m.Content = connectly.SessionContent{Attachment: &connectly.Attachment{Type: "image", URL: "https://example.com/banner.png?size=large&v=2", Caption: "Spring sale"}}
	}},
	{"attachment_video", "", func(m *connectly.SessionMessage) {
		m.Content = connectly.SessionContent{Attachment: &connectly.Attachment{Type: "video", URL: "https://example.com/clip.mp4"}}
	}},
	{"attachment_audio", "", func(m *connectly.SessionMessage) {
		m.Content = connectly.SessionContent{Attachment: &connectly.Attachment{Type: "audio", URL: "https://example.com/note.ogg"}}
	}},
	{"attachment_document", "", func(m *connectly.SessionMessage) {
		m.Content = connectly.SessionContent{Attachment: &connectly.Attachment{Type: "document", URL: "https://example.com/invoice-12345.pdf", Caption: "Your invoice", Filename: "invoice-12345.pdf"}}
	}},
	{"location", "", func(m *connectly.SessionMessage) {
		m.Content = connectly.SessionContent{Location: &connectly.Location{Latitude: coord(37.7749), Longitude: coord(-122.4194), Name: "Herald HQ", Address: "1 Market St, San Francisco"}}
	}},
	{"location_origin", "", func(m *connectly.SessionMessage) {
		// 0,0 written out is a place: both coordinates are sent.
		m.Content = connectly.SessionContent{Location: &connectly.Location{Latitude: coord(0), Longitude: coord(0)}}
	}},
	{"reply_buttons", "", func(m *connectly.SessionMessage) {
		rb := threeButtons()
		rb.Header, rb.Footer = "Order #12345", "Reply STOP to opt out"
		m.Content = connectly.SessionContent{Text: "Did your order arrive?", ReplyButtons: rb}
	}},
	{"reply_buttons_minimal", "", func(m *connectly.SessionMessage) {
		m.Content = connectly.SessionContent{Text: "Confirm?", ReplyButtons: &connectly.ReplyButtons{Buttons: []connectly.Button{{ID: "1", Text: "Yes"}}}}
	}},
	{"list", "", func(m *connectly.SessionMessage) {
		l := twoSections()
		l.Header, l.Footer = "Book a visit", "Times are local"
		m.Content = connectly.SessionContent{Text: "Pick a time that suits you.", List: l}
	}},
	{"list_minimal", "", func(m *connectly.SessionMessage) {
		m.Content = connectly.SessionContent{Text: "Pick one", List: &connectly.List{Button: "Open", Sections: []connectly.Section{{Rows: []connectly.Row{{ID: "1", Text: "Only choice"}}}}}}
	}},
	{"single_product", "", func(m *connectly.SessionMessage) {
		m.Content = connectly.SessionContent{Text: "Back in stock", SingleProduct: connectly.RawObject(`{"catalogId": "cat-1", "productRetailerId": "sku-42"}`)}
	}},
	{"single_product_no_text", "", func(m *connectly.SessionMessage) {
		m.Content = connectly.SessionContent{SingleProduct: connectly.RawObject(`{"catalogId":"cat-1","productRetailerId":"sku-42"}`)}
	}},
	{"multi_product", "", func(m *connectly.SessionMessage) {
		m.Content = connectly.SessionContent{Text: "Our picks for you", MultiProduct: connectly.RawObject(`{"catalogId":"cat-1","sections":[{"title":"Shoes","productItems":[{"productRetailerId":"sku-1"},{"productRetailerId":"sku-2"}]}]}`)}
	}},
	{"raw_attachment_with_text", "", func(m *connectly.SessionMessage) {
		// Reference 3.1 shows text beside an attachment; the typed kind refuses it, raw sends it.
		m.Content = connectly.SessionContent{Raw: connectly.RawObject(`{"text": "Your <receipt> & more", "attachments": [{"type": "document", "url": "https://example.com/r.pdf", "filename": "r.pdf"}]}`)}
	}},
	{"raw_snake_case", "", func(m *connectly.SessionMessage) {
		// The GitBook's spelling goes out as written, numbers with their own text.
		m.Content = connectly.SessionContent{Raw: connectly.RawObject(`{"text":"Pick","list_message":{"button":{"text":"Open"},"sections":[{"rows":[{"id":"1","text":"One"}]}],"x":1.50}}`)}
	}},
	{"raw_with_envelope_id", "", func(m *connectly.SessionMessage) {
		m.ID = "01FPW47QF69Y5JZH24605VAKQB"
		m.Content = connectly.SessionContent{Raw: connectly.RawObject(`{"text":"Hi"}`)}
	}},
	{"bsuid_in_id", "", func(m *connectly.SessionMessage) {
		m.To = "bsuid:US.13491208655302741918"
	}},
	{"bsuid_in_user_id", connectly.BSUIDInUserID, func(m *connectly.SessionMessage) {
		m.To = "bsuid:US.13491208655302741918"
	}},
	{"phone_with_user_id_option", connectly.BSUIDInUserID, func(m *connectly.SessionMessage) {
		// The option moves BSUIDs only; a phone number stays in recipient.id.
	}},
	{"envelope", "", func(m *connectly.SessionMessage) {
		m.Name = "Ana Souza"
		m.Sender = "+14151111234"
		m.ID = "01FPW47QF69Y5JZH24605VAKQB"
		m.CallbackData = json.RawMessage(`{ "run": "r-7", "recipient": "+16044441111" }`)
		m.CampaignName = "follow-up_2026-03-12"
	}},
}

// TestSendSessionRequestGolden sends one message of every kind through a real HTTP round trip
// and compares the request with the golden files: method, path, headers and the exact body
// (the golden file, compacted, byte for byte).
func TestSendSessionRequestGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range sessionCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			client := newClient(t, connectly.ClientConfig{BaseURL: b.srv.URL, SessionBSUIDField: tc.bsuid, SendCampaignName: true})
			msg := sessionMsg()
			tc.msg(&msg)

			res, err := client.SendSession(context.Background(), msg)
			if err != nil {
				t.Fatalf("SendSession: %v", err)
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
			if want := "/v1/businesses/" + testBusiness + "/send/messages"; req.EscapedPath != want {
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
			checkGolden(t, "session/"+tc.name+".json", req.Body)
			// The golden file is indented for reading; the wire is compact. Together with the
			// comparison above this pins every byte.
			var compact bytes.Buffer
			if err := json.Compact(&compact, req.Body); err != nil || !bytes.Equal(compact.Bytes(), req.Body) {
				t.Errorf("body is not compact JSON: %s", req.Body)
			}
			// What plan shows is what goes out.
			enc, err := client.EncodeSession(msg)
			if err != nil || !bytes.Equal(enc, req.Body) {
				t.Errorf("EncodeSession = %s, %v; sent %s", enc, err, req.Body)
			}
		})
	}
}

func TestSessionPathEscapesBusinessID(t *testing.T) {
	t.Parallel()
	if got, want := connectly.SessionPath("a/b c"), "/v1/businesses/a%2Fb%20c/send/messages"; got != want {
		t.Errorf("SessionPath = %q, want %q", got, want)
	}
}

func TestSendSessionAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"OK", http.StatusOK, `{"id":"` + testID + `"}`},
		{"Created", http.StatusCreated, `{"id":"` + testID + `"}`},
		{"UnknownFieldsIgnored", http.StatusOK, `{"extra":[1],"id":"` + testID + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, replyJSON(tc.status, tc.body))
			res, err := b.client.SendSession(context.Background(), sessionMsg())
			if err != nil || res.ID != testID {
				t.Fatalf("SendSession = %+v, %v; want id %s", res, err, testID)
			}
		})
	}

	// A success without an id may have gone out: maybe sent, like a template send.
	b := setup(t, replyJSON(http.StatusOK, `{}`))
	_, err := b.client.SendSession(context.Background(), sessionMsg())
	var te *connectly.TransportError
	if !errors.As(err, &te) || !te.Written {
		t.Fatalf("err = %#v, want a written *TransportError", err)
	}
	if d := defaultTable(t).Decide(err); d.Outcome != connectly.OutcomeMaybeSent || d.WindowClosed() {
		t.Errorf("Decide = %+v, want maybe-sent, window not closed", d)
	}
}

// Every answer that says the 24-hour window is closed reads as window-closed: a refusal, not a
// retry, whatever status it comes with, and the client sends it once.
func TestSendSessionWindowClosed(t *testing.T) {
	t.Parallel()
	tbl := defaultTable(t)
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"OutsideWindow", 400, `{"message":"Failed to send a message because more than 24 hours have passed since the customer last replied","type":"ERROR_TYPE_DEADLINE_EXCEEDED","code":"ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW","cntTraceId":"1"}`},
		// A gateway may map DEADLINE_EXCEEDED to 504, which alone would read as maybe sent.
		{"OutsideWindowAt504", 504, `{"type":"ERROR_TYPE_DEADLINE_EXCEEDED","code":"ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"}`},
		{"DeadlineTypeOnly", 504, `{"type":"ERROR_TYPE_DEADLINE_EXCEEDED","code":"ERROR_CODE_UNSPECIFIED"}`},
		{"NoConversationInitiation", 400, `{"type":"ERROR_TYPE_INVALID_REQUEST","code":"ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION"}`},
		{"FailedPrecondition", 400, `{"message":"cannot send now","type":"ERROR_TYPE_FAILED_PRECONDITION","code":"ERROR_CODE_UNSPECIFIED"}`},
		{"FailedPreconditionAt500", 500, `{"type":"ERROR_TYPE_FAILED_PRECONDITION"}`},
		{"FailedPreconditionAt503", 503, `{"type":"ERROR_TYPE_FAILED_PRECONDITION"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, replyJSON(tc.status, tc.body))
			_, err := b.client.SendSession(context.Background(), sessionMsg())
			if err == nil {
				t.Fatal("SendSession succeeded")
			}
			if !connectly.IsWindowClosed(err) {
				t.Errorf("IsWindowClosed(%v) = false", err)
			}
			d := tbl.Decide(err)
			if !d.WindowClosed() || d.Outcome != connectly.OutcomeRefused || d.Class != connectly.ClassPermanent {
				t.Errorf("Decide = %+v, want window-closed, refused, permanent", d)
			}
			if d.Class == connectly.ClassTransient || d.Class == connectly.ClassThrottle {
				t.Errorf("class %v would retry a closed window", d.Class)
			}
			if n := len(b.fake.Requests()); n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
		})
	}
}

// Answers that do not say the window is closed never read as window-closed.
func TestSendSessionNotWindowClosed(t *testing.T) {
	t.Parallel()
	tbl := defaultTable(t)
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   connectly.Outcome
	}{
		{"Unspecified500", 500, `{"type":"ERROR_TYPE_UNSPECIFIED","code":"ERROR_CODE_UNSPECIFIED"}`, connectly.OutcomeMaybeSent},
		{"Throttle", 429, `{"type":"ERROR_TYPE_DEADLINE_EXCEEDED","code":"ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"}`, connectly.OutcomeNotTaken},
		{"TextEmpty", 400, `{"type":"ERROR_TYPE_INVALID_REQUEST","code":"ERROR_CODE_MESSAGE_TEXT_EMPTY"}`, connectly.OutcomeRefused},
		{"TooManyAttachments", 400, `{"code":"ERROR_CODE_MESSAGE_ATTACHMENTS_NUMBER_INVALID"}`, connectly.OutcomeRefused},
		{"Bare400", 400, ``, connectly.OutcomeRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, replyJSON(tc.status, tc.body))
			_, err := b.client.SendSession(context.Background(), sessionMsg())
			d := tbl.Decide(err)
			if connectly.IsWindowClosed(err) || d.WindowClosed() || d.Outcome != tc.want {
				t.Errorf("err %v: Decide = %+v, IsWindowClosed = %v; want %v, not window-closed", err, d, connectly.IsWindowClosed(err), tc.want)
			}
		})
	}
	if connectly.IsWindowClosed(nil) || connectly.IsWindowClosed(errors.New("other")) {
		t.Error("IsWindowClosed(nil or a plain error) = true")
	}
}

func TestSessionBSUIDFieldConfig(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]connectly.BSUIDField{"": connectly.BSUIDInID, "id": connectly.BSUIDInID, "userId": connectly.BSUIDInUserID, "USERID": connectly.BSUIDInUserID} {
		if got, err := connectly.ParseBSUIDField(in); err != nil || got != want {
			t.Errorf("ParseBSUIDField(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := connectly.ParseBSUIDField("user_id"); err == nil {
		t.Error("ParseBSUIDField(user_id) succeeded")
	}
	if _, err := connectly.NewClient(connectly.ClientConfig{BusinessID: testBusiness, APIKey: testKey, SessionBSUIDField: "phone"}); err == nil || !strings.Contains(err.Error(), "phone") {
		t.Errorf("NewClient with SessionBSUIDField phone: err = %v", err)
	}
	if _, err := (connectly.Wire{BSUIDField: "phone"}).EncodeSession(sessionMsg()); err == nil {
		t.Error("EncodeSession with BSUID field phone succeeded")
	}
}

// n returns s repeated to exactly n characters (s is one character).
func n(s string, count int) string { return strings.Repeat(s, count) }

func buttons(count int) []connectly.Button {
	bs := make([]connectly.Button, count)
	for i := range bs {
		bs[i] = connectly.Button{ID: "b" + string(rune('a'+i)), Text: "Choice " + string(rune('A'+i))}
	}
	return bs
}

func rows(prefix string, count int) []connectly.Row {
	rs := make([]connectly.Row, count)
	for i := range rs {
		rs[i] = connectly.Row{ID: prefix + string(rune('a'+i)), Text: "Row " + string(rune('A'+i))}
	}
	return rs
}

// TestSessionValidate checks every limit on both sides: at the limit passes, one over fails
// with a problem naming the field; nothing invalid reaches the server.
func TestSessionValidate(t *testing.T) {
	t.Parallel()
	text := func(s string) func(*connectly.SessionMessage) {
		return func(m *connectly.SessionMessage) { m.Content = connectly.SessionContent{Text: s} }
	}
	attach := func(a connectly.Attachment) func(*connectly.SessionMessage) {
		return func(m *connectly.SessionMessage) { m.Content = connectly.SessionContent{Attachment: &a} }
	}
	loc := func(l connectly.Location) func(*connectly.SessionMessage) {
		return func(m *connectly.SessionMessage) { m.Content = connectly.SessionContent{Location: &l} }
	}
	rb := func(body string, f func(*connectly.ReplyButtons)) func(*connectly.SessionMessage) {
		return func(m *connectly.SessionMessage) {
			r := threeButtons()
			f(r)
			m.Content = connectly.SessionContent{Text: body, ReplyButtons: r}
		}
	}
	list := func(body string, f func(*connectly.List)) func(*connectly.SessionMessage) {
		return func(m *connectly.SessionMessage) {
			l := twoSections()
			f(l)
			m.Content = connectly.SessionContent{Text: body, List: l}
		}
	}
	noop := func(*connectly.List) {}
	img := connectly.Attachment{Type: "image", URL: "https://example.com/a.png"}
	withAttach := func(f func(*connectly.Attachment)) connectly.Attachment { a := img; f(&a); return a }

	tests := []struct {
		name    string
		msg     func(*connectly.SessionMessage)
		field   string // "" when the message is valid
		problem string // substring of the problem
	}{
		// Envelope.
		{"ToMissing", func(m *connectly.SessionMessage) { m.To = "" }, "to", "required"},
		{"ToNotE164", func(m *connectly.SessionMessage) { m.To = "16044441111" }, "to", "not an E.164"},
		{"ToPunctuated", func(m *connectly.SessionMessage) { m.To = "+1 (604) 444-1111" }, "to", "not an E.164"},
		{"ToBadBSUID", func(m *connectly.SessionMessage) { m.To = "bsuid:us-1" }, "to", "not a BSUID"},
		{"ToBSUID", func(m *connectly.SessionMessage) { m.To = "bsuid:BR.abc123" }, "", ""},
		{"SenderNotE164", func(m *connectly.SessionMessage) { m.Sender = "main" }, "sender", "not an E.164"},
		{"NameInvalidUTF8", func(m *connectly.SessionMessage) { m.Name = "A\xffna" }, "name", "UTF-8"},
		{"IDBlank", func(m *connectly.SessionMessage) { m.ID = "  " }, "id", "blank"},
		{"CallbackAtLimit", func(m *connectly.SessionMessage) {
			m.CallbackData = json.RawMessage(`"` + n("<", connectly.MaxCallbackData-2) + `"`)
		}, "", ""},
		{"CallbackOverLimit", func(m *connectly.SessionMessage) {
			m.CallbackData = json.RawMessage(`"` + n("x", connectly.MaxCallbackData-1) + `"`)
		}, "callback_data", "1025 bytes, at most 1024"},
		// Whitespace does not go out (the encoder compacts), so it does not count.
		{"CallbackSpacesDoNotCount", func(m *connectly.SessionMessage) {
			m.CallbackData = json.RawMessage(`{"a":` + n(" ", 2000) + `1}`)
		}, "", ""},
		{"CallbackInvalid", func(m *connectly.SessionMessage) { m.CallbackData = json.RawMessage(`{"a":`) }, "callback_data", "not valid JSON"},

		// Kinds.
		{"NoContent", text(""), "text", "required"},
		{"BlankText", text(" \n\t"), "text", "required"},
		{"TwoKinds", func(m *connectly.SessionMessage) {
			m.Content = connectly.SessionContent{Attachment: &img, Location: &connectly.Location{}}
		}, "location", "exactly one kind, this one also sets attachment, location"},
		{"ThreeKinds", func(m *connectly.SessionMessage) {
			m.Content = connectly.SessionContent{Text: "x", ReplyButtons: threeButtons(), List: twoSections(), MultiProduct: connectly.RawObject(`{}`)}
		}, "list", "reply_buttons, list, multi_product"},

		// Text.
		{"TextAtLimit", text(n("é", connectly.MaxSessionText)), "", ""},
		{"TextOverLimit", text(n("a", connectly.MaxSessionText+1)), "text", "4097 characters, at most 4096"},
		{"TextInvalidUTF8", text("caf\xe9"), "text", "UTF-8"},

		// Attachments.
		{"AttachmentTypeMissing", attach(withAttach(func(a *connectly.Attachment) { a.Type = "" })), "attachment.type", "required"},
		{"AttachmentTypeUnknown", attach(withAttach(func(a *connectly.Attachment) { a.Type = "sticker" })), "attachment.type", `"sticker"`},
		{"AttachmentTypeCase", attach(withAttach(func(a *connectly.Attachment) { a.Type = "Image" })), "attachment.type", `"Image"`},
		{"AttachmentURLMissing", attach(withAttach(func(a *connectly.Attachment) { a.URL = "" })), "attachment.url", "required"},
		{"AttachmentURLRelative", attach(withAttach(func(a *connectly.Attachment) { a.URL = "/a.png" })), "attachment.url", "absolute"},
		{"AttachmentURLFTP", attach(withAttach(func(a *connectly.Attachment) { a.URL = "ftp://example.com/a.png" })), "attachment.url", "absolute"},
		{"CaptionAtLimit", attach(withAttach(func(a *connectly.Attachment) { a.Caption = n("ü", connectly.MaxCaption) })), "", ""},
		{"CaptionOverLimit", attach(withAttach(func(a *connectly.Attachment) { a.Caption = n("x", connectly.MaxCaption+1) })), "attachment.caption", "1025 characters, at most 1024"},
		{"CaptionOnAudio", attach(connectly.Attachment{Type: "audio", URL: "https://example.com/a.ogg", Caption: "listen"}), "attachment.caption", "not allowed on audio"},
		{"FilenameOnImage", attach(withAttach(func(a *connectly.Attachment) { a.Filename = "a.png" })), "attachment.filename", "documents only"},
		{"FilenameOnDocument", attach(connectly.Attachment{Type: "document", URL: "https://example.com/a.pdf", Filename: "a.pdf"}), "", ""},
		{"TextWithAttachment", func(m *connectly.SessionMessage) {
			m.Content = connectly.SessionContent{Text: "look", Attachment: &img}
		}, "text", "use attachment.caption"},

		// Location.
		{"LocationCorners", loc(connectly.Location{Latitude: coord(-90), Longitude: coord(180)}), "", ""},
		{"LatitudeOver", loc(connectly.Location{Latitude: coord(90.5), Longitude: coord(0)}), "location.latitude", "-90 to 90"},
		{"LongitudeUnder", loc(connectly.Location{Latitude: coord(0), Longitude: coord(-180.01)}), "location.longitude", "-180 to 180"},
		{"LatitudeNaN", loc(connectly.Location{Latitude: coord(math.NaN()), Longitude: coord(0)}), "location.latitude", "NaN"},
		{"LongitudeInf", loc(connectly.Location{Latitude: coord(0), Longitude: coord(math.Inf(1))}), "location.longitude", "-180 to 180"},
		// A missing coordinate is not 0: the pin would be sent to 0,0.
		{"LatitudeMissing", loc(connectly.Location{Longitude: coord(-8.61), Name: "Shop"}), "location.latitude", "required"},
		{"LongitudeMissing", loc(connectly.Location{Latitude: coord(41.15)}), "location.longitude", "required"},
		{"CoordinatesMissing", loc(connectly.Location{Name: "Shop"}), "location.latitude", "required"},
		{"TextWithLocation", func(m *connectly.SessionMessage) {
			m.Content = connectly.SessionContent{Text: "here", Location: &connectly.Location{}}
		}, "text", "not allowed with a location"},

		// Reply buttons.
		{"ButtonsAtLimit", rb(n("b", connectly.MaxInteractiveBody), func(r *connectly.ReplyButtons) {
			r.Buttons[0].Text = n("☃", connectly.MaxButtonText)
			r.Buttons[1].ID = n("i", connectly.MaxButtonID)
			r.Header, r.Footer = n("h", connectly.MaxHeaderText), n("f", connectly.MaxFooterText)
		}), "", ""},
		{"FourButtons", rb("Pick", func(r *connectly.ReplyButtons) { r.Buttons = buttons(4) }), "reply_buttons.buttons[3]", "at most 3 buttons"},
		{"NoButtons", rb("Pick", func(r *connectly.ReplyButtons) { r.Buttons = nil }), "reply_buttons.buttons", "required"},
		{"ButtonTextOver", rb("Pick", func(r *connectly.ReplyButtons) { r.Buttons[2].Text = n("x", 21) }), "reply_buttons.buttons[2].text", "21 characters, at most 20"},
		{"ButtonTextMissing", rb("Pick", func(r *connectly.ReplyButtons) { r.Buttons[1].Text = "" }), "reply_buttons.buttons[1].text", "required"},
		{"ButtonIDMissing", rb("Pick", func(r *connectly.ReplyButtons) { r.Buttons[0].ID = "" }), "reply_buttons.buttons[0].id", "required"},
		{"ButtonIDOver", rb("Pick", func(r *connectly.ReplyButtons) { r.Buttons[0].ID = n("i", 257) }), "reply_buttons.buttons[0].id", "257 characters, at most 256"},
		{"ButtonIDDuplicate", rb("Pick", func(r *connectly.ReplyButtons) { r.Buttons[2].ID = "yes" }), "reply_buttons.buttons[2].id", `"yes" is also the id of buttons[0]`},
		{"ButtonTextDuplicate", rb("Pick", func(r *connectly.ReplyButtons) { r.Buttons[1].Text = "Yes" }), "reply_buttons.buttons[1].text", `"Yes" is also the text of buttons[0]`},
		{"ButtonsBodyMissing", rb("", func(*connectly.ReplyButtons) {}), "text", "required"},
		{"ButtonsBodyOver", rb(n("b", connectly.MaxInteractiveBody+1), func(*connectly.ReplyButtons) {}), "text", "1025 characters, at most 1024"},
		{"ButtonsHeaderOver", rb("Pick", func(r *connectly.ReplyButtons) { r.Header = n("h", 61) }), "reply_buttons.header", "61 characters, at most 60"},
		{"ButtonsFooterOver", rb("Pick", func(r *connectly.ReplyButtons) { r.Footer = n("f", 61) }), "reply_buttons.footer", "61 characters, at most 60"},

		// Lists.
		{"ListAtLimit", list(n("b", connectly.MaxInteractiveBody), func(l *connectly.List) {
			l.Button, l.Header, l.Footer = n("B", connectly.MaxButtonText), n("h", connectly.MaxHeaderText), n("f", connectly.MaxFooterText)
			l.Sections = []connectly.Section{{Title: n("t", connectly.MaxSectionTitle), Rows: rows("a", 4)}, {Title: "Two", Rows: rows("b", 6)}}
			l.Sections[0].Rows[0] = connectly.Row{ID: n("i", connectly.MaxRowID), Text: n("r", connectly.MaxRowText), Description: n("d", connectly.MaxRowDescription)}
		}), "", ""},
		{"ElevenRows", list("Pick", func(l *connectly.List) {
			l.Sections = []connectly.Section{{Title: "One", Rows: rows("a", 6)}, {Title: "Two", Rows: rows("b", 5)}}
		}), "list.sections[1].rows[4]", "at most 10 rows in all sections"},
		{"ElevenSections", list("Pick", func(l *connectly.List) {
			l.Sections = make([]connectly.Section, 11)
			for i := range l.Sections {
				l.Sections[i] = connectly.Section{Title: "S" + string(rune('a'+i)), Rows: rows(string(rune('a'+i)), 1)}
			}
		}), "list.sections[10]", "at most 10 sections"},
		{"ListBodyMissing", list("", noop), "text", "required"},
		{"ListButtonMissing", list("Pick", func(l *connectly.List) { l.Button = "" }), "list.button", "required"},
		{"ListButtonOver", list("Pick", func(l *connectly.List) { l.Button = n("B", 21) }), "list.button", "21 characters, at most 20"},
		{"ListHeaderOver", list("Pick", func(l *connectly.List) { l.Header = n("h", 61) }), "list.header", "61 characters, at most 60"},
		{"ListFooterOver", list("Pick", func(l *connectly.List) { l.Footer = n("f", 61) }), "list.footer", "61 characters, at most 60"},
		{"NoSections", list("Pick", func(l *connectly.List) { l.Sections = nil }), "list.sections", "required"},
		{"SectionWithoutRows", list("Pick", func(l *connectly.List) { l.Sections[1].Rows = nil }), "list.sections[1].rows", "required"},
		{"SectionTitleOver", list("Pick", func(l *connectly.List) { l.Sections[0].Title = n("t", 25) }), "list.sections[0].title", "25 characters, at most 24"},
		{"SectionTitleMissingWithTwo", list("Pick", func(l *connectly.List) { l.Sections[1].Title = "" }), "list.sections[1].title", "required"},
		{"RowTextOver", list("Pick", func(l *connectly.List) { l.Sections[0].Rows[1].Text = n("r", 25) }), "list.sections[0].rows[1].text", "25 characters, at most 24"},
		{"RowTextMissing", list("Pick", func(l *connectly.List) { l.Sections[0].Rows[1].Text = "" }), "list.sections[0].rows[1].text", "required"},
		{"RowDescriptionOver", list("Pick", func(l *connectly.List) { l.Sections[1].Rows[0].Description = n("d", 73) }), "list.sections[1].rows[0].description", "73 characters, at most 72"},
		{"RowIDOver", list("Pick", func(l *connectly.List) { l.Sections[1].Rows[0].ID = n("i", 201) }), "list.sections[1].rows[0].id", "201 characters, at most 200"},
		{"RowIDMissing", list("Pick", func(l *connectly.List) { l.Sections[1].Rows[0].ID = "" }), "list.sections[1].rows[0].id", "required"},
		{"RowIDDuplicateAcrossSections", list("Pick", func(l *connectly.List) { l.Sections[1].Rows[0].ID = "m9" }), "list.sections[1].rows[0].id", `"m9" is also the id of list.sections[0].rows[0]`},

		// Products.
		{"SingleProductNotObject", func(m *connectly.SessionMessage) {
			m.Content = connectly.SessionContent{SingleProduct: connectly.RawObject(`["sku-1"]`)}
		}, "single_product", "JSON object"},
		{"SingleProductInvalidJSON", func(m *connectly.SessionMessage) {
			m.Content = connectly.SessionContent{SingleProduct: connectly.RawObject(`{"a":`)}
		}, "single_product", "JSON object"},
		{"SingleProductBodyOver", func(m *connectly.SessionMessage) {
			m.Content = connectly.SessionContent{Text: n("x", 1025), SingleProduct: connectly.RawObject(`{}`)}
		}, "text", "at most 1024"},
		{"MultiProductWithoutText", func(m *connectly.SessionMessage) {
			m.Content = connectly.SessionContent{MultiProduct: connectly.RawObject(`{"sections":[]}`)}
		}, "text", "required"},
		{"MultiProductNull", func(m *connectly.SessionMessage) {
			m.Content = connectly.SessionContent{Text: "picks", MultiProduct: connectly.RawObject(`null`)}
		}, "multi_product", "JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := sessionMsg()
			tc.msg(&msg)
			err := msg.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := (connectly.Wire{}).EncodeSession(msg); err != nil {
					t.Fatalf("EncodeSession: %v", err)
				}
				return
			}
			var ie *connectly.InvalidMessageError
			if !errors.Is(err, connectly.ErrInvalidMessage) || !errors.As(err, &ie) {
				t.Fatalf("Validate = %v, want an *InvalidMessageError wrapping ErrInvalidMessage", err)
			}
			found := false
			for _, p := range ie.Problems {
				found = found || (p.Field == tc.field && strings.Contains(p.Msg, tc.problem))
			}
			if !found {
				t.Fatalf("Validate = %v, want a problem %s: ...%s...", err, tc.field, tc.problem)
			}
			if want := tc.field + ": "; !strings.Contains(err.Error(), want) {
				t.Errorf("Error() = %q, want it to name %q", err.Error(), tc.field)
			}

			// SendSession refuses it before any request, as a client error.
			b := setup(t, nil)
			_, sendErr := b.client.SendSession(context.Background(), msg)
			if !errors.Is(sendErr, connectly.ErrInvalidMessage) {
				t.Errorf("SendSession err = %v, want ErrInvalidMessage", sendErr)
			}
			if n := len(b.fake.Requests()); n != 0 {
				t.Errorf("server saw %d requests, want none", n)
			}
			if d := defaultTable(t).Decide(sendErr); d.Key != "CLIENT_ERROR" || d.Outcome != connectly.OutcomeRefused || d.WindowClosed() {
				t.Errorf("Decide = %+v, want a refused CLIENT_ERROR", d)
			}
		})
	}
}

func TestSessionKinds(t *testing.T) {
	t.Parallel()
	want := map[string]connectly.SessionKind{
		"text": connectly.KindText, "attachment_image": connectly.KindAttachment, "location": connectly.KindLocation,
		"reply_buttons": connectly.KindReplyButtons, "list": connectly.KindList,
		"single_product": connectly.KindSingleProduct, "multi_product": connectly.KindMultiProduct,
	}
	for _, tc := range sessionCases {
		w, ok := want[tc.name]
		if !ok {
			continue
		}
		m := sessionMsg()
		tc.msg(&m)
		if got := m.Content.Kind(); got != w {
			t.Errorf("%s: Kind = %q, want %q", tc.name, got, w)
		}
	}
	if k := (connectly.SessionContent{}).Kind(); k != "" {
		t.Errorf("empty content: Kind = %q", k)
	}
	if k := (connectly.SessionContent{Attachment: &connectly.Attachment{}, Location: &connectly.Location{}}).Kind(); k != "" {
		t.Errorf("two kinds: Kind = %q", k)
	}
}

// A campaign file's message: block decodes into SessionContent and renders per recipient.
func TestSessionContentFromYAML(t *testing.T) {
	t.Parallel()
	const doc = `
- text: "Hi {{name}}, your order shipped."
- attachment: {type: document, url: "https://example.com/{{order}}.pdf", caption: "Invoice {{order}}", filename: "{{order}}.pdf"}
- location: {latitude: -23.55, longitude: -46.63, name: "Store", address: "Av. Paulista, {{order}}"}
- text: "Did order {{order}} arrive, {{name}}?"
  reply_buttons:
    header: "Order {{order}}"
    buttons:
      - {id: "yes-{{order}}", text: "Yes"}
      - {id: "no-{{order}}", text: "No"}
- text: "Pick a time"
  list:
    button: "Times"
    footer: "for {{name}}"
    sections:
      - title: Morning
        rows: [{id: m9, text: "09:00", description: "with {{name}}"}]
      - title: Afternoon
        rows: [{id: a3, text: "15:00"}]
- single_product: {catalogId: cat-1, productRetailerId: sku-42}
- text: "Picks for {{name}}"
  multi_product: {catalogId: cat-1, sections: [{title: Shoes, productItems: [{productRetailerId: sku-1}]}]}
`
	var specs []connectly.SessionContent
	if err := yaml.Unmarshal([]byte(doc), &specs); err != nil {
		t.Fatal(err)
	}
	wantKinds := []connectly.SessionKind{connectly.KindText, connectly.KindAttachment, connectly.KindLocation, connectly.KindReplyButtons, connectly.KindList, connectly.KindSingleProduct, connectly.KindMultiProduct}
	if len(specs) != len(wantKinds) {
		t.Fatalf("decoded %d specs, want %d", len(specs), len(wantKinds))
	}
	vars := map[string]string{"{{name}}": "Ana", "{{order}}": "12345"}
	render := func(_, s string) (string, error) {
		for k, v := range vars {
			s = strings.ReplaceAll(s, k, v)
		}
		return s, nil
	}
	for i, spec := range specs {
		before, _ := json.Marshal(spec)
		got, err := spec.MapStrings(render)
		if err != nil {
			t.Fatalf("%d: MapStrings: %v", i, err)
		}
		if got.Kind() != wantKinds[i] {
			t.Errorf("%d: Kind = %q, want %q", i, got.Kind(), wantKinds[i])
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%d: Validate: %v", i, err)
		}
		rendered, _ := json.Marshal(got)
		if bytes.Contains(rendered, []byte("{{")) {
			t.Errorf("%d: not rendered: %s", i, rendered)
		}
		// The spec is shared by every recipient: rendering must not change it.
		if after, _ := json.Marshal(spec); !bytes.Equal(before, after) {
			t.Errorf("%d: MapStrings changed the spec:\n%s\n%s", i, before, after)
		}
	}
	if b, err := (connectly.Wire{}).EncodeSession(connectly.SessionMessage{To: "+16044441111", Content: specs[6]}); err != nil ||
		!bytes.Contains(b, []byte(`"multiProductMessage":{"catalogId":"cat-1","sections":[{"productItems":[{"productRetailerId":"sku-1"}],"title":"Shoes"}]}`)) {
		t.Errorf("multi product from YAML: %s, %v", b, err)
	}
	var bad connectly.SessionContent
	if err := yaml.Unmarshal([]byte("single_product: [1, 2]"), &bad); err == nil {
		t.Error("a YAML sequence decoded as a product object")
	}
}

func TestMapStringsFieldsAndErrors(t *testing.T) {
	t.Parallel()
	c := connectly.SessionContent{Text: "body", List: twoSections()}
	var fields []string
	if _, err := c.MapStrings(func(field, s string) (string, error) { fields = append(fields, field); return s, nil }); err != nil {
		t.Fatal(err)
	}
	want := "text list.button list.sections[0].title list.sections[0].rows[0].id list.sections[0].rows[0].text list.sections[0].rows[0].description list.sections[0].rows[1].id list.sections[0].rows[1].text list.sections[1].title list.sections[1].rows[0].id list.sections[1].rows[0].text list.sections[1].rows[0].description"
	if got := strings.Join(fields, " "); got != want {
		t.Errorf("fields =\n%s\nwant\n%s", got, want)
	}
	boom := errors.New("unknown variable")
	_, err := c.MapStrings(func(field, s string) (string, error) {
		if field == "list.sections[1].title" {
			return "", boom
		}
		return s, nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "list.sections[1].title") {
		t.Errorf("err = %v, want the cause and the field", err)
	}
	// The copy does not share rows with the original.
	got, _ := c.MapStrings(func(_, s string) (string, error) { return s, nil })
	got.List.Sections[0].Rows[0].Text = "changed"
	got.List.Sections[0].Title = "changed"
	if c.List.Sections[0].Rows[0].Text == "changed" || c.List.Sections[0].Title == "changed" {
		t.Error("MapStrings result shares memory with the original")
	}
}

// coord is a coordinate given explicitly.
func coord(c float64) *float64 { return &c }
