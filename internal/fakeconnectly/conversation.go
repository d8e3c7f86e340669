package fakeconnectly

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// ErrNoConversations is returned, wrapped, by the conversation queries of a fake that keeps
// no conversations (Config.MaxReceived is set).
var ErrNoConversations = errors.New("fakeconnectly: conversations are not kept when MaxReceived is set")

// KindFlow is the Kind of a message the fake sent for a flow a send's campaignName started
// (Config.CampaignFlowMessages), not for a request.
const KindFlow = "flow"

// SentMessage is one message the fake took as sent to a customer: accepted, accepted with its
// answer lost, or sent despite an error answer (Rule.Sent); or sent by a flow.
type SentMessage struct {
	MessageID string `json:"messageId"`
	// Kind is the endpoint: KindTemplate or KindSession; KindFlow for a flow's message.
	Kind string `json:"kind"`
	// At is the Clock time the request arrived.
	At time.Time `json:"at"`
	// WindowOpen reports whether the customer's 24-hour window was open at At. A session
	// message without it was accepted outside a window: Config.IgnoreWindow allows it, and a
	// Config.WindowAnswer that fails it at delivery (WindowFailure).
	WindowOpen bool `json:"windowOpen"`
	// WindowFailure is, on a session message accepted outside the window to fail at delivery,
	// the code of its delivery_failed error (Received.WindowFailure).
	WindowFailure string          `json:"windowFailure,omitempty"`
	CallbackData  json.RawMessage `json:"callbackData,omitempty"`
	CampaignName  string          `json:"campaignName,omitempty"`
	// Template is a template message's templateName; Content a session message's content kind
	// (ContentText...) and Text its message.text.
	Template string `json:"template,omitempty"`
	Content  string `json:"content,omitempty"`
	Text     string `json:"text,omitempty"`
	// Status is the HTTP status answered: 0 when the answer was lost, 5xx when the message
	// went out despite an error answer; 0 for a flow's message, which no request asked for.
	Status int `json:"status"`
	// StartedBy is, on a flow's message, the id of the message whose send's campaignName
	// started the flow.
	StartedBy string `json:"startedBy,omitempty"`
}

// Conversation is the fake's record of one customer: every message it took as sent to them,
// in the order accepted, every inbound message it sent from them as a webhook, by time, and
// the session sends refused because their window was closed. A test judges a conversation
// run from it alone: one follow-up per tapper and rule, none outside a window.
type Conversation struct {
	// Number is the customer: E.164, or "bsuid:CC.id" for a BSUID however it was written.
	Number        string          `json:"number"`
	Messages      []SentMessage   `json:"messages"`
	Inbound       []InboundRecord `json:"inbound"`
	WindowRefused int             `json:"windowRefused"`
}

// convLog is the record of one customer kept by the Server.
type convLog struct {
	messages []SentMessage
	refused  int
}

// logConversationLocked adds an accepted or window-refused send to its customer's record.
// The caller holds s.mu.
func (s *Server) logConversationLocked(rec Received) {
	k := customerKey(rec.Number)
	c := s.convs[k]
	if c == nil {
		c = &convLog{}
		s.convs[k] = c
	}
	if rec.MessageID == "" {
		c.refused++
		return
	}
	m := SentMessage{
		MessageID: rec.MessageID, Kind: rec.Kind, At: rec.At, WindowOpen: rec.WindowOpen, WindowFailure: rec.WindowFailure,
		CallbackData: rec.Message.CallbackData, CampaignName: rec.Message.CampaignName,
		Template: rec.Message.TemplateName, Content: rec.Content, Status: rec.Status,
	}
	if rec.Session != nil {
		m.Text = rec.Session.Message.Text
	}
	c.messages = append(c.messages, m)
	for _, id := range rec.Flow {
		c.messages = append(c.messages, SentMessage{MessageID: id, Kind: KindFlow, At: rec.At, WindowOpen: rec.WindowOpen,
			CampaignName: rec.Message.CampaignName, StartedBy: rec.MessageID})
	}
}

// Conversation returns number's record (number is E.164 or a BSUID, bare or "bsuid:"). It
// returns an error wrapping ErrNoConversations when MaxReceived is set.
func (s *Server) Conversation(number string) (Conversation, error) {
	k := customerKey(number)
	s.mu.Lock()
	if s.convs == nil {
		s.mu.Unlock()
		return Conversation{}, ErrNoConversations
	}
	c := Conversation{Number: k, Messages: []SentMessage{}}
	if l := s.convs[k]; l != nil {
		c.Messages = slices.Clone(l.messages)
		c.WindowRefused = l.refused
	}
	e := s.hooks
	s.mu.Unlock()
	c.Inbound = []InboundRecord{}
	if e != nil {
		c.Inbound = e.inboundOf(k)
	}
	return c, nil
}

// Conversations returns the record of every customer the fake took a message for, refused a
// session send to for a closed window, or sent an inbound message from, by number. It
// returns an error wrapping ErrNoConversations when MaxReceived is set.
func (s *Server) Conversations() ([]Conversation, error) {
	s.mu.Lock()
	if s.convs == nil {
		s.mu.Unlock()
		return nil, ErrNoConversations
	}
	byNumber := make(map[string]*Conversation, len(s.convs))
	for k, l := range s.convs {
		byNumber[k] = &Conversation{Number: k, Messages: slices.Clone(l.messages), WindowRefused: l.refused}
	}
	e := s.hooks
	s.mu.Unlock()
	if e != nil {
		e.mu.Lock()
		for k := range e.inbounds {
			c := byNumber[k]
			if c == nil {
				c = &Conversation{Number: k}
				byNumber[k] = c
			}
			c.Inbound = e.inboundOfLocked(k)
		}
		e.mu.Unlock()
	}
	out := make([]Conversation, 0, len(byNumber))
	for _, c := range byNumber {
		if c.Messages == nil {
			c.Messages = []SentMessage{}
		}
		if c.Inbound == nil {
			c.Inbound = []InboundRecord{}
		}
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b Conversation) int { return strings.Compare(a.Number, b.Number) })
	return out, nil
}

// RepliesFrom returns the inbound messages the fake sent from number as webhooks (by its
// reply rules or Inbound), by time: which reply, in which shape, to which message, and
// when. Kept whatever MaxReceived; Reset forgets them.
func (s *Server) RepliesFrom(number string) []InboundRecord {
	e := s.webhooks()
	if e == nil {
		return []InboundRecord{}
	}
	return e.inboundOf(number)
}

// SetReceivers replaces the addresses webhooks go to (WebhookConfig.URL, URLs and
// TopicURLs); registrations made through the webhook API still take precedence for their
// topic. It returns an error when an address is not an http(s) URL, a topic is unknown, or
// the fake sends no webhooks (no secret).
func (s *Server) SetReceivers(r Receivers) error {
	if err := validateReceivers(r); err != nil {
		return err
	}
	e, err := s.signingEmitter()
	if err != nil {
		return err
	}
	e.setReceivers(r)
	return nil
}

// Receivers returns the addresses webhooks go to, besides registrations.
func (s *Server) Receivers() Receivers {
	e := s.webhooks()
	if e == nil {
		return Receivers{URLs: []string{}, Topics: map[string][]string{}}
	}
	return e.receivers()
}
