package servicewindow

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// Length is how long a customer service window stays open after the customer's last inbound
// message (reference 3.1).
const Length = 24 * time.Hour

// DefaultMargin is how long before its close a new Tracker counts a window as closed when it
// decides whether a session message may go (Open): Connectly derives the window on its own
// clock when the request arrives (reference 3.1), so a message sent at the very edge would be
// refused. Tracker.SetMargin changes it.
const DefaultMargin = 2 * time.Minute

// MaxAhead is the furthest ahead of its close a session message's window check may count a
// window closed: the tracker's margin (worker.window_margin) plus the longest the worker's
// send may still wait after the check (OpenFor's ahead: retry.keep_place_for plus three times
// retry.max_pace_wait). The config refuses a margin that takes the two past it. It keeps
// FollowupLate of the hour an on_reply session follow-up's longest delay leaves in the window
// (campaigns.MaxSessionReplyDelay, Length less an hour): such a follow-up, delayed to the
// limit after the reply that opened the window, still finds the window usable when its task
// is checked up to FollowupLate after it is due.
const MaxAhead = time.Hour - FollowupLate

// FollowupLate is how late after it is due a delayed session message may be checked and still
// find its window usable at the longest delay campaigns accept (MaxAhead): its task waits for
// the delayed-task poll and a free worker, and a window is recorded to the second.
const FollowupLate = 5 * time.Minute

// ttlGrace keeps a bucket in Redis a little past the close of its newest window, so a clock
// running behind Redis's on another host never loses an open window. Whether a window is open
// is decided from the recorded time, never from the TTL.
const ttlGrace = time.Minute

//go:embed lua/touch.lua
var touchLua string

// touchCmd records customers' inbound message times, moving them only forward
// (lua/touch.lua; its KEYS/ARGV contract is at its top).
var touchCmd = redis.NewScript(touchLua)

// ErrNoID is wrapped by Touch when none of the ids given names a customer.
var ErrNoID = errors.New("no customer id")

// Tracker records and answers customer service windows in Redis, under its Policy.
type Tracker struct {
	rdb    redis.UniversalClient
	now    func() time.Time
	margin time.Duration
	policy Policy
}

// New returns a Tracker on rdb, with DefaultMargin and the zero Policy. now is the clock that
// decides whether a window is still open (nil: time.Now).
func New(rdb redis.UniversalClient, now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{rdb: rdb, now: now, margin: DefaultMargin}
}

// SetMargin sets how long before its close OpenFor counts a window as closed: 0 counts it
// open until it closes; a negative margin is taken as 0. Call it before the tracker is used.
func (t *Tracker) SetMargin(d time.Duration) { t.margin = max(d, 0) }

// Margin is how long before its close OpenFor counts a window as closed (SetMargin).
func (t *Tracker) Margin() time.Duration { return t.margin }

// SetPolicy sets how windows are recorded and which count for a send (Policy). Call it
// before the tracker is used; every process of a business must use the same.
func (t *Tracker) SetPolicy(p Policy) { t.policy = p }

// Policy is the tracker's Policy (SetPolicy).
func (t *Tracker) Policy() Policy { return t.policy }

// Window is what is known of one customer service window.
type Window struct {
	// ID is the id looked up, as given.
	ID string `json:"id"`
	// To is the business number (E.164) the customer wrote to; "" for a window recorded with
	// no number (the inbound event named none, or it was recorded before Herald told numbers
	// apart).
	To string `json:"to,omitempty"`
	// LastInbound is the time of the customer's last inbound message; zero when none is
	// recorded inside the window's length.
	LastInbound time.Time `json:"last_inbound,omitzero"`
	// ClosesAt is LastInbound plus Length; zero with LastInbound.
	ClosesAt time.Time `json:"closes_at,omitzero"`
	// Open says whether the window is open now (ClosesAt is after the tracker's clock).
	Open bool `json:"open"`
}

// Locate returns the bucket key and the field of id's window with no business number for
// business (FieldTo gives its window to a number, in the same bucket). id is a phone number
// in E.164 ("+" and digits) or a BSUID in Herald's "bsuid:<id>" form (a bare BSUID is read
// alike); a phone's field is its digits, which Redis keeps as an integer, and a BSUID's field
// is the BSUID itself (it always holds a '.', so it never equals a phone's).
func Locate(business, id string) (key, field string) {
	field = Field(id)
	return rkeys.ServiceWindow(business, BucketOf(field)), field
}

// Field returns the hash field of id: a phone's digits, a BSUID without "bsuid:"; "" for an
// empty id.
func Field(id string) string {
	id = strings.TrimSpace(id)
	if b, ok := strings.CutPrefix(id, "bsuid:"); ok {
		return strings.TrimSpace(b)
	}
	if d, ok := strings.CutPrefix(id, "+"); ok && d != "" && allDigits(d) {
		return d
	}
	return id
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// BucketOf returns the bucket of a field: FNV-1a of the field modulo
// rkeys.ServiceWindowBuckets. A customer's windows to every number share the bucket of the
// customer's field.
func BucketOf(field string) int {
	h := fnv.New32a()
	h.Write([]byte(field))
	return int(h.Sum32() % rkeys.ServiceWindowBuckets)
}

// Touch is TouchTo for an inbound message that names no business number.
func (t *Tracker) Touch(ctx context.Context, business string, ids []string, at time.Time) (bool, error) {
	return t.TouchTo(ctx, business, "", ids, at)
}

// TouchTo records that the customer known by ids (its phone number and/or its BSUID: every
// id the inbound event carries) sent business number to a message at at; to is the event's
// recipient, "" when it names none (the window is then recorded with no number, as it is
// when the Policy lists no senders). The recorded time only moves forward: an event older
// than the one recorded changes nothing. A zero at, or one after the clock's now, is taken as
// now; an at whose window has already closed is not recorded. It returns whether any id's
// time moved, and an error wrapping ErrNoID when ids holds no id, or the Redis error. It is
// one round trip.
func (t *Tracker) TouchTo(ctx context.Context, business, to string, ids []string, at time.Time) (bool, error) {
	now := t.now()
	if at.IsZero() || at.After(now) {
		at = now
	}
	keys, fields := t.locateAll(business, ids)
	if len(keys) == 0 {
		return false, fmt.Errorf("servicewindow: touch: %w", ErrNoID)
	}
	closes := at.Truncate(time.Second).Add(Length)
	if !closes.After(now) {
		return false, nil
	}
	number := t.policy.recordedNumber(to)
	args := make([]any, 0, 3+len(fields))
	args = append(args, at.Unix(), now.Add(-Length).Unix(), (closes.Sub(now) + ttlGrace).Milliseconds())
	for _, f := range fields {
		args = append(args, FieldTo(f, number))
	}
	n, err := touchCmd.Run(ctx, t.rdb, keys, args...).Int64()
	if err != nil {
		return false, fmt.Errorf("servicewindow: touch: %w", err)
	}
	return n > 0, nil
}

// locateAll returns the bucket keys and customer fields of ids, each field once.
func (t *Tracker) locateAll(business string, ids []string) (keys, fields []string) {
	for _, id := range ids {
		k, f := Locate(business, id)
		if f == "" || slices.Contains(fields, f) {
			continue
		}
		keys, fields = append(keys, k), append(fields, f)
	}
	return keys, fields
}

// TouchUndated records an inbound message that carries no time (every inbound body the
// reference shows has its timestamp) as TouchTo does at now, for the message's first copy
// only: inbound names the message (webhooks.InboundKey), remembered for memory, so a copy
// delivered again hours later does not stretch the window past the one Meta keeps. A copy
// after the first records nothing and returns false. A first copy whose touch failed leaves
// the window unopened for good: a session message then waits for the customer's next
// message, which is the safe side. It costs one round trip more than TouchTo.
func (t *Tracker) TouchUndated(ctx context.Context, business, to string, ids []string, inbound string, memory time.Duration) (bool, error) {
	first, err := t.rdb.SetNX(ctx, rkeys.InboundUndated(business, inbound), 1, memory).Result()
	if err != nil {
		return false, fmt.Errorf("servicewindow: touch: %w", err)
	}
	if !first {
		return false, nil
	}
	return t.TouchTo(ctx, business, to, ids, time.Time{})
}

// OpenFor reports whether a session message may go now from business number sender (E.164;
// "" when the send names none) to the customer known by ids (a phone number and/or a BSUID),
// by a sender that may still wait up to ahead before its request goes out: whether the window
// that counts for it (Lookup) stays open for the tracker's margin plus ahead, and when it
// closes. A customer with no such window gives a zero time and false. It is one round trip.
func (t *Tracker) OpenFor(ctx context.Context, business, sender string, ahead time.Duration, ids ...string) (closesAt time.Time, open bool, err error) {
	w, err := t.Lookup(ctx, business, sender, ids...)
	if err != nil {
		return time.Time{}, false, err
	}
	return w.ClosesAt, t.Usable(w, ahead), nil
}

// Usable reports whether a session message may go to the customer of w (a window Lookup
// returned) from a sender that may still wait up to ahead: whether the window stays open for
// the tracker's margin plus ahead.
func (t *Tracker) Usable(w Window, ahead time.Duration) bool {
	return w.ClosesAt.After(t.now().Add(t.margin + max(ahead, 0)))
}

// Lookup returns the window that counts for a send from business number sender (E.164; ""
// when the send names none) to the customer known by ids, under the tracker's Policy
// (Policy.Sources): the latest of the customer's windows to that number, and of those
// recorded with no number when the Policy counts them. It is one round trip, and reads the
// record as it is: the window is Open until it closes, without the margin OpenFor keeps
// before a session message. ID is the id whose window it is ("" and zero times when none
// counts).
func (t *Tracker) Lookup(ctx context.Context, business, sender string, ids ...string) (Window, error) {
	var ws []Window
	for _, n := range t.policy.numbersFor(sender) {
		for _, id := range ids {
			ws = append(ws, Window{ID: id, To: numberOf(n)})
		}
	}
	if len(ws) == 0 {
		return Window{}, nil
	}
	cmds := make([]*redis.StringCmd, len(ws))
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, w := range ws {
			if k, f := Locate(business, w.ID); f != "" {
				cmds[i] = p.HGet(ctx, k, FieldTo(f, NumberDigits(w.To)))
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Window{}, fmt.Errorf("servicewindow: lookup: %w", err)
	}
	now := t.now()
	for i := range ws {
		if cmds[i] == nil {
			continue
		}
		v, err := cmds[i].Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return Window{}, fmt.Errorf("servicewindow: lookup: %w", err)
		}
		ws[i].set(v, now)
	}
	return Latest(ws), nil
}

// set fills w from a recorded value (unix seconds), read at now; a value Touch did not write
// leaves it without a window.
func (w *Window) set(v string, now time.Time) {
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return
	}
	w.LastInbound = time.Unix(sec, 0).UTC()
	w.ClosesAt = w.LastInbound.Add(Length)
	w.Open = w.ClosesAt.After(now)
}

// numberOf is the E.164 form of a number's digits ("" for none).
func numberOf(digits string) string {
	if digits == "" {
		return ""
	}
	return "+" + digits
}

// Latest returns the window of ws that closes last (a customer known by several ids, or
// whose windows to several numbers count, has one window: the latest of theirs); a zero
// Window when ws records none.
func Latest(ws []Window) Window {
	var best Window
	for _, w := range ws {
		if w.ClosesAt.After(best.ClosesAt) {
			best = w
		}
	}
	return best
}
