package conversation

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// The join pin: one inbound message, one join.
//
// Connectly may deliver a webhook more than once (reference 5.3: a non-200 answer "may" be
// retried; no schedule is documented), and the receiver hands every copy to the follow-ups: a
// copy must finish what an earlier one left undone when it failed part way. The join of a
// plain-text reply depends on the index of recent sends, which changes under it: a copy
// delivered after a newer run messaged the customer would join that run, trigger its rules
// and so give one message two follow-ups. So the first join of an inbound message is pinned,
// by the message's name (webhooks.InboundKey: its provider id, else a digest of the body), in
// rkeys.InboundJoin: SET NX with a TTL of JoinMemory. Every later copy, in any order with
// other events, finds the pin when it comes to pin its own join and takes the pinned entry,
// or the pinned "none", instead of the one it found (one round trip more); then
// the rest of the reply (the rule, the follow-up entry and task, the conversation record)
// runs again on that entry, where each step is idempotent, so a copy after a partial failure
// completes the same follow-up. A join that fails pins nothing: no copy joined it.
//
// A message without a name (a Reply built with neither InboundKey nor MessageID; the
// receiver always gives one) is joined afresh each time, as before the pin.

// DefaultJoinMemory is how long an inbound message's join is pinned by default: the time the
// receiver remembers a message it counted (ledger.DefaultReplyMemory, 48 hours), so that a
// copy the count still knows is joined as the first was. It must outlast Connectly's retries
// of a webhook, whose schedule is not documented (reference 5.3). A copy that comes later
// still is joined afresh; the join's lower bound then still keeps a copy with a timestamp off
// the runs that messaged the customer after it was written.
const DefaultJoinMemory = ledger.DefaultReplyMemory

// pinNone is the pin of a message its first copy joined to no entry.
const pinNone = "-"

// maxPinName is the longest inbound name kept as is in a pin's key; a longer one is kept as a
// digest.
const maxPinName = 64

// pinned is a join as pinned.
type pinned struct {
	Entry Entry
	OK    bool
}

// inboundKey names r's inbound message for the pin: the receiver's name for it, else one
// made from its provider id; "" when it has neither.
func inboundKey(r Reply) string {
	return cmp.Or(r.InboundKey, webhooks.InboundKey(r.MessageID, nil))
}

// pinKey is the key of an inbound message's pin in business.
func pinKey(business, inbound string) string {
	if len(inbound) > maxPinName {
		h := sha256.Sum256([]byte(inbound))
		inbound = "h:" + hex.EncodeToString(h[:16])
	}
	return rkeys.InboundJoin(business, inbound)
}

// pinJoin returns the join of the inbound message named inbound: the one pinned by an earlier
// copy (again is true), else join's, pinned for memory. Two copies joining at once both join;
// the first to pin wins and the other takes its entry. An error of join, or of Redis, pins
// nothing.
func pinJoin(ctx context.Context, rdb redis.UniversalClient, key string, memory time.Duration,
	join func() (Entry, bool, error)) (e Entry, ok, again bool, err error) {
	e, ok, err = join()
	if err != nil {
		return Entry{}, false, false, err
	}
	v := pinNone
	if ok {
		b, err := json.Marshal(e)
		if err != nil {
			return Entry{}, false, false, fmt.Errorf("conversation: pin join: %w", err)
		}
		v = string(b)
	}
	for range 2 {
		set, err := rdb.SetNX(ctx, key, v, memory).Result()
		if err != nil {
			return Entry{}, false, false, fmt.Errorf("conversation: pin join: %w", err)
		}
		if set {
			return e, ok, false, nil
		}
		got, err := rdb.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			continue // expired between the two: pin this join
		}
		if err != nil {
			return Entry{}, false, false, fmt.Errorf("conversation: pin join: %w", err)
		}
		p, err := decodePin(got)
		if err != nil {
			return Entry{}, false, false, err
		}
		return p.Entry, p.OK, true, nil
	}
	return Entry{}, false, false, fmt.Errorf("conversation: pin join %s: neither set nor found", key)
}

// decodePin reads a pin.
func decodePin(v string) (pinned, error) {
	if v == pinNone {
		return pinned{}, nil
	}
	var e Entry
	// The value names the customer: an error says what is wrong with it, not what it holds.
	if err := json.Unmarshal([]byte(v), &e); err != nil {
		return pinned{}, fmt.Errorf("conversation: pinned join (%d bytes) does not decode: %w", len(v), err)
	}
	if e.Run == "" {
		return pinned{}, errors.New("conversation: pinned join names no run")
	}
	return pinned{Entry: e, OK: true}, nil
}
