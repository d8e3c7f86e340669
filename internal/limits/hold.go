package limits

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// HoldScope is what a wait Connectly asks for (a 429's Retry-After) holds.
type HoldScope string

// The scopes a Retry-After can hold. Connectly documents neither the header nor the scope of
// its 200 requests/s limit (per key, business or sender: reference 8 and 10.13), so the
// default, HoldBusiness, is the widest Herald can keep: every send of the business waits.
const (
	// HoldBusiness holds the business's request limit: every send of the business waits. When
	// that limit is off (Config.BusinessRate negative: the config file's
	// connectly.business_rate refuses negatives, and 0 is its default), the sender's is held
	// instead.
	HoldBusiness HoldScope = "business"
	// HoldSender holds the sender number's rate limit: every send from that number waits.
	HoldSender HoldScope = "sender"
	// HoldSend holds only the send that was refused (its task comes back after the wait); the
	// others go on at the sender's adaptive rate.
	HoldSend HoldScope = "send"
	// DefaultHoldScope is the scope when none is configured.
	DefaultHoldScope = HoldBusiness
)

// ParseHoldScope reads a configured scope; "" is DefaultHoldScope.
func ParseHoldScope(s string) (HoldScope, error) {
	switch h := HoldScope(s); h {
	case "":
		return DefaultHoldScope, nil
	case HoldBusiness, HoldSender, HoldSend:
		return h, nil
	}
	return "", fmt.Errorf("%q: want business, sender or send", s)
}

//go:embed lua/hold.lua
var holdLua string

// holdCmd moves a limit's theoretical arrival time to the end of a hold. Its KEYS, ARGV and
// reply are documented at the top of lua/hold.lua.
var holdCmd = redis.NewScript(luaLib + holdLua)

// Hold holds the limit scope names for sender's sends (see HoldScope) for d from now, on
// Redis's clock: no reservation of it is granted before then, so every send it covers waits
// (Reservation.Reason ReasonRate, Wait until the hold's end) without a request. A sender's
// limit is held at its adaptive factor now (read on the process's clock, as the worker's
// reservations read it), and a decrease during the hold keeps it (Limiter.Throttled). A
// longer hold in place stays. It returns the limit's key ("" for HoldSend, which holds
// nothing here) and how long it now grants nothing. One round trip.
func (s *Sends) Hold(ctx context.Context, scope HoldScope, sender string, d time.Duration) (string, time.Duration, error) {
	if d <= 0 || scope == HoldSend {
		return "", 0, nil
	}
	sender = SenderKey(sender)
	var keys []string
	var args []any
	switch {
	case scope == HoldBusiness && s.cfg.BusinessRate > 0:
		keys = []string{rkeys.BusinessLimit(s.cfg.BusinessID)}
		args = []any{d.Microseconds(), PerSecond(s.cfg.BusinessRate).tolerance(), 0, 1, 0}
	case s.cfg.Adapts():
		// The sender's limit, at the factor its reservations would find now.
		p := s.cfg.Adaptive.withDefaults()
		keys = []string{rkeys.SenderLimit(s.cfg.BusinessID, sender), rkeys.SenderBackoff(s.cfg.BusinessID, sender)}
		args = []any{d.Microseconds(), s.senderLimit(sender).tolerance(), time.Now().UnixMilli(), p.Every.Milliseconds(), p.Step}
	default:
		keys = []string{rkeys.SenderLimit(s.cfg.BusinessID, sender)}
		args = []any{d.Microseconds(), s.senderLimit(sender).tolerance(), 0, 1, 0}
	}
	key := keys[0]
	v, err := holdCmd.Run(ctx, s.lim.rdb, keys, args...).Text()
	if err != nil {
		return key, 0, fmt.Errorf("limits: hold %s: %w", key, err)
	}
	us, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return key, 0, fmt.Errorf("limits: hold %s: reply %q", key, v)
	}
	return key, time.Duration(us) * time.Microsecond, nil
}
