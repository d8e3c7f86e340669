// Package fakeconnectly is a local stand-in for the Connectly messaging API, used by Herald's
// demo, tests and benchmarks. It is built from the provider reference (sections 1 to 5, 7
// and 8), not from Herald's client: it answers in every shape the reference allows, also
// the ones a client may not expect.
//
// A Server answers these endpoints the way the reference describes them:
//
//	POST /v1/businesses/{businessId}/send/whatsapp_templated_messages
//	POST /v1/businesses/{businessId}/get/templates
//	POST, GET, PUT, DELETE the webhook registrations (create/webhooks, webhooks, ...)
//
// A send is checked in the same order every time: the X-API-Key header (401), the business id
// in the path (404), the per-business token bucket (429), the JSON body and its fields (400 with
// a documented error code), then the fault-injection rules, and finally it is accepted with a
// fresh 26-character ULID-style message id. Every JSON error answer carries the documented
// error body (message, type, code, userTitle, userMessage, cntTraceId, details). The rate
// limit's 429 carries ERROR_TYPE_UNSPECIFIED / ERROR_CODE_UNSPECIFIED (every Connectly error
// body has a code), or no body at all with Config.RateLimitBody = BodyEmpty; no answer ever
// carries Retry-After.
//
// Rules inject faults deterministically: they pick recipients by exact number, suffix,
// template, or a stable hash of the number (Percent, with a Salt so two rules pick different
// people), and answer with an error code, an HTTP status, extra latency, or a lost response
// (the message is accepted and the connection is closed without an answer, the case that
// makes a send's outcome unknown to Herald). Times limits a fault to the first N matching
// requests of each number, which models "fails twice, then succeeds".
//
// The answer shapes of the send endpoint, and the rule (JSON form) that gives each:
//
//	500 + JSON error body, not sent        {"status": 500}
//	500 + JSON error body, message sent    {"status": 500, "sent": true}
//	500/502/504, no body (sent or not)     {"status": 502, "body": "empty"} (+ "sent": true)
//	500/502/504, proxy HTML page           {"status": 504, "body": "gateway"} (+ "sent": true)
//	503 + JSON error body                  {"status": 503}
//	429 + JSON error body (UNSPECIFIED)    {"status": 429}
//	bare 429                               {"status": 429, "body": "empty"}
//	a documented error code                {"code": "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"}
//	accepted, answer lost                  {"loseResponse": true}
//
// The JSON 5xx body is the reference's own example: message "Internal server error", userTitle
// "Encountered unexpected error", ERROR_TYPE_UNSPECIFIED, ERROR_CODE_UNSPECIFIED. A rule with
// Sent makes the message go out before the error: it is given a message id, counts as
// accepted (Received.MessageID and ErrorCode are both set, AcceptedCount counts it, Stats
// counts it in Accepted and SentWithError) and its delivery webhooks follow. DemoRules is the
// mix `herald demo` uses, with most of these shapes.
//
// Given a webhook secret the fake calls signed webhooks (x-connectly-hmac-sha256, text/plain):
// delivery_status events for every message taken as sent, by Fates, and inbound messages
// (messages topic) from some readers, by Replies. A Reply takes one of the inbound shapes of
// reference 5.4 (Reply.Shape), or rotates through them (ReplyRotate):
//
//	text            message {id, text}; no callbackData
//	button-legacy   message {id, text, isButtonResponse: true}
//	button-context  message {id, text}, context {replyToId}, buttonResponse {text, payload}
//	button-top      buttonResponse {text, id}; no message, no context
//	list            message {id}, context {replyToId}, listResponse {id, text}
//
// All but text echo the callbackData of the message replied to; the customer is the sender.
// testdata/inbound-*.json holds one body of each. Inbound sends one reply at once, from a
// given number, in a given shape; SetReplies changes the replies while the fake runs.
// DemoWebhooks is the demo's webhook mix.
//
// Everything received is recorded. Tests in the same process read it with Received, Stats,
// AcceptedCount and AcceptedCounts; tests that run the fake in another process use the
// control endpoints, for which Remote is a small client:
//
//	GET  /_fake/received   the record of every send
//	GET  /_fake/stats      the totals
//	GET  /_fake/accepted   number -> times taken as sent
//	POST /_fake/reset      forget the record and totals
//	GET, POST /_fake/rules    the rules
//	GET, POST /_fake/replies  the replies
//	POST /_fake/inbound    {"number", "text" or "button", "payload", "shape"}: send one reply
package fakeconnectly
