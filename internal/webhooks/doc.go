// Package webhooks receives Connectly's webhook calls and turns them into per-recipient
// truth in the ledger.
//
// A Receiver is an http.Handler. For each POST it checks, in order: the content type
// (text/plain, as Connectly sends it, or application/json), the size (413 above MaxBody), the
// x-connectly-hmac-sha256 signature over the raw body (401 when missing or wrong, compared in
// constant time), and the JSON (400). Nothing is read from or written to Redis before the
// signature is checked.
//
// delivery_status events find their ledger entry through the callbackData Herald sends with
// every message (a ledger.Address: {herald_run, herald_to, herald_b}); without it, through the campaign name in
// either documented place and the customer's number, accepting only the entry that recorded
// the event's message id. The entry then moves forward only (accepted → sent → delivered →
// read, failed before delivered; an unknown entry is settled by any event), so duplicates and
// out-of-order events change nothing. An event that arrives while its entry is still being
// sent is parked in Redis (ledger.Park) and applied by the retry loop once the worker has
// recorded the send.
// A delivery failure records its code and class; an opt-out code puts the recipient on the
// suppression list.
//
// Inbound messages (messages topic, or no topic and a message, context, or button or list
// reply object) are normalised into one Inbound value whatever their shape (reference 5.4):
// text, media, location, a button reply as message.isButtonResponse, as context.replyToId plus
// buttonResponse, or as a lone top-level buttonResponse with no message object, and list
// replies found tolerantly in any listResponse- or listReply-like object. The customer is the
// sender, by phone number and business-scoped user id. A message whose text, button text,
// payload or id, or list row is an opt-out word puts the customer on the suppression list.
// Replies are counted in their run: the run in Herald's callbackData, unless it names another
// customer than the sender (ForeignCallback: then the reply is counted as one without it);
// for button and list replies without it, the newest run whose entry for the customer
// recorded the replied-to message id, or, when the reply names no message, the run the reply
// handler joined it to, else the newest run that sent to the customer; for other replies, the
// run the handler joined them to. A reply is counted once per inbound message: its name (InboundKey: its
// message id, else a digest of the body) is recorded with the count in one step and
// remembered for ReplyMemory, so a webhook delivered again, or to a second receiver replica,
// adds nothing (verdict "duplicate"); the handler joins every copy of a message to the run
// its first copy was joined to, so a copy is not counted in a newer run either.
//
// The event is recorded before the answer, so a 200 means it is in Redis; when Redis fails the
// answer is 503 and Connectly may send the event again, which is harmless.
package webhooks
