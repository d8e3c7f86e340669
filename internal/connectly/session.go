package connectly

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/heraldmsg/herald/internal/yamlsize"
	"go.yaml.in/yaml/v3"
)

// Session messages (reference sections 3 and 3.1): free-form messages a business may send only
// while the customer's 24-hour window is open. SessionMessage is what a caller builds;
// SessionContent is the part a campaign file describes (its string fields may hold templates,
// rendered per recipient with MapStrings); the JSON request body is built from them by
// Wire.EncodeSession and is private to this file, so the wire's field names live in one place.

// SessionPath is the path of the session send endpoint for a business.
func SessionPath(businessID string) string {
	return "/v1/businesses/" + url.PathEscape(businessID) + "/send/messages"
}

// channelWhatsApp is the channelType of the recipient and sender objects.
const channelWhatsApp = "whatsapp"

// BSUIDField says where a session send puts a BSUID recipient. The reference disagrees with
// itself (sections 3.1, 6 and 10): the current docs put a bare BSUID in recipient.id, the older
// ones in recipient.userId.
type BSUIDField string

const (
	// BSUIDInID sends {"recipient": {"id": "US.1349...", ...}} (the current docs; the default).
	BSUIDInID BSUIDField = "id"
	// BSUIDInUserID sends {"recipient": {"userId": "US.1349...", ...}} with no id (the older docs).
	BSUIDInUserID BSUIDField = "userId"
)

// ParseBSUIDField parses "id" (or "", the default) and "userId" (any case).
func ParseBSUIDField(s string) (BSUIDField, error) {
	switch {
	case s == "" || strings.EqualFold(s, string(BSUIDInID)):
		return BSUIDInID, nil
	case strings.EqualFold(s, string(BSUIDInUserID)):
		return BSUIDInUserID, nil
	}
	return "", fmt.Errorf("connectly: session BSUID field %q: want %q or %q", s, BSUIDInID, BSUIDInUserID)
}

// SessionKind names the content of a session message.
type SessionKind string

// The session content kinds, named as a campaign file names them.
const (
	KindText          SessionKind = "text"
	KindAttachment    SessionKind = "attachment"
	KindLocation      SessionKind = "location"
	KindReplyButtons  SessionKind = "reply_buttons"
	KindList          SessionKind = "list"
	KindSingleProduct SessionKind = "single_product"
	KindMultiProduct  SessionKind = "multi_product"
	// KindRaw (rawmessage.go) is a whole Connectly message object, sent as written.
)

// OtherKinds names, as a campaign file writes them, the kinds a message may set instead of
// text alone.
const OtherKinds = "attachment, location, reply_buttons, list, single_product, multi_product, raw"

// Limits checked by Validate. The text limit is Meta's for a text message; the others are
// Meta's documented limits for WhatsApp media and interactive messages (Cloud API reference,
// "Messages": media caption, interactive body/header/footer, reply buttons, list rows and
// sections). Connectly documents none of them; it passes the message to Meta, which refuses it.
// Characters are counted as Unicode code points: Meta says "characters" without saying how it
// counts them, so a text full of emoji sequences or combining marks may be measured differently.
const (
	MaxSessionText     = 4096 // text body of a text message
	MaxInteractiveBody = 1024 // body text of reply-button, list and product messages
	MaxCaption         = 1024 // attachment caption
	MaxHeaderText      = 60   // text header of reply-button and list messages
	MaxFooterText      = 60   // footer of reply-button and list messages
	MaxReplyButtons    = 3    // buttons in a reply-button message
	MaxButtonText      = 20   // reply button title, and the list's button text
	MaxButtonID        = 256  // reply button id
	MaxListRows        = 10   // rows in all sections of a list
	MaxListSections    = 10   // sections of a list
	MaxSectionTitle    = 24   // list section title
	MaxRowText         = 24   // list row title
	MaxRowDescription  = 72   // list row description
	MaxRowID           = 200  // list row id
)

// SessionMessage is one session message to one recipient: who it goes to and what it says.
type SessionMessage struct {
	// To is the recipient in Herald's form: E.164 ("+16044441111") or "bsuid:<BSUID>". A BSUID
	// goes out bare, in recipient.id or recipient.userId (see BSUIDField).
	To string
	// Name is the optional recipient.name.
	Name string
	// Sender is the business number in E.164, sent as {"id", "channelType"}; optional when the
	// business has one number.
	Sender string
	// ID is the optional client-chosen message.id (nothing documents that it deduplicates).
	ID string
	// CallbackData is echoed back on webhook events for this message; at most 1,024 bytes.
	CallbackData json.RawMessage
	// CampaignName is the campaign the send belongs to; it goes out as campaignName only
	// when the client's Wire.CampaignName says so.
	CampaignName string
	// Content is what the message says: exactly one kind.
	Content SessionContent
}

// SessionContent is the content of a session message: exactly one kind. Text alone is a text
// message; any other kind is set through its own field, with Text as its body where the kind
// has one (required for reply buttons, lists and multi-product messages, optional for a single
// product, not allowed with an attachment, a location or a raw object). A campaign file's
// message: block decodes into it (YAML or JSON, snake_case keys). Raw is the way out for what
// the typed kinds do not model: a whole Connectly message object (see rawmessage.go).
type SessionContent struct {
	Text          string        `yaml:"text,omitempty" json:"text,omitempty"`
	Attachment    *Attachment   `yaml:"attachment,omitempty" json:"attachment,omitempty"`
	Location      *Location     `yaml:"location,omitempty" json:"location,omitempty"`
	ReplyButtons  *ReplyButtons `yaml:"reply_buttons,omitempty" json:"reply_buttons,omitempty"`
	List          *List         `yaml:"list,omitempty" json:"list,omitempty"`
	SingleProduct RawObject     `yaml:"single_product,omitempty" json:"single_product,omitempty"`
	MultiProduct  RawObject     `yaml:"multi_product,omitempty" json:"multi_product,omitempty"`
	Raw           RawObject     `yaml:"raw,omitempty" json:"raw,omitempty"`
}

// Attachment is one media item. Only one is allowed per message (Connectly answers more with
// ERROR_CODE_MESSAGE_ATTACHMENTS_NUMBER_INVALID).
type Attachment struct {
	// Type is image, video, audio or document.
	Type string `yaml:"type" json:"type"`
	// URL is the absolute http(s) URL Connectly fetches the media from.
	URL string `yaml:"url" json:"url"`
	// Caption is shown under the media; Meta allows none on audio.
	Caption string `yaml:"caption,omitempty" json:"caption,omitempty"`
	// Filename is the name shown for a document; documents only.
	Filename string `yaml:"filename,omitempty" json:"filename,omitempty"`
}

// AttachmentTypes are the attachment types the reference lists.
var AttachmentTypes = []string{"image", "video", "audio", "document"}

// Location is a map pin. The reference's page is cut off after "latitude, l..."; name and
// address are from public client code (reference 3.1).
type Location struct {
	// Latitude and Longitude are required: nil when not given, since 0 is a coordinate like
	// any other (a pin at 0,0 written out is sent as written).
	Latitude  *float64 `yaml:"latitude" json:"latitude"`
	Longitude *float64 `yaml:"longitude" json:"longitude"`
	Name      string   `yaml:"name,omitempty" json:"name,omitempty"`
	Address   string   `yaml:"address,omitempty" json:"address,omitempty"`
}

// ReplyButtons is an interactive message with up to three buttons; SessionContent.Text is its
// body. A tap comes back as an inbound message naming the button's id.
type ReplyButtons struct {
	Buttons []Button `yaml:"buttons" json:"buttons"`
	Header  string   `yaml:"header,omitempty" json:"header,omitempty"`
	Footer  string   `yaml:"footer,omitempty" json:"footer,omitempty"`
}

// Button is one reply button.
type Button struct {
	ID   string `yaml:"id" json:"id"`
	Text string `yaml:"text" json:"text"`
}

// List is an interactive list: a button that opens sections of rows; SessionContent.Text is
// its body.
type List struct {
	// Button is the text of the button that opens the list.
	Button   string    `yaml:"button" json:"button"`
	Sections []Section `yaml:"sections" json:"sections"`
	Header   string    `yaml:"header,omitempty" json:"header,omitempty"`
	Footer   string    `yaml:"footer,omitempty" json:"footer,omitempty"`
}

// Section is one titled group of list rows; the title is required when there is more than one
// section (Meta).
type Section struct {
	Title string `yaml:"title,omitempty" json:"title,omitempty"`
	Rows  []Row  `yaml:"rows" json:"rows"`
}

// Row is one choice of a list.
type Row struct {
	ID          string `yaml:"id" json:"id"`
	Text        string `yaml:"text" json:"text"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
}

// RawObject is a JSON object sent as written: the product messages, whose fields neither
// Connectly nor the reference documents, and a raw message. It decodes from JSON, and from YAML (the mapping is
// converted to JSON).
type RawObject json.RawMessage

// MarshalJSON returns the object itself ("null" when empty, which Validate never lets out).
func (r RawObject) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return json.RawMessage(r).MarshalJSON()
}

// UnmarshalJSON keeps a copy of the raw value; Validate checks that it is an object.
func (r *RawObject) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r = nil
		return nil
	}
	*r = append((*r)[:0], b...)
	return nil
}

// MaxRawYAML bounds a RawObject written in YAML, aliases expanded, before it is decoded: the
// bytes of its scalars plus one for every node, which is about the size of its JSON. It is
// four times MaxRawMessage, which the object must meet compacted anyway (Validate), so no
// object Validate accepts is refused here; and it keeps an alias bomb (a long text repeated
// by thousands of aliases) from being expanded into gigabytes of JSON.
const MaxRawYAML = 4 * MaxRawMessage

// UnmarshalYAML converts a YAML mapping to JSON. A mapping whose aliases expand it past
// MaxRawYAML is refused before it is decoded.
func (r *RawObject) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping (a JSON object)", n.Line)
	}
	if nodes, bytes := yamlsize.Expanded(n, MaxRawYAML+1, MaxRawYAML+1); nodes+bytes > MaxRawYAML {
		return fmt.Errorf("line %d: more than %d bytes, aliases expanded (a message object is at most %d bytes as JSON)", n.Line, MaxRawYAML, MaxRawMessage)
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*r = b
	return nil
}

// Kinds returns the kinds the content sets: one for valid content. Text alone is KindText;
// with another kind it is that kind's body.
func (c SessionContent) Kinds() []SessionKind {
	var ks []SessionKind
	if c.Attachment != nil {
		ks = append(ks, KindAttachment)
	}
	if c.Location != nil {
		ks = append(ks, KindLocation)
	}
	if c.ReplyButtons != nil {
		ks = append(ks, KindReplyButtons)
	}
	if c.List != nil {
		ks = append(ks, KindList)
	}
	if len(c.SingleProduct) > 0 {
		ks = append(ks, KindSingleProduct)
	}
	if len(c.MultiProduct) > 0 {
		ks = append(ks, KindMultiProduct)
	}
	if len(c.Raw) > 0 {
		ks = append(ks, KindRaw)
	}
	if len(ks) == 0 && c.Text != "" {
		ks = append(ks, KindText)
	}
	return ks
}

// Kind returns the content's kind, or "" when it sets none or more than one.
func (c SessionContent) Kind() SessionKind {
	if ks := c.Kinds(); len(ks) == 1 {
		return ks[0]
	}
	return ""
}

// MapStrings returns a deep copy of c with f applied to every non-empty text field a person
// reads or a reply carries back: text, the attachment's url, caption and filename, the
// location's name and address, the buttons' ids and texts, the list's button, header, footer,
// section titles and rows, and every string value of a raw object. field names it as Validate
// does ("list.sections[0].rows[2].text", "raw.attachments[0].caption"). The attachment type,
// coordinates and product objects are copied unchanged. It is how a
// campaign renders its message per recipient; Validate the result.
func (c SessionContent) MapStrings(f func(field, s string) (string, error)) (SessionContent, error) {
	var firstErr error
	m := func(field string, s *string) {
		if firstErr != nil || *s == "" {
			return
		}
		out, err := f(field, *s)
		if err != nil {
			firstErr = fmt.Errorf("%s: %w", field, err)
			return
		}
		*s = out
	}
	out := SessionContent{Text: c.Text}
	m("text", &out.Text)
	if a := c.Attachment; a != nil {
		cp := *a
		m("attachment.url", &cp.URL)
		m("attachment.caption", &cp.Caption)
		m("attachment.filename", &cp.Filename)
		out.Attachment = &cp
	}
	if l := c.Location; l != nil {
		cp := *l
		m("location.name", &cp.Name)
		m("location.address", &cp.Address)
		out.Location = &cp
	}
	if rb := c.ReplyButtons; rb != nil {
		cp := ReplyButtons{Header: rb.Header, Footer: rb.Footer}
		if rb.Buttons != nil {
			cp.Buttons = append([]Button{}, rb.Buttons...)
		}
		m("reply_buttons.header", &cp.Header)
		m("reply_buttons.footer", &cp.Footer)
		for i := range cp.Buttons {
			p := "reply_buttons.buttons[" + strconv.Itoa(i) + "]"
			m(p+".id", &cp.Buttons[i].ID)
			m(p+".text", &cp.Buttons[i].Text)
		}
		out.ReplyButtons = &cp
	}
	if l := c.List; l != nil {
		cp := List{Button: l.Button, Header: l.Header, Footer: l.Footer}
		m("list.button", &cp.Button)
		m("list.header", &cp.Header)
		m("list.footer", &cp.Footer)
		if l.Sections != nil {
			cp.Sections = make([]Section, len(l.Sections))
		}
		for i, s := range l.Sections {
			p := "list.sections[" + strconv.Itoa(i) + "]"
			cs := Section{Title: s.Title}
			if s.Rows != nil {
				cs.Rows = append([]Row{}, s.Rows...)
			}
			m(p+".title", &cs.Title)
			for j := range cs.Rows {
				rp := p + ".rows[" + strconv.Itoa(j) + "]"
				m(rp+".id", &cs.Rows[j].ID)
				m(rp+".text", &cs.Rows[j].Text)
				m(rp+".description", &cs.Rows[j].Description)
			}
			cp.Sections[i] = cs
		}
		out.List = &cp
	}
	if c.SingleProduct != nil {
		out.SingleProduct = append(RawObject{}, c.SingleProduct...)
	}
	if c.MultiProduct != nil {
		out.MultiProduct = append(RawObject{}, c.MultiProduct...)
	}
	if c.Raw != nil && firstErr == nil {
		raw, err := mapRawStrings(c.Raw, f)
		if err != nil {
			firstErr = err
		}
		out.Raw = raw
	}
	if firstErr != nil {
		return SessionContent{}, firstErr
	}
	return out, nil
}

// ErrInvalidMessage is wrapped by every error Validate returns.
var ErrInvalidMessage = errors.New("invalid session message")

// Problem is one thing wrong with one field of a session message.
type Problem struct {
	// Field names the field as a campaign file writes it: "text", "attachment.url",
	// "reply_buttons.buttons[3]" (indices from 0), "to".
	Field string
	Msg   string
}

func (p Problem) String() string { return p.Field + ": " + p.Msg }

// InvalidMessageError lists every problem Validate found. It wraps ErrInvalidMessage.
type InvalidMessageError struct {
	Problems []Problem
}

func (e *InvalidMessageError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "connectly: invalid session message: " + strings.Join(parts, "; ")
}

func (e *InvalidMessageError) Unwrap() error { return ErrInvalidMessage }

var (
	e164RE  = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	bsuidRE = regexp.MustCompile(`^[A-Z]{2}\.[A-Za-z0-9]+$`)
)

// validator collects problems.
type validator struct{ problems []Problem }

func (v *validator) add(field, format string, args ...any) {
	v.problems = append(v.problems, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// text checks a string field: valid UTF-8, present when required, at most max characters
// (0: no limit).
func (v *validator) text(field, s string, required bool, max int) {
	switch {
	case !utf8.ValidString(s):
		v.add(field, "not valid UTF-8")
	case strings.TrimSpace(s) == "":
		if required {
			v.add(field, "required")
		} else if s != "" {
			v.add(field, "blank")
		}
	case max > 0:
		if n := utf8.RuneCountInString(s); n > max {
			v.add(field, "%d characters, at most %d", n, max)
		}
	}
}

// Validate checks the whole message against the limits above and the reference's rules,
// before anything is sent. It returns an error wrapping ErrInvalidMessage (an
// *InvalidMessageError listing every problem), or nil.
func (m SessionMessage) Validate() error {
	var v validator
	switch {
	case m.To == "":
		v.add("to", "required")
	case strings.HasPrefix(m.To, "bsuid:"):
		if !bsuidRE.MatchString(m.To[len("bsuid:"):]) {
			v.add("to", "%q is not a BSUID (country code, '.', letters and digits)", m.To)
		}
	case !e164RE.MatchString(m.To):
		v.add("to", "%q is not an E.164 number or bsuid:<BSUID>", m.To)
	}
	v.text("name", m.Name, false, 0)
	if m.Sender != "" && !e164RE.MatchString(m.Sender) {
		v.add("sender", "%q is not an E.164 number", m.Sender)
	}
	v.text("id", m.ID, false, 0)
	v.text("campaign_name", m.CampaignName, false, 0)
	if len(m.CallbackData) > 0 {
		if !json.Valid(m.CallbackData) {
			v.add("callback_data", "not valid JSON")
		} else if n := compactLen(m.CallbackData); n > MaxCallbackData {
			v.add("callback_data", "%d bytes, at most %d", n, MaxCallbackData)
		}
	}
	m.Content.validate(&v)
	if m.ID != "" && m.Content.Kind() == KindRaw && rawSets(m.Content.Raw, "id") {
		v.add("id", "also set in the raw object: set one")
	}
	if len(v.problems) > 0 {
		return &InvalidMessageError{Problems: v.problems}
	}
	return nil
}

// Validate checks the content alone (see SessionMessage.Validate), e.g. a campaign's message
// once rendered for a recipient.
func (c SessionContent) Validate() error {
	var v validator
	c.validate(&v)
	if len(v.problems) > 0 {
		return &InvalidMessageError{Problems: v.problems}
	}
	return nil
}

// compactLen is the length of valid JSON b as the encoder sends it (compacted, no HTML escapes).
func compactLen(b []byte) int {
	out, err := EncodeJSON(json.RawMessage(b))
	if err != nil {
		return len(b)
	}
	return len(out)
}

func (c SessionContent) validate(v *validator) {
	ks := c.Kinds()
	switch {
	case len(ks) == 0:
		v.add("text", "required: a message needs text or one of "+OtherKinds)
		return
	case len(ks) > 1:
		names := make([]string, len(ks))
		for i, k := range ks {
			names[i] = string(k)
		}
		v.add(string(ks[1]), "a message has exactly one kind, this one also sets %s", strings.Join(names, ", "))
		return
	}
	switch ks[0] {
	case KindText:
		v.text("text", c.Text, true, MaxSessionText)
	case KindAttachment:
		if c.Text != "" {
			v.add("text", "not allowed with an attachment: use attachment.caption")
		}
		c.Attachment.validate(v)
	case KindLocation:
		if c.Text != "" {
			v.add("text", "not allowed with a location")
		}
		c.Location.validate(v)
	case KindReplyButtons:
		v.text("text", c.Text, true, MaxInteractiveBody)
		c.ReplyButtons.validate(v)
	case KindList:
		v.text("text", c.Text, true, MaxInteractiveBody)
		c.List.validate(v)
	case KindSingleProduct:
		v.text("text", c.Text, false, MaxInteractiveBody)
		validateObject(v, "single_product", c.SingleProduct)
	case KindMultiProduct:
		v.text("text", c.Text, true, MaxInteractiveBody)
		validateObject(v, "multi_product", c.MultiProduct)
	case KindRaw:
		if c.Text != "" {
			v.add("text", "not allowed with raw: put text inside the raw object")
		}
		validateRaw(v, c.Raw)
	}
}

func (a *Attachment) validate(v *validator) {
	switch a.Type {
	case "image", "video", "audio", "document":
	case "":
		v.add("attachment.type", "required: one of %s", strings.Join(AttachmentTypes, ", "))
	default:
		v.add("attachment.type", "%q: want one of %s", a.Type, strings.Join(AttachmentTypes, ", "))
	}
	if a.URL == "" {
		v.add("attachment.url", "required")
	} else if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !utf8.ValidString(a.URL) {
		v.add("attachment.url", "%q is not an absolute http(s) URL", a.URL)
	}
	if a.Type == "audio" && a.Caption != "" {
		v.add("attachment.caption", "not allowed on audio (Meta)")
	} else {
		v.text("attachment.caption", a.Caption, false, MaxCaption)
	}
	if a.Filename != "" && a.Type != "document" {
		v.add("attachment.filename", "for documents only")
	} else {
		v.text("attachment.filename", a.Filename, false, 0)
	}
}

func (l *Location) validate(v *validator) {
	coordinate(v, "location.latitude", l.Latitude, 90)
	coordinate(v, "location.longitude", l.Longitude, 180)
	// Neither the reference nor Meta's location message docs (as far as we know) give a length
	// for name or address, so none is checked here; Meta may still refuse a very long one.
	v.text("location.name", l.Name, false, 0)
	v.text("location.address", l.Address, false, 0)
}

// coordinate checks a latitude or longitude: given, and within -limit..limit.
func coordinate(v *validator, field string, c *float64, limit float64) {
	switch {
	case c == nil:
		v.add(field, "required")
	case math.IsNaN(*c) || *c < -limit || *c > limit:
		v.add(field, "%v: want %v to %v", *c, -limit, limit)
	}
}

func (rb *ReplyButtons) validate(v *validator) {
	if len(rb.Buttons) == 0 {
		v.add("reply_buttons.buttons", "required: 1 to %d buttons", MaxReplyButtons)
	}
	ids, texts := map[string]int{}, map[string]int{}
	for i, b := range rb.Buttons {
		p := "reply_buttons.buttons[" + strconv.Itoa(i) + "]"
		if i >= MaxReplyButtons {
			v.add(p, "at most %d buttons", MaxReplyButtons)
			continue
		}
		v.text(p+".id", b.ID, true, MaxButtonID)
		v.text(p+".text", b.Text, true, MaxButtonText)
		// Meta's reply-button docs require unique titles; unique ids are Herald's rule, or two
		// taps could not be told apart.
		if j, dup := ids[b.ID]; dup && b.ID != "" {
			v.add(p+".id", "%q is also the id of buttons[%d]", b.ID, j)
		}
		if j, dup := texts[b.Text]; dup && b.Text != "" {
			v.add(p+".text", "%q is also the text of buttons[%d]", b.Text, j)
		}
		ids[b.ID], texts[b.Text] = i, i
	}
	v.text("reply_buttons.header", rb.Header, false, MaxHeaderText)
	v.text("reply_buttons.footer", rb.Footer, false, MaxFooterText)
}

func (l *List) validate(v *validator) {
	v.text("list.button", l.Button, true, MaxButtonText)
	v.text("list.header", l.Header, false, MaxHeaderText)
	v.text("list.footer", l.Footer, false, MaxFooterText)
	if len(l.Sections) == 0 {
		v.add("list.sections", "required: at least one section with rows")
	}
	if len(l.Sections) > MaxListSections {
		v.add("list.sections["+strconv.Itoa(MaxListSections)+"]", "at most %d sections", MaxListSections)
	}
	rows := 0
	ids := map[string]string{}
	for i, s := range l.Sections {
		p := "list.sections[" + strconv.Itoa(i) + "]"
		// Meta requires a title on every section when there is more than one.
		v.text(p+".title", s.Title, len(l.Sections) > 1, MaxSectionTitle)
		if len(s.Rows) == 0 {
			v.add(p+".rows", "required: at least one row")
		}
		for j, r := range s.Rows {
			rp := p + ".rows[" + strconv.Itoa(j) + "]"
			rows++
			if rows > MaxListRows {
				v.add(rp, "at most %d rows in all sections", MaxListRows)
				continue
			}
			v.text(rp+".id", r.ID, true, MaxRowID)
			v.text(rp+".text", r.Text, true, MaxRowText)
			v.text(rp+".description", r.Description, false, MaxRowDescription)
			// Unique across sections: the reply names only the row id. This is Herald's rule;
			// Meta's docs, as far as the reference records them, do not state one.
			if other, dup := ids[r.ID]; dup && r.ID != "" {
				v.add(rp+".id", "%q is also the id of %s", r.ID, other)
			}
			ids[r.ID] = rp
		}
	}
}

func validateObject(v *validator, field string, raw RawObject) {
	var obj map[string]json.RawMessage
	switch err := json.Unmarshal(raw, &obj); {
	case err != nil || obj == nil:
		v.add(field, "want a JSON object")
	case !utf8.Valid(raw):
		// It would go out as written, and JSON is UTF-8.
		v.add(field, "not valid UTF-8")
	default:
		// It is copied into every recipient's message, as a raw object is: the same bound.
		if n := compactLen(raw); n > MaxRawMessage {
			v.add(field, "%d bytes, at most %d", n, MaxRawMessage)
		}
	}
}

// The request body (reference 3.1), camelCase as the reference writes it. These types are the
// wire's and nothing else's: the spec types above may change their keys without changing it.
type sessionRequest struct {
	Recipient sessionRecipient `json:"recipient"`
	Sender    *sessionSender   `json:"sender,omitempty"`
	// Message is a sessionBody, or a raw message's object (json.RawMessage).
	Message      any             `json:"message"`
	CallbackData json.RawMessage `json:"callbackData,omitempty"`
	CampaignName string          `json:"campaignName,omitempty"`
}

type sessionRecipient struct {
	ID          string `json:"id,omitempty"`
	UserID      string `json:"userId,omitempty"`
	ChannelType string `json:"channelType"`
	Name        string `json:"name,omitempty"`
}

type sessionSender struct {
	ID          string `json:"id"`
	ChannelType string `json:"channelType"`
}

type sessionBody struct {
	ID                   string            `json:"id,omitempty"`
	Text                 string            `json:"text,omitempty"`
	Attachments          []wireAttachment  `json:"attachments,omitempty"`
	Location             *wireLocation     `json:"location,omitempty"`
	ReplyButtonMessage   *wireReplyButtons `json:"replyButtonMessage,omitempty"`
	ListMessage          *wireList         `json:"listMessage,omitempty"`
	SingleProductMessage json.RawMessage   `json:"singleProductMessage,omitempty"`
	MultiProductMessage  json.RawMessage   `json:"multiProductMessage,omitempty"`
}

type wireAttachment struct {
	Type     string `json:"type"`
	URL      string `json:"url"`
	Caption  string `json:"caption,omitempty"`
	Filename string `json:"filename,omitempty"`
}

type wireLocation struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
}

type wireText struct {
	Text string `json:"text"`
}

type wireReplyButtons struct {
	Buttons []wireButton `json:"buttons"`
	Header  *wireText    `json:"header,omitempty"`
	Footer  *wireText    `json:"footer,omitempty"`
}

type wireButton struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

type wireList struct {
	Button   wireText      `json:"button"`
	Sections []wireSection `json:"sections"`
	Header   *wireText     `json:"header,omitempty"`
	Footer   *wireText     `json:"footer,omitempty"`
}

type wireSection struct {
	Title string    `json:"title,omitempty"`
	Rows  []wireRow `json:"rows"`
}

type wireRow struct {
	ID          string `json:"id"`
	Text        string `json:"text"`
	Description string `json:"description,omitempty"`
}

func optText(s string) *wireText {
	if s == "" {
		return nil
	}
	return &wireText{Text: s}
}

// sessionRecipientOf is the one place that decides where a recipient goes: a phone number in
// recipient.id; a "bsuid:" recipient, bare, in the field f names.
func sessionRecipientOf(to, name string, f BSUIDField) sessionRecipient {
	r := sessionRecipient{ChannelType: channelWhatsApp, Name: name}
	bsuid, isBSUID := strings.CutPrefix(to, "bsuid:")
	switch {
	case isBSUID && f == BSUIDInUserID:
		r.UserID = bsuid
	case isBSUID:
		r.ID = bsuid
	default:
		r.ID = to
	}
	return r
}

// EncodeSession validates msg and returns the exact request body SendSession sends for it with
// a client of this Wire: a BSUID recipient placed as w.BSUIDField says, campaignName kept or
// dropped as w.CampaignName says. It is what `plan` shows.
func (w Wire) EncodeSession(msg SessionMessage) ([]byte, error) {
	f, err := ParseBSUIDField(string(w.BSUIDField))
	if err != nil {
		return nil, err
	}
	if err := msg.Validate(); err != nil {
		return nil, err
	}
	c := msg.Content
	req := sessionRequest{
		Recipient:    sessionRecipientOf(msg.To, msg.Name, f),
		CallbackData: msg.CallbackData,
		CampaignName: w.campaignName(msg.CampaignName),
	}
	if msg.Sender != "" {
		req.Sender = &sessionSender{ID: msg.Sender, ChannelType: channelWhatsApp}
	}
	if len(c.Raw) > 0 {
		if req.Message, err = rawBody(c.Raw, msg.ID); err != nil {
			return nil, err
		}
		return EncodeJSON(req)
	}
	body := sessionBody{ID: msg.ID, Text: c.Text}
	if a := c.Attachment; a != nil {
		body.Attachments = []wireAttachment{{Type: a.Type, URL: a.URL, Caption: a.Caption, Filename: a.Filename}}
	}
	if l := c.Location; l != nil {
		// Validate has made sure both coordinates are given.
		body.Location = &wireLocation{Latitude: *l.Latitude, Longitude: *l.Longitude, Name: l.Name, Address: l.Address}
	}
	if rb := c.ReplyButtons; rb != nil {
		w := &wireReplyButtons{Buttons: make([]wireButton, len(rb.Buttons)), Header: optText(rb.Header), Footer: optText(rb.Footer)}
		for i, b := range rb.Buttons {
			w.Buttons[i] = wireButton(b)
		}
		body.ReplyButtonMessage = w
	}
	if l := c.List; l != nil {
		w := &wireList{Button: wireText{Text: l.Button}, Sections: make([]wireSection, len(l.Sections)), Header: optText(l.Header), Footer: optText(l.Footer)}
		for i, s := range l.Sections {
			ws := wireSection{Title: s.Title, Rows: make([]wireRow, len(s.Rows))}
			for j, r := range s.Rows {
				ws.Rows[j] = wireRow(r)
			}
			w.Sections[i] = ws
		}
		body.ListMessage = w
	}
	if len(c.SingleProduct) > 0 {
		body.SingleProductMessage = json.RawMessage(c.SingleProduct)
	}
	if len(c.MultiProduct) > 0 {
		body.MultiProductMessage = json.RawMessage(c.MultiProduct)
	}
	req.Message = body
	return EncodeJSON(req)
}

// EncodeSession returns the request body SendSession would send for msg with this client's
// configuration.
func (c *Client) EncodeSession(msg SessionMessage) ([]byte, error) {
	return c.wire.EncodeSession(msg)
}

// SendSession validates and sends one session message. On success it returns Connectly's
// message id. Errors are those of SendTemplate, read by the same Table.Decide, plus an error
// wrapping ErrInvalidMessage when msg fails Validate (nothing is sent). An answer that says the
// customer's 24-hour window is closed is a refusal whose Decision.WindowClosed() is true (see
// IsWindowClosed): it is never retried, since only a new message from the customer reopens
// the window.
func (c *Client) SendSession(ctx context.Context, msg SessionMessage) (SendResult, error) {
	body, err := c.EncodeSession(msg)
	if err != nil {
		return SendResult{}, err
	}
	return c.send(ctx, SessionPath(c.businessID), body)
}
