package ledger

import (
	"bytes"
	"encoding/json"
)

// Address locates one recipient's entry in a run: the run, the recipient (E.164, or
// "bsuid:<BSUID>") and the ledger bucket the recipient's entry lives in (BucketOf).
//
// It is also the callbackData Herald sends with every message, so that a webhook event about
// the message finds its entry: {"herald_run": ..., "herald_to": ..., "herald_b": ...}. The
// JSON names are part of the wire format: events about messages sent by any earlier version
// must still resolve, so they never change.
type Address struct {
	Run       string `json:"herald_run"`
	Recipient string `json:"herald_to"`
	Bucket    int    `json:"herald_b"`
}

// AddressIn returns the address of recipient in a run with the given number of buckets.
func AddressIn(runID, recipient string, buckets int) Address {
	return Address{Run: runID, Recipient: recipient, Bucket: BucketOf(recipient, buckets)}
}

// maxBucket bounds the bucket a callbackData may name: far above any run's bucket count
// (BucketsFor gives 16,384 buckets to a million recipients), so a forged or garbled value
// cannot name a huge key.
const maxBucket = 1 << 24

// Callback returns the address as callbackData JSON.
func (a Address) Callback() json.RawMessage {
	b, _ := json.Marshal(a)
	return b
}

// ParseCallback reads an address from callbackData: the object Callback writes, or the same
// object echoed back as a JSON string. It reports false for anything else (another sender's
// callbackData, a field missing or of the wrong type, an empty run or recipient, a bucket out
// of range).
func ParseCallback(raw json.RawMessage) (Address, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return Address{}, false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return Address{}, false
		}
		raw = []byte(s)
	}
	var cb struct {
		Run    *string `json:"herald_run"`
		To     *string `json:"herald_to"`
		Bucket *int    `json:"herald_b"`
	}
	if json.Unmarshal(raw, &cb) != nil || cb.Run == nil || cb.To == nil || cb.Bucket == nil {
		return Address{}, false
	}
	if *cb.Run == "" || *cb.To == "" || *cb.Bucket < 0 || *cb.Bucket >= maxBucket {
		return Address{}, false
	}
	return Address{Run: *cb.Run, Recipient: *cb.To, Bucket: *cb.Bucket}, true
}
