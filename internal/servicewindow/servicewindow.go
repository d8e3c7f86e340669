package servicewindow

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"hash/fnv"
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

// Tracker records and answers customer service windows in Redis.
type Tracker struct {
	rdb    redis.UniversalClient
	now    func() time.Time
	margin time.Duration
}

// New returns a Tracker on rdb, with DefaultMargin. now is the clock that decides whether a
// window is still open (nil: time.Now).
func New(rdb redis.UniversalClient, now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{rdb: rdb, now: now, margin: DefaultMargin}
}

// SetMargin sets how long before its close Open counts a window as closed: 0 counts it open
// until it closes; a negative margin is taken as 0. Call it before the tracker is used.
func (t *Tracker) SetMargin(d time.Duration) { t.margin = max(d, 0) }

// Margin is how long before its close Open counts a window as closed (SetMargin).
func (t *Tracker) Margin() time.Duration { return t.margin }

// Window is what is known of one id's customer service window.
type Window struct {
	// ID is the id looked up, as given.
	ID string `json:"id"`
	// LastInbound is the time of the customer's last inbound message; zero when none is
	// recorded inside the window's length.
	LastInbound time.Time `json:"last_inbound,omitzero"`
	// ClosesAt is LastInbound plus Length; zero with LastInbound.
	ClosesAt time.Time `json:"closes_at,omitzero"`
	// Open says whether the window is open now (ClosesAt is after the tracker's clock).
	Open bool `json:"open"`
}

// Locate returns the bucket key and field that hold id's last inbound time for business.
// id is a phone number in E.164 ("+" and digits) or a BSUID in Herald's "bsuid:<id>" form
// (a bare BSUID is read alike); a phone's field is its digits, which Redis keeps as an
// integer, and a BSUID's field is the BSUID itself (it always holds a '.', so it never
// equals a phone's). A script that decides on windows (the daily tier's reservation) takes
// the key as a KEYS entry: it shares the business hash tag with the limit keys.
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
// rkeys.ServiceWindowBuckets.
func BucketOf(field string) int {
	h := fnv.New32a()
	h.Write([]byte(field))
	return int(h.Sum32() % rkeys.ServiceWindowBuckets)
}

// Touch records that the customer known by ids (its phone number and/or its BSUID: every id
// the inbound event carries) sent the business a message at at. The recorded time only moves
// forward: an event older than the one recorded changes nothing. A zero at, or one after the
// clock's now, is taken as now; an at whose window has already closed is not recorded. It
// returns whether any id's time moved, and an error wrapping ErrNoID when ids holds no id, or
// the Redis error. It is one round trip.
func (t *Tracker) Touch(ctx context.Context, business string, ids []string, at time.Time) (bool, error) {
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
	args := make([]any, 0, 3+len(fields))
	args = append(args, at.Unix(), now.Add(-Length).Unix(), (closes.Sub(now) + ttlGrace).Milliseconds())
	for _, f := range fields {
		args = append(args, f)
	}
	n, err := touchCmd.Run(ctx, t.rdb, keys, args...).Int64()
	if err != nil {
		return false, fmt.Errorf("servicewindow: touch: %w", err)
	}
	return n > 0, nil
}

// locateAll returns the bucket keys and fields of ids, each field once.
func (t *Tracker) locateAll(business string, ids []string) (keys, fields []string) {
	for _, id := range ids {
		k, f := Locate(business, id)
		if f == "" || contains(fields, f) {
			continue
		}
		keys, fields = append(keys, k), append(fields, f)
	}
	return keys, fields
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Open reports whether a session message may go now to the customer known by ids (a phone
// number and/or a BSUID): whether their window stays open for at least the tracker's margin,
// and when it closes (the latest close of any of the ids). A customer with no window recorded
// gives a zero time and false. It is one round trip.
func (t *Tracker) Open(ctx context.Context, business string, ids ...string) (closesAt time.Time, open bool, err error) {
	return t.OpenFor(ctx, business, 0, ids...)
}

// OpenFor is Open for a sender that may still wait up to ahead before its request goes out:
// the window must stay open for the margin plus ahead.
func (t *Tracker) OpenFor(ctx context.Context, business string, ahead time.Duration, ids ...string) (closesAt time.Time, open bool, err error) {
	ws, err := t.Lookup(ctx, business, ids)
	if err != nil {
		return time.Time{}, false, err
	}
	w := Latest(ws)
	return w.ClosesAt, t.Usable(w, ahead), nil
}

// Usable reports whether a session message may go to the customer of w (a window Lookup
// returned) from a sender that may still wait up to ahead: whether the window stays open for
// the tracker's margin plus ahead.
func (t *Tracker) Usable(w Window, ahead time.Duration) bool {
	return w.ClosesAt.After(t.now().Add(t.margin + max(ahead, 0)))
}

// Lookup returns the window of each id, in order, in one round trip, as recorded: a window is
// Open until it closes, without the margin Open and OpenFor keep before a session message.
func (t *Tracker) Lookup(ctx context.Context, business string, ids []string) ([]Window, error) {
	out := make([]Window, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			if k, f := Locate(business, id); f != "" {
				cmds[i] = p.HGet(ctx, k, f)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("servicewindow: lookup: %w", err)
	}
	now := t.now()
	for i, id := range ids {
		out[i].ID = id
		if cmds[i] == nil {
			continue
		}
		v, err := cmds[i].Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("servicewindow: lookup: %w", err)
		}
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			// Not written by Touch: no window.
			continue
		}
		last := time.Unix(sec, 0).UTC()
		closes := last.Add(Length)
		out[i].LastInbound, out[i].ClosesAt, out[i].Open = last, closes, closes.After(now)
	}
	return out, nil
}

// Latest returns the window of ws that closes last (a customer known by several ids has one
// window: the latest of theirs); a zero Window when ws records none.
func Latest(ws []Window) Window {
	var best Window
	for _, w := range ws {
		if w.ClosesAt.After(best.ClosesAt) {
			best = w
		}
	}
	return best
}
