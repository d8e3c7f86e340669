package webhooks

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
)

// ReplyKind says what an inbound message is.
type ReplyKind string

// Kinds of inbound message. A message that is several things at once (a button reply whose
// button text is also in message.text) takes the first that applies in this order: list,
// button, media, location, text, other.
const (
	// ReplyList is a choice from a list message.
	ReplyList ReplyKind = "list"
	// ReplyButton is a tap on a quick-reply button, in any of the documented shapes.
	ReplyButton ReplyKind = "button"
	// ReplyMedia is a message with attachments (image, video, document, audio...).
	ReplyMedia ReplyKind = "media"
	// ReplyLocation is a shared location.
	ReplyLocation ReplyKind = "location"
	// ReplyText is a plain text message.
	ReplyText ReplyKind = "text"
	// ReplyOther is anything else that came on the messages topic: a reaction, a referral
	// without text, a quoted reply with no content Herald reads.
	ReplyOther ReplyKind = "other"
)

// Customer is the person behind an inbound message: the webhook's sender (reference 5.4, 6).
type Customer struct {
	// Phone is the number in E.164 ("+" and digits); "" for a customer who hides it.
	Phone string `json:"phone,omitempty"`
	// BSUID is the business-scoped user id (e.g. "US.13491208655302741918"), without
	// Herald's "bsuid:" prefix; "" on numbers without BSUIDs.
	BSUID string `json:"bsuid,omitempty"`
}

// Keys returns the ledger keys the customer may be known by: the phone number, then the
// BSUID in Herald's "bsuid:<id>" form.
func (c Customer) Keys() []string {
	var out []string
	if c.Phone != "" {
		out = append(out, c.Phone)
	}
	if c.BSUID != "" {
		out = append(out, "bsuid:"+c.BSUID)
	}
	return out
}

// ButtonReply is the quick-reply button a customer tapped.
type ButtonReply struct {
	// Text is the button's label as the customer saw it.
	Text string `json:"text,omitempty"`
	// Payload is the payload set on the button when the template was sent.
	Payload string `json:"payload,omitempty"`
	// ID is the button's id, in the shape that carries one instead of a payload.
	ID string `json:"id,omitempty"`
}

// Label is what the run's statistics count the tap under: the text, else the payload, else
// the id.
func (b *ButtonReply) Label() string {
	if b == nil {
		return ""
	}
	return cmp.Or(b.Text, b.Payload, b.ID)
}

// ListReply is the row a customer chose from a list message.
type ListReply struct {
	// ID is the row's id.
	ID string `json:"id,omitempty"`
	// Text is the row's title.
	Text string `json:"text,omitempty"`
	// Description is the row's description, when the body carries it.
	Description string `json:"description,omitempty"`
}

// Attachment is one media item of an inbound message.
type Attachment struct {
	Type string `json:"type,omitempty"`
	URL  string `json:"url,omitempty"`
}

// Inbound is an inbound message (messages topic) normalised from every shape of reference
// 5.4: message.text; message.attachments; message.location; message.isButtonResponse;
// context.replyToId with buttonResponse {text, payload}; a top-level buttonResponse {text,
// id} with no message at all; and list replies, whose shape is not documented and are read
// from any listResponse- or listReply-like object in the body (a list choice may also come as
// a button reply: see RowIDs).
type Inbound struct {
	Kind ReplyKind `json:"kind"`
	// From is the customer who wrote.
	From Customer `json:"from"`
	// At is the event time (the body's timestamp); zero when absent.
	At time.Time `json:"at"`
	// MessageID is the inbound message's own id (message.id), when the body has one.
	MessageID string `json:"message_id,omitempty"`
	// ReplyTo is the id of the message replied to (context.replyToId): for a reply to
	// Herald's message, the id Connectly returned for the send.
	ReplyTo string `json:"reply_to,omitempty"`
	// Callback is Herald's callbackData echoed back (button and list replies, quoted replies,
	// reactions); nil on plain text and for callbackData Herald did not write.
	Callback *ledger.Address `json:"callback,omitempty"`
	// CallbackData is the callbackData exactly as received, whoever set it.
	CallbackData json.RawMessage `json:"callback_data,omitempty"`
	// Text is message.text (for a legacy button reply, the button's text), or a media caption.
	Text string `json:"text,omitempty"`
	// Button is set on a button reply.
	Button *ButtonReply `json:"button,omitempty"`
	// List is set on a list reply.
	List *ListReply `json:"list,omitempty"`
	// Attachments are the media of a media message.
	Attachments []Attachment `json:"attachments,omitempty"`
	// OptOut is set by the receiver on a message it took as an opt-out (a STOP keyword or
	// button): the reply handler records it and triggers only a rule with suppress: true,
	// which confirms the opt-out.
	OptOut bool `json:"opt_out,omitempty"`
	// Location is the shared location as received (its shape is not documented).
	Location json.RawMessage `json:"location,omitempty"`
	// Raw is the whole webhook body, for what this type does not read. It shares the bytes
	// given to Parse.
	Raw json.RawMessage `json:"-"`
}

// Answers returns the values a reply can be matched on, each once, most specific first: the
// button's payload and id, the list row's id, the button's text, the row's text, the
// message's text. An opt-out word, or a rule such as "a reply YES to campaign X", matches
// any of them.
func (in *Inbound) Answers() []string {
	if in == nil {
		return nil
	}
	var vals []string
	if b := in.Button; b != nil {
		vals = append(vals, b.Payload, b.ID)
	}
	if l := in.List; l != nil {
		vals = append(vals, l.ID)
	}
	if b := in.Button; b != nil {
		vals = append(vals, b.Text)
	}
	if l := in.List; l != nil {
		vals = append(vals, l.Text)
	}
	vals = append(vals, in.Text)
	var out []string
	for _, v := range vals {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// RowIDs returns the list row ids a reply with button reply b and list reply l (either nil)
// may have chosen, in every inbound shape Herald reads: the list reply's row id, else the
// button reply's payload and id. This is the one place that says where a list choice is read;
// on_reply's list_row rules match these (conversation.Match), as the opt-out words match every
// answer (Answers).
//
// (inferred) Reference 5.4 documents no list reply shape ("expect the row id and text in a
// listResponse-like object"), and a receiver may meet a list choice reported the way the
// GitBook documents a button reply, buttonResponse {text: <row title>, payload: <row id>}
// (the fake's webhooks.listReply: button-response). Nothing tells that from a tap on a
// quick-reply button, so it keeps the kind ReplyButton (a button rule that names its text or
// payload matches it, as for any tap), and its payload and id are read as row ids too. A list
// reply is never read as a button: its row does not match a button rule.
func RowIDs(b *ButtonReply, l *ListReply) []string {
	var vals []string
	switch {
	case l != nil:
		vals = []string{l.ID}
	case b != nil:
		vals = []string{b.Payload, b.ID}
	}
	var out []string
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// inboundMessage is the message object of an inbound event. Attachments and location are
// read tolerantly: their shapes vary between the documented examples.
type inboundMessage struct {
	ID               flexString      `json:"id"`
	Text             flexString      `json:"text"`
	IsButtonResponse flexString      `json:"isButtonResponse"`
	Attachments      json.RawMessage `json:"attachments"`
	Location         json.RawMessage `json:"location"`
}

// Folded names (lower case, no '_' or '-') of the objects that carry a button or list reply.
// Only buttonResponse is documented; the others are the spellings a tolerant reader expects
// (WhatsApp's own button / button_reply / list_reply among them).
var (
	buttonNames = map[string]bool{"buttonresponse": true, "buttonreply": true, "button": true, "quickreply": true, "quickreplyresponse": true}
	listNames   = map[string]bool{"listresponse": true, "listreply": true, "listselection": true, "listitemresponse": true, "listitemreply": true}
	// skipNames are objects never searched for replies: they are not the customer's answer.
	skipNames = map[string]bool{"callbackdata": true, "metadata": true, "sender": true, "recipient": true, "statusupdate": true, "referral": true}
)

var keyFolder = strings.NewReplacer("_", "", "-", "")

// foldKey folds a JSON key for tolerant matching.
func foldKey(k string) string {
	return strings.ToLower(keyFolder.Replace(k))
}

// isInboundBody reports whether a body without a topic is an inbound message: it has a
// message or context object, or a button or list reply at its top level.
func isInboundBody(top map[string]any) bool {
	for k, v := range top {
		if v == nil {
			continue
		}
		switch f := foldKey(k); {
		case f == "message" || f == "context" || buttonNames[f] || listNames[f]:
			return true
		}
	}
	return false
}

// decodeTree decodes a body into maps, with numbers kept as text; nil when it is not an
// object.
func decodeTree(body []byte) map[string]any {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var m map[string]any
	if d.Decode(&m) != nil {
		return nil
	}
	return m
}

// parseInbound builds the normalised inbound message of a body already decoded as p and as
// the tree top.
func parseInbound(body []byte, p *payload, top map[string]any, at time.Time, cb *ledger.Address) *Inbound {
	in := &Inbound{At: at, Callback: cb, From: p.Sender.customer(), Raw: body}
	if raw := bytes.TrimSpace(p.CallbackData); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		var c bytes.Buffer
		if json.Compact(&c, raw) == nil {
			in.CallbackData = c.Bytes()
		}
	}
	// context is read from the tree: a context of an unexpected shape must not cost the reply.
	if c, ok := folded(top)["context"].(map[string]any); ok {
		in.ReplyTo = text(folded(c)["replytoid"])
	}
	attachments, location := p.Attachments, p.Location
	if m := p.Message; m != nil {
		in.MessageID = strings.TrimSpace(string(m.ID))
		in.Text = strings.TrimSpace(string(m.Text))
		if len(bytes.TrimSpace(m.Attachments)) > 0 {
			attachments = m.Attachments
		}
		if len(bytes.TrimSpace(m.Location)) > 0 {
			location = m.Location
		}
		if b := strings.ToLower(strings.TrimSpace(string(m.IsButtonResponse))); b == "true" || b == "1" {
			in.Button = &ButtonReply{Text: in.Text}
		}
	}
	in.Attachments = readAttachments(attachments)
	if l := bytes.TrimSpace(location); len(l) > 0 && !bytes.Equal(l, []byte("null")) && !bytes.Equal(l, []byte("{}")) {
		var c bytes.Buffer
		if json.Compact(&c, l) == nil {
			in.Location = c.Bytes()
		}
	}
	button, list := findReplies(top)
	if button != nil {
		if button.Text == "" && in.Button != nil {
			button.Text = in.Button.Text
		}
		in.Button = button
	}
	in.List = list
	switch {
	case in.List != nil:
		in.Kind = ReplyList
	case in.Button != nil:
		in.Kind = ReplyButton
	case len(in.Attachments) > 0:
		in.Kind = ReplyMedia
	case in.Location != nil:
		in.Kind = ReplyLocation
	case in.Text != "":
		in.Kind = ReplyText
	default:
		in.Kind = ReplyOther
	}
	return in
}

// readAttachments reads [{type, url}]; anything else gives none.
func readAttachments(raw json.RawMessage) []Attachment {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil
	}
	var items []map[string]any
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	var out []Attachment
	for _, it := range items {
		f := folded(it)
		a := Attachment{Type: text(f["type"]), URL: cmp.Or(text(f["url"]), text(f["link"]))}
		if a.Type != "" || a.URL != "" {
			out = append(out, a)
		}
	}
	return out
}

// findReplies searches the body, breadth first and at most four objects deep, for a button
// reply and a list reply; the shallowest of each wins, ties going to the key first in byte
// order.
func findReplies(top map[string]any) (*ButtonReply, *ListReply) {
	var (
		button *ButtonReply
		list   *ListReply
	)
	level := []map[string]any{top}
	for depth := 0; depth < 4 && len(level) > 0 && (button == nil || list == nil); depth++ {
		var next []map[string]any
		for _, obj := range level {
			keys := make([]string, 0, len(obj))
			for k := range obj {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				child, ok := obj[k].(map[string]any)
				if !ok {
					continue
				}
				f := foldKey(k)
				switch {
				case skipNames[f]:
					continue
				case buttonNames[f] && button == nil:
					button = buttonOf(child)
				case listNames[f] && list == nil:
					list = listOf(child)
				}
				next = append(next, child)
			}
		}
		level = next
	}
	return button, list
}

// buttonOf reads a button reply object; nil when it has none of the fields.
func buttonOf(obj map[string]any) *ButtonReply {
	f := folded(obj)
	b := &ButtonReply{
		Text:    cmp.Or(text(f["text"]), text(f["title"]), text(f["buttontext"])),
		Payload: cmp.Or(text(f["payload"]), text(f["postbackdata"])),
		ID:      cmp.Or(text(f["id"]), text(f["buttonid"])),
	}
	if *b == (ButtonReply{}) {
		return nil
	}
	return b
}

// listOf reads a list reply object, or the first object inside it that holds the row (e.g.
// {"row": {...}}); nil when none has the fields.
func listOf(obj map[string]any) *ListReply {
	f := folded(obj)
	l := &ListReply{
		ID:          cmp.Or(text(f["id"]), text(f["rowid"]), text(f["selectedrowid"]), text(f["postbackdata"]), text(f["payload"])),
		Text:        cmp.Or(text(f["text"]), text(f["title"]), text(f["rowtitle"]), text(f["selectedrowtitle"])),
		Description: cmp.Or(text(f["description"]), text(f["rowdescription"])),
	}
	if l.ID != "" || l.Text != "" {
		return l
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if child, ok := obj[k].(map[string]any); ok {
			f := folded(child)
			l := &ListReply{
				ID:          cmp.Or(text(f["id"]), text(f["rowid"]), text(f["payload"])),
				Text:        cmp.Or(text(f["text"]), text(f["title"])),
				Description: text(f["description"]),
			}
			if l.ID != "" || l.Text != "" {
				return l
			}
		}
	}
	return nil
}

// folded returns obj with its keys folded; of two keys that fold alike, the first in byte
// order wins.
func folded(obj map[string]any) map[string]any {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]any, len(obj))
	for _, k := range keys {
		f := foldKey(k)
		if _, dup := out[f]; !dup {
			out[f] = obj[k]
		}
	}
	return out
}

// text is a scalar's text, trimmed; objects, arrays and null give "".
func text(v any) string {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	return ""
}
