package conversation

import (
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// Reply is what a customer sent back, reduced to what rules match on and what the join
// needs.
type Reply struct {
	// Kind is the inbound message's kind (button, list, text, media, location, other).
	Kind webhooks.ReplyKind `json:"kind"`
	// From is the customer: phone number and/or BSUID.
	From webhooks.Customer `json:"from"`
	// At is the event time; zero when the body had none.
	At time.Time `json:"at,omitzero"`
	// ReplyTo is the id of the message replied to (context.replyToId), when given; without
	// callbackData, the join takes the run whose entry recorded it (Index.Join).
	ReplyTo string `json:"reply_to,omitempty"`
	// Callback is Herald's callbackData echoed back (button and list replies, quoted
	// replies); nil otherwise.
	Callback *ledger.Address `json:"callback,omitempty"`
	// ButtonPayload, ButtonID and ButtonText describe a tapped quick-reply button, in
	// whichever of the shapes the body had.
	ButtonPayload string `json:"button_payload,omitempty"`
	ButtonID      string `json:"button_id,omitempty"`
	ButtonText    string `json:"button_text,omitempty"`
	// ListRowID and ListRowText describe a chosen list row.
	ListRowID   string `json:"list_row_id,omitempty"`
	ListRowText string `json:"list_row_text,omitempty"`
	// Text is what the customer typed: a text message, a media caption, text sent with a
	// location. It is empty for button and list replies, whose text is the button's or the
	// row's and is not matched as keywords.
	Text string `json:"text,omitempty"`
	// MessageID is the inbound message's own id, when the body had one; the conversation
	// record uses it to keep a repeated webhook once.
	MessageID string `json:"message_id,omitempty"`
	// InboundKey names the inbound message whatever the number of its deliveries
	// (webhooks.InboundKey: its provider id, else a digest of the body): every copy of it is
	// joined to the entry its first copy was (see the join pin). "" makes one from MessageID.
	InboundKey string `json:"inbound_key,omitempty"`
	// OptOut is set when the receiver took the message as an opt-out: it is recorded in the
	// conversation and triggers no rule but one with suppress: true (the campaign's own
	// unsubscribe), whose confirmation goes.
	OptOut bool `json:"opt_out,omitempty"`
}

// rowIDs returns the list row ids r may have chosen (webhooks.RowIDs, the one place that says
// where a list choice is read): a list reply's row id, or a button reply's payload and id,
// the shape a list choice may come in.
func (r Reply) rowIDs() []string {
	switch r.Kind {
	case webhooks.ReplyList:
		return webhooks.RowIDs(nil, &webhooks.ListReply{ID: r.ListRowID, Text: r.ListRowText})
	case webhooks.ReplyButton:
		return webhooks.RowIDs(&webhooks.ButtonReply{Text: r.ButtonText, Payload: r.ButtonPayload, ID: r.ButtonID}, nil)
	}
	return nil
}

// asListChoice returns r as the choice of list row id: a button reply that a list_row rule
// matched (a list choice in the button reply's shape, webhooks.RowIDs) reads as the list reply
// it was, so its follow-up renders {{ .list_row }} as the row's id and {{ .reply }} as its
// title. A list reply is returned as it is.
func (r Reply) asListChoice(id string) Reply {
	if r.Kind != webhooks.ReplyButton {
		return r
	}
	r.Kind, r.ListRowID, r.ListRowText = webhooks.ReplyList, id, r.ButtonText
	r.ButtonPayload, r.ButtonID, r.ButtonText = "", "", ""
	return r
}

// ReplyOf returns the Reply of an inbound message.
func ReplyOf(in webhooks.Inbound) Reply {
	r := Reply{Kind: in.Kind, From: in.From, At: in.At, ReplyTo: in.ReplyTo, Callback: in.Callback, MessageID: in.MessageID,
		InboundKey: in.Key(), OptOut: in.OptOut}
	if b := in.Button; b != nil {
		r.ButtonPayload, r.ButtonID, r.ButtonText = b.Payload, b.ID, b.Text
	}
	if l := in.List; l != nil {
		r.ListRowID, r.ListRowText = l.ID, l.Text
	}
	if in.Kind != webhooks.ReplyButton && in.Kind != webhooks.ReplyList {
		r.Text = in.Text
	}
	return r
}
