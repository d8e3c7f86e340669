package fakeconnectly

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Webhook topics of the provider reference, section 5.1: one address per topic.
const (
	// TopicMessages carries the customers' inbound messages.
	TopicMessages = "messages"
	// TopicDeliveryStatus carries the statuses of the messages the business sent.
	TopicDeliveryStatus = "delivery_status"
)

// Webhook statuses of the provider reference, section 5.1.
const (
	HookSent           = "sent"
	HookDelivered      = "delivered"
	HookRead           = "read"
	HookDeliveryFailed = "delivery_failed"
	// HookDeliveryFailure is the README's spelling of a failure (reference 5.1: "README once
	// writes delivery_failure; every other page uses delivery_failed"), sent only with
	// WebhookConfig.FailedStatus. Fates and outcomes still say HookDeliveryFailed.
	HookDeliveryFailure = "delivery_failure"
)

// Forms of a list reply (WebhookConfig.ListReply). Reference 5.4: "list reply: shape not
// found; expect the row id and text in a listResponse-like object"; the fake's guess (inferred) is
// ListReplyResponse, and the others are the other readings a receiver may meet.
const (
	// ListReplyResponse, the default: message {id}, context {replyToId}, listResponse {id,
	// text}: the row's id and title, as the reference expects them.
	ListReplyResponse = "list-response"
	// ListReplyTitle is Meta's list_reply with its field names in the API's camelCase:
	// message {id}, context {replyToId}, listResponse {id, title}.
	ListReplyTitle = "list-title"
	// ListReplyButton reports the row the way the GitBook documents a button reply: message
	// {id, text}, context {replyToId}, buttonResponse {text, payload}, the row's title in
	// text and its id in payload.
	ListReplyButton = "button-response"
)

// Forms of the callbackData a webhook writes back (WebhookConfig.CallbackEcho).
const (
	// CallbackAsSent, the default: the value as the send gave it, compacted.
	CallbackAsSent = "as-sent"
	// CallbackString: a JSON string holding the value's (compacted) JSON text,
	// "{\"campaign_id\":\"c-42\"}" for {"campaign_id": "c-42"}: (inferred) a backend that
	// keeps callbackData in a string field.
	CallbackString = "string"
	// CallbackReencoded: the value decoded and written again, as a protobuf
	// google.protobuf.Value writes it: object keys sorted, every number a float64 (1.50 is
	// 1.5, 1e2 is 100, 12345678901234567890 is 12345678901234567000). (inferred) The
	// backend is a protobuf JSON gateway (reference 1), and "any JSON value" is what a
	// Value field holds.
	CallbackReencoded = "reencoded"
)

// Places of a status event's campaign name (WebhookConfig.CampaignMetadata).
const (
	// CampaignMetaByID, the default: top-level metadata.campaign_name for a message id
	// ending in an even character, statusUpdate.metadata.campaignName with a null top-level
	// metadata for the others: every message's events in one place, a run in both.
	CampaignMetaByID = "by-id"
	// CampaignMetaTop: top-level metadata {"campaign_name": ...}, the payload page's form.
	CampaignMetaTop = "top"
	// CampaignMetaStatus: statusUpdate.metadata {"campaignName": ...} and a null top-level
	// metadata, the error page's form.
	CampaignMetaStatus = "status"
	// CampaignMetaBoth: both in one event.
	CampaignMetaBoth = "both"
)

// listReplies lists the forms of WebhookConfig.ListReply, failedStatuses the spellings of
// WebhookConfig.FailedStatus, callbackEchoes the forms of WebhookConfig.CallbackEcho,
// campaignPlaces the values of WebhookConfig.CampaignMetadata.
var (
	listReplies    = choice{ListReplyResponse, ListReplyTitle, ListReplyButton}
	failedStatuses = choice{HookDeliveryFailed, HookDeliveryFailure}
	callbackEchoes = choice{CallbackAsSent, CallbackString, CallbackReencoded}
	campaignPlaces = choice{CampaignMetaByID, CampaignMetaTop, CampaignMetaStatus, CampaignMetaBoth}
)

// echoCallback is callbackData raw as a webhook writes it back in form (CallbackEcho). An
// absent or null value stays as it is.
func echoCallback(form string, raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || isNull(raw) {
		return raw
	}
	switch form {
	case CallbackString:
		var buf bytes.Buffer
		if json.Compact(&buf, raw) != nil {
			return raw
		}
		out, _ := json.Marshal(buf.String())
		return out
	case CallbackReencoded:
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return raw
		}
		out, _ := json.Marshal(v)
		return out
	}
	return raw
}

// hookRank orders statuses the way a recipient's truth moves: a failure ranks above sent
// (it ends a message that was never delivered) and is never sent after delivered.
var hookRank = map[string]int{HookSent: 1, HookDeliveryFailed: 2, HookDelivered: 2, HookRead: 3}

// WebhookConfig makes the fake call webhooks for the messages it accepts, as Connectly does
// (reference 5): delivery_status events for every accepted message (sent, then delivered and
// read, or delivery_failed; Fate.Sequence gives any other list, DropPercent loses some), and inbound messages (button replies, typed texts) from some of
// their recipients, each signed with x-connectly-hmac-sha256 and sent as text/plain.
type WebhookConfig struct {
	// URL receives both topics, unless a registration made through the webhook API gives a
	// topic another address. Empty: only registered addresses receive calls.
	URL string `json:"url,omitempty"`
	// URLs are more receivers of both topics beside URL, as replicas of one receiver: each
	// event goes to one of URL and URLs, chosen by a stable hash of the event, and a duplicate
	// of it (DuplicatePercent) to another one. Reordering and duplicates work as with one.
	URLs []string `json:"urls,omitempty"`
	// TopicURLs gives a topic its own receivers (keyed "messages" or "delivery_status"), in
	// place of URL and URLs. A registration made through the webhook API (one address per
	// topic, reference 5.1) still takes precedence over both.
	TopicURLs map[string][]string `json:"topicUrls,omitempty"`
	// Secret signs every call. No webhook is sent without one.
	Secret string `json:"secret,omitempty"`
	// Fates decide each accepted message's last status; the first matching one applies, and a
	// message no fate matches is read.
	Fates []Fate `json:"fates,omitempty"`
	// Replies make some recipients answer after reading: the first matching reply applies.
	Replies []Reply `json:"replies,omitempty"`
	// TapUnknownTemplates lets any button or list-row reply answer a template message whose
	// template the fake has no definition of, as the fake did before it checked taps
	// against the message (see Reply): for a test written for that. Off by default: such a
	// message shows no button the fake knows of, and only a reply that names its template
	// (Reply.Template) taps a button under it.
	TapUnknownTemplates bool `json:"tapUnknownTemplates,omitempty"`
	// DuplicatePercent (0..100) of events are sent a second time (to another receiver when
	// there are several).
	DuplicatePercent float64 `json:"duplicatePercent,omitempty"`
	// ReorderPercent (0..100) of messages have their events sent in a shuffled order
	// (reference 5.1: "webhook ordering/duplicates are not guaranteed anywhere in the
	// docs"). Only their arrival is shuffled: each event keeps its own timestamp, the time
	// its status happened (5.4), so a delivered event that arrives before its sent event is
	// still stamped after it.
	ReorderPercent float64 `json:"reorderPercent,omitempty"`
	// DropPercent (0..100) of delivery_status events are lost on Connectly's side: planned
	// and never called, not even once (WebhookStats.Dropped). Reference 5.3 says a call that
	// fails "may" be retried, with no count given, so an event may never reach a receiver;
	// (inferred) a receiver must not wait for one. Echoes and inbound messages are not
	// dropped. 0 drops none.
	DropPercent float64 `json:"dropPercent,omitempty"`
	// Delay spaces a message's events: each comes a random 0..2×Delay after the previous one
	// (after the accept for the first). 0 sends them as fast as the calls go.
	Delay time.Duration `json:"delay,omitempty"`
	// Concurrency is the number of calls in flight. Default 8.
	Concurrency int `json:"concurrency,omitempty"`
	// Attempts is how many times a call that was not answered 200 is tried, 100 ms apart
	// and doubling. Default 5: (inferred) reference 5.3 says a failed call "may" be retried
	// and gives no count, schedule or timeout (the calls time out after 10 s). Only 200
	// acknowledges a call (5.3: "any non-200 is treated as failure"): a 201, 202 or 204 is
	// retried like a 500.
	Attempts int `json:"attempts,omitempty"`
	// BSUIDs gives phone customers a BSUID ("+15550001234" -> "US.13491208655302741918"),
	// as on a WhatsApp number with BSUIDs enabled (reference 6): their webhook objects carry
	// userId and phoneNumber beside id, and an inbound message from them opens the window of
	// both identities. A phone-less customer (a send to "bsuid:CC.id") always comes as {id:
	// BSUID, userId: BSUID, phoneNumber: ""}.
	BSUIDs map[string]string `json:"bsuids,omitempty"`
	// FailedStatus is the word a failure's statusUpdate.status carries: HookDeliveryFailed
	// (the default, "" too: every page but one) or HookDeliveryFailure (the README's
	// spelling, reference 5.1).
	FailedStatus string `json:"failedStatus,omitempty"`
	// ListReply is the form of a list reply (ReplyList): ListReplyResponse (the default, ""
	// too), ListReplyTitle or ListReplyButton. Reference 5.4 found no shape for it.
	ListReply string `json:"listReply,omitempty"`
	// CallbackEcho is how the webhooks write back a message's callbackData (status events,
	// echoes, and the inbound replies that echo it): CallbackAsSent (the default, "" too),
	// CallbackString or CallbackReencoded. Reference 2.1 says callbackData is "any JSON
	// value ... echoed back"; nothing promises the bytes, or even the JSON type.
	CallbackEcho string `json:"callbackEcho,omitempty"`
	// InboundTopic puts "topic": "messages" in inbound messages-topic calls, as every status
	// event carries its topic. By default they carry none: reference 5.4 notes "the
	// documented inbound-message examples have no topic field", (inferred) an absence the
	// docs do not promise either way, so a receiver must tell the topics apart without it and
	// take it when it comes. Echoes keep their form (echoBody).
	InboundTopic bool `json:"inboundTopic,omitempty"`
	// CampaignMetadata is where a delivery_status event of a message sent with a
	// campaignName carries it (reference 5.4: the payload page shows top-level
	// metadata.campaign_name, the error page statusUpdate.metadata.campaignName with a null
	// top-level metadata, "parse both"): CampaignMetaByID (the default, "" too: one place or
	// the other, by the message id, so a run meets both), CampaignMetaTop,
	// CampaignMetaStatus or CampaignMetaBoth (both places in one event).
	CampaignMetadata string `json:"campaignMetadata,omitempty"`
	// NameBusinessNumber puts the business number the customer wrote to in inbound
	// messages-topic calls, as their recipient, as Connectly's status events name both
	// parties. By default they carry none: the shape of reference 5.4, whose inbound examples
	// name only the customer ("the customer is the webhook's sender on inbound events"), so a
	// receiver must cope without it. The fake's windows stay per number either way.
	NameBusinessNumber bool `json:"nameBusinessNumber,omitempty"`
	// Seed makes the random choices (duplicates, order, delays) repeatable; 0 picks one.
	Seed uint64 `json:"seed,omitempty"`
	// HTTPClient makes the calls; default a client with a 10 s timeout.
	HTTPClient *http.Client `json:"-"`
}

// Fate picks messages by recipient, like a Rule, and says how their story ends.
type Fate struct {
	Numbers []string `json:"numbers,omitempty"`
	Suffix  string   `json:"suffix,omitempty"`
	Percent float64  `json:"percent,omitempty"`
	Salt    string   `json:"salt,omitempty"`
	// Status is the last status: sent, delivered, read or delivery_failed. The events are
	// those of the typical order (reference 5.1: "Typical order: sent → delivered → read"):
	// sent, then delivered and read, or delivery_failed. With a Sequence it may be empty.
	Status string `json:"status,omitempty"`
	// Sequence, when set, is the exact list of statuses sent for the message, in the order
	// they are sent and stamped (no timestamp before the previous one's), in place of the
	// typical order Status gives: ["delivery_failed"] (no sent first), ["sent", "read"] (no
	// delivered), ["delivered", "sent"] (out of order), ["sent", "sent", "delivered"] (a
	// status twice). Reference 5.1 gives sent → delivered → read as the typical order only,
	// and (inferred) its ordering and duplicates are guaranteed nowhere; 5.3 says a failed
	// call "may" be retried, so an event may never come. A status may appear more than once.
	// Status, when also set, must be one of them and is what WebhookOutcome.Planned reports;
	// otherwise that is the highest status of the sequence (read above delivered and
	// delivery_failed above sent). The message's reader replies (Replies) when the sequence
	// has a read. ReorderPercent, DuplicatePercent and DropPercent apply to it as to any.
	Sequence []string `json:"sequence,omitempty"`
	// Code is the error code of a delivery_failed (default ERROR_CODE_UNSPECIFIED), or an
	// error type, answered in the body a send's Rule.Code gives: reference 4.1 says a send's
	// error and statusUpdate.error share one shape, so the error object of the event is
	// built by the code that builds a send's error answer.
	Code string `json:"code,omitempty"`
	// Type and Message, when set, replace the error's type and message that Code gives, as
	// Rule.Type and Rule.Message do on a send (e.g. 9.2's "(#131049) ..." message, 3.1's
	// ERROR_TYPE_FAILED_PRECONDITION). They need a delivery_failed.
	Type    string `json:"type,omitempty"`
	Message string `json:"message,omitempty"`
	// NumericCode writes the error's code as a JSON number, "code": 131049, Meta's form
	// (9.2), where 4.1 documents a string: 10.4 leaves open whether delivery_failed events
	// carry Meta's codes. It needs a Code that is a non-negative integer without leading
	// zeros, and a delivery_failed.
	NumericCode bool `json:"numericCode,omitempty"`
	// Details, when set, is the JSON object sent as the delivery_failed error's details
	// (reference 4.1: "extra structured info when available"; 10.4: Meta codes may travel
	// there), or null, as a Rule's Details. Empty means {}.
	Details json.RawMessage `json:"details,omitempty"`
	// Omit names fields of the delivery_failed error to leave out (ErrorFields), as a
	// Rule's Omit. It needs a delivery_failed.
	Omit []string `json:"omit,omitempty"`
}

// statuses returns the statuses the fate sends, in order, and the one it plans.
func (f Fate) statuses() (seq []string, planned string) {
	if len(f.Sequence) == 0 {
		return typicalOrder(f.Status), f.Status
	}
	if f.Status != "" {
		return f.Sequence, f.Status
	}
	for _, st := range f.Sequence {
		if hookRank[st] >= hookRank[planned] {
			planned = st
		}
	}
	return f.Sequence, planned
}

// fails reports whether the fate sends a delivery_failed.
func (f Fate) fails() bool {
	seq, _ := f.statuses()
	return slices.Contains(seq, HookDeliveryFailed)
}

// typicalOrder is the statuses sent for a message whose last status is status: sent, then
// delivered and read, or delivery_failed (reference 5.1's typical order).
func typicalOrder(status string) []string {
	seq := []string{HookSent}
	switch status {
	case HookDelivered:
		seq = append(seq, HookDelivered)
	case HookRead:
		seq = append(seq, HookDelivered, HookRead)
	case HookDeliveryFailed:
		seq = append(seq, HookDeliveryFailed)
	}
	return seq
}

// errorParts are the fate's fields of its error beside the code.
func (f Fate) errorParts() errorParts {
	return errorParts{Type: f.Type, Message: f.Message, NumericCode: f.NumericCode, Details: f.Details, Omit: f.Omit}
}

// Shapes of an inbound reply: the variants of reference 5.4 a receiver must accept. Every
// one is a messages-topic call with the customer as sender and the business number as
// recipient; all but ReplyText echo the callbackData of the message replied to.
const (
	// ReplyText is a typed message: message {id, text}; no context, no callbackData.
	ReplyText = "text"
	// ReplyButtonLegacy is a button reply in the README's form: message {id, text,
	// isButtonResponse: true}, the button text in message.text.
	ReplyButtonLegacy = "button-legacy"
	// ReplyButtonContext is a button reply in the GitBook's form: context {replyToId} and
	// buttonResponse {text, payload}, beside message {id, text}.
	ReplyButtonContext = "button-context"
	// ReplyButtonTop is a button reply with a top-level buttonResponse {text, id} and no
	// message object (and no context).
	ReplyButtonTop = "button-top"
	// ReplyList is a list reply: context {replyToId} and listResponse {id, text} (the row's
	// id and title, the shape the reference expects), beside message {id} with no text.
	ReplyList = "list"
	// ReplyQuoted is a typed message quoting the message replied to: message {id, text},
	// context {replyToId}, and the quoted message's callbackData (reference 5.4: callbackData
	// is echoed on quoted replies).
	ReplyQuoted = "quoted"
	// ReplyMedia is a file, a photo by default: message {id, attachments: [{type, url}]}
	// (Reply.Media gives the type, Reply.Caption a caption), no text, no context, no
	// callbackData. The label is not sent.
	ReplyMedia = "media"
	// ReplyLocation is a shared location: message {id, location {latitude, longitude}}, no
	// text, no context, no callbackData. The label is not sent.
	ReplyLocation = "location"
	// ReplyReferral is a typed message from a click-to-WhatsApp ad: message {id, text,
	// referral {ctwaClid, sourceUrl, sourceId, sourceType, headline, body, mediaType,
	// imageUrl}} (a video ad, Reply.Media, has videoUrl and thumbnailUrl in place of
	// imageUrl), with the top-level attachments: [] and location: null some documented
	// examples carry; no callbackData.
	ReplyReferral = "referral"
	// ReplyButtonBare is a button reply in the GitBook's form without a message object:
	// context {replyToId} and buttonResponse {text, payload} alone (reference 5.4: several
	// inbound variants come without a message object; "treat a body with buttonResponse or
	// context as an inbound reply even then").
	ReplyButtonBare = "button-bare"
	// ReplyReaction is an emoji reaction to the message replied to (the label is the emoji),
	// with the message's callbackData (reference 5.4: callbackData "also on inbound replies
	// that reference it (quoted replies, button/list replies, reactions)"). The reference
	// gives no reaction body: see reactionBody for the form the fake sends.
	ReplyReaction = "reaction"
	// ReplyRotate takes the five shapes above in turn, one per reply the rule sends.
	ReplyRotate = "rotate"
	// ReplyRandom picks one of the five shapes at random (Seed) for each reply.
	ReplyRandom = "random"
)

// ReplyShapes lists the reply shapes ReplyRotate goes through by default, in its order.
var ReplyShapes = []string{ReplyText, ReplyButtonLegacy, ReplyButtonContext, ReplyButtonTop, ReplyList}

// ButtonShapes are the four forms of a button tap (reference 5.4), for Reply.Shapes.
var ButtonShapes = []string{ReplyButtonLegacy, ReplyButtonContext, ReplyButtonTop, ReplyButtonBare}

// InboundShapes lists every inbound shape the fake can send: the reply shapes, then a quoted
// text, a photo, a location, an ad referral, a button reply with no message object and a
// reaction.
var InboundShapes = []string{ReplyText, ReplyButtonLegacy, ReplyButtonContext, ReplyButtonTop, ReplyList,
	ReplyQuoted, ReplyMedia, ReplyLocation, ReplyReferral, ReplyButtonBare, ReplyReaction}

// Reply picks recipients of read messages (Numbers, or a stable hash: Percent, Salt, From)
// and sends an inbound message from them once the read event is out. A Reply with neither
// Numbers nor Percent picks every reader. Replies are tried in order and the first one that
// picks a reader applies; ReplyMix builds rules whose shares do not overlap.
//
// A customer taps only what the message they answer shows, so a button or list-row reply
// answers only a message that has that button or row. A button shape (ReplyButtonLegacy,
// ReplyButtonContext, ReplyButtonTop, ReplyButtonBare) needs a quick-reply button whose text
// is the reply's label or whose id is its payload: one of the template's QUICK_REPLY buttons
// (Template.Buttons, reference 7; matched by text, as a template's button has no id) or of a
// session message's replyButtonMessage.buttons (3.1). ReplyList needs a row of the session
// message's listMessage (3.1), by text or id; a template has no list rows. The reply then
// carries that button's or row's own text, and a session button's or row's id as its
// payload. The other shapes (a typed or quoted text, a file, a location, a referral, a
// reaction) answer any message (5.4). A reply that cannot answer a message in any of its
// shapes (ReplyRotate and ReplyRandom use only those it can) does not pick that reader, and
// a later reply may. Inbound sends what it is told, unchecked.
//
// The fake cannot know the buttons of a template it has no definition of (Config.Templates
// does not list it; with no templates the fake takes any template name). It takes the safe
// reading: such a message shows no button, so no button or list-row reply answers it,
// unless the reply names that template (Template), which says the template has the reply's
// button (no list row: a template has none), or WebhookConfig.TapUnknownTemplates takes
// every tap under such a template, the fake's behaviour before it checked taps. The fake
// decides this in one place, emitter.tap.
type Reply struct {
	Numbers []string `json:"numbers,omitempty"`
	// Percent (0..100) picks the numbers whose HashBucket(Salt, number) is in
	// [From*100, (From+Percent)*100): Percent percent of all numbers, always the same ones.
	Percent float64 `json:"percent,omitempty"`
	Salt    string  `json:"salt,omitempty"`
	// From is where the Percent share starts (0..100, From+Percent at most 100), so that
	// rules with one Salt pick disjoint shares. ReplyMix sets it.
	From float64 `json:"from,omitempty"`
	// Kind limits the rule to readers of messages sent through one endpoint: KindTemplate (a
	// campaign's first message) or KindSession (a follow-up). Empty: both.
	Kind string `json:"kind,omitempty"`
	// Template limits the rule to readers of messages sent with this template (the send's
	// templateName); empty: any message. A reply that names a template the fake has no
	// definition of may tap its button under it (see above). It needs Kind KindTemplate or
	// empty.
	Template string `json:"template,omitempty"`
	// Times limits the replies this rule sends for each number; later read messages of that
	// number skip the rule (and may match a later one). 0 means no limit.
	Times int `json:"times,omitempty"`
	// Button is the text of a quick-reply button pressed (with Payload, its id); the reply
	// then carries the message's callbackData, as documented for button replies.
	Button  string `json:"button,omitempty"`
	Payload string `json:"payload,omitempty"`
	// Text is a typed message, e.g. "STOP"; as ReplyText it references no message and
	// carries no callbackData.
	Text string `json:"text,omitempty"`
	// Shape is the form the reply takes (ReplyText ... ReplyList, ReplyRotate, ReplyRandom).
	// Empty means ReplyText for Text and ReplyButtonContext for Button. Any shape works with
	// either: a Text sent as a button is a button labelled with it, a Button sent as
	// ReplyText is the customer typing its label. The payload (the button or row id) is
	// Payload, or the label when Payload is empty.
	Shape string `json:"shape,omitempty"`
	// Shapes, when set, are the shapes ReplyRotate goes through and ReplyRandom picks from,
	// in place of ReplyShapes (for example ButtonShapes, or any of InboundShapes). Shapes
	// with an empty Shape rotates.
	Shapes []string `json:"shapes,omitempty"`
	// Name is the customer's WhatsApp profile name, sent as the inbound call's sender.name
	// (reference 5.4: a customer object is {id, channelType, name}, the status example's
	// customer is "name": "Customer", and "name may be null"). Empty sends null.
	Name string `json:"name,omitempty"`
	// Media is the kind of file a ReplyMedia sends in message.attachments[{type, url}]
	// (reference 5.4): MediaImage (the default), MediaVideo, MediaAudio or MediaDocument,
	// the attachment types of 3.1. For a ReplyReferral it is the ad's mediaType: image (the
	// default, with imageUrl) or video (with videoUrl and thumbnailUrl: 5.4 lists "mediaType,
	// imageUrl, videoUrl, thumbnailUrl"); audio and document are taken as image there.
	Media string `json:"media,omitempty"`
	// Caption is a ReplyMedia's caption, sent as the attachment's caption. (inferred) 5.4
	// shows an inbound attachment as {type, url} only; 3.1's attachment object is {type,
	// url, caption?, filename?}, and an inbound file's caption is read where a sent one's
	// is. A document also carries a filename.
	Caption string `json:"caption,omitempty"`
	// TopLevelEmpty adds the top-level "attachments": [] and "location": null that some
	// documented inbound examples carry (reference 5.4: "some examples also carry top-level
	// attachments: [], location: null") to the reply, whatever its shape; a ReplyReferral
	// always has them. By default the other shapes have neither.
	TopLevelEmpty bool `json:"topLevelEmpty,omitempty"`
}

// Attachment types of a media reply (Reply.Media), those of a session attachment
// (reference 3.1: "image"|"video"|"audio"|"document").
const (
	MediaImage    = "image"
	MediaVideo    = "video"
	MediaAudio    = "audio"
	MediaDocument = "document"
)

// mediaTypes lists the values of Reply.Media.
var mediaTypes = choice{MediaImage, MediaVideo, MediaAudio, MediaDocument}

// ReplyMix gives replies disjoint shares of the numbers: every reply gets salt as its Salt
// and starts its Percent where the previous one's ended (From), so with 20, 10 and 5 the
// first picks the numbers in buckets [0, 2000), the second [2000, 3000), the third [3000,
// 3500). A reply that names Numbers keeps them and takes no share. The percents must add up
// to 100 at most (ValidateReplies says so).
func ReplyMix(salt string, replies ...Reply) []Reply {
	out := make([]Reply, len(replies))
	from := 0.0
	for i, r := range replies {
		r.Numbers = slices.Clone(r.Numbers)
		r.Shapes = slices.Clone(r.Shapes)
		if r.Percent > 0 {
			r.Salt, r.From = salt, from
			from += r.Percent
		}
		out[i] = r
	}
	return out
}

// MatchReply returns the index of the reply that a reader of a message of kind (KindTemplate
// or KindSession) sent to number would send, the first that picks them, or -1 when none
// does. It ignores Times, Template and what the message shows (a reader whose message does
// not have the reply's button or row falls to a later reply). A test uses it to know who
// taps what before the run.
func MatchReply(replies []Reply, number, kind string) int {
	for i, r := range replies {
		if r.matches(number, kind) {
			return i
		}
	}
	return -1
}

// label is the words of the reply: the button's text or the typed text.
func (r Reply) label() string {
	if r.Button != "" {
		return r.Button
	}
	return r.Text
}

// payload is the id of the button or list row.
func (r Reply) payload() string {
	if r.Payload != "" {
		return r.Payload
	}
	return r.label()
}

// matches reports whether the reply picks a reader of a message of kind sent to number.
func (r Reply) matches(number, kind string) bool {
	if r.Kind != "" && r.Kind != kind {
		return false
	}
	if len(r.Numbers) > 0 && !slices.Contains(r.Numbers, number) {
		return false
	}
	if r.Percent > 0 {
		b := float64(HashBucket(r.Salt, number))
		return b >= r.From*100 && b < (r.From+r.Percent)*100
	}
	return true
}

func (r Reply) validate() error {
	validShape := func(s string) bool { return slices.Contains(InboundShapes, s) }
	switch {
	case r.Percent < 0 || r.Percent > 100:
		return fmt.Errorf("percent %v is outside 0..100", r.Percent)
	case r.From < 0 || r.From+r.Percent > 100+1e-9:
		return fmt.Errorf("from %v + percent %v is outside 0..100", r.From, r.Percent)
	case r.From > 0 && r.Percent == 0:
		return fmt.Errorf("from %v needs a percent", r.From)
	case !sendKinds.allows(r.Kind):
		return fmt.Errorf("kind %q: want %s, %s or empty for both", r.Kind, KindTemplate, KindSession)
	case r.Template != "" && r.Kind == KindSession:
		return fmt.Errorf("template %q: a session message has no template", r.Template)
	case r.Times < 0:
		return fmt.Errorf("times %d is negative", r.Times)
	case (r.Button == "") == (r.Text == ""):
		return errors.New("want exactly one of button and text")
	case !mediaTypes.allows(r.Media):
		return fmt.Errorf("media %q: want %s", r.Media, mediaTypes)
	case r.Shape != "" && r.Shape != ReplyRotate && r.Shape != ReplyRandom && !validShape(r.Shape):
		return fmt.Errorf("shape %q: want one of %s, %s or %s", r.Shape, strings.Join(InboundShapes, ", "), ReplyRotate, ReplyRandom)
	case len(r.Shapes) > 0 && r.Shape != "" && r.Shape != ReplyRotate && r.Shape != ReplyRandom:
		return fmt.Errorf("shapes need shape %s or %s, not %q", ReplyRotate, ReplyRandom, r.Shape)
	}
	for _, sh := range r.Shapes {
		if !validShape(sh) {
			return fmt.Errorf("shapes: %q: want one of %s", sh, strings.Join(InboundShapes, ", "))
		}
	}
	return nil
}

// ValidateReplies reports the first reply that makes no sense.
func ValidateReplies(replies []Reply) error { return validateEach("reply", replies) }

func (f Fate) matches(number string) bool {
	return Rule{Numbers: f.Numbers, Suffix: f.Suffix, Percent: f.Percent, Salt: f.Salt}.Matches(number, "")
}

// maxSequence bounds a Fate's Sequence.
const maxSequence = 16

func (f Fate) validate() error {
	if _, ok := hookRank[f.Status]; !ok && (f.Status != "" || len(f.Sequence) == 0) {
		return fmt.Errorf("status %q: want sent, delivered, read or delivery_failed", f.Status)
	}
	if len(f.Sequence) > maxSequence {
		return fmt.Errorf("sequence has %d statuses, at most %d", len(f.Sequence), maxSequence)
	}
	for _, st := range f.Sequence {
		if _, ok := hookRank[st]; !ok {
			return fmt.Errorf("sequence: status %q: want sent, delivered, read or delivery_failed", st)
		}
	}
	if f.Status != "" && len(f.Sequence) > 0 && !slices.Contains(f.Sequence, f.Status) {
		return fmt.Errorf("status %s is not in the sequence %v", f.Status, f.Sequence)
	}
	if f.Percent < 0 || f.Percent > 100 {
		return fmt.Errorf("percent %v is outside 0..100", f.Percent)
	}
	if (f.Type != "" || f.Message != "" || f.NumericCode || len(f.Omit) > 0) && !f.fails() {
		return errors.New("type, message, numericCode and omit are the error of a delivery_failed, which the fate does not send")
	}
	return f.errorParts().validate(cmp.Or(f.Code, CodeUnspecified))
}

// ValidateFates reports the first fate that makes no sense.
func ValidateFates(fates []Fate) error { return validateEach("fate", fates) }

// ValidateWebhooks reports the first problem with a webhook configuration.
func ValidateWebhooks(c WebhookConfig) error {
	if err := ValidateFates(c.Fates); err != nil {
		return err
	}
	if err := ValidateReplies(c.Replies); err != nil {
		return err
	}
	if !failedStatuses.allows(c.FailedStatus) {
		return fmt.Errorf("webhooks: failed status %q: want %s or %s", c.FailedStatus, HookDeliveryFailed, HookDeliveryFailure)
	}
	if !campaignPlaces.allows(c.CampaignMetadata) {
		return fmt.Errorf("webhooks: campaign metadata %q: want %s", c.CampaignMetadata, campaignPlaces)
	}
	if !callbackEchoes.allows(c.CallbackEcho) {
		return fmt.Errorf("webhooks: callback echo %q: want %s", c.CallbackEcho, callbackEchoes)
	}
	if !listReplies.allows(c.ListReply) {
		return fmt.Errorf("webhooks: list reply %q: want %s", c.ListReply, listReplies)
	}
	if c.DuplicatePercent < 0 || c.DuplicatePercent > 100 || c.ReorderPercent < 0 || c.ReorderPercent > 100 ||
		c.DropPercent < 0 || c.DropPercent > 100 {
		return errors.New("webhooks: duplicate, reorder and drop percents must be within 0..100")
	}
	for phone, bsuid := range c.BSUIDs {
		if !validE164(phone) || !validBSUID(customerKey(bsuid)) {
			return fmt.Errorf("webhooks: BSUIDs: want an E.164 number -> a BSUID (CC.id), got %q -> %q", maskNumber(phone), bsuid)
		}
	}
	return validateReceivers(Receivers{URLs: append([]string{c.URL}, c.URLs...), Topics: c.TopicURLs})
}

// Receivers are the addresses the fake calls webhooks at, beside any registration made
// through the webhook API (which takes precedence for its topic): every address in URLs
// receives both topics, unless Topics gives a topic ("messages", "delivery_status") its own.
// Each event goes to one address of its topic, by a stable hash of the event, and a
// duplicate of it to another one.
type Receivers struct {
	URLs   []string            `json:"urls"`
	Topics map[string][]string `json:"topics,omitempty"`
}

func validateReceivers(r Receivers) error {
	check := func(u string) error {
		if u == "" {
			return nil
		}
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") {
			return fmt.Errorf("webhooks: URL %q is not an http(s) URL", u)
		}
		return nil
	}
	for _, u := range r.URLs {
		if err := check(u); err != nil {
			return err
		}
	}
	for topic, urls := range r.Topics {
		if topic != TopicDeliveryStatus && topic != TopicMessages {
			return fmt.Errorf("webhooks: topic %q: want messages or delivery_status", topic)
		}
		for _, u := range urls {
			if err := check(u); err != nil {
				return err
			}
		}
	}
	return nil
}

// nonEmpty drops empty addresses.
func nonEmpty(urls []string) []string {
	out := make([]string, 0, len(urls))
	for _, u := range urls {
		if u != "" {
			out = append(out, u)
		}
	}
	return out
}

// WebhookStats are the totals of the webhook calls since New.
type WebhookStats struct {
	// Events counts events planned (duplicates included); Pending those not yet answered 200
	// or given up.
	Events  int `json:"events"`
	Pending int `json:"pending"`
	// Delivered counts events answered 200; Retries calls tried again; GaveUp events dropped
	// after Attempts; NoAddress events with no address to go to.
	Delivered int `json:"delivered"`
	Retries   int `json:"retries"`
	GaveUp    int `json:"gaveUp"`
	NoAddress int `json:"noAddress"`
	// Dropped counts the delivery_status events lost on Connectly's side
	// (WebhookConfig.DropPercent): never called, and not in Events.
	Dropped int `json:"dropped"`
	// Filtered counts events a registration's configuration kept from its address: its
	// filters or channel types (reference 5.2), or an echo whose registration no longer
	// asks for echoes.
	Filtered int `json:"filtered"`
	// ByStatus counts delivered events by status ("reply" for inbound messages, "echo" for
	// echoes of outbound messages).
	ByStatus map[string]int `json:"byStatus"`
	// Replies counts delivered inbound messages by shape (ReplyText, ReplyButtonLegacy...).
	Replies map[string]int `json:"replies"`
	// ByAddress counts delivered events by receiver address.
	ByAddress map[string]int `json:"byAddress"`
}

// InboundRecord is one inbound message the fake sent from a customer as a messages webhook:
// a reply rule's (Replies) or one sent on demand (Inbound).
type InboundRecord struct {
	// ID is the inbound message's id (message.id in the shapes that have a message object).
	ID string `json:"id"`
	// Number is the customer, as the record keys them (E.164 or "bsuid:CC.id").
	Number string `json:"number"`
	// To is the business number the customer wrote to (E.164): the sender of the message
	// replied to, or the fake's stand-in for a message that named none. The customer's window
	// is that number's.
	To string `json:"to"`
	// At is the message's time: when its webhook fell due (or falls due), the time the
	// customer's 24-hour window opens from.
	At time.Time `json:"at"`
	// Shape is the body's form (ReplyText ... ReplyReferral); Label the words (button text,
	// typed text, row title) and Payload the button or row id.
	Shape   string `json:"shape"`
	Label   string `json:"label"`
	Payload string `json:"payload"`
	// Name is the customer's name the call carried (Reply.Name); Media the file type of a
	// media reply or the ad's media type of a referral, and Caption a media reply's caption
	// (Reply.Media, Reply.Caption).
	Name    string `json:"name,omitempty"`
	Media   string `json:"media,omitempty"`
	Caption string `json:"caption,omitempty"`
	// Rule is the index of the reply rule in Replies when it was sent, -1 for Inbound.
	Rule int `json:"rule"`
	// ReplyTo is the message that was read before the reply (its id, kind and callbackData),
	// also for shapes whose body does not name it; empty for an Inbound text with no earlier
	// message. CallbackData is the echoed callbackData (in WebhookConfig.CallbackEcho's
	// form), nil for shapes that carry none.
	ReplyTo      string          `json:"replyTo,omitempty"`
	ReplyToKind  string          `json:"replyToKind,omitempty"`
	CallbackData json.RawMessage `json:"callbackData,omitempty"`
	// Delivered reports whether a receiver answered 200 to the call (or to a duplicate).
	Delivered bool `json:"delivered"`
}

// WebhookOutcome is what one accepted message's receiver was told.
type WebhookOutcome struct {
	Number    string `json:"number"`
	MessageID string `json:"messageId"`
	// Planned is the message's fate; Highest the highest status answered 200 ("" for none).
	Planned string `json:"planned"`
	Highest string `json:"highest"`
}

// hookEvent is one planned webhook call.
type hookEvent struct {
	due   time.Time
	seq   uint64
	topic string
	body  []byte
	msgID string
	// status is the delivery status, or "reply".
	status string
	// shape is a reply's shape, in the inbound message's record.
	shape string
	in    *InboundRecord
	// dup marks the second copy of an event: it goes to another receiver when there are
	// several.
	dup bool
	// echo marks an echo of an outbound message, sent only to the registration of topic
	// when its configuration asks for echoes (reference 5.2).
	echo bool
	// campaign is the campaign name of the message a delivery status or echo is about, for
	// a registration's campaign_name filters; hasCampaign is false for inbound messages,
	// which carry none.
	campaign    string
	hasCampaign bool
}

// route is the stable hash that picks an event's receiver.
func (ev *hookEvent) route() uint32 {
	h := fnv.New32a()
	h.Write([]byte(ev.msgID))
	h.Write([]byte{0})
	h.Write([]byte(ev.status))
	if ev.in != nil {
		h.Write([]byte(ev.in.ID))
	}
	// FNV-1a's low bits are weak (its lowest bit is the parity of the bytes' lowest bits):
	// mix them with murmur3's finalizer before taking a modulo.
	x := h.Sum32()
	x ^= x >> 16
	x *= 0x85ebca6b
	x ^= x >> 13
	x *= 0xc2b2ae35
	x ^= x >> 16
	return x
}

type hookHeap []*hookEvent

func (h hookHeap) Len() int { return len(h) }
func (h hookHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h hookHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *hookHeap) Push(x any)   { *h = append(*h, x.(*hookEvent)) }
func (h *hookHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// hookMessage is the fake's memory of one accepted message, for outcomes.
type hookMessage struct {
	number, planned, highest string
	// template is the template the message was sent with ("" for a session message), and
	// campaign its campaign name.
	template, campaign string
	// reached is set once a delivered or read event of the message went to a sender: its
	// delivery is no longer ahead (failTemplate).
	reached bool
}

// emitter plans, schedules and sends webhook calls. Its mutex is taken after Server.mu,
// never before.
type emitter struct {
	cfg WebhookConfig
	// uncoded is Config.UncodedBody, for the webhook API's error answers and the
	// delivery_failed errors.
	uncoded string
	hc      *http.Client
	clock   func() time.Time
	// windows learns of every inbound message the emitter plans: the customer wrote at its
	// due time, whether or not the receiver takes the call.
	windows *windowStore
	ids     *idGen
	wake    chan struct{}
	work    chan *hookEvent
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu       sync.Mutex
	rng      *rand.Rand
	queue    hookHeap
	seq      uint64
	regs     map[string]Webhook      // by topic
	messages map[string]*hookMessage // by message id
	order    []string
	stats    WebhookStats
	replies  []Reply
	// turns counts, per reply, the replies it sent: ReplyRotate's position.
	turns []int
	// used counts, per reply, the replies it sent to each number, for Reply.Times.
	used []map[string]int
	// inbound holds the inbound messages sent, by customer key.
	inbounds map[string][]*InboundRecord
	// last is the latest message taken as sent to each number (only the fields a reply
	// needs), for Inbound.
	last map[string]Received
}

func newEmitter(cfg WebhookConfig, clock func() time.Time, windows *windowStore, uncoded string) *emitter {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	cfg.URLs = nonEmpty(append([]string{cfg.URL}, cfg.URLs...))
	cfg.URL = ""
	topics := map[string][]string{}
	for topic, urls := range cfg.TopicURLs {
		if urls = nonEmpty(urls); len(urls) > 0 {
			topics[topic] = urls
		}
	}
	cfg.TopicURLs = topics
	cfg.BSUIDs = maps.Clone(cfg.BSUIDs)
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Concurrency
		hc = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &emitter{
		cfg: cfg, uncoded: uncoded, hc: hc, clock: clock, windows: windows, ids: &idGen{}, wake: make(chan struct{}, 1), work: make(chan *hookEvent),
		cancel: cancel, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		regs: map[string]Webhook{}, messages: map[string]*hookMessage{},
		stats:   WebhookStats{ByStatus: map[string]int{}, Replies: map[string]int{}, ByAddress: map[string]int{}},
		replies: slices.Clone(cfg.Replies), turns: make([]int, len(cfg.Replies)), used: newUses(len(cfg.Replies)),
		last: map[string]Received{}, inbounds: map[string][]*InboundRecord{},
	}
	e.wg.Add(1 + cfg.Concurrency)
	go e.dispatch(ctx)
	for range cfg.Concurrency {
		go e.send(ctx)
	}
	return e
}

func newUses(n int) []map[string]int {
	out := make([]map[string]int, n)
	for i := range out {
		out[i] = map[string]int{}
	}
	return out
}

func (e *emitter) close() {
	e.cancel()
	e.wg.Wait()
}

// fateLocked returns the statuses sent for a message, its planned status and, for a
// delivery_failed, its error. The caller holds e.mu.
func (e *emitter) fateLocked(number string) (seq []string, planned string, fail apiError) {
	for _, f := range e.cfg.Fates {
		if f.matches(number) {
			seq, planned = f.statuses()
			return seq, planned, deliveryError(f.Code, f.errorParts())
		}
	}
	return typicalOrder(HookRead), HookRead, apiError{}
}

// accepted plans the webhook calls of an accepted message.
func (e *emitter) accepted(rec Received) {
	if e.cfg.Secret == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// Every webhook about the message, and every reply that echoes it, writes its
	// callbackData in one form.
	rec.Message.CallbackData = echoCallback(e.cfg.CallbackEcho, rec.Message.CallbackData)
	seq, status, fail := e.fateLocked(rec.Number)
	if t := rec.template; t != nil && t.DeliveryFailure != "" {
		seq, status, fail = typicalOrder(HookDeliveryFailed), HookDeliveryFailed, t.deliveryError()
	}
	// A session message accepted outside its recipient's window fails for it, whatever the
	// fates (Config.WindowAnswer): it never reaches the customer.
	unreached := rec.windowFail.Status != 0
	if unreached {
		seq, status, fail = typicalOrder(HookDeliveryFailed), HookDeliveryFailed, rec.windowFail
	}
	fail.uncoded = e.uncoded
	e.messages[rec.MessageID] = &hookMessage{number: rec.Number, planned: status, template: rec.Message.TemplateName,
		campaign: rec.Message.CampaignName}
	e.order = append(e.order, rec.MessageID)
	// A flow's message is no send's: an inbound message does not answer it, and its
	// reader does not reply. Nor does the customer answer a message that never reached them.
	flow := rec.Kind == KindFlow
	if !flow && !unreached {
		e.last[rec.Number] = replyTarget(rec)
	}
	// The events' times grow along the sequence, and each body carries its own: the
	// timestamp is when the status happened (reference 5.4). A reordered message shuffles
	// only when the events arrive (5.1: ordering is "not guaranteed"), so a delivered event
	// may come before the sent one and still be stamped after it.
	times := make([]time.Time, len(seq))
	t := rec.At
	for i := range times {
		if e.cfg.Delay > 0 {
			t = t.Add(time.Duration(e.rng.Int64N(int64(2 * e.cfg.Delay))))
		}
		times[i] = t
	}
	dues := slices.Clone(times)
	reorder := e.rng.Float64()*100 < e.cfg.ReorderPercent
	if reorder {
		e.rng.Shuffle(len(dues), func(i, j int) { dues[i], dues[j] = dues[j], dues[i] })
	}
	var evs []*hookEvent
	for i, st := range seq {
		if e.cfg.DropPercent > 0 && e.rng.Float64()*100 < e.cfg.DropPercent {
			e.stats.Dropped++ // lost on Connectly's side: never called
			continue
		}
		evs = append(evs, &hookEvent{due: dues[i], topic: TopicDeliveryStatus, msgID: rec.MessageID, status: st,
			body:     statusBody(rec, st, e.statusWord(st), fail, e.bsuidOf(rec.Number), times[i], e.cfg.CampaignMetadata),
			campaign: rec.Message.CampaignName, hasCampaign: true})
	}
	evs = append(evs, e.echoesLocked(rec, times[0])...)
	if slices.Contains(seq, HookRead) && !flow {
		shown := choicesOf(rec)
		for i, r := range e.replies {
			if !r.matches(rec.Number, rec.Kind) || (r.Template != "" && r.Template != rec.Message.TemplateName) {
				continue
			}
			if r.Times > 0 && e.used[i][rec.Number] >= r.Times {
				continue
			}
			shape, ok := e.shapeLocked(i, r, func(shape string) bool { _, ok := e.tap(shown, r, shape); return ok })
			if !ok {
				continue // the message shows none of what the reply taps
			}
			if r.Times > 0 {
				e.used[i][rec.Number]++
			}
			sent, _ := e.tap(shown, r, shape)
			due := slices.MaxFunc(dues, func(a, b time.Time) int { return a.Compare(b) })
			evs = append(evs, e.replyEventLocked(rec, sent, i, shape, due))
			break
		}
	}
	if reorder {
		e.rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	}
	for _, ev := range evs {
		e.pushLocked(ev)
		if e.rng.Float64()*100 < e.cfg.DuplicatePercent {
			dup := *ev
			dup.dup = true
			if e.cfg.Delay > 0 {
				dup.due = dup.due.Add(time.Duration(e.rng.Int64N(int64(2 * e.cfg.Delay))))
			}
			e.pushLocked(&dup)
		}
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// replyTarget keeps of an accepted message what a reply to it needs.
func replyTarget(rec Received) Received {
	return Received{Number: rec.Number, Kind: rec.Kind, MessageID: rec.MessageID, Message: TemplateMessage{
		Sender: rec.Message.Sender, CallbackData: rec.Message.CallbackData,
	}}
}

// shapeLocked picks the shape of the next reply sent by the reply at index i (-1 for one
// that belongs to no rule) among those can takes, advancing ReplyRotate's turn; ok is false
// when can takes none of the reply's shapes. ReplyRotate takes the next shape can takes,
// ReplyRandom one of them.
func (e *emitter) shapeLocked(i int, r Reply, can func(shape string) bool) (shape string, ok bool) {
	shapes := ReplyShapes
	if len(r.Shapes) > 0 {
		shapes = r.Shapes
	}
	switch r.Shape {
	case "":
		if len(r.Shapes) > 0 {
			break // rotate
		}
		shape = ReplyText
		if r.Button != "" {
			shape = ReplyButtonContext
		}
		return shape, can(shape)
	case ReplyRandom:
		open := slices.DeleteFunc(slices.Clone(shapes), func(s string) bool { return !can(s) })
		if len(open) == 0 {
			return "", false
		}
		return open[e.rng.IntN(len(open))], true
	case ReplyRotate:
	default:
		return r.Shape, can(r.Shape)
	}
	turn := 0
	if i >= 0 {
		turn = e.turns[i]
	}
	for k := range len(shapes) {
		if shape = shapes[(turn+k)%len(shapes)]; can(shape) {
			if i >= 0 {
				e.turns[i] = turn + k + 1
			}
			return shape, true
		}
	}
	return "", false
}

// anyShape takes every shape: Inbound sends what it is told.
func anyShape(string) bool { return true }

// Kinds of what a reply's shape taps (tapOf).
const (
	tapsNothing = iota
	tapsButton
	tapsRow
)

// tapOf is what a reply in shape taps: a quick-reply button (the button shapes), a list row
// (ReplyList) or nothing (the other shapes).
func tapOf(shape string) int {
	switch shape {
	case ReplyButtonLegacy, ReplyButtonContext, ReplyButtonTop, ReplyButtonBare:
		return tapsButton
	case ReplyList:
		return tapsRow
	}
	return tapsNothing
}

// shownChoice is a button or a list row a message shows: its text, and its id (empty for a
// template's quick-reply button).
type shownChoice struct{ ID, Text string }

// shownChoices is what a reader of one message can tap.
type shownChoices struct {
	// known is false for a template message whose template the fake has no definition of.
	known bool
	// buttons are its quick-reply buttons, rows its list rows.
	buttons, rows []shownChoice
}

// choicesOf returns what a reader of the accepted message rec can tap: a template's
// QUICK_REPLY buttons (reference 7), a session message's reply buttons and list rows (3.1).
func choicesOf(rec Received) shownChoices {
	switch {
	case rec.Kind == KindSession:
		c := shownChoices{known: true}
		if rec.Session == nil {
			return c
		}
		if b := rec.Session.Message.ReplyButtonMessage; b != nil {
			for _, x := range b.Buttons {
				c.buttons = append(c.buttons, shownChoice(x))
			}
		}
		if l := rec.Session.Message.ListMessage; l != nil {
			for _, sec := range l.Sections {
				for _, row := range sec.Rows {
					c.rows = append(c.rows, shownChoice{ID: row.ID, Text: row.Text})
				}
			}
		}
		return c
	case rec.template != nil:
		c := shownChoices{known: true}
		for _, b := range rec.template.Buttons {
			if strings.EqualFold(b.Type, "QUICK_REPLY") {
				c.buttons = append(c.buttons, shownChoice{Text: b.Text})
			}
		}
		return c
	}
	return shownChoices{}
}

// tap is the one place that decides whether the reply r, sent in shape, can answer a
// message that shows c (see Reply), and returns it as sent: with the text of the button or
// row it taps as its label, and the id of a session message's button or row as its payload.
// The caller has checked that r.Template, when set, is the message's template.
func (e *emitter) tap(c shownChoices, r Reply, shape string) (Reply, bool) {
	what := tapOf(shape)
	if what == tapsNothing {
		return r, true
	}
	if !c.known {
		// A template the fake has no definition of: no tap, unless the knob takes any or the
		// reply names the template, which says it has the reply's button.
		return r, e.cfg.TapUnknownTemplates || (what == tapsButton && r.Template != "")
	}
	choices := c.buttons
	if what == tapsRow {
		choices = c.rows
	}
	label, payload := r.label(), r.payload()
	for _, x := range choices {
		if x.Text == label || (x.ID != "" && x.ID == payload) {
			r.Button, r.Payload = x.Text, cmp.Or(x.ID, payload)
			return r, true
		}
	}
	return r, false
}

// replyEventLocked plans an inbound message in shape from the recipient of rec to the
// business number that sent rec, due at due, sent by the reply at index rule (-1 for
// Inbound), records it, and opens the customer's 24-hour window to that number from due.
func (e *emitter) replyEventLocked(rec Received, r Reply, rule int, shape string, due time.Time) *hookEvent {
	to := businessNumber(rec.Message)
	e.windows.add(rec.Number, to, due)
	bsuid := e.bsuidOf(rec.Number)
	if bsuid != "" {
		// One person, two identities: a send to either is inside the window.
		e.windows.add(bsuid, to, due)
	}
	id := e.ids.next(due)
	in := &InboundRecord{ID: id, Number: customerKey(rec.Number), To: to, At: due, Shape: shape, Label: r.label(),
		Payload: r.payload(), Name: r.Name, Rule: rule, ReplyTo: rec.MessageID, ReplyToKind: rec.Kind}
	switch shape {
	case ReplyMedia:
		in.Media, in.Caption = cmp.Or(r.Media, MediaImage), r.Caption
	case ReplyReferral:
		in.Media = MediaImage
		if r.Media == MediaVideo {
			in.Media = MediaVideo
		}
	}
	body := replyBody(rec, *in, bsuid, inboundForm{ListReply: e.cfg.ListReply, Recipient: e.cfg.NameBusinessNumber,
		Topic: e.cfg.InboundTopic, TopLevelEmpty: r.TopLevelEmpty})
	if echoesCallback(shape) {
		in.CallbackData = rec.Message.CallbackData
	}
	if shape == ReplyMedia || shape == ReplyLocation {
		in.Label, in.Payload = "", ""
	}
	e.inbounds[in.Number] = append(e.inbounds[in.Number], in)
	return &hookEvent{due: due, topic: TopicMessages, msgID: rec.MessageID, status: "reply", shape: shape,
		in: in, body: body}
}

// inboundOf returns copies of the inbound messages from number, by time.
func (e *emitter) inboundOf(number string) []InboundRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.inboundOfLocked(customerKey(number))
}

func (e *emitter) inboundOfLocked(key string) []InboundRecord {
	list := e.inbounds[key]
	out := make([]InboundRecord, len(list))
	for i, in := range list {
		out[i] = *in
	}
	slices.SortStableFunc(out, func(a, b InboundRecord) int { return a.At.Compare(b.At) })
	return out
}

// forgetInbound drops the record of inbound messages (the windows they opened stay).
func (e *emitter) forgetInbound() {
	e.mu.Lock()
	e.inbounds = map[string][]*InboundRecord{}
	e.mu.Unlock()
}

// setReplies replaces the replies and restarts their rotation.
func (e *emitter) setReplies(replies []Reply) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.replies = slices.Clone(replies)
	e.turns = make([]int, len(replies))
	e.used = newUses(len(replies))
}

// setFates replaces the fates of the messages accepted from now on.
func (e *emitter) setFates(fates []Fate) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg.Fates = cloneFates(fates)
}

func (e *emitter) getFates() []Fate {
	e.mu.Lock()
	defer e.mu.Unlock()
	return cloneFates(e.cfg.Fates)
}

// cloneFates copies fates deeply enough that the caller's slices are not shared.
func cloneFates(fates []Fate) []Fate {
	out := make([]Fate, len(fates))
	for i, f := range fates {
		f.Numbers, f.Details, f.Sequence, f.Omit = slices.Clone(f.Numbers), slices.Clone(f.Details), slices.Clone(f.Sequence), slices.Clone(f.Omit)
		out[i] = f
	}
	return out
}

func (e *emitter) getReplies() []Reply {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.replies)
}

// inbound sends, now, an inbound message r from number in reply to the latest message taken
// as sent to number. A ReplyText needs no earlier message. It returns the shape used.
func (e *emitter) inbound(number, to string, r Reply) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	shape, _ := e.shapeLocked(-1, r, anyShape)
	rec, ok := e.last[number]
	if !ok {
		if needsMessage(shape) {
			return "", fmt.Errorf("no message was sent to %s: a %s reply needs one", maskNumber(number), shape)
		}
		rec = Received{Number: number}
	}
	if to != "" {
		rec.Message.Sender = businessKey(to)
	}
	e.pushLocked(e.replyEventLocked(rec, r, -1, shape, e.clock()))
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return shape, nil
}

// maskNumber keeps the last 4 characters of a number.
func maskNumber(n string) string {
	if len(n) <= 4 {
		return n
	}
	return strings.Repeat("*", len(n)-4) + n[len(n)-4:]
}

func (e *emitter) pushLocked(ev *hookEvent) {
	e.seq++
	ev.seq = e.seq
	heap.Push(&e.queue, ev)
	e.stats.Events++
	e.stats.Pending++
}

// dispatch hands events to the senders when they fall due.
func (e *emitter) dispatch(ctx context.Context) {
	defer e.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		e.mu.Lock()
		var next *hookEvent
		wait := time.Hour
		if len(e.queue) > 0 {
			if d := e.queue[0].due.Sub(e.clock()); d <= 0 {
				next = heap.Pop(&e.queue).(*hookEvent)
				if m := e.messages[next.msgID]; m != nil && !next.echo && (next.status == HookDelivered || next.status == HookRead) {
					m.reached = true
				}
			} else {
				wait = d
			}
		}
		e.mu.Unlock()
		if next != nil {
			select {
			case e.work <- next:
				continue
			case <-ctx.Done():
				return
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		case <-timer.C:
		}
	}
}

// send makes the calls, trying each up to Attempts times.
func (e *emitter) send(ctx context.Context) {
	defer e.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-e.work:
			e.deliver(ctx, ev)
		}
	}
}

// address picks the receiver of an event: the topic's registration, else one of its
// receivers by the event's stable hash, and another one for a duplicate. filtered reports
// an event the registration's configuration keeps from it (reference 5.2): its filters
// and channel types, or an echo it no longer asks for. An echo goes to its registration
// only.
func (e *emitter) address(ev *hookEvent) (addr string, filtered bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if w, ok := e.regs[ev.topic]; ok {
		if !w.accepts(ev) {
			return "", true
		}
		return w.Address, false
	}
	if ev.echo {
		return "", true
	}
	return e.receiverLocked(ev), false
}

// receiverLocked picks one of the topic's configured receivers for ev.
func (e *emitter) receiverLocked(ev *hookEvent) string {
	urls := e.cfg.TopicURLs[ev.topic]
	if len(urls) == 0 {
		urls = e.cfg.URLs
	}
	switch len(urls) {
	case 0:
		return ""
	case 1:
		return urls[0]
	}
	i := int(ev.route() % uint32(len(urls)))
	if ev.dup {
		i = (i + 1) % len(urls)
	}
	return urls[i]
}

// setReceivers replaces the receivers.
func (e *emitter) setReceivers(r Receivers) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg.URL = ""
	e.cfg.URLs = nonEmpty(r.URLs)
	e.cfg.TopicURLs = map[string][]string{}
	for topic, urls := range r.Topics {
		if urls = nonEmpty(urls); len(urls) > 0 {
			e.cfg.TopicURLs[topic] = urls
		}
	}
}

func (e *emitter) receivers() Receivers {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := Receivers{URLs: append([]string{}, e.cfg.URLs...), Topics: map[string][]string{}}
	for topic, urls := range e.cfg.TopicURLs {
		r.Topics[topic] = slices.Clone(urls)
	}
	return r
}

func (e *emitter) deliver(ctx context.Context, ev *hookEvent) {
	addr, filtered := e.address(ev)
	if filtered {
		e.mu.Lock()
		e.stats.Pending--
		e.stats.Filtered++
		e.mu.Unlock()
		return
	}
	if addr == "" {
		e.finish(ev, "", false, true, 0)
		return
	}
	sig := Sign(ev.body, e.cfg.Secret)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ok := e.post(ctx, addr, ev.body, sig)
		if ok || attempt >= e.cfg.Attempts || ctx.Err() != nil {
			e.finish(ev, addr, ok, false, attempt-1)
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff *= 2
	}
}

func (e *emitter) post(ctx context.Context, addr string, body []byte, sig string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, addr, bytes.NewReader(body))
	if err != nil {
		return false
	}
	// The headers of the documented example call.
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set("User-Agent", "go-resty/2.6.0")
	req.Header.Set("X-Connectly-Hmac-Sha256", sig)
	resp, err := e.hc.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	// Reference 5.3: "Acknowledge with HTTP 200; any non-200 is treated as failure".
	return resp.StatusCode == http.StatusOK
}

func (e *emitter) finish(ev *hookEvent, addr string, ok, noAddress bool, retries int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats.Pending--
	e.stats.Retries += retries
	switch {
	case ok:
		e.stats.Delivered++
		e.stats.ByStatus[ev.status]++
		e.stats.ByAddress[addr]++
		if ev.shape != "" {
			e.stats.Replies[ev.shape]++
		}
		if ev.in != nil {
			ev.in.Delivered = true
		}
		if m := e.messages[ev.msgID]; m != nil && hookRank[ev.status] > hookRank[m.highest] {
			m.highest = ev.status
		}
	case noAddress:
		e.stats.NoAddress++
	default:
		e.stats.GaveUp++
	}
}

func (e *emitter) snapshot() WebhookStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.stats
	st.ByStatus = make(map[string]int, len(e.stats.ByStatus))
	for k, v := range e.stats.ByStatus {
		st.ByStatus[k] = v
	}
	st.Replies = maps.Clone(e.stats.Replies)
	st.ByAddress = maps.Clone(e.stats.ByAddress)
	return st
}

func (e *emitter) outcomes() []WebhookOutcome {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]WebhookOutcome, 0, len(e.order))
	for _, id := range e.order {
		m := e.messages[id]
		out = append(out, WebhookOutcome{Number: m.number, MessageID: id, Planned: m.planned, Highest: m.highest})
	}
	return out
}

// Sign returns the x-connectly-hmac-sha256 value for body: Base64 (standard, padded) of
// HMAC-SHA256 over the raw body, keyed with the webhook secret (reference 5.3).
func Sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// hookParty is a sender or recipient object of a webhook body. UserID and PhoneNumber are
// only on a customer known by a BSUID (reference 5.4 and 6).
type hookParty struct {
	ID          string  `json:"id"`
	ChannelType string  `json:"channelType"`
	Name        *string `json:"name"`
	UserID      string  `json:"userId,omitempty"`
	PhoneNumber *string `json:"phoneNumber,omitempty"`
}

// customerParty is the customer object of a webhook (reference 5.4 and 6). A customer known
// by a phone number only is {id: number}. A phone-less customer (the fake's "bsuid:CC.id")
// is {id: BSUID, userId: BSUID, phoneNumber: ""}, the BSUID bare: "bsuid:" is the template
// API's request form and never appears in a webhook. A phone customer with a BSUID
// (WebhookConfig.BSUIDs) is {id: number, userId: BSUID, phoneNumber: number}.
func customerParty(number, bsuid string) hookParty {
	p := hookParty{ID: number, ChannelType: "whatsapp"}
	if bare, ok := strings.CutPrefix(customerKey(number), "bsuid:"); ok {
		empty := ""
		p.ID, p.UserID, p.PhoneNumber = bare, bare, &empty
		return p
	}
	if bsuid != "" {
		phone := number
		p.UserID, p.PhoneNumber = strings.TrimPrefix(bsuid, "bsuid:"), &phone
	}
	return p
}

// bsuidOf is the BSUID WebhookConfig.BSUIDs gives the phone customer number, or "".
func (e *emitter) bsuidOf(number string) string {
	return e.cfg.BSUIDs[number]
}

type hookStatusUpdate struct {
	ID       string            `json:"id"`
	Status   string            `json:"status"`
	Error    *errorBody        `json:"error"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

type hookStatusBody struct {
	Topic        string            `json:"topic"`
	Timestamp    string            `json:"timestamp"`
	Sender       hookParty         `json:"sender"`
	Recipient    hookParty         `json:"recipient"`
	StatusUpdate hookStatusUpdate  `json:"statusUpdate"`
	Metadata     map[string]string `json:"metadata"`
	CallbackData json.RawMessage   `json:"callbackData,omitempty"`
}

// businessNumber is the sender of a message: its sender field, or the fake's stand-in.
func businessNumber(m TemplateMessage) string {
	if m.Sender != "" {
		return m.Sender
	}
	return "+14155550100"
}

// statusBody renders a delivery_status event like the reference's examples, status being
// written word (statusWord). The campaign name goes where campaignAt
// (WebhookConfig.CampaignMetadata) says: by the message id to either documented place
// (top-level metadata.campaign_name, or statusUpdate.metadata.campaignName with a null
// metadata), to one of them, or to both.
//
// The customer is the recipient, written by customerParty (bsuid is the BSUID known for a
// phone customer, or ""). The business's name is "connectlyai" as in the success example,
// and null on a delivery_failed event, as in the failure example.
func statusBody(rec Received, status, word string, fail apiError, bsuid string, at time.Time, campaignAt string) []byte {
	var name *string
	if status != HookDeliveryFailed {
		n := "connectlyai"
		name = &n
	}
	b := hookStatusBody{
		Topic: TopicDeliveryStatus, Timestamp: strconv.FormatInt(at.Unix(), 10),
		Sender:       hookParty{ID: businessNumber(rec.Message), ChannelType: "whatsapp", Name: name},
		Recipient:    customerParty(rec.Number, bsuid),
		StatusUpdate: hookStatusUpdate{ID: rec.MessageID, Status: word},
		CallbackData: rec.Message.CallbackData,
	}
	if campaign := rec.Message.CampaignName; campaign != "" {
		top := rec.MessageID[len(rec.MessageID)-1]%2 == 0
		switch campaignAt {
		case CampaignMetaTop, CampaignMetaBoth:
			top = true
		case CampaignMetaStatus:
			top = false
		}
		if top {
			b.Metadata = map[string]string{"campaign_name": campaign}
		}
		if !top || campaignAt == CampaignMetaBoth {
			b.StatusUpdate.Metadata = map[string]string{"campaignName": campaign}
		}
	}
	if status == HookDeliveryFailed {
		e := fail.body()
		b.StatusUpdate.Error = &e
	}
	out, _ := json.Marshal(b)
	return out
}

// inboundBody is a messages-topic call (the documented inbound examples carry no topic
// field). Which fields are set depends on the reply's shape.
type inboundBody struct {
	// Topic is "messages" with WebhookConfig.InboundTopic, else left out.
	Topic     string          `json:"topic,omitempty"`
	Timestamp string          `json:"timestamp"`
	Sender    hookParty       `json:"sender"`
	Recipient *hookParty      `json:"recipient,omitempty"`
	Message   *inboundMessage `json:"message,omitempty"`
	// Attachments and Location are the top-level "attachments": [], "location": null of
	// some documented examples (ReplyReferral, and any shape with Reply.TopLevelEmpty).
	Attachments    *[]Attachment    `json:"attachments,omitempty"`
	Location       *json.RawMessage `json:"location,omitempty"`
	Context        *replyContext    `json:"context,omitempty"`
	ButtonResponse *buttonResponse  `json:"buttonResponse,omitempty"`
	ListResponse   *listResponse    `json:"listResponse,omitempty"`
	CallbackData   json.RawMessage  `json:"callbackData,omitempty"`
}

// inboundMessage is the message object of an inbound call. Its text, attachments and
// location are the fields of the message object a session send carries (reference 5.4:
// message.text, message.attachments[{type, url}], message.location; reference 3.1), so
// they share its types.
type inboundMessage struct {
	ID               string           `json:"id"`
	Text             string           `json:"text,omitempty"`
	IsButtonResponse bool             `json:"isButtonResponse,omitempty"`
	Attachments      []Attachment     `json:"attachments,omitempty"`
	Location         *Location        `json:"location,omitempty"`
	Referral         *inboundReferral `json:"referral,omitempty"`
	Reaction         *reaction        `json:"reaction,omitempty"`
}

// inboundReferral has the fields reference 5.4 lists for message.referral.
// An image ad has imageUrl, a video ad videoUrl and thumbnailUrl.
type inboundReferral struct {
	CtwaClid     string `json:"ctwaClid"`
	SourceURL    string `json:"sourceUrl"`
	SourceID     string `json:"sourceId"`
	SourceType   string `json:"sourceType"`
	Headline     string `json:"headline"`
	Body         string `json:"body"`
	MediaType    string `json:"mediaType"`
	ImageURL     string `json:"imageUrl,omitempty"`
	VideoURL     string `json:"videoUrl,omitempty"`
	ThumbnailURL string `json:"thumbnailUrl,omitempty"`
}

// mediaExt is the file extension of an inbound file of each media type.
var mediaExt = map[string]string{MediaImage: ".jpg", MediaVideo: ".mp4", MediaAudio: ".ogg", MediaDocument: ".pdf"}

// echoesCallback reports whether an inbound shape carries the callbackData of the message it
// replies to: button and list replies and quoted replies do (reference 5.4), plain text,
// media, locations and ad referrals do not.
func echoesCallback(shape string) bool {
	switch shape {
	case ReplyText, ReplyMedia, ReplyLocation, ReplyReferral:
		return false
	}
	return true
}

// needsMessage reports whether a shape refers to an earlier message (Inbound needs one sent).
func needsMessage(shape string) bool { return echoesCallback(shape) }

type replyContext struct {
	ReplyToID string `json:"replyToId"`
}

// buttonResponse carries the button's id as payload (GitBook form) or as id (the form without
// a message object).
type buttonResponse struct {
	Text    string `json:"text"`
	Payload string `json:"payload,omitempty"`
	ID      string `json:"id,omitempty"`
}

type listResponse struct {
	ID    string `json:"id"`
	Text  string `json:"text,omitempty"`
	Title string `json:"title,omitempty"`
}

// inboundForm is how an inbound call is written beside its shape: the list reply's form
// (WebhookConfig.ListReply), whether it names the business number as recipient
// (NameBusinessNumber) and carries its topic (InboundTopic), and whether it has the
// top-level attachments: [] and location: null (Reply.TopLevelEmpty).
type inboundForm struct {
	ListReply                       string
	Recipient, Topic, TopLevelEmpty bool
}

// replyBody renders inbound message in (its ID, At, To, Shape, Label and Payload: Label is
// the typed text, button text or row title, Payload the button or row id) from the recipient
// of rec, the message replied to. The customer, the sender, is written by customerParty
// (bsuid is the BSUID known for a phone customer, or ""); the business number written to,
// in.To, is the recipient when form.Recipient (WebhookConfig.NameBusinessNumber).
func replyBody(rec Received, in InboundRecord, bsuid string, form inboundForm) []byte {
	label, payload, shape, id := in.Label, in.Payload, in.Shape, in.ID
	b := inboundBody{
		Timestamp: strconv.FormatInt(in.At.Unix(), 10),
		Sender:    customerParty(rec.Number, bsuid),
	}
	if in.Name != "" {
		name := in.Name
		b.Sender.Name = &name
	}
	if form.Recipient {
		b.Recipient = &hookParty{ID: in.To, ChannelType: "whatsapp"}
	}
	if form.Topic {
		b.Topic = TopicMessages
	}
	if echoesCallback(shape) {
		b.CallbackData = rec.Message.CallbackData
	}
	switch shape {
	case ReplyText:
		b.Message = &inboundMessage{ID: id, Text: label}
	case ReplyButtonLegacy:
		b.Message = &inboundMessage{ID: id, Text: label, IsButtonResponse: true}
	case ReplyButtonContext:
		b.Message = &inboundMessage{ID: id, Text: label}
		b.Context = &replyContext{ReplyToID: rec.MessageID}
		b.ButtonResponse = &buttonResponse{Text: label, Payload: payload}
	case ReplyButtonTop:
		b.ButtonResponse = &buttonResponse{Text: label, ID: payload}
	case ReplyButtonBare:
		b.Context = &replyContext{ReplyToID: rec.MessageID}
		b.ButtonResponse = &buttonResponse{Text: label, Payload: payload}
	case ReplyList:
		b.Context = &replyContext{ReplyToID: rec.MessageID}
		switch form.ListReply {
		case ListReplyTitle:
			b.Message = &inboundMessage{ID: id}
			b.ListResponse = &listResponse{ID: payload, Title: label}
		case ListReplyButton:
			b.Message = &inboundMessage{ID: id, Text: label}
			b.ButtonResponse = &buttonResponse{Text: label, Payload: payload}
		default:
			b.Message = &inboundMessage{ID: id}
			b.ListResponse = &listResponse{ID: payload, Text: label}
		}
	case ReplyReaction:
		b.Message, b.Context = reactionBody(id, label, rec.MessageID)
	case ReplyQuoted:
		b.Message = &inboundMessage{ID: id, Text: label}
		b.Context = &replyContext{ReplyToID: rec.MessageID}
	case ReplyMedia:
		typ := cmp.Or(in.Media, MediaImage)
		att := Attachment{Type: typ, URL: "https://media.example.com/inbound/" + id + mediaExt[typ], Caption: in.Caption}
		if typ == MediaDocument {
			att.Filename = id + mediaExt[typ] // 3.1: filename for documents only
		}
		b.Message = &inboundMessage{ID: id, Attachments: []Attachment{att}}
	case ReplyLocation:
		lat, lng := 41.1496, -8.611
		b.Message = &inboundMessage{ID: id, Location: &Location{Latitude: &lat, Longitude: &lng}}
	case ReplyReferral:
		ref := &inboundReferral{
			CtwaClid: "ctwa-" + id, SourceURL: "https://ads.example.com/spring?ad=" + id, SourceID: "120200000000000000", SourceType: "ad",
			Headline: "Spring sale", Body: "Tap to chat with us", MediaType: MediaImage, ImageURL: "https://media.example.com/ads/spring.jpg",
		}
		if in.Media == MediaVideo {
			ref.MediaType, ref.ImageURL = MediaVideo, ""
			ref.VideoURL, ref.ThumbnailURL = "https://media.example.com/ads/spring.mp4", "https://media.example.com/ads/spring-thumb.jpg"
		}
		b.Message = &inboundMessage{ID: id, Text: label, Referral: ref}
		form.TopLevelEmpty = true
	}
	if form.TopLevelEmpty {
		none, null := []Attachment{}, json.RawMessage("null")
		b.Attachments, b.Location = &none, &null
	}
	out, _ := json.Marshal(b)
	return out
}

// webhooks returns the webhook emitter, nil when the fake has none yet.
func (s *Server) webhooks() *emitter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hooks
}

// WebhookStats returns the totals of the webhook calls.
func (s *Server) WebhookStats() WebhookStats {
	e := s.webhooks()
	if e == nil {
		return WebhookStats{ByStatus: map[string]int{}, Replies: map[string]int{}}
	}
	return e.snapshot()
}

// SetReplies replaces the replies (Webhooks.Replies) and restarts their rotation. It
// returns an error when ValidateReplies rejects them or the fake sends no webhooks (no
// secret).
func (s *Server) SetReplies(replies []Reply) error {
	return setOnEmitter(s, replies, ValidateReplies, (*emitter).setReplies)
}

// SetFates replaces the fates (Webhooks.Fates) of the messages accepted from now on; those
// already accepted keep theirs. It returns an error when ValidateFates rejects them or the
// fake sends no webhooks (no secret).
func (s *Server) SetFates(fates []Fate) error {
	return setOnEmitter(s, fates, ValidateFates, (*emitter).setFates)
}

// setOnEmitter checks list with validate and hands it to the webhook emitter with set; an
// error when validate refuses it or the fake sends no webhooks (no secret).
func setOnEmitter[T any](s *Server, list []T, validate func([]T) error, set func(*emitter, []T)) error {
	if err := validate(list); err != nil {
		return fmt.Errorf("fakeconnectly: %w", err)
	}
	e, err := s.signingEmitter()
	if err != nil {
		return err
	}
	set(e, list)
	return nil
}

// Fates returns a copy of the current fates.
func (s *Server) Fates() []Fate {
	e := s.webhooks()
	if e == nil {
		return []Fate{}
	}
	return e.getFates()
}

// Replies returns a copy of the current replies.
func (s *Server) Replies() []Reply {
	e := s.webhooks()
	if e == nil {
		return []Reply{}
	}
	return e.getReplies()
}

// Inbound sends at once a signed messages-topic call: an inbound message r from number (its
// Numbers, Percent and Salt are ignored), in reply to the latest message the fake took as
// sent to number, to the business number that sent it (the fake's stand-in when it named
// none, or when nothing was sent to number). ReplyRotate goes through the shapes from the
// first each time, so name the shape. It returns the shape used. A shape other than
// ReplyText needs a message sent to number first.
func (s *Server) Inbound(number string, r Reply) (string, error) {
	return s.InboundTo(number, "", r)
}

// InboundTo is Inbound to business number to (E.164; "" as Inbound): the customer's window
// opens to that number.
func (s *Server) InboundTo(number, to string, r Reply) (string, error) {
	if err := r.validate(); err != nil {
		return "", fmt.Errorf("fakeconnectly: inbound: %w", err)
	}
	if to != "" && !validE164(businessKey(to)) {
		return "", fmt.Errorf("fakeconnectly: inbound: business number %q is not E.164", to)
	}
	e, err := s.signingEmitter()
	if err != nil {
		return "", err
	}
	shape, err := e.inbound(number, to, r)
	if err != nil {
		return "", fmt.Errorf("fakeconnectly: inbound: %w", err)
	}
	return shape, nil
}

// signingEmitter returns the emitter when the fake signs webhooks.
func (s *Server) signingEmitter() (*emitter, error) {
	e := s.webhooks()
	if e == nil || e.cfg.Secret == "" {
		return nil, errors.New("fakeconnectly: no webhook secret: the fake sends no webhooks")
	}
	return e, nil
}

// WebhookOutcomes returns, for every accepted message in the order accepted, its planned
// fate and the highest status its receiver answered 200 to.
func (s *Server) WebhookOutcomes() []WebhookOutcome {
	e := s.webhooks()
	if e == nil {
		return nil
	}
	return e.outcomes()
}

// Webhook is one webhook registration (reference 5.2): the body of create/webhooks, an item
// of the listing, and the entity of the create and update answers. The fake gives it its id
// and, when none is given, the type custom.
type Webhook struct {
	ID            string                `json:"id,omitempty"`
	Topic         string                `json:"topic"`
	Address       string                `json:"address"`
	Type          string                `json:"type,omitempty"`
	Configuration *WebhookConfiguration `json:"configuration,omitempty"`
}

// WebhookConfiguration is a registration's configuration (reference 5.2): echo (outbound
// messages are sent to the address too, echoBody), the channel types and the filters, which
// keep events from the address (Webhook.accepts).
type WebhookConfiguration struct {
	Echo         bool            `json:"echo"`
	ChannelTypes []string        `json:"channelTypes,omitempty"`
	Filters      []WebhookFilter `json:"filters,omitempty"`
}

// WebhookFilter limits a registration, e.g. {"field": "campaign_name", "expression":
// "prod-*"} (reference 5.2).
type WebhookFilter struct {
	Field      string `json:"field"`
	Expression string `json:"expression"`
}

// serveWebhookAPI answers the webhook registration endpoints of reference 5.2 and reports
// whether verb was one of them:
//
//	POST   /v1/businesses/{businessId}/create/webhooks
//	GET    /v1/businesses/{businessId}/webhooks
//	PUT    /v1/businesses/{businessId}/update/webhooks/{webhookId}
//	DELETE /v1/businesses/{businessId}/delete/webhooks/{webhookId}
//
// The listing's {"entity": {"businessId", "webhooks"}} and delete's {} are documented.
// (inferred) The create and update answers, {"entity": <the registration>}: the reference
// has no create answer (10.12) and no update answer, and {"entity": ...} is the envelope
// of every documented management answer (1). (inferred) So are the create call's 400 for a
// topic, address or type it does not know (400 is documented for update only), and the
// 405 for a wrong method.
func (s *Server) serveWebhookAPI(w http.ResponseWriter, r *http.Request, business, verb string) bool {
	method, id := "", ""
	switch {
	case verb == "create/webhooks":
		method = http.MethodPost
	case verb == "webhooks":
		method = http.MethodGet
	case strings.HasPrefix(verb, "update/webhooks/"):
		method, id = http.MethodPut, strings.TrimPrefix(verb, "update/webhooks/")
	case strings.HasPrefix(verb, "delete/webhooks/"):
		method, id = http.MethodDelete, strings.TrimPrefix(verb, "delete/webhooks/")
	default:
		return false
	}
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		s.writeError(w, apiError{Status: http.StatusMethodNotAllowed, Message: "Method Not Allowed"})
		return true
	}
	if s.refuseCaller(w, r, business) || s.manage(w, r, EndpointWebhooks) {
		return true
	}
	// A fake without webhooks still keeps registrations.
	s.mu.Lock()
	if s.hooks == nil {
		s.hooks = newEmitter(WebhookConfig{}, s.clock, s.windows, s.uncoded)
	}
	e := s.hooks
	s.mu.Unlock()
	if id, err := url.PathUnescape(id); err == nil {
		return e.serveRegistration(w, method, id, business, body)
	}
	s.writeError(w, apiError{Status: http.StatusNotFound, Message: "Not Found"})
	return true
}

// writeError writes an error answer of the webhook API as the Server does.
func (e *emitter) writeError(w http.ResponseWriter, ae apiError) {
	ae.uncoded = e.uncoded
	writeError(w, ae)
}

// serveRegistration answers one call of the webhook API for the business's registration id
// ("" for the listing and create).
func (e *emitter) serveRegistration(w http.ResponseWriter, method, id, business string, body []byte) bool {
	bad := func(msg string) bool {
		e.writeError(w, *badRequest(msg))
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// find returns the topic id is registered for, or answers 404 and reports false.
	find := func() (string, bool) {
		for topic, reg := range e.regs {
			if reg.ID == id {
				return topic, true
			}
		}
		e.writeError(w, apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("webhook %q not found", id)})
		return "", false
	}
	switch method {
	case http.MethodGet:
		list := []Webhook{}
		for _, topic := range []string{TopicDeliveryStatus, TopicMessages} {
			if reg, ok := e.regs[topic]; ok {
				list = append(list, reg)
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"entity": map[string]any{"businessId": business, "webhooks": list}})
	case http.MethodPost:
		var reg Webhook
		if err := json.Unmarshal(body, &reg); err != nil {
			return bad("invalid request body: " + err.Error())
		}
		if reg.Topic != TopicDeliveryStatus && reg.Topic != TopicMessages {
			return bad(fmt.Sprintf("topic %q: want messages or delivery_status", reg.Topic))
		}
		if !validAddress(reg.Address) {
			return bad(fmt.Sprintf("address %q is not an http(s) URL", reg.Address))
		}
		if reg.Type == "" {
			reg.Type = "custom"
		}
		if !slices.Contains(webhookTypes, reg.Type) {
			return bad(fmt.Sprintf("type %q: want one of %s", reg.Type, strings.Join(webhookTypes, ", ")))
		}
		reg.ID = "wh_" + e.ids.next(e.clock())
		e.regs[reg.Topic] = reg // one address per topic: a new registration replaces the old
		writeJSON(w, http.StatusOK, map[string]any{"entity": reg})
	case http.MethodPut:
		topic, ok := find()
		if !ok {
			return true
		}
		var upd struct {
			Topic         string                `json:"topic"`
			Address       string                `json:"address"`
			Configuration *WebhookConfiguration `json:"configuration"`
		}
		if err := json.Unmarshal(body, &upd); err != nil {
			return bad("invalid request body: " + err.Error())
		}
		if upd.Topic != "" && upd.Topic != topic {
			return bad("the topic of a webhook cannot change")
		}
		reg := e.regs[topic]
		if upd.Address != "" {
			if !validAddress(upd.Address) {
				return bad(fmt.Sprintf("address %q is not an http(s) URL", upd.Address))
			}
			reg.Address = upd.Address
		}
		if upd.Configuration != nil {
			reg.Configuration = upd.Configuration
		}
		e.regs[topic] = reg
		writeJSON(w, http.StatusOK, map[string]any{"entity": reg})
	case http.MethodDelete:
		topic, ok := find()
		if !ok {
			return true
		}
		delete(e.regs, topic)
		writeJSON(w, http.StatusOK, struct{}{})
	}
	return true
}

// webhookTypes is the registration type enum of reference 5.2.
var webhookTypes = []string{"custom", "zapier", "webengage", "integromat_make", "webhook_type_unspecified"}

func validAddress(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// failTemplate makes the messages sent with template name whose delivery is still ahead
// fail at delivery with fail (reference 7: deleting a template makes "in-flight sends using
// it fail at delivery"). A message is still ahead when neither its delivered nor its read
// event has been handed to a sender yet: those events, and a reply to it, are dropped, and
// a delivery_failed event takes their place, due when the first of them was.
func (e *emitter) failTemplate(name string, fail apiError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	type ahead struct {
		due  time.Time
		body []byte
	}
	found := map[string]*ahead{}
	kept := e.queue[:0]
	for _, ev := range e.queue {
		m := e.messages[ev.msgID]
		if m == nil || m.template != name || m.reached || ev.echo {
			kept = append(kept, ev)
			continue
		}
		switch ev.status {
		case HookDelivered, HookRead:
			a := found[ev.msgID]
			if a == nil {
				a = &ahead{due: ev.due, body: ev.body}
				found[ev.msgID] = a
			} else if ev.due.Before(a.due) {
				a.due = ev.due
			}
		case "reply":
			e.dropReplyLocked(ev)
		default:
			kept = append(kept, ev)
			continue
		}
		e.stats.Events--
		e.stats.Pending--
	}
	e.queue = kept
	heap.Init(&e.queue)
	for id, a := range found {
		var b hookStatusBody
		if json.Unmarshal(a.body, &b) != nil {
			continue
		}
		b.Sender.Name = nil
		b.StatusUpdate.Status = e.statusWord(HookDeliveryFailed)
		fail.uncoded = e.uncoded
		eb := fail.body()
		b.StatusUpdate.Error = &eb
		body, _ := json.Marshal(b)
		e.messages[id].planned = HookDeliveryFailed
		// The failure is about the message and its campaign, as its other events are: a
		// registration's campaign_name filter applies to it (matchFilters).
		e.pushLocked(&hookEvent{due: a.due, topic: TopicDeliveryStatus, msgID: id, status: HookDeliveryFailed, body: body,
			campaign: e.messages[id].campaign, hasCampaign: true})
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// dropReplyLocked forgets a planned inbound message that will not be sent: its record and
// the window it opened.
func (e *emitter) dropReplyLocked(ev *hookEvent) {
	if ev.in == nil || ev.dup {
		return
	}
	list := e.inbounds[ev.in.Number]
	e.inbounds[ev.in.Number] = slices.DeleteFunc(list, func(in *InboundRecord) bool { return in == ev.in })
	e.windows.remove(ev.in.Number, ev.in.To, ev.in.At)
	if b := e.cfg.BSUIDs[ev.in.Number]; b != "" {
		e.windows.remove(b, ev.in.To, ev.in.At)
	}
}
