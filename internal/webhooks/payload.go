package webhooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// Topics of Connectly's webhooks (reference 5.1).
const (
	TopicDeliveryStatus = "delivery_status"
	TopicMessages       = "messages"
)

// Statuses of statusUpdate.status. The reference once spells the failure "delivery_failure";
// both spellings are read as a failure.
const (
	StatusSent            = "sent"
	StatusDelivered       = "delivered"
	StatusRead            = "read"
	StatusDeliveryFailed  = "delivery_failed"
	statusDeliveryFailure = "delivery_failure"
)

// flexString decodes a JSON string, number or boolean as its text and null as "". Connectly
// documents timestamps and ids as strings; reading numbers too costs nothing and keeps an
// event from being refused over a representation change.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return errors.New("empty value")
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case b[0] == '{' || b[0] == '[':
		return fmt.Errorf("want a string, got %c", b[0])
	default:
		*f = flexString(b)
	}
	return nil
}

// party is a sender or recipient object: {id, channelType, name}, plus userId and phoneNumber
// on numbers with business-scoped user ids (reference 6).
type party struct {
	ID          flexString `json:"id"`
	ChannelType flexString `json:"channelType"`
	UserID      flexString `json:"userId"`
	PhoneNumber flexString `json:"phoneNumber"`
}

// customer returns who the party is: a phone number in E.164 (phoneNumber, else an id that
// is a number) and a business-scoped user id (userId, else an id that is one).
func (p *party) customer() Customer {
	if p == nil {
		return Customer{}
	}
	var c Customer
	for _, s := range []string{string(p.PhoneNumber), string(p.ID)} {
		if c.Phone = phoneOf(s); c.Phone != "" {
			break
		}
	}
	c.BSUID = strings.TrimPrefix(strings.TrimSpace(string(p.UserID)), "bsuid:")
	if id := strings.TrimSpace(string(p.ID)); c.BSUID == "" && phoneOf(id) == "" && strings.Contains(id, ".") {
		c.BSUID = strings.TrimPrefix(id, "bsuid:")
	}
	return c
}

// keys returns the ledger keys the party may be known by: a phone number in E.164, and a
// business-scoped user id in Herald's "bsuid:" form.
func (p *party) keys() []string { return p.customer().Keys() }

// phoneOf returns s as an E.164 number: s itself when it starts with '+', "+" and s when it
// is 7 to 15 digits; "" otherwise.
func phoneOf(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "+") && len(s) > 1 {
		return s
	}
	if len(s) < 7 || len(s) > 15 {
		return ""
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return ""
		}
	}
	return "+" + s
}

type statusUpdate struct {
	ID       flexString           `json:"id"`
	Status   flexString           `json:"status"`
	Error    *connectly.ErrorBody `json:"error"`
	Metadata json.RawMessage      `json:"metadata"`
}

// payload is every field Herald reads from a webhook body, of either topic.
type payload struct {
	Topic        flexString      `json:"topic"`
	Timestamp    flexString      `json:"timestamp"`
	Sender       *party          `json:"sender"`
	Recipient    *party          `json:"recipient"`
	StatusUpdate *statusUpdate   `json:"statusUpdate"`
	Metadata     json.RawMessage `json:"metadata"`
	CallbackData json.RawMessage `json:"callbackData"`
	Message      *inboundMessage `json:"message"`
	// Attachments and Location appear at the top level in some inbound examples.
	Attachments json.RawMessage `json:"attachments"`
	Location    json.RawMessage `json:"location"`
}

// Kind says what a webhook body is.
type Kind int

const (
	// KindIgnored is a valid body Herald has no use for (another topic, no status).
	KindIgnored Kind = iota
	// KindStatus is a delivery_status event.
	KindStatus
	// KindInbound is an inbound message (messages topic): a body with that topic, or with no
	// topic and a message, context, or button or list reply object.
	KindInbound
)

// Event is a parsed webhook body.
type Event struct {
	Kind Kind
	// Topic is the body's topic ("" when absent, as in the documented inbound examples).
	Topic string
	// At is the event time from the string timestamp (Unix seconds); zero when absent.
	At time.Time
	// MessageID and Status are statusUpdate.id and statusUpdate.status.
	MessageID string
	Status    string
	// Error is statusUpdate.error of a delivery failure.
	Error *connectly.ErrorBody
	// Campaign is the campaign name from either documented place: top-level
	// metadata.campaign_name or statusUpdate.metadata.campaignName.
	Campaign string
	// Callback is the ledger address in Herald's callbackData, when the body carries it.
	Callback *ledger.Address
	// Customer lists the ledger keys of the customer: the recipient of a status event, the
	// sender of an inbound message.
	Customer []string
	// Addressee lists the ledger keys of an inbound message's recipient: the business's
	// number on a customer's message, the customer on an echo of an outbound one.
	Addressee []string
	// senderID is an inbound message's sender.id as written (a business id on an echo is no
	// phone number, so Customer cannot hold it).
	senderID string
	// Inbound is the normalised inbound message of a KindInbound event.
	Inbound *Inbound
}

// ErrNotJSON is wrapped by Parse when the body is not a JSON object of the documented shape.
var ErrNotJSON = errors.New("webhook body is not a JSON object of the documented shape")

// Parse decodes a webhook body of either topic. It returns an error wrapping ErrNotJSON when
// the body is not JSON or a field Herald reads has the wrong type.
func Parse(body []byte) (Event, error) {
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrNotJSON, err)
	}
	ev := Event{Topic: string(p.Topic)}
	if ts := strings.TrimSpace(string(p.Timestamp)); ts != "" {
		if sec, err := strconv.ParseInt(ts, 10, 64); err == nil && sec > 0 && sec < 1<<40 {
			ev.At = time.Unix(sec, 0).UTC()
		}
	}
	ev.Callback = parseCallback(p.CallbackData)
	ev.Campaign = campaignName(p.Metadata, "campaign_name", "campaignName")
	switch {
	case p.StatusUpdate != nil && (ev.Topic == "" || ev.Topic == TopicDeliveryStatus):
		ev.Kind = KindStatus
		ev.MessageID = strings.TrimSpace(string(p.StatusUpdate.ID))
		ev.Status = strings.ToLower(strings.TrimSpace(string(p.StatusUpdate.Status)))
		if ev.Status == statusDeliveryFailure {
			ev.Status = StatusDeliveryFailed
		}
		ev.Error = p.StatusUpdate.Error
		if ev.Campaign == "" {
			ev.Campaign = campaignName(p.StatusUpdate.Metadata, "campaignName", "campaign_name")
		}
		ev.Customer = p.Recipient.keys()
	case ev.Topic == TopicMessages || (ev.Topic == "" && p.StatusUpdate == nil):
		// The documented inbound examples have no topic: a body is an inbound message when it
		// has a message or context object or a button or list reply, with or without a
		// message object.
		top := decodeTree(body)
		if ev.Topic == "" && !isInboundBody(top) {
			break
		}
		ev.Kind = KindInbound
		ev.Inbound = parseInbound(body, &p, top, ev.At, ev.Callback)
		ev.Customer = ev.Inbound.From.Keys()
		ev.Addressee = p.Recipient.keys()
		if p.Sender != nil {
			ev.senderID = strings.TrimSpace(string(p.Sender.ID))
		}
	}
	return ev, nil
}

// BusinessNumber is the business number an inbound message was sent to: its recipient's
// phone number (E.164), "" when the body names none. The reference shows no inbound body with
// a recipient; on status events the recipient is the customer and the sender the business
// number, so an inbound one is read the other way round (reference 5.4, inferred). An echo's
// recipient is the customer: applyInbound records no window for an echo.
func (ev Event) BusinessNumber() string {
	for _, k := range ev.Addressee {
		if strings.HasPrefix(k, "+") {
			return k
		}
	}
	return ""
}

// parseCallback reads Herald's callbackData (see ledger.ParseCallback); anything else
// (another sender's callbackData) is nil.
func parseCallback(raw json.RawMessage) *ledger.Address {
	a, ok := ledger.ParseCallback(raw)
	if !ok {
		return nil
	}
	return &a
}

// campaignName reads the first of names from a metadata object; anything but an object
// with a string there gives "".
func campaignName(raw json.RawMessage, names ...string) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	for _, n := range names {
		var s string
		if v, ok := m[n]; ok && json.Unmarshal(v, &s) == nil && s != "" {
			return s
		}
	}
	return ""
}
