package fakeconnectly

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// reaction is the reaction object of a ReplyReaction.
type reaction struct {
	MessageID string `json:"messageId"`
	Emoji     string `json:"emoji"`
}

// reactionBody is the form of a reaction, the fake's choice (inferred): reference 5.4 names
// reactions among the inbound events that echo callbackData but shows no body. The fake
// sends the safest reading, built from the documented parts:
//
//	{"timestamp": "...", "sender": <customer>, "recipient": <business>,
//	 "message": {"id": "<inbound id>", "reaction": {"messageId": "<id reacted to>", "emoji": "👍"}},
//	 "context": {"replyToId": "<id reacted to>"},
//	 "callbackData": <the reacted message's callbackData>}
//
// message.reaction is Meta's reaction object ({message_id, emoji}) in the API's camelCase;
// context.replyToId is how the documented button reply names the message it answers (5.4),
// so a receiver that joins replies by it finds the message; message has no text. A
// receiver must not take a reaction for a typed message.
func reactionBody(id, emoji, reactedTo string) (*inboundMessage, *replyContext) {
	return &inboundMessage{ID: id, Reaction: &reaction{MessageID: reactedTo, Emoji: emoji}},
		&replyContext{ReplyToID: reactedTo}
}

// statusWord is how a status is written in a delivery_status event: HookDeliveryFailed
// as WebhookConfig.FailedStatus spells it, the others as they are.
func (e *emitter) statusWord(status string) string {
	if status == HookDeliveryFailed && e.cfg.FailedStatus != "" {
		return e.cfg.FailedStatus
	}
	return status
}

// echoBody is an echo of an outbound message, sent to a registration whose configuration
// has echo: true ("whether outbound messages are echoed to this webhook", reference 5.2).
// The reference gives no echo body: this form is the fake's choice (inferred), the safest reading,
// kept here and only here. It is the inbound-message form of the messages topic (5.4: no
// topic field, timestamp, sender, recipient, message) turned around: the business is the
// sender and the customer the recipient, as on a delivery status event; message.id is the
// id the send answered (the statusUpdate.id of its delivery events); callbackData is the
// outbound message's, "echoed back at the top level of webhook events for this message"
// (2.1). The message object is, for a session message, the message object sent (text,
// attachments, location, listMessage, ...); for a template message {id} and, when the fake
// knows the template's body, its text with the parameters filled in. No field marks it as
// an echo but the sender: a receiver that takes it for a customer's message (a reply, a
// window opening) is wrong.
type echoBody struct {
	Timestamp    string          `json:"timestamp"`
	Sender       hookParty       `json:"sender"`
	Recipient    hookParty       `json:"recipient"`
	Message      any             `json:"message"`
	CallbackData json.RawMessage `json:"callbackData,omitempty"`
}

// echoMessage is the message object of a template message's echo.
type echoMessage struct {
	ID   string `json:"id"`
	Text string `json:"text,omitempty"`
}

func renderEcho(rec Received, bsuid string, at time.Time) []byte {
	b := echoBody{
		Timestamp:    strconv.FormatInt(at.Unix(), 10),
		Sender:       hookParty{ID: businessNumber(rec.Message), ChannelType: "whatsapp"},
		Recipient:    customerParty(rec.Number, bsuid),
		CallbackData: rec.Message.CallbackData,
	}
	switch {
	case rec.Session != nil:
		m := rec.Session.Message
		m.ID = rec.MessageID
		b.Message = m
	default:
		m := echoMessage{ID: rec.MessageID}
		if rec.template != nil && rec.template.known() {
			m.Text = rec.template.render(rec.Message.Parameters)
		}
		b.Message = m
	}
	out, _ := json.Marshal(b)
	return out
}

// echoesLocked plans the echoes of an accepted message, due at, one for each registration
// that asks for them. The caller holds e.mu.
func (e *emitter) echoesLocked(rec Received, at time.Time) []*hookEvent {
	var out []*hookEvent
	var body []byte
	for _, topic := range []string{TopicDeliveryStatus, TopicMessages} {
		reg, ok := e.regs[topic]
		if !ok || reg.Configuration == nil || !reg.Configuration.Echo {
			continue
		}
		if body == nil {
			body = renderEcho(rec, e.bsuidOf(rec.Number), at)
		}
		out = append(out, &hookEvent{due: at, topic: topic, msgID: rec.MessageID, status: "echo", body: body, echo: true,
			campaign: rec.Message.CampaignName, hasCampaign: true})
	}
	return out
}

// accepts reports whether the registration takes ev, by its configuration (reference 5.2):
// an echo only when echo is set; with channelTypes, only when they include whatsapp (every
// message of the fake is); with filters, only when the event passes them (matchFilters).
func (w Webhook) accepts(ev *hookEvent) bool {
	c := w.Configuration
	if c == nil {
		return !ev.echo
	}
	if ev.echo && !c.Echo {
		return false
	}
	if len(c.ChannelTypes) > 0 && !slices.Contains(c.ChannelTypes, "whatsapp") {
		return false
	}
	return matchFilters(c.Filters, ev)
}

// matchFilters applies a registration's filters to an event. Reference 5.2 shows one
// filter, {"field": "campaign_name", "expression": "prod-*"}, "glob-like", and no rule for
// several: the fake's reading (inferred) is that filters on one field are alternatives (any may
// match) and filters on different fields all apply. A campaign_name filter is matched, by
// glob, against the campaign name of the message a delivery status or echo is about ("" for
// a message sent without campaignName, which "prod-*" does not match); the inbound messages
// of the messages topic carry no campaign name (5.4) and are not filtered by it. A filter on
// another field is kept and not applied: the fake knows no other field.
func matchFilters(filters []WebhookFilter, ev *hookEvent) bool {
	tried, matched := false, false
	for _, f := range filters {
		if f.Field != "campaign_name" || !ev.hasCampaign {
			continue
		}
		tried = true
		matched = matched || glob(f.Expression, ev.campaign)
	}
	return !tried || matched
}

// glob matches s against pattern, where * is any run of characters (also none), ? one
// character and everything else itself.
func glob(pattern, s string) bool {
	p, r := []rune(pattern), []rune(s)
	// star is the pattern position after the last *, and mark the position in s it was
	// tried at: on a mismatch the * takes one more character.
	star, mark := -1, 0
	i, j := 0, 0
	for j < len(r) {
		switch {
		case i < len(p) && (p[i] == '?' || p[i] == r[j]):
			i++
			j++
		case i < len(p) && p[i] == '*':
			star, mark = i+1, j
			i++
		case star >= 0:
			mark++
			i, j = star, mark
		default:
			return false
		}
	}
	for i < len(p) && p[i] == '*' {
		i++
	}
	return i == len(p)
}
