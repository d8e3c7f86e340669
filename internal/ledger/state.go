package ledger

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// State is a recipient's state in a run.
type State string

const (
	Planned    State = "planned"
	Queued     State = "queued"
	Submitting State = "submitting"
	Unknown    State = "unknown"
	Accepted   State = "accepted"
	Sent       State = "sent"
	Delivered  State = "delivered"
	Read       State = "read"
	Failed     State = "failed"
	Skipped    State = "skipped"
)

// States lists every state in display order.
var States = []State{Planned, Queued, Submitting, Accepted, Sent, Delivered, Read, Failed, Skipped, Unknown}

// Terminal reports whether a recipient in state s needs no more work from the run. Accepted
// and later states still change through delivery webhooks, and unknown can be settled by one,
// but none of them will be sent again.
func (s State) Terminal() bool {
	switch s {
	case Accepted, Sent, Delivered, Read, Failed, Skipped, Unknown:
		return true
	}
	return false
}

// letters is the compact encoding of a state inside a ledger entry.
var letters = map[State]string{
	Planned: "p", Queued: "q", Submitting: "s", Unknown: "u", Accepted: "a",
	Sent: "t", Delivered: "d", Read: "r", Failed: "f", Skipped: "k",
}

var fromLetter = func() map[string]State {
	m := make(map[string]State, len(letters))
	for s, l := range letters {
		m[l] = s
	}
	return m
}()

// Letter returns the one-letter encoding of s used inside ledger entries.
func (s State) Letter() string { return letters[s] }

// Entry is one recipient's ledger entry.
type Entry struct {
	State State
	// Row is the recipient's 1-based row in the audience file.
	Row int
	// Attempts counts requests that reached Connectly or may have (throttled ones excluded).
	Attempts int
	// Code is the last error code or skip reason.
	Code string
	// MessageID is Connectly's message id once accepted.
	MessageID string
}

// encode renders an entry as "state|row|attempts|code|msgid". The scripts parse the same form.
func (e Entry) encode() string {
	return letters[e.State] + "|" + strconv.Itoa(e.Row) + "|" + strconv.Itoa(e.Attempts) + "|" + e.Code + "|" + e.MessageID
}

// decodeEntry parses an encoded entry.
func decodeEntry(v string) (Entry, error) {
	parts := strings.SplitN(v, "|", 5)
	if len(parts) < 5 {
		return Entry{}, fmt.Errorf("ledger: malformed entry %q", v)
	}
	st, ok := fromLetter[parts[0]]
	if !ok {
		return Entry{}, fmt.Errorf("ledger: unknown state %q in entry", parts[0])
	}
	row, err1 := strconv.Atoi(parts[1])
	att, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil {
		return Entry{}, fmt.Errorf("ledger: malformed entry %q", v)
	}
	e := Entry{State: st, Row: row, Attempts: att, Code: parts[3], MessageID: unpackMessageID(parts[4])}
	if st == Submitting {
		// A submitting entry holds its claim's token there, not a message id (claim.lua).
		e.MessageID = ""
	}
	return e, nil
}

// BucketOf returns the ledger bucket of a recipient in a run with n buckets.
func BucketOf(recipient string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(recipient))
	return int(h.Sum32() % uint32(n))
}

// BucketsFor returns the bucket count for an audience of about rows recipients: about 64 a
// bucket, well under Redis's default compact-hash limit of 128 entries.
func BucketsFor(rows int) int {
	n := (rows + 63) / 64
	if n < 1 {
		n = 1
	}
	return n
}

// Delivery is a run's answer to "a claim from an earlier attempt was found".
type Delivery string

const (
	// AtMostOnce marks such a recipient unknown, to be settled by a delivery webhook.
	AtMostOnce Delivery = "at-most-once"
	// AtLeastOnce sends again.
	AtLeastOnce Delivery = "at-least-once"
)

// ParseDelivery accepts "at-most-once" (also the empty string) or "at-least-once".
func ParseDelivery(s string) (Delivery, error) {
	switch s {
	case "", string(AtMostOnce):
		return AtMostOnce, nil
	case string(AtLeastOnce):
		return AtLeastOnce, nil
	}
	return "", fmt.Errorf("delivery %q: want at-most-once or at-least-once", s)
}

// RunStatus is a run's lifecycle status: running → paused → running → completed | cancelled.
type RunStatus string

const (
	RunRunning   RunStatus = "running"
	RunPaused    RunStatus = "paused"
	RunCompleted RunStatus = "completed"
	RunCancelled RunStatus = "cancelled"
)
