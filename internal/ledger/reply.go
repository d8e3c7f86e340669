package ledger

import (
	"cmp"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

//go:embed lua/reply.lua
var replyLua string

// replyCmd counts one inbound reply in a run's delivery statistics, once per inbound message.
// Its KEYS, ARGV and reply are documented at the top of lua/reply.lua.
var replyCmd = redis.NewScript(replyLua)

// DefaultReplyMemory is how long CountReply remembers an inbound message by default: far
// longer than a webhook's retries or a second receiver replica can lag behind.
const DefaultReplyMemory = 48 * time.Hour

// Reply is one inbound message that answers a run's message.
type Reply struct {
	Run string
	// ID identifies the inbound message: the same message delivered again has the same ID.
	// A reply with an ID is counted once however often it arrives; "" counts it every time.
	// IDs longer than 64 bytes are kept as a digest.
	ID string
	// Button is the label of the button tapped ("" for no button); it is cut to 64 bytes.
	Button string
	// OptOut marks a reply that opted the customer out.
	OptOut bool
	// Memory is how long the ID is remembered. Default DefaultReplyMemory.
	Memory time.Duration
}

// CountReply counts an inbound reply in its run's delivery statistics: every reply adds to
// "replies", a button reply also to "button:<label>", an opt-out to "optouts". The reply's ID
// is recorded in the same step, so a repeat of the same message within Memory changes
// nothing; counted is false for such a repeat.
func (l *Ledger) CountReply(ctx context.Context, r Reply) (counted bool, err error) {
	if r.Run == "" {
		return false, fmt.Errorf("ledger: count reply: no run")
	}
	button := r.Button
	if len(button) > 64 {
		button = button[:64]
	}
	optOut := "0"
	if r.OptOut {
		optOut = "1"
	}
	memory := "0"
	if r.ID != "" {
		memory = fmt.Sprint(max(1, cmp.Or(r.Memory, DefaultReplyMemory).Milliseconds()))
	}
	keys := []string{rkeys.Delivery(r.Run), rkeys.InboundSeen(r.Run, replyKey(r.ID))}
	n, err := replyCmd.Run(ctx, l.rdb, keys, button, optOut, memory).Int()
	if err != nil {
		return false, fmt.Errorf("ledger: count reply in run %s: %w", r.Run, err)
	}
	return n == 1, nil
}

// replyKey is the part of an inbound message's key that names it: the id itself, or a digest
// of an id longer than 64 bytes so that keys stay small.
func replyKey(id string) string {
	if len(id) <= 64 {
		return id
	}
	h := sha256.Sum256([]byte(id))
	return "h:" + hex.EncodeToString(h[:16])
}
