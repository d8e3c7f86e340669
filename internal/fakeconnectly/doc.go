// Package fakeconnectly is a local stand-in for the Connectly messaging API, used by Herald's
// demo, tests and benchmarks. It is built from the provider reference (sections 1 to 8 and
// 10), not from Herald's client: it answers in every shape the reference allows, also the
// ones a client may not expect.
//
// A Server answers these endpoints the way the reference describes them:
//
//	POST /v1/businesses/{businessId}/send/whatsapp_templated_messages
//	POST /v1/businesses/{businessId}/send/messages
//	POST /v1/businesses/{businessId}/get/templates
//	DELETE /v1/businesses/{businessId}/templates/{name}
//	POST, GET, PUT, DELETE the webhook registrations (create/webhooks, webhooks, ...)
//
// Templates (reference 2.2, 7). Config.Templates are the business's templates; with none,
// a send may name any template and the listing is empty. A template whose Body is known
// checks a send's parameters against it: a body_N for each {{N}}, no other, header_text
// only for a header with a variable, header_image/video/document only for a header of that
// media, else 400 ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID. get/templates lists each
// translation with its status, category and components (Meta's and Connectly's
// templateComponents; a template's Buttons, {type, text, ...} as Meta's raw object has
// them, in a BUTTONS component of Meta's only), and agrees with the send endpoint. DELETE
// …/templates/{name}
// answers 200 {} whether or not it existed, refuses the name from then on and fails its
// in-flight sends at delivery (Config.DeletedTemplateFailure). Template.DeliveryFailure
// makes a template's sends accepted and then failed by a delivery_failed event.
//
// Where the reference leaves a choice open the fake keeps its guess in one named place and
// an option picks the other reading: NumberPunctuation (a number with punctuation is
// normalized, the reference's guess, or refused), WindowAnswer (which code a closed window
// gets, on the send or at delivery), WebhookConfig.ListReply (the list reply's form), WebhookConfig.FailedStatus
// (delivery_failed, or the README's delivery_failure), Rule.NumericCode (an error body's
// code as the documented string, or as a JSON number, the form of Meta's codes, 9.2),
// DefaultLanguage (a template send without a language is refused, as the newer page has
// it required, or taken in "en", the GitBook's default, 2.1), DedupeMessageID (a session
// send's message.id deduplicates nothing, 3.1, or a repeat of one already taken is answered
// 200 with the first message's id and sends nothing, 10.6), CampaignFlowMessages
// (campaignName is an analytics tag only, the newer page's reading, or it also starts a
// Flow-Builder flow, the GitBook's, 10.8: the fake then sends that many messages of the
// flow to the recipient, recorded in the conversation as kind "flow" with their own ids,
// startedBy the send's, and delivery webhooks).
// Refusals the reference does not
// state (Meta's whitespace rule for text parameters, https-only media, a parameter key
// given twice, a session object without channelType) are off unless Config.Strict asks.
//
// A send is checked in the same order every time: the X-API-Key header (401), the business
// id in the path (404), the per-business token bucket (429), the JSON body and its fields
// (400 with a documented error code), then the fault-injection rules, and finally it is
// accepted with a fresh 26-character ULID-style message id, answered 200 {"id": "..."}
// (the OpenAPI lists 200 and 201, 10.3: (inferred) 200, and a Rule with Status 201 gives
// the other). (inferred) That order is the fake's: the reference documents each answer, not
// which check comes first. Both send endpoints draw from the one token bucket (Connectly's
// 200 requests/s applies to each; (inferred) the fake counts them together, the stricter
// reading, 10.13). Every JSON error answer carries the documented error body (message,
// type, code, userTitle, userMessage, cntTraceId, details), unless a rule's Omit leaves some
// of them out (4.1 promises details only "when available"); an answer with no documented
// code or type writes ERROR_CODE_UNSPECIFIED / ERROR_TYPE_UNSPECIFIED (Config.UncodedBody).
// The rate limit's 429 carries ERROR_TYPE_UNSPECIFIED / ERROR_CODE_UNSPECIFIED ((inferred)
// every Connectly error body has a code), or no body at all with Config.RateLimitBody =
// BodyEmpty. The reference documents no Retry-After and leaves its presence open (10.13): no
// answer carries one unless asked, by Config.RateLimitRetryAfter (the seconds until a token)
// or a Rule's RetryAfter (any value, an HTTP-date too). A Rule's Details fills the error
// body's details object, {} by default (4.1: "extra structured info when available"; null
// too), and its Type and Message replace the body's type and message, so any pairing a
// client may meet can be played (3.1's ERROR_TYPE_FAILED_PRECONDITION with the window's
// code, 9.2's "(#131056) ..." messages). A Fate (and a template's DeliveryFailure) gives a
// delivery_failed's error the same fields: 4.1 says the two share one shape.
//
// A session send (send/messages, reference 3 and 3.1) has recipient {id, channelType, name?}
// with an E.164 number or a bare BSUID in id (or a BSUID in userId), an optional sender
// OBJECT {id, channelType}, callbackData, campaignName, and a message with an optional id and
// exactly one content kind: text, attachments (one), location, listMessage,
// replyButtonMessage, singleProductMessage or multiProductMessage; text is also the body of a
// list, reply buttons or products and may go with an attachment. snake_case spellings
// (list_message, reply_button_message, channel_type, ...) are read too. The body is decoded
// strictly, and refused with the documented code where one exists:
//
//	no recipient id, not E.164 / bare BSUID  ERROR_CODE_PHONE_NUMBER_BAD_FORMAT
//	sender a string, not the business's      ERROR_CODE_INVALID_SENDER_ID
//	channelType other than whatsapp          ERROR_CODE_BUSINESS_MISSES_MATCHING_CHANNEL
//	no content, empty text, no body          ERROR_CODE_MESSAGE_TEXT_EMPTY
//	two attachments                          ERROR_CODE_MESSAGE_ATTACHMENTS_NUMBER_INVALID
//	empty attachment url                     ERROR_CODE_MESSAGE_ATTACHMENT_EMPTY
//	url not an absolute http(s) URL          ERROR_CODE_MESSAGE_ATTACHMENT_INVALID
//
// and otherwise (malformed JSON, unknown fields, two content kinds, text over 4,096
// characters, 0 or more than 3 reply buttons, a button over 20 characters, more than 10 list
// rows, callbackData over 1,024 bytes...) with 400 ERROR_TYPE_INVALID_REQUEST and
// ERROR_CODE_UNSPECIFIED: the reference has no code for these (inferred), and a body whose
// code is unset says so (Config.UncodedBody gives "code": "" or no code field instead).
// testdata/session holds one exact
// request and answer per case.
//
// Both send bodies are read into the fake's own types (TemplateMessage, SessionMessage),
// written from the reference, never into Herald's client's. A field the reference does not
// name is refused, and so is a documented name spelled another way ("TemplateName",
// "Recipient"), which encoding/json alone would take for the documented one: a client that
// gets a name wrong fails against the fake as it would against Connectly.
//
// The 24-hour window. A session send is accepted only while the recipient's window to the
// send's sender number is open: from an inbound message to that number at T until T+24h, on
// the fake's Clock. On WhatsApp a customer opens a window by writing to one business number,
// and only that number is inside it ((inferred): the reference says only "messaged the
// business in the last 24 h", 3.1); a send that names no sender goes from the fake's
// stand-in number. The fake knows of inbound messages only from itself: the replies it sends
// as messages webhooks (Replies; a reply goes to the number that sent the message replied
// to, and the window opens at the reply's time, whether or not the receiver takes the call),
// Inbound and InboundTo, and OpenWindow and OpenWindowTo, which open one without a webhook
// (OpenWindow to every number). Its inbound calls name no recipient, as reference 5.4's
// inbound examples show; WebhookConfig.NameBusinessNumber names the business number written
// to there, as Connectly's status events name both parties (the windows stay per number
// either way). A customer who never wrote is answered 400
// ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION; one whose window has closed, the
// reference's own example body (4.1): 400, ERROR_TYPE_DEADLINE_EXCEEDED,
// ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW. Config.WindowAnswer gives the closed
// window as a 504 instead, or as ERROR_TYPE_FAILED_PRECONDITION; Config.IgnoreWindow turns the
// check off. The window is checked after the body and before the rules, so a rule never
// sends a message outside a window. Or Config.WindowAnswer takes the send and fails it later
// (reference 9.3: "final outcome comes from delivery_status webhooks"): WindowAnswerAtDelivery
// answers 200 with an id, then sends sent and a delivery_failed whose error is the
// reference's window body above, WindowAnswerAtDelivery131047 one with Meta's code 131047
// (9.2, "Re-engagement") as a JSON number, WindowAnswerAtDelivery131047String as a string.
// Such a message is never delivered or read, whatever the Fates, and its reader never
// replies; the rules apply to its send as to any other. Received.WindowFailure,
// SentMessage.WindowFailure and Stats.WindowFailedAtDelivery record it. A BSUID customer is the same whether written bare
// ("US.123", a session recipient) or prefixed ("bsuid:US.123", a template number).
//
// Rules inject faults deterministically, on both send endpoints: they pick sends by exact
// number, suffix, template, endpoint (Kind: template or session; a rule with a Template
// never matches a session send) or a stable hash of the number (Percent, with a Salt so two
// rules pick different people), and answer with an error code, an HTTP status, extra
// latency, or a lost response (the connection is closed without an answer, the case that
// makes a send's outcome unknown to Herald). Times limits a fault to the first N matching
// requests of each number, which models "fails twice, then succeeds".
//
// Whether a message went out when its client saw no success is always the rule's explicit
// choice (reference 4.4: "500, 502, 503, 504, connection reset, timeout | TRANSIENT |
// duplicate risk ... retrying after a timeout may double-send"). "sent": true takes the
// message on arrival, before the rule's latency: its webhooks go out while the call hangs,
// and a client that times out leaves it sent (Received: the message id and ErrorCode
// CANCELED; Stats.SentCanceled), so a retry sends it twice. Without it, a client that times
// out leaves nothing sent. A lost response sends the message by default; with "sent": false
// the connection drops before the message is taken (ErrorCode DROPPED, Stats.Dropped).
//
// The management endpoints fail too (reference 5.2: update/webhooks "Errors
// 400/401/404/500", delete/webhooks "errors 401/404/500"): a rule with "endpoint":
// "webhooks" applies to the four webhook registration calls, "endpoint": "templates" to
// get/templates and DELETE templates/{name}, after the key and business checks, with a
// code or an error status, any body shape, type, message, details, Retry-After and latency;
// "times" counts the calls. A failed call changes nothing.
//
// The answer shapes of the send endpoints, and the rule (JSON form) that gives each (add
// "kind": "session" to limit one to session sends):
//
//	500 + JSON error body, not sent        {"status": 500}
//	500 + JSON error body, message sent    {"status": 500, "sent": true}
//	500/502/504, no body (sent or not)     {"status": 502, "body": "empty"} (+ "sent": true)
//	500/502/504, proxy HTML page           {"status": 504, "body": "gateway"} (+ "sent": true)
//	503 + JSON error body (sent or not)    {"status": 503} (+ "sent": true)
//	429 + JSON error body (UNSPECIFIED)    {"status": 429}
//	bare 429                               {"status": 429, "body": "empty"}
//	a documented error code                {"code": "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"}
//	Meta's code as a JSON number           {"code": "131056", "numericCode": true}
//	grpc-gateway's default error body      {"code": "DEADLINE_EXCEEDED", "body": "grpc"} (+ "sent": true):
//	                                       504 {"code":4,"message":"context deadline exceeded","details":[]};
//	                                       the gateway's default status for the gRPC status, or "status"
//	accepted, answer lost                  {"loseResponse": true}
//	connection reset, nothing sent         {"loseResponse": true, "sent": false}
//	taken on arrival, slow answer          {"latency": "30s", "sent": true} (+ "status": 503)
//	slow answer, not sent if timed out     {"latency": "30s"}
//
// The JSON 5xx body is the reference's own example: message "Internal server error", userTitle
// "Encountered unexpected error", ERROR_TYPE_UNSPECIFIED, ERROR_CODE_UNSPECIFIED. A rule with
// Sent makes the message go out before the error: it is given a message id, counts as
// accepted (Received.MessageID and ErrorCode are both set, AcceptedCount counts it, Stats
// counts it in Accepted and SentWithError) and its delivery webhooks follow. DemoRules is the
// mix `herald demo` uses, with most of these shapes.
//
// Given a webhook secret the fake calls signed webhooks (x-connectly-hmac-sha256, text/plain):
// delivery_status events for every message taken as sent, template or session alike, by
// Fates, and inbound messages (messages topic) from some readers, by Replies. A Reply takes
// one of the inbound shapes of reference 5.4 (Reply.Shape), or rotates through them
// (ReplyRotate; Reply.Shapes gives the list, ReplyShapes by default):
//
//	text            message {id, text}; no callbackData
//	button-legacy   message {id, text, isButtonResponse: true}
//	button-context  message {id, text}, context {replyToId}, buttonResponse {text, payload}
//	button-top      buttonResponse {text, id}; no message, no context
//	list            message {id}, context {replyToId}, listResponse {id, text}
//	quoted          message {id, text}, context {replyToId}
//	media           message {id, attachments: [{type, url, caption?}]} (image, video, audio,
//	                document + filename: Reply.Media, Reply.Caption); no callbackData
//	location        message {id, location {latitude, longitude}}; no callbackData
//	referral        message {id, text, referral {ctwaClid, sourceUrl, ..., imageUrl or
//	                videoUrl + thumbnailUrl}}, attachments: [], location: null; no callbackData
//	button-bare     context {replyToId}, buttonResponse {text, payload}; no message
//	reaction        message {id, reaction {messageId, emoji}}, context {replyToId}
//
// The button, list, quoted and reaction shapes echo the callbackData of the message replied to; the
// customer is the sender, with their name when the Reply gives one (Reply.Name; null otherwise). A customer known by a BSUID is written as reference 5.4 and 6 say,
// never in the template API's "bsuid:" form: a phone-less one {id: BSUID, userId: BSUID,
// phoneNumber: ""}, a phone one with a BSUID (WebhookConfig.BSUIDs) {id: phone, userId:
// BSUID, phoneNumber: phone}. Only an answer of exactly 200 acknowledges a webhook call (5.3);
// anything else, a 204 too, is retried. testdata/inbound-*.json holds one body of each (InboundShapes).
// No inbound call carries a topic, as in the documented examples, unless
// WebhookConfig.InboundTopic adds "topic": "messages"; Reply.TopLevelEmpty gives any shape
// the top-level attachments: [] and location: null of some examples. A status event's
// campaign name goes to either documented place, or to one or both
// (WebhookConfig.CampaignMetadata), and its callbackData comes back as sent, or in another
// form (WebhookConfig.CallbackEcho).
// Inbound sends one reply at once, from a given number, in a given shape; SetReplies
// changes the replies while the fake runs.
//
// Conversations. Replies are tried in order, the first that picks a reader applies. ReplyMix
// gives several replies disjoint shares of the numbers by one stable hash (Reply.From), so
// a test knows who taps what (MatchReply) before the run: for example 20% tap "Yes, show
// me", 10% "No thanks", 5% type a keyword, 2% write STOP (DemoReplies, the demo's mix).
// Reply.Kind limits a reply to readers of template messages or of session messages
// (follow-ups), Reply.Template to one template's readers, and Reply.Times caps its replies
// per number; a reply to a follow-up is a reply like any other, with the follow-up's id and
// callbackData. A reader taps only what the message shows: a button reply answers a
// template with that QUICK_REPLY button (Config.Templates) or a session message with that
// reply button, a list reply a session message with that list row, and a template the fake
// has no definition of shows none unless the reply names it (see Reply). RepliesFrom tells,
// for a number, every inbound message the fake sent from it: rule, shape, label, payload,
// the message replied to and when.
//
// Receivers. WebhookConfig.URLs adds receivers of both topics beside URL and TopicURLs gives
// a topic its own, for two or more replicas of one receiver: each event goes to one of a
// topic's receivers, by a stable hash of the event, and its duplicate (DuplicatePercent) to
// another; reordering works as with one. SetReceivers changes them while the fake runs. A
// registration made through the webhook API still takes its topic, and its configuration
// applies (reference 5.2): filters (campaign_name globs) and channelTypes keep events away
// from it (WebhookStats.Filtered), and echo: true sends it an echo of every outbound
// message (see echoBody for the form, the fake's choice).
//
// The record judges. Conversation(number) and Conversations list, per customer, every message
// the fake took as sent (kind, time, whether the 24-hour window was open then, callbackData,
// campaign name, template or content and text, the status answered), every inbound message
// sent from them, and the session sends refused for a closed window; Stats counts
// WindowRefused, AcceptedOutsideWindow (only with IgnoreWindow or a WindowAnswer that fails
// at delivery), WindowFailedAtDelivery and TemplatesInWindow. A
// test checks "exactly one follow-up per tapper per rule, none outside a window" from it
// alone. A fake with MaxReceived set keeps no conversations (ErrNoConversations).
// DemoWebhooks is the demo's webhook mix.
//
// Everything received is recorded, with its Kind (template or session) and, for a session
// send, its content kind and its whole body (Received.Session). A session request made when
// its recipient's window was closed is flagged OutsideWindow whatever it was answered (even
// 429 or 401), so "no request outside a window" is Stats().OutsideWindow == 0. AcceptedCount
// counts a number's messages on both endpoints. Accepted session messages get delivery
// webhooks like template ones, and their readers may reply, which opens their windows anew.
// Tests in the same process read the record with Received, Stats, AcceptedCount and
// AcceptedCounts, the conversations with Conversation, Conversations and RepliesFrom, and
// the windows with WindowOf, WindowTo and Windows; tests that run the fake in
// another process use the control endpoints, for which Remote is a small client:
//
//	GET  /_fake/received   the record of every send
//	GET  /_fake/stats      the totals
//	GET  /_fake/accepted   number -> times taken as sent
//	POST /_fake/reset      forget the record and totals
//	GET, POST /_fake/rules    the rules
//	GET, POST /_fake/replies  the replies
//	POST /_fake/inbound    {"number", "to"?, "text" or "button", "payload", "shape"}: send
//	                       one reply (it opens the number's window to "to")
//	GET  /_fake/windows    every customer who wrote, and their window to each number
//	POST /_fake/windows    {"number", "to"?, "at"?}: open a window without a webhook
//	DELETE /_fake/windows  forget every inbound message (Reset keeps them)
//	GET  /_fake/inbound?number=N   the inbound messages sent from N (RepliesFrom)
//	GET  /_fake/conversations      every customer's record; ?number=N for one
//	GET  /_fake/webhooks   the webhook totals (WebhookStats), by status, shape and address
//	GET, POST /_fake/receivers  the webhook receivers {"urls": [...], "topics": {...}}
//	GET, POST /_fake/fates      the fates of the messages accepted from now on
//	GET, POST /_fake/templates  the business's templates (get/templates lists them)
package fakeconnectly
