package limits

import (
	"context"
	_ "embed"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// Why a reservation was refused.
const (
	// ReasonRate: a rate limit would make the send wait longer than the max wait.
	ReasonRate = "rate"
	// ReasonTier: the daily messaging tier has no room for a new recipient until Wait passes.
	ReasonTier = "tier"
	// ReasonCapped: the recipient reached the frequency cap of the template's category.
	ReasonCapped = "capped"
	// ReasonGivenBack: the reservation script ran again with the token of a reservation
	// whose booking has given something back; it booked nothing (see MemoTTL).
	ReasonGivenBack = "given back"
)

// MemoTTL is how long a granted reservation's answer is kept under its token, the memo
// (rkeys.Reserved). go-redis sends a command again when it cannot know whether the first one
// ran (the connection failed, the answer did not come within the read timeout): with its
// defaults, which Herald keeps, up to 3 more times, each after a backoff (at most 1 s) and
// within a dial (5 s) and a read timeout (5 s). A broken connection fails at once, so the
// usual re-sends come within seconds; only a chain in which every re-send waits out every
// timeout reaches past 30 s, and then a re-send may book again (more waiting, as before the
// memo). The second run of
// the reservation script finds the memo and answers as the first did (its Wait counted to the
// same slot, so negative once the slot has passed), taking nothing more; without it a lost
// answer booked the rate limits twice and made the following sends wait longer. Each call of
// Reserve makes a new token, so a caller that asks again books anew. Booking.GiveBack records
// in the memo what it gave back (and keeps it another MemoTTL), so a give-back sent twice gives
// nothing twice, and a late second run of a reservation already given back books nothing
// (ReasonGivenBack). Every memo costs Redis about 250 bytes while it lives: 30 s at 1,000
// sends/s is about 7.5 MB (a minute measured 15 MB, docs/benchmarks.md).
const MemoTTL = 30 * time.Second

// Tier is the business's daily messaging tier: at most Limit unique recipients in any rolling
// Period (24 h). A recipient already messaged within it takes no new room, and
// neither does one whose customer service window is open (Meta counts only the people
// messaged outside one). A send whose recipient has an open window (Request.Windows) at
// Request.Now skips the tier: it takes no room, adds no member and is not refused when the
// tier is full.
type Tier struct {
	// Key holds the recipients of the Period (a sorted set scored by their last send).
	Key    string
	Limit  int
	Period time.Duration
	// Member is the recipient of this send.
	Member string
}

// WindowRef is where one id's last inbound time is kept: a service-window bucket and field,
// whose value is unix seconds.
type WindowRef struct {
	Key, Field string
}

// Cap is a frequency cap: at most Max messages to one recipient per Period, across runs. A
// run counts once per recipient however often it retries.
type Cap struct {
	// Key is the hash bucket that holds the recipient's recent sends; Field is the recipient.
	Key, Field string
	Max        int
	Period     time.Duration
	// Tag names the run (a retry of the same run finds its own mark and is not capped).
	Tag string
}

// Adaptive scales one limit down while the provider throttles it: the stored factor (lowered
// by Throttled, see Policy) divides the limit's rate, and climbs back by Step every Every once
// the hold after a decrease is over, until the limit is back at its configured rate.
type Adaptive struct {
	// Key holds the factor; Index is the position of the scaled limit in Request.Keys.
	Key   string
	Index int
	Policy
}

// Policy is how an adaptive limit follows the provider's throttles. It reacts to the share of
// the limit's reservations that the provider throttled over the last Period, not to each
// throttle: above Threshold the factor drops to what got through in the latest seconds (the
// accepted rate over the configured rate) and holds a moment, until the decrease shows in the
// counts; then it climbs back by Step every Every while the share stays at or under Threshold
// (additive increase, multiplicative decrease). Sparse random throttles under Threshold leave
// the rate alone; a real limit below the configured rate is found within seconds and the rate
// then saws a few percent above and below it.
//
// DefaultPolicy holds the defaults; a zero field takes its default.
type Policy struct {
	// Min is the lowest factor, so a storm can slow a sender only so far (default 0.2).
	Min float64
	// Period is how far back the throttled share is measured, in whole seconds from 1 to 10
	// (default 3 s). After a decrease the controller holds for a second, and its next decision
	// reads only the whole seconds after the decrease's.
	Period time.Duration
	// Threshold is the throttled share above which the factor decreases (default 0.05).
	Threshold float64
	// Every and Step are the recovery: +Step of the configured rate every Every (default +0.01
	// every second: from half the rate back to full in 50 s). A faster climb overshoots a real
	// limit further before the Period's counts see it: more 429s in the saw's every tooth.
	Every time.Duration
	Step  float64
}

// DefaultPolicy is the adaptive policy's defaults, the one place they are set (the config's
// defaults are these). TestControllerConverges proves them: against a provider that accepts
// half the configured rate the sender settles near that rate with about 5% of requests
// throttled, and 3% of random throttles leave it at its full rate.
func DefaultPolicy() Policy {
	return Policy{Min: 0.2, Period: 3 * time.Second, Threshold: 0.05, Every: time.Second, Step: 0.01}
}

// MaxPeriod is the longest Period: the per-second reservation counts the controller divides by
// live 15 s.
const MaxPeriod = 10 * time.Second

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	if p.Min <= 0 || p.Min > 1 {
		p.Min = d.Min
	}
	if p.Period <= 0 {
		p.Period = d.Period
	}
	p.Period = min(MaxPeriod, max(time.Second, p.Period.Round(time.Second)))
	if p.Threshold <= 0 || p.Threshold >= 1 {
		p.Threshold = d.Threshold
	}
	if p.Every <= 0 {
		p.Every = d.Every
	}
	if p.Step <= 0 || p.Step > 1 {
		p.Step = d.Step
	}
	return p
}

// seconds is the Period in whole seconds.
func (p Policy) seconds() int { return int(p.Period / time.Second) }

// hold is how long a decrease stands before the controller decides again. The decision then
// reads only the seconds after the decrease's, and the permits reserved at the old rate
// (at most retry.max_pace_wait ahead) are mostly used by then.
func (p Policy) hold() time.Duration { return min(p.Period, time.Second) }

// Request is one send's reservation: a permit from every rate limit, room in the daily tier,
// and a mark under the frequency cap, taken together or not at all.
type Request struct {
	Keys   []string
	Limits []Limit
	// MaxWait is the longest wait for a rate permit the caller accepts.
	MaxWait time.Duration
	// Usage lists positions in Keys whose per-second use is counted (for `herald limits show`
	// and the adaptive controller, which reads them on the same clock), in the second of Now.
	Usage []int
	// Tier, Cap and Adaptive are optional.
	Tier     *Tier
	Cap      *Cap
	Adaptive *Adaptive
	// Windows locates the recipient's customer service window, one entry per id the
	// recipient is known by (servicewindow.Locate; the keys share the business hash tag).
	// The script reads them in the same round trip: Reservation.InWindow says whether one is
	// open at Now, and an open one makes the send skip the Tier. Optional: without them the
	// reservation reads no window, and an open one goes unseen.
	Windows []WindowRef
	// WindowMargin counts a window that closes within it as closed already (as for session
	// messages, servicewindow.Tracker.SetMargin): Meta judges it on its own clock, so near its
	// close the send takes room in the Tier and is not reported InWindow.
	WindowMargin time.Duration
	// Now is the clock of the tier, the cap, the windows, the adaptive factor and the usage
	// counts (the rate limits use Redis's clock, which all workers share). Zero means
	// time.Now.
	Now time.Time
}

// Reservation is the answer of Reserve.
type Reservation struct {
	// OK is true when everything was reserved; use it after Wait.
	OK bool
	// Wait is how long to wait before using the permit, or, when !OK, how long until one
	// would be available (for ReasonTier: until the oldest recipient leaves the tier's Period).
	// It is negative when the permit's slot passed that long ago: only for a reservation
	// answered from its memo (MemoTTL) after the first answer was lost, whose caller is then
	// late for its slot.
	Wait time.Duration
	// Reason says why a reservation was refused.
	Reason string
	// Factor is the adaptive limit's factor (1 at its configured rate).
	Factor float64
	// TierAdded and CapAdded say the reservation took new room (Booking.GiveBack gives it back).
	TierAdded, CapAdded bool
	// InWindow says the recipient's customer service window (Request.Windows) was open at
	// Request.Now, so the tier, if any, was skipped (TierAdded is then false).
	InWindow bool
	// Binding is the position in Request.Keys of the rate limit that set the wait (-1 when
	// none made the send wait).
	Binding int
	// memo is the reservation's memo key (rkeys.Reserved; "" when the script did not run),
	// which the give-back marks.
	memo string
	// slot is when the permits are for, in µs of Redis's clock (0: refused or not reserved):
	// a limit with no burst tolerance then holds slot + its interval, which the give-back
	// checks (heldAfter).
	slot int64
	// tierAt is the score the script wrote for the recipient in the tier (unix ms, the
	// request's Now when it ran: a granted reservation rewrites the member's score whether
	// or not it was new), 0 when it wrote none (refused, no tier, or an open window). The
	// give-back removes the member only while its score is still this one (refund.lua), so it
	// is this reservation's own time, never the Now of a Request reused for a later booking.
	tierAt int64
}

// heldAfter is the theoretical arrival time limit lim holds right after res booked it, when
// that is known, or 0: known for a limit with no burst tolerance (Burst 1) whose interval the
// adaptive factor did not scale, such as the pair limit, whose booked time is its slot plus
// its interval. Its give-back is then conditional: moving the time back after a later
// reservation booked the next slot would hand that slot out twice (refund.lua).
func (res Reservation) heldAfter(lim Limit, scaled bool) int64 {
	if res.slot <= 0 || lim.Burst > 1 || scaled {
		return 0
	}
	return res.slot + int64(math.Round(1e6/lim.Rate))
}

//go:embed lua/reserve.lua
var reserveLua string

// reserveCmd reserves a send: frequency cap, daily tier, then one permit from every rate limit
// at the earliest time all allow it. Nothing is written unless everything is granted. Its KEYS,
// ARGV and reply are documented at the top of lua/reserve.lua.
var reserveCmd = redis.NewScript(luaLib + reserveLua)

// limitIndex maps the script's 1-based position of a rate limit to its index in r.Keys.
func (r *Request) limitIndex(pos int) int {
	n := 0
	for i, lim := range r.Limits {
		if lim.Rate <= 0 {
			continue
		}
		n++
		if n == pos {
			return i
		}
	}
	return -1
}

// UsageKey is where the use of a limit in one second (unix) is counted (rkeys.LimitUse); it
// expires after 15 s.
func UsageKey(limitKey string, sec int64) string { return rkeys.LimitUse(limitKey, sec) }

func (r *Request) now() time.Time {
	if r.Now.IsZero() {
		return time.Now()
	}
	return r.Now
}

// newToken returns a fresh reservation token: one per call of the script from Go, the same for
// every time go-redis sends that call.
func newToken() string { return strconv.FormatUint(rand.Uint64(), 36) }

// scriptCall is one call of the reservation script: its keys and arguments, the memo key,
// and what its answer is read with (the request, and the clock and tier it was sent with).
type scriptCall struct {
	req  *Request
	keys []string
	args []any
	memo string
	// nowms is ARGV[3], the request's Now in unix ms; tier says a tier was asked for.
	nowms int64
	tier  bool
}

// call builds the script's call for r under token.
func (r *Request) call(token string) scriptCall {
	now := r.now()
	keys, args, memo := r.args(token, now)
	return scriptCall{req: r, keys: keys, args: args, memo: memo, nowms: now.UnixMilli(),
		tier: r.Tier != nil && r.Tier.Limit > 0}
}

// args builds the script's keys and arguments at now (the request's clock), the memo named
// by token last; limits with Rate <= 0 are left out. It returns the memo key too.
func (r *Request) args(token string, now time.Time) (keys []string, args []any, memo string) {
	if len(r.Keys) != len(r.Limits) {
		panic("limits: Reserve needs one limit per key")
	}
	ks := make([]string, 0, len(r.Keys)+4+len(r.Usage)+len(r.Windows))
	var pairs []any
	pos := make(map[int]int, len(r.Keys)) // index in r.Keys → 1-based position in the script
	for i, lim := range r.Limits {
		if lim.Rate <= 0 {
			continue
		}
		interval := 1e6 / lim.Rate
		ks = append(ks, r.Keys[i])
		pos[i] = len(ks)
		pairs = append(pairs, int64(math.Round(interval)), int64(math.Round(interval*float64(max(1, lim.Burst)-1))))
	}
	n := len(ks)
	args = make([]any, 0, 17+len(pairs)+len(r.Windows))
	args = append(args, r.MaxWait.Microseconds(), n, now.UnixMilli())
	if t := r.Tier; t != nil && t.Limit > 0 {
		ks = append(ks, t.Key)
		args = append(args, t.Limit, t.Period.Milliseconds(), t.Member)
	} else {
		args = append(args, 0, 0, "")
	}
	if c := r.Cap; c != nil && c.Max > 0 {
		ks = append(ks, c.Key)
		args = append(args, c.Max, c.Period.Milliseconds(), c.Field, c.Tag)
	} else {
		args = append(args, 0, 0, "", "")
	}
	if a := r.Adaptive; a != nil && pos[a.Index] > 0 {
		p := a.Policy.withDefaults()
		ks = append(ks, a.Key)
		args = append(args, pos[a.Index], p.Every.Milliseconds(), p.Step)
	} else {
		args = append(args, 0, 1, 0)
	}
	windows := r.windows()
	for _, w := range windows {
		ks = append(ks, w.Key)
	}
	var usage []string
	for _, i := range r.Usage {
		if pos[i] > 0 {
			usage = append(usage, UsageKey(r.Keys[i], now.Unix()))
		}
	}
	ks = append(ks, usage...)
	memo = rkeys.Reserved(ks[0], token)
	ks = append(ks, memo)
	args = append(args, len(usage), len(windows), stillOpenFor(r.WindowMargin).Milliseconds(), MemoTTL.Milliseconds())
	args = append(args, pairs...)
	for _, w := range windows {
		args = append(args, w.Field)
	}
	return ks, args, memo
}

// stillOpenFor is how long after a customer's last inbound message a send counts their
// service window as open: its length less margin (Request.WindowMargin; none when negative).
func stillOpenFor(margin time.Duration) time.Duration { return servicewindow.Length - max(margin, 0) }

// openAt reports whether a service window whose last inbound message was at sec (unix s, as
// recorded) counts as open at now under margin: the test reserve.lua makes on ARGV[16] and
// ARGV[3] (recorded s * 1000 + stillOpenFor ms after now ms), for reads that reserve nothing.
func openAt(sec float64, margin time.Duration, now time.Time) bool {
	return sec*1000+float64(stillOpenFor(margin).Milliseconds()) > float64(now.UnixMilli())
}

// windows is the service windows the script reads: r.Windows with a key and a field.
func (r *Request) windows() []WindowRef {
	var ws []WindowRef
	for _, w := range r.Windows {
		if w.Key != "" && w.Field != "" {
			ws = append(ws, w)
		}
	}
	return ws
}

// empty reports whether the request reserves and reads nothing at all.
func (r *Request) empty() bool {
	for _, l := range r.Limits {
		if l.Rate > 0 {
			return false
		}
	}
	return (r.Tier == nil || r.Tier.Limit <= 0) && (r.Cap == nil || r.Cap.Max <= 0) && len(r.windows()) == 0
}

// Reserve takes one permit from each of the keyed limits (keys must share a hash tag) unless
// that means waiting longer than maxWait. Limits with Rate <= 0 are skipped.
func (l *Limiter) Reserve(ctx context.Context, keys []string, limits []Limit, maxWait time.Duration) (Reservation, error) {
	return l.ReserveRequest(ctx, &Request{Keys: keys, Limits: limits, MaxWait: maxWait})
}

// ReserveRequest makes a whole reservation: cap, tier and rate limits at once. Each call is a
// new reservation (its own token); go-redis sending the call again runs it once (MemoTTL).
func (l *Limiter) ReserveRequest(ctx context.Context, r *Request) (Reservation, error) {
	return l.reserve(ctx, r, newToken())
}

// reserve makes the reservation r under token: a second call with the same token answers as
// the first and takes nothing more (within MemoTTL).
func (l *Limiter) reserve(ctx context.Context, r *Request, token string) (Reservation, error) {
	if r.empty() {
		return Reservation{OK: true, Factor: 1, Binding: -1}, nil
	}
	c := r.call(token)
	return c.parse(reserveCmd.Run(ctx, l.rdb, c.keys, c.args...))
}

// ReserveCmd is a reservation queued in a pipeline; read it with Result after the pipeline ran.
type ReserveCmd struct {
	cmd  *redis.Cmd
	l    *Limiter
	call scriptCall
}

// ReserveIn queues the same reservation as ReserveRequest in a pipeline, so it can share a
// round trip with other commands. The script must be loaded (Load); Result falls back to a
// direct call when Redis answers NOSCRIPT.
func (l *Limiter) ReserveIn(ctx context.Context, p redis.Pipeliner, r *Request) *ReserveCmd {
	rc := &ReserveCmd{l: l}
	if r.empty() {
		return rc
	}
	rc.call = r.call(newToken())
	rc.cmd = reserveCmd.EvalSha(ctx, p, rc.call.keys, rc.call.args...)
	return rc
}

// Result returns the reservation.
func (r *ReserveCmd) Result(ctx context.Context) (Reservation, error) {
	if r.cmd == nil {
		return Reservation{OK: true, Factor: 1, Binding: -1}, nil
	}
	if err := r.cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// The script did not run: the same call (its token too) runs it now.
		return r.call.parse(reserveCmd.Run(ctx, r.l.rdb, r.call.keys, r.call.args...))
	}
	return r.call.parse(r.cmd)
}

// Load loads the limiter's scripts into Redis, for pipelined use.
func (l *Limiter) Load(ctx context.Context) error {
	if err := reserveCmd.Load(ctx, l.rdb).Err(); err != nil {
		return fmt.Errorf("limits: load script: %w", err)
	}
	return nil
}

// parse reads the script's answer to the call.
func (sc scriptCall) parse(c *redis.Cmd) (Reservation, error) {
	r := sc.req
	res, err := c.Slice()
	if err != nil {
		return Reservation{}, fmt.Errorf("limits: reserve: %w", err)
	}
	if len(res) != 9 {
		return Reservation{}, fmt.Errorf("limits: reserve: unexpected reply %v", res)
	}
	ok, _ := res[0].(int64)
	us := replyInt(res[1])
	reason, _ := res[2].(string)
	tier, _ := res[3].(int64)
	capNew, _ := res[4].(int64)
	f := 1.0
	if s, isStr := res[5].(string); isStr {
		if v, err := strconv.ParseFloat(s, 64); err == nil {
			f = v
		}
	}
	bind := -1
	if pos, _ := res[6].(int64); pos > 0 {
		bind = r.limitIndex(int(pos))
	}
	inWindow, _ := res[7].(int64)
	rv := Reservation{OK: ok == 1, Wait: time.Duration(us) * time.Microsecond, Reason: reason,
		Factor: f, TierAdded: tier == 1, CapAdded: capNew == 1, Binding: bind, InWindow: inWindow == 1, memo: sc.memo,
		slot: replyInt(res[8])}
	if rv.OK && !rv.InWindow && sc.tier {
		// A granted reservation with a tier and no open window wrote the member at ARGV[3]
		// (an answer from the memo too: the call sent again carries the same arguments).
		rv.tierAt = sc.nowms
	}
	return rv, nil
}

func replyInt(v any) int64 {
	switch v := v.(type) {
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	case int64:
		return v
	}
	return 0
}

//go:embed lua/refund.lua
var refundLua string

// refundCmd gives back what a reservation took (a reserved send that did not happen). Its KEYS,
// ARGV and reply are documented at the top of lua/refund.lua.
var refundCmd = redis.NewScript(refundLua)

// refund gives back what res took for r, for a send that did not happen (its run was paused,
// or it was already done): the rate permits (the next reservation can use the freed slots;
// reservations already handed out keep their times), and new room in the tier and the cap.
// A limit with no burst tolerance goes back only while no later reservation booked it
// (Reservation.heldAfter): otherwise the next reservation would get that later one's slot.
// Booking.GiveBack is its one caller: it decides, from how far the send got, what goes back.
// What it gives back is marked in the reservation's memo, so it goes back once however often
// the script runs.
func (l *Limiter) refund(ctx context.Context, r *Request, res Reservation) error {
	var ks []string
	var intervals, held []any
	for i, lim := range r.Limits {
		if lim.Rate <= 0 {
			continue
		}
		iv := 1e6 / lim.Rate
		scaled := false
		if a := r.Adaptive; a != nil && a.Index == i && res.Factor > 0 && res.Factor < 1 {
			iv /= res.Factor
			scaled = true
		}
		ks = append(ks, r.Keys[i])
		intervals = append(intervals, int64(math.Round(iv)))
		held = append(held, res.heldAfter(lim, scaled))
	}
	args := []any{len(ks), "", "", "", res.tierAt, 0}
	if res.TierAdded && r.Tier != nil && res.tierAt > 0 {
		ks = append(ks, r.Tier.Key)
		args[1] = r.Tier.Member
	}
	if res.CapAdded && r.Cap != nil {
		ks = append(ks, r.Cap.Key)
		args[2], args[3] = r.Cap.Field, r.Cap.Tag
	}
	if len(ks) == 0 {
		return nil
	}
	if res.memo != "" {
		ks = append(ks, res.memo)
		args[5] = MemoTTL.Milliseconds()
	}
	args = append(append(args, intervals...), held...)
	if err := refundCmd.Run(ctx, l.rdb, ks, args...).Err(); err != nil {
		return fmt.Errorf("limits: refund: %w", err)
	}
	return nil
}
