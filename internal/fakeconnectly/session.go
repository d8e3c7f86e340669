package fakeconnectly

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kinds of send: the endpoint a request came to (Received.Kind, Rule.Kind).
const (
	// KindTemplate is POST /v1/businesses/{businessId}/send/whatsapp_templated_messages.
	KindTemplate = "template"
	// KindSession is POST /v1/businesses/{businessId}/send/messages: a session (free-form)
	// message, allowed only inside the customer's 24-hour window.
	KindSession = "session"
)

// Content kinds of a session message (Received.Content): the field of message that carries
// it. Exactly one per message; text may go along with attachments, a list, reply buttons
// and products as their body or caption.
const (
	ContentText          = "text"
	ContentAttachments   = "attachments"
	ContentLocation      = "location"
	ContentList          = "listMessage"
	ContentReplyButtons  = "replyButtonMessage"
	ContentSingleProduct = "singleProductMessage"
	ContentMultiProduct  = "multiProductMessage"
)

// WhatsApp's limits the reference states for session messages (3.1), and the callbackData
// limit (2.1).
const (
	maxTextChars       = 4096
	maxReplyButtons    = 3
	maxButtonTextChars = 20
	maxListRows        = 10
	maxCallbackBytes   = 1024
)

// SessionMessage is the body of a session send (reference 3 and 3.1), as the fake decodes it.
// snake_case spellings (list_message, reply_button_message, channel_type, user_id,
// callback_data, ...) are read as their camelCase names.
type SessionMessage struct {
	Recipient SessionRecipient `json:"recipient"`
	// Sender is an object here, unlike the template API's string.
	Sender       *SessionSender  `json:"sender,omitempty"`
	Message      SessionContent  `json:"message"`
	CallbackData json.RawMessage `json:"callbackData,omitempty"`
	CampaignName string          `json:"campaignName,omitempty"`
}

// SessionRecipient is the customer: an E.164 number or a bare BSUID ("US.123") in ID, or a
// bare BSUID in UserID (the GitBook's form).
type SessionRecipient struct {
	ID          string `json:"id,omitempty"`
	UserID      string `json:"userId,omitempty"`
	ChannelType string `json:"channelType,omitempty"`
	Name        string `json:"name,omitempty"`
}

// SessionSender picks the business number that sends.
type SessionSender struct {
	ID          string `json:"id"`
	ChannelType string `json:"channelType,omitempty"`
}

// SessionContent is the message object. As in protobuf JSON (the API is a protobuf gateway,
// reference 3.1, inferred), an empty string or an empty list is the same as an absent one.
type SessionContent struct {
	// ID is an optional client-chosen id; nothing says it deduplicates, and the fake does not
	// unless Config.DedupeMessageID asks.
	ID                   string              `json:"id,omitempty"`
	Text                 string              `json:"text,omitempty"`
	Attachments          []Attachment        `json:"attachments,omitempty"`
	Location             *Location           `json:"location,omitempty"`
	ListMessage          *ListMessage        `json:"listMessage,omitempty"`
	ReplyButtonMessage   *ReplyButtonMessage `json:"replyButtonMessage,omitempty"`
	SingleProductMessage json.RawMessage     `json:"singleProductMessage,omitempty"`
	MultiProductMessage  json.RawMessage     `json:"multiProductMessage,omitempty"`
}

// Attachment is one media item of a message object, sent or inbound (reference 3.1, 5.4);
// Filename is for documents only.
type Attachment struct {
	Type     string `json:"type"`
	URL      string `json:"url"`
	Caption  string `json:"caption,omitempty"`
	Filename string `json:"filename,omitempty"`
}

// Location is a pin of a message object, sent or inbound (reference 3.1, 5.4); Latitude and
// Longitude are required. The reference's list of its fields is cut off ("latitude,
// longitude, …", 3; "docs page cut off", 3.1), so a session send's location may carry
// other fields: URL (Meta's location has one) and any other, kept in Extra as sent, are
// taken, not refused as unknown.
type Location struct {
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
	Name      string   `json:"name,omitempty"`
	Address   string   `json:"address,omitempty"`
	URL       string   `json:"url,omitempty"`
	// Extra holds the fields of a sent location the fake does not know, by name.
	Extra map[string]json.RawMessage `json:"-"`
}

// locationFields is Location without its JSON methods: its known fields by their JSON names
// (Extra is not one).
type locationFields Location

// UnmarshalJSON reads the known fields by their exact names and keeps the others in Extra.
func (l *Location) UnmarshalJSON(b []byte) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	known := map[string]json.RawMessage{}
	var extra map[string]json.RawMessage
	for k, v := range all {
		if _, ok := fieldNamed(reflect.TypeFor[locationFields](), k); ok {
			known[k] = v
			continue
		}
		for _, name := range []string{"latitude", "longitude", "name", "address", "url"} {
			if strings.EqualFold(k, name) {
				// A documented name spelled another way is a client's mistake, not a field
				// the reference may have left out.
				return fmt.Errorf("unknown field %q", k)
			}
		}
		if extra == nil {
			extra = map[string]json.RawMessage{}
		}
		extra[k] = v
	}
	kb, _ := json.Marshal(known)
	var f locationFields
	if err := json.Unmarshal(kb, &f); err != nil {
		return err
	}
	f.Extra = extra
	*l = Location(f)
	return nil
}

// MarshalJSON writes the known fields and Extra's.
func (l Location) MarshalJSON() ([]byte, error) {
	fields := locationFields(l)
	if len(l.Extra) == 0 {
		return json.Marshal(fields)
	}
	out := map[string]any{}
	for k, v := range l.Extra {
		out[k] = v
	}
	kb, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	var known map[string]json.RawMessage
	if err := json.Unmarshal(kb, &known); err != nil {
		return nil, err
	}
	for k, v := range known {
		out[k] = v
	}
	return json.Marshal(out)
}

// TextObject is a {"text": ...} object: a header, a footer, a list's button.
type TextObject struct {
	Text string `json:"text"`
}

// ReplyButtonMessage carries up to 3 quick-reply buttons; the body is message.text.
type ReplyButtonMessage struct {
	Buttons []ReplyButton `json:"buttons"`
	Header  *TextObject   `json:"header,omitempty"`
	Footer  *TextObject   `json:"footer,omitempty"`
}

// ReplyButton is one button: its id comes back in the reply, its text is its label.
type ReplyButton struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// ListMessage is a list of up to 10 rows in all; the body is message.text.
type ListMessage struct {
	Button   *TextObject   `json:"button"`
	Sections []ListSection `json:"sections"`
	Header   *TextObject   `json:"header,omitempty"`
	Footer   *TextObject   `json:"footer,omitempty"`
}

// ListSection is a titled group of rows.
type ListSection struct {
	Title string    `json:"title,omitempty"`
	Rows  []ListRow `json:"rows"`
}

// ListRow is one choice: its id comes back in the reply.
type ListRow struct {
	ID          string `json:"id"`
	Text        string `json:"text"`
	Description string `json:"description,omitempty"`
}

// rawFields hold values the fake does not look into: their keys are kept as sent.
var rawFields = map[string]bool{"callbackData": true, "singleProductMessage": true, "multiProductMessage": true}

// camel turns a snake_case key into camelCase ("list_message" -> "listMessage").
func camel(k string) string {
	if !strings.Contains(k, "_") {
		return k
	}
	parts := strings.Split(k, "_")
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1:] {
		if p == "" {
			continue
		}
		r, n := utf8.DecodeRuneInString(p)
		b.WriteRune(unicode.ToUpper(r))
		b.WriteString(p[n:])
	}
	return b.String()
}

// normalizeKeys rewrites the snake_case keys of a decoded JSON value to camelCase, except
// inside raw fields. A key given in both spellings is an error.
func normalizeKeys(v any, where string) error {
	switch v := v.(type) {
	case map[string]any:
		for k, val := range v {
			c := camel(k)
			if c != k {
				if _, dup := v[c]; dup {
					return fmt.Errorf("%s%s and %s%s are the same field", where, k, where, c)
				}
				delete(v, k)
				v[c] = val
			}
			if rawFields[c] {
				continue
			}
			if err := normalizeKeys(val, where+c+"."); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if err := normalizeKeys(e, fmt.Sprintf("%s[%d].", strings.TrimSuffix(where, "."), i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// camelBody reads a body as one JSON object and rewrites it with camelCase keys.
func camelBody(raw []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, errors.New("body is empty")
	}
	if trimmed[0] != '{' {
		return nil, errors.New("body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the JSON object")
	}
	if err := normalizeKeys(v, ""); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// decodeSession decodes a session body strictly: one JSON object, either spelling of each
// field (each matched exactly, see misnamedKey), no unknown fields. A sender given as a
// string (the template API's form) is ERROR_CODE_INVALID_SENDER_ID.
func decodeSession(raw []byte) (SessionMessage, *apiError) {
	var msg SessionMessage
	body, err := camelBody(raw)
	if err != nil {
		return msg, badRequest("invalid request body: " + err.Error())
	}
	var probe struct {
		Sender json.RawMessage `json:"sender"`
	}
	if json.Unmarshal(body, &probe) == nil && len(probe.Sender) > 0 && probe.Sender[0] == '"' {
		return msg, invalid(CodeInvalidSenderID, "sender must be an object {\"id\": \"+E164\", \"channelType\": \"whatsapp\"} on send/messages; a plain string is the template API's form")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		return SessionMessage{}, badRequest("invalid request body: " + strings.TrimPrefix(err.Error(), "json: "))
	}
	if k := misnamed(body, msg); k != "" {
		return SessionMessage{}, badRequest(fmt.Sprintf("invalid request body: unknown field %q", k))
	}
	return msg, nil
}

// decodeSessionLoose decodes what it can of a body, for the record of a send refused before
// validation.
func decodeSessionLoose(raw []byte) SessionMessage {
	var msg SessionMessage
	body, err := camelBody(raw)
	if err != nil {
		return msg
	}
	_ = json.Unmarshal(body, &msg) // a type error leaves the other fields decoded
	return msg
}

// number is the recipient as the record keys it: the E.164 id, else "bsuid:" and the BSUID
// (of id or userId), else id as given.
func (m SessionMessage) number() string {
	if m.Recipient.ID != "" {
		return customerKey(m.Recipient.ID)
	}
	if m.Recipient.UserID != "" {
		return customerKey(m.Recipient.UserID)
	}
	return ""
}

// customers lists the recipient's identities whose windows count: id and userId.
func (m SessionMessage) customers() []string {
	var out []string
	for _, n := range []string{m.Recipient.ID, m.Recipient.UserID} {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// common is the part of a session send both endpoints share, in the template message form
// the record and the webhooks use.
func (m SessionMessage) common() TemplateMessage {
	out := TemplateMessage{Number: m.number(), CallbackData: m.CallbackData, CampaignName: m.CampaignName}
	if m.Sender != nil {
		out.Sender = m.Sender.ID
	}
	return out
}

// validBareBSUID reports whether s is a BSUID without the template API's "bsuid:" prefix.
func validBareBSUID(s string) bool {
	return !strings.HasPrefix(s, "bsuid:") && validBSUID("bsuid:"+s)
}

// chars counts characters the way WhatsApp's limits do: Unicode code points.
func chars(s string) int { return utf8.RuneCountInString(s) }

func blank(s string) bool { return strings.TrimSpace(s) == "" }

// validateSession checks a decoded session send in the order the fake reports problems:
// recipient, sender, message, callbackData. It returns the message's content kind.
//
// The documented codes are used where the reference names one: a bad recipient is
// ERROR_CODE_PHONE_NUMBER_BAD_FORMAT, a bad sender ERROR_CODE_INVALID_SENDER_ID, a channel
// other than WhatsApp ERROR_CODE_BUSINESS_MISSES_MATCHING_CHANNEL (inferred: the fake
// business has only WhatsApp numbers), no text ERROR_CODE_MESSAGE_TEXT_EMPTY, more than one
// attachment ERROR_CODE_MESSAGE_ATTACHMENTS_NUMBER_INVALID, an empty attachment URL
// ERROR_CODE_MESSAGE_ATTACHMENT_EMPTY and one that does not parse as an absolute http(s) URL
// ERROR_CODE_MESSAGE_ATTACHMENT_INVALID. WhatsApp's limits the reference states (text up to
// 4,096 characters, 1 to 3 reply buttons of up to 20 characters, up to 10 list rows in all)
// and the shapes it shows (a button or row needs an id and a text, a list its button text, a
// location its latitude and longitude) have no documented code: they answer badRequest.
// (inferred) Also required: text as the body of a list, reply buttons or multi-product
// message (the reference shows it in every example; WhatsApp requires it), at least one
// reply button and one row, and distinct button and row ids.
func (s *Server) validateSession(m *SessionMessage) (string, *apiError) {
	if e := validateRecipient(m.Recipient, s.strict); e != nil {
		return "", e
	}
	if e := s.validateSessionSender(m); e != nil {
		return "", e
	}
	content, e := validateContent(&m.Message)
	if e != nil {
		return content, e
	}
	if len(m.CallbackData) > maxCallbackBytes {
		return content, badRequest(fmt.Sprintf("callbackData is %d bytes, the limit is %d", len(m.CallbackData), maxCallbackBytes))
	}
	return content, nil
}

func validateRecipient(r SessionRecipient, strict Strict) *apiError {
	switch {
	case r.ID == "" && r.UserID == "":
		return invalid(CodePhoneNumberBadFormat, "recipient.id is required (E.164, or a bare BSUID such as US.13491208655302741918), or recipient.userId with a BSUID")
	case strings.HasPrefix(r.ID, "bsuid:") || strings.HasPrefix(r.UserID, "bsuid:"):
		return invalid(CodePhoneNumberBadFormat, "a session recipient takes a bare BSUID (US.123...), not the template API's bsuid: form")
	case r.ID != "" && !validE164(r.ID) && !validBareBSUID(r.ID):
		return invalid(CodePhoneNumberBadFormat, fmt.Sprintf("recipient.id %q is neither E.164 (+ and 8 to 15 digits) nor a BSUID (CC.id)", r.ID))
	case r.UserID != "" && !validBareBSUID(r.UserID):
		return invalid(CodePhoneNumberBadFormat, fmt.Sprintf("recipient.userId %q is not a BSUID (CC.id)", r.UserID))
	case r.UserID != "" && validBareBSUID(r.ID) && r.ID != r.UserID:
		return invalid(CodePhoneNumberBadFormat, "recipient.id and recipient.userId are different BSUIDs")
	case r.ChannelType == "" && strict.ChannelType:
		return badRequest("recipient.channelType is required: \"whatsapp\"")
	case r.ChannelType != "" && r.ChannelType != "whatsapp":
		return invalid(CodeMissesMatchingChannel, fmt.Sprintf("recipient.channelType %q: the business has only whatsapp channels", r.ChannelType))
	}
	return nil
}

func (s *Server) validateSessionSender(m *SessionMessage) *apiError {
	if m.Sender == nil {
		return s.checkSender("", "", "sender")
	}
	switch {
	case m.Sender.ID == "":
		return invalid(CodeInvalidSenderID, "sender.id is required in a sender object")
	case m.Sender.ChannelType == "" && s.strict.ChannelType:
		return badRequest("sender.channelType is required: \"whatsapp\"")
	case m.Sender.ChannelType != "" && m.Sender.ChannelType != "whatsapp":
		return invalid(CodeMissesMatchingChannel, fmt.Sprintf("sender.channelType %q: the business has only whatsapp channels", m.Sender.ChannelType))
	}
	return s.checkSender(m.Sender.ID, s.normalizeNumber(m.Recipient.ID), "sender.id")
}

// validateContent checks the message object and returns its content kind.
func validateContent(c *SessionContent) (string, *apiError) {
	var kinds []string
	if len(c.Attachments) > 0 {
		kinds = append(kinds, ContentAttachments)
	}
	if c.Location != nil {
		kinds = append(kinds, ContentLocation)
	}
	if c.ListMessage != nil {
		kinds = append(kinds, ContentList)
	}
	if c.ReplyButtonMessage != nil {
		kinds = append(kinds, ContentReplyButtons)
	}
	if present(c.SingleProductMessage) {
		kinds = append(kinds, ContentSingleProduct)
	}
	if present(c.MultiProductMessage) {
		kinds = append(kinds, ContentMultiProduct)
	}
	if len(kinds) > 1 {
		return "", badRequest(fmt.Sprintf("message has %s: send exactly one of text, attachments, location, listMessage, replyButtonMessage, singleProductMessage, multiProductMessage", strings.Join(kinds, " and ")))
	}
	kind := ContentText
	if len(kinds) == 1 {
		kind = kinds[0]
	}
	if n := chars(c.Text); n > maxTextChars {
		return kind, badRequest(fmt.Sprintf("message.text is %d characters, WhatsApp's limit is %d", n, maxTextChars))
	}
	switch kind {
	case ContentText:
		if blank(c.Text) {
			return kind, invalid(CodeTextEmpty, "message.text is empty: a message needs text or one of attachments, location, listMessage, replyButtonMessage, singleProductMessage, multiProductMessage")
		}
	case ContentAttachments:
		return kind, validateAttachments(c.Attachments)
	case ContentLocation:
		return kind, validateLocation(c)
	case ContentReplyButtons:
		return kind, validateButtons(c)
	case ContentList:
		return kind, validateList(c)
	case ContentSingleProduct:
		if !isObject(c.SingleProductMessage) {
			return kind, badRequest("message.singleProductMessage must be a JSON object")
		}
	case ContentMultiProduct:
		if blank(c.Text) {
			return kind, invalid(CodeTextEmpty, "message.text (the body) is required with multiProductMessage")
		}
		if !isObject(c.MultiProductMessage) {
			return kind, badRequest("message.multiProductMessage must be a JSON object")
		}
	}
	return kind, nil
}

func present(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && !bytes.Equal(t, []byte("null"))
}

func isObject(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{'
}

var attachmentTypes = map[string]bool{"image": true, "video": true, "audio": true, "document": true}

func validateAttachments(atts []Attachment) *apiError {
	if len(atts) > 1 {
		return invalid(CodeAttachmentsNumberInvalid, fmt.Sprintf("message.attachments has %d items; a message carries at most one", len(atts)))
	}
	a := atts[0]
	if blank(a.URL) {
		return invalid(CodeAttachmentEmpty, "message.attachments[0].url is empty")
	}
	if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return invalid(CodeAttachmentInvalid, fmt.Sprintf("message.attachments[0].url %q is not an absolute http(s) URL", a.URL))
	}
	switch {
	case !attachmentTypes[a.Type]:
		return badRequest(fmt.Sprintf("message.attachments[0].type %q: want image, video, audio or document", a.Type))
	case a.Filename != "" && a.Type != "document":
		return badRequest(fmt.Sprintf("message.attachments[0].filename is for documents only, not %s", a.Type))
	}
	return nil
}

func validateLocation(c *SessionContent) *apiError {
	l := c.Location
	switch {
	case c.Text != "":
		// Reference 3: message carries "exactly one content type", text being one; 3.1 lets
		// text go with attachments, reply buttons, a list and products, and shows a location
		// without it. So text with a location is two content types.
		return badRequest("message.text cannot go with a location")
	case l.Latitude == nil || l.Longitude == nil:
		return badRequest("message.location needs latitude and longitude")
	case *l.Latitude < -90 || *l.Latitude > 90:
		return badRequest(fmt.Sprintf("message.location.latitude %v is outside -90..90", *l.Latitude))
	case *l.Longitude < -180 || *l.Longitude > 180:
		return badRequest(fmt.Sprintf("message.location.longitude %v is outside -180..180", *l.Longitude))
	}
	return nil
}

func validateButtons(c *SessionContent) *apiError {
	if blank(c.Text) {
		return invalid(CodeTextEmpty, "message.text (the body) is required with replyButtonMessage")
	}
	buttons := c.ReplyButtonMessage.Buttons
	if len(buttons) == 0 || len(buttons) > maxReplyButtons {
		return badRequest(fmt.Sprintf("replyButtonMessage has %d buttons; WhatsApp allows 1 to %d", len(buttons), maxReplyButtons))
	}
	ids := map[string]bool{}
	for i, b := range buttons {
		switch {
		case blank(b.ID):
			return badRequest(fmt.Sprintf("replyButtonMessage.buttons[%d].id is empty", i))
		case ids[b.ID]:
			return badRequest(fmt.Sprintf("replyButtonMessage.buttons[%d].id %q is used twice", i, b.ID))
		case blank(b.Text):
			return badRequest(fmt.Sprintf("replyButtonMessage.buttons[%d].text is empty", i))
		case chars(b.Text) > maxButtonTextChars:
			return badRequest(fmt.Sprintf("replyButtonMessage.buttons[%d].text is %d characters; WhatsApp allows %d", i, chars(b.Text), maxButtonTextChars))
		}
		ids[b.ID] = true
	}
	return nil
}

func validateList(c *SessionContent) *apiError {
	if blank(c.Text) {
		return invalid(CodeTextEmpty, "message.text (the body) is required with listMessage")
	}
	l := c.ListMessage
	if l.Button == nil || blank(l.Button.Text) {
		return badRequest("listMessage.button.text is required")
	}
	if len(l.Sections) == 0 {
		return badRequest("listMessage.sections is empty")
	}
	rows := 0
	ids := map[string]bool{}
	for i, sec := range l.Sections {
		if len(sec.Rows) == 0 {
			return badRequest(fmt.Sprintf("listMessage.sections[%d].rows is empty", i))
		}
		for j, r := range sec.Rows {
			switch {
			case blank(r.ID):
				return badRequest(fmt.Sprintf("listMessage.sections[%d].rows[%d].id is empty", i, j))
			case ids[r.ID]:
				return badRequest(fmt.Sprintf("listMessage.sections[%d].rows[%d].id %q is used twice", i, j, r.ID))
			case blank(r.Text):
				return badRequest(fmt.Sprintf("listMessage.sections[%d].rows[%d].text is empty", i, j))
			}
			ids[r.ID] = true
		}
		rows += len(sec.Rows)
	}
	if rows > maxListRows {
		return badRequest(fmt.Sprintf("listMessage has %d rows; WhatsApp allows %d in all", rows, maxListRows))
	}
	return nil
}

// handleSession answers POST /v1/businesses/{businessId}/send/messages. The checks come in
// the order of a template send (key, business, the rate limit shared with it, the body),
// then, under Config.DedupeMessageID, a message.id already taken, then the recipient's
// 24-hour window, then the rules. A WindowAnswer that fails a send outside the window at
// delivery lets it go on to the rules, marked to fail.
func (s *Server) handleSession(w http.ResponseWriter, r *http.Request, business string) {
	rec := Received{At: s.clock(), Kind: KindSession}
	raw, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	everWrote := false
	note := func(m SessionMessage) {
		// The recipient as the server takes it (NumberPunctuation); the record keeps that.
		m.Recipient.ID = s.normalizeNumber(m.Recipient.ID)
		everWrote = false
		rec.Number, rec.Message = m.number(), m.common()
		rec.Session = &m
		open := false
		for _, n := range m.customers() {
			win := s.windows.get(n, businessNumber(rec.Message), rec.At)
			open = open || win.Open
			everWrote = everWrote || !win.LastInbound.IsZero()
		}
		rec.OutsideWindow, rec.WindowOpen = !open, open
	}

	if e, refused := s.admit(r, business, rec.At); refused {
		if readErr == nil {
			note(decodeSessionLoose(raw))
		}
		s.refuse(w, rec, e)
		return
	}
	if readErr != nil {
		s.refuse(w, rec, *badRequest("invalid request body: " + readErr.Error()))
		return
	}
	msg, bad := decodeSession(raw)
	if bad != nil {
		note(decodeSessionLoose(raw))
		s.refuse(w, rec, *bad)
		return
	}
	msg.Recipient.ID = s.normalizeNumber(msg.Recipient.ID)
	note(msg)
	if rec.Content, bad = s.validateSession(&msg); bad != nil {
		s.refuse(w, rec, *bad)
		return
	}
	if s.refuseBSUIDSessions && !validE164(msg.Recipient.ID) {
		s.refuse(w, rec, *badRequest("sending session messages to BSUID-only customers is not available yet"))
		return
	}
	if s.duplicate(w, rec) {
		return
	}
	if rec.OutsideWindow && !s.ignoreWindow {
		fail, late := s.windowFailure()
		if !late {
			rec.windowRefused = true
			s.refuse(w, rec, s.windowError(everWrote))
			return
		}
		rec.windowFail = fail
	}
	s.answer(w, r, rec, "")
}
