package webhooks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// InboundKey names one inbound message whatever the number of its deliveries: what the
// receiver counts a reply once by (ledger.CountReply) and what the reply handler pins its join
// by (conversation), so that every copy of a message is the same message to both. It is the
// only place that decides it.
//
//   - "m:<message.id>" when the body has a message object with an id: Connectly's id of the
//     inbound message, the same in every copy.
//   - Else "b:<hex>", 128 bits of SHA-256 over the body in a canonical form (keys sorted,
//     spacing dropped, numbers as written). Reference 5.4 lists inbound shapes without a
//     message object (a lone top-level buttonResponse {text, id}, list replies, replies
//     carrying only context and buttonResponse) and documents no other id of the event:
//     buttonResponse.id names the button and context.replyToId the message replied to, both
//     shared by every tap on that message, so neither names this one. A retried delivery
//     carries the same body, timestamp included, and gets the same key; two taps seconds
//     apart differ by their timestamp. What this cannot tell apart: two copies of one message
//     whose bodies differ in content (a retry that changed the timestamp, say) are two
//     messages, each joined and counted on its own (the join's lower bound and the follow-up's
//     once per run, recipient and rule still hold); two messages whose bodies are identical
//     to the second are one.
//
// It returns "" only for an empty body without an id (nothing to name).
func InboundKey(messageID string, body []byte) string {
	if messageID != "" {
		return "m:" + messageID
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return ""
	}
	h := sha256.Sum256(canonicalJSON(body))
	return "b:" + hex.EncodeToString(h[:16])
}

// Key is the message's InboundKey.
func (in *Inbound) Key() string {
	if in == nil {
		return ""
	}
	return InboundKey(in.MessageID, in.Raw)
}

// canonicalJSON returns body with its object keys sorted and no spacing, numbers kept as
// written; body itself when it is not JSON.
func canonicalJSON(body []byte) []byte {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}
