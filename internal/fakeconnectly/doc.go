// Package fakeconnectly is a local stand-in for the Connectly messaging API, used by Herald's
// demo, tests and benchmarks.
//
// A Server answers the two endpoints Herald calls the way the provider reference describes
// them (sections 1, 2, 4 and 8):
//
//	POST /v1/businesses/{businessId}/send/whatsapp_templated_messages
//	POST /v1/businesses/{businessId}/get/templates
//
// A send is checked in the same order every time: the X-API-Key header (401), the business id
// in the path (404), the per-business token bucket (429), the JSON body and its fields (400 with
// a documented error code), then the fault-injection rules, and finally it is accepted with a
// fresh 26-character ULID-style message id. Every error answer carries the documented error
// body (message, type, code, userTitle, userMessage, cntTraceId, details).
//
// Rules inject faults deterministically: they pick recipients by exact number, suffix,
// template, or a stable hash of the number (Percent, with a Salt so two rules pick different
// people), and answer with an error code, an HTTP status, extra latency, or a lost response
// (the message is accepted and the connection is closed without an answer, the case that
// makes a send's outcome unknown to Herald). Times limits a fault to the first N matching
// requests of each number, which models "fails twice, then succeeds".
//
// Everything received is recorded. Tests in the same process read it with Received, Stats
// and AcceptedCount; tests that run the fake in another process use the control endpoints
// (GET /_fake/received, GET /_fake/stats, POST /_fake/reset, GET and POST /_fake/rules),
// for which Remote is a small client.
package fakeconnectly
