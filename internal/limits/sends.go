package limits

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// Defaults of Config, the one place they are set.
const (
	// DefaultBusinessRate is Connectly's request limit per business, requests/s.
	DefaultBusinessRate = 200.0
	// DefaultSenderRate is a sender number's rate when none is configured: Meta's default
	// throughput of 80 messages/s per business phone number. Every default of it reads this.
	DefaultSenderRate = 80.0
	// DefaultPairInterval is the least time between two messages from one sender to one
	// person (Meta's pair rate limit is about one message per 6 s).
	DefaultPairInterval = 6 * time.Second
	// DefaultPairMargin is added to the pair interval when a pair slot is booked; see
	// Config.PairMargin.
	DefaultPairMargin = 250 * time.Millisecond
	// DefaultTierPeriod is the daily tier's rolling period.
	DefaultTierPeriod = 24 * time.Hour
	// DefaultMaxWait is the furthest ahead a send books its rate permits.
	DefaultMaxWait = time.Second
)

// FrequencyCap is at most Max messages to one recipient per Period, across runs.
type FrequencyCap struct {
	Max    int
	Period time.Duration
}

// Config is every limit one business's sends are held to. Zero values take the defaults
// named; WithDefaults applies them. A limit that can be turned off is off when negative.
type Config struct {
	// BusinessID keys every limit (its hash tag).
	BusinessID string
	// BusinessRate is the business's request limit, per second. Default DefaultBusinessRate;
	// negative disables.
	BusinessRate float64
	// SenderRates maps sender numbers to messages/s; a sender not listed gets DefaultSenderRate.
	SenderRates map[string]float64
	// DefaultSenderRate is the rate of a sender not in SenderRates. Default the constant
	// DefaultSenderRate.
	DefaultSenderRate float64
	// PairInterval is the least time between two messages from one sender to one person,
	// across campaigns. Default DefaultPairInterval; negative disables.
	PairInterval time.Duration
	// PairMargin is booked on top of PairInterval. Pair slots are PairInterval apart on
	// Redis's clock, but a send leaves after its slot by its own dispatch delay (the answer's
	// way back, the claim, the request), and the first of two sends to a person may be held
	// longer than the second: under a saturated CPU 60-125 ms. The margin absorbs that, so the
	// messages reach the person at least PairInterval apart. It is also the most a send may
	// be late for its slot: the worker lets a send that comes to its last slot later than half
	// the margin go back to its queue rather than send it (worker's pairLateness), keeping the
	// other half for the request's own way out. Default DefaultPairMargin; negative means
	// none (then any send still late for its last slot goes back).
	PairMargin time.Duration
	// DailyTier is the business's messaging tier: at most this many unique recipients per
	// rolling TierPeriod, shared by all sender numbers. 0 means unlimited: the default is no
	// tier, so 0 is both the default and off.
	DailyTier int
	// TierPeriod defaults to DefaultTierPeriod.
	TierPeriod time.Duration
	// FrequencyCaps limit messages per recipient by template category, across runs.
	FrequencyCaps map[string]FrequencyCap
	// Adaptive is how a sender's rate follows the share of its sends the provider throttles.
	// Zero fields take DefaultPolicy's; a negative Adaptive.Period turns it off (Adapts).
	Adaptive Policy
	// MaxWait is the longest a send waits for its rate permits; a longer wait is refused
	// (ReasonRate). Default DefaultMaxWait.
	MaxWait time.Duration
}

// WithDefaults returns c with its zero values replaced by the defaults.
func (c Config) WithDefaults() Config {
	if c.BusinessRate == 0 {
		c.BusinessRate = DefaultBusinessRate
	}
	if c.DefaultSenderRate <= 0 {
		c.DefaultSenderRate = DefaultSenderRate
	}
	if c.PairInterval == 0 {
		c.PairInterval = DefaultPairInterval
	}
	if c.PairMargin == 0 {
		c.PairMargin = DefaultPairMargin
	}
	if c.TierPeriod <= 0 {
		c.TierPeriod = DefaultTierPeriod
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	return c
}

// PairSpacing is how far apart two messages from one sender to one person are booked: the
// pair interval plus its margin (PairMargin), 0 when the pair limit is off.
func (c Config) PairSpacing() time.Duration {
	if c.PairInterval <= 0 {
		return 0
	}
	return c.PairInterval + max(c.PairMargin, 0)
}

// Adapts reports whether the senders' rates follow their throttles: Adaptive.Period is not
// negative.
func (c Config) Adapts() bool { return c.Adaptive.Period >= 0 }

// SenderRate is sender's configured rate (before the adaptive factor).
func (c Config) SenderRate(sender string) float64 {
	if r, ok := c.SenderRates[sender]; ok && r > 0 {
		return r
	}
	return c.DefaultSenderRate
}

// Intention is one send the limits are asked for: who sends, in which run, to whom, of which
// template category, under the run's own rate (0: none).
type Intention struct {
	// Sender is the sender number; "" is the business's default sender.
	Sender    string
	Run       string
	Recipient string
	// Category chooses the frequency cap (marketing when empty).
	Category string
	RunRate  float64
	// ReadWindow asks the reservation to say whether the recipient's customer service window
	// is open (Reservation.InWindow) even with no daily tier, which reads it anyway: the
	// script reads it in the same round trip, so the send needs no read of its own.
	ReadWindow bool
	// WindowMargin is Request.WindowMargin: how long before its close a window counts as
	// closed (the worker's servicewindow margin).
	WindowMargin time.Duration
	// WindowPolicy says which of the recipient's windows count for a send from Sender: the
	// one to Sender's number, and one recorded with no number when the policy counts it (the
	// worker's servicewindow policy). The zero policy reads the windows recorded with no
	// number, whatever the sender.
	WindowPolicy servicewindow.Policy
}

// windows locates the customer service windows that count for in's send, of business: those
// to the sender's number, and one recorded with no number when in.WindowPolicy counts it
// (servicewindow.Policy.Sources), recorded under the phone, or the BSUID for a "bsuid:"
// recipient. A reservation (Sends.Request) and a preview (Limiter.PeekTier) read these alone.
func (in Intention) windows(business string) []WindowRef {
	var refs []WindowRef
	for _, w := range in.WindowPolicy.Sources(business, in.Sender, in.Recipient) {
		refs = append(refs, WindowRef{Key: w.Key, Field: w.Field})
	}
	return refs
}

// SenderKey names a sender in limit keys ("default" for the business's default sender).
func SenderKey(sender string) string {
	if sender == "" {
		return "default"
	}
	return sender
}

// CapTag is the short mark a run leaves in a recipient's frequency-cap record.
func CapTag(runID string) string {
	h := fnv.New64a()
	h.Write([]byte(runID))
	return strconv.FormatUint(h.Sum64(), 36)
}

// Positions of the rate limits in a send's Request.
const (
	LimSender = iota
	LimBusiness
	LimRun
	LimPair
)

// Sends holds one business's sends to its limits: it turns an intention into a reservation
// of everything the send needs (Reserve), and a reservation gives back what its send did not
// use (Booking.GiveBack).
type Sends struct {
	lim *Limiter
	cfg Config
}

// NewSends returns the limits of cfg's business on lim; cfg's zero values take the defaults.
func NewSends(lim *Limiter, cfg Config) *Sends { return &Sends{lim: lim, cfg: cfg.WithDefaults()} }

// Config returns the limits in force, defaults applied.
func (s *Sends) Config() Config { return s.cfg }

// Limiter returns the limiter the reservations are made on.
func (s *Sends) Limiter() *Limiter { return s.lim }

// Control is the adaptive controller of sender, with the burst of the sender's rate limit.
func (s *Sends) Control(sender string) Control {
	sender = SenderKey(sender)
	c := SenderControl(s.cfg.BusinessID, sender, s.cfg.SenderRate(sender), s.cfg.Adaptive)
	c.Burst = s.senderLimit(sender).Burst
	return c
}

// senderLimit is sender's rate limit (before the adaptive factor), as reservations, holds and
// the controller take it.
func (s *Sends) senderLimit(sender string) Limit { return PerSecond(s.cfg.SenderRate(sender)) }

// Request returns the reservation a send needs, on the tier's, the cap's, the service window's
// and the adaptive factor's clock now: the sender's rate (scaled down while backing off after a
// throttle), the business's request limit, the run's own rate, the pair limit to this
// recipient, room in the daily tier and the frequency cap of its category, and the recipient's
// service window when the tier or in.ReadWindow needs it. All keys share the business hash
// tag, so one script reserves them together.
func (s *Sends) Request(in Intention, now time.Time) *Request {
	c, biz, sender := s.cfg, s.cfg.BusinessID, SenderKey(in.Sender)
	pair := Limit{}
	if d := c.PairSpacing(); d > 0 {
		pair = Limit{Rate: 1 / d.Seconds(), Burst: 1}
	}
	r := &Request{
		Keys: []string{rkeys.SenderLimit(biz, sender), rkeys.BusinessLimit(biz),
			rkeys.RunLimit(biz, in.Run), rkeys.PairLimit(biz, sender, in.Recipient)},
		Limits:  []Limit{s.senderLimit(sender), PerSecond(c.BusinessRate), PerSecond(in.RunRate), pair},
		MaxWait: c.MaxWait,
		Usage:   []int{LimSender, LimBusiness},
		Now:     now,
	}
	if c.Adapts() {
		r.Adaptive = &Adaptive{Key: rkeys.SenderBackoff(biz, sender), Index: LimSender, Policy: c.Adaptive}
	}
	if c.DailyTier > 0 {
		r.Tier = &Tier{Key: rkeys.Tier(biz), Limit: c.DailyTier, Period: c.TierPeriod, Member: in.Recipient}
	}
	if c.DailyTier > 0 || in.ReadWindow {
		// A recipient whose customer service window is open takes no room in the tier (Meta
		// counts only people messaged outside one); the script reads the windows in's send
		// counts.
		r.Windows = in.windows(biz)
		r.WindowMargin = in.WindowMargin
	}
	if fc, ok := c.FrequencyCaps[capCategory(in.Category)]; ok && fc.Max > 0 {
		cp := capOf(biz, in.Category, fc, in.Recipient, CapTag(in.Run))
		r.Cap = &cp
	}
	return r
}

// capCategory is the category whose frequency cap a send of category books (marketing when
// empty).
func capCategory(category string) string {
	if category == "" {
		return "marketing"
	}
	return category
}

// capOf is the frequency cap fc of category for a send to recipient, tagged tag: the key of
// the recipient's cap bucket, and the recipient's field in it.
func capOf(business, category string, fc FrequencyCap, recipient, tag string) Cap {
	cat := capCategory(category)
	return Cap{Key: rkeys.Cap(business, cat, ledger.BucketOf(recipient, rkeys.CapBuckets)), Field: recipient,
		Max: fc.Max, Period: fc.Period, Tag: tag}
}

// Reserve reserves everything in's send needs, at now (the tier's and cap's clock).
func (s *Sends) Reserve(ctx context.Context, in Intention, now time.Time) (*Booking, error) {
	return s.ReserveRequest(ctx, s.Request(in, now))
}

// ReserveRequest reserves req (made by Request) again, for a fresh slot.
func (s *Sends) ReserveRequest(ctx context.Context, req *Request) (*Booking, error) {
	r, err := s.lim.ReserveRequest(ctx, req)
	return s.booking(req, r), err
}

// ReserveIn queues in's reservation in a pipeline; read it with BookingCmd.Result after the
// pipeline ran.
func (s *Sends) ReserveIn(ctx context.Context, p redis.Pipeliner, in Intention, now time.Time) *BookingCmd {
	req := s.Request(in, now)
	return &BookingCmd{s: s, req: req, cmd: s.lim.ReserveIn(ctx, p, req)}
}

// BookingCmd is a reservation queued in a pipeline.
type BookingCmd struct {
	s   *Sends
	req *Request
	cmd *ReserveCmd
}

// Result returns the booking once the pipeline ran.
func (c *BookingCmd) Result(ctx context.Context) (*Booking, error) {
	r, err := c.cmd.Result(ctx)
	return c.s.booking(c.req, r), err
}

func (s *Sends) booking(req *Request, r Reservation) *Booking {
	b := &Booking{Reservation: r, req: req, s: s}
	if r.OK {
		b.rates, b.pair = true, true
	}
	b.tier, b.cap = r.TierAdded, r.CapAdded
	return b
}

// Booking is a send's reservation, which knows what it still holds and gives it back.
type Booking struct {
	Reservation
	req *Request
	s   *Sends
	// What the booking still holds: the shared rate permits (sender, business, run), the
	// pair slot, new room in the daily tier, a new mark under the frequency cap.
	rates, pair, tier, cap bool
}

// Request is the reservation's request (its keys and limits).
func (b *Booking) Request() *Request { return b.req }

// Spent says how far a reserved send got, and so what of its reservation goes back.
type Spent int

const (
	// Unsent: reserved, and the send will not happen before its slot came (its run is
	// paused or done, the claim failed). Everything goes back: the rate permits, the pair
	// slot, new room in the tier and the cap. (A rate permit given back frees the last slot
	// booked, so the next reservation may take it; that is only right before this slot's
	// time has come.)
	Unsent Spent = iota
	// Waited: the send waited for its slot and then did not go. What is the recipient's own
	// goes back (the pair slot, new room in the tier and the cap), not the shared rate
	// permits: given back once its time has come, a permit frees the last slot booked, which
	// another send already holds about MaxWait later, and every second holding that doubled
	// slot carries one send more than the rate. An unused slot is lost instead.
	Waited
	// Late: the send came to its slot too late and books a fresh one. Only the pair slot goes
	// back (the fresh booking would wait for it otherwise), and only while no later send to the
	// person booked the next one (refund); the room in the tier and the cap stays taken, and
	// Adopt passes it to the fresh booking.
	Late
	// Turned: the provider turned the request away (a throttle, a stop-the-run code), so no
	// message reached the person: the new room in the tier and the cap goes back. The request
	// used its rate slots and the person's pair slot.
	Turned
)

// GiveBack gives back what the send, as far as it got, did not use (see Spent), and forgets
// it, so a second call gives nothing twice. A refused booking holds nothing unless it adopted
// room (Adopt).
func (b *Booking) GiveBack(ctx context.Context, how Spent) error {
	if b == nil || b.s == nil {
		return nil
	}
	rates, pair, room := false, false, false
	switch how {
	case Unsent:
		rates, pair, room = b.rates, b.pair, true
	case Waited:
		pair, room = b.pair, true
	case Late:
		pair = b.pair
	case Turned:
		room = true
	}
	give := &Request{Keys: b.req.Keys, Limits: make([]Limit, len(b.req.Limits)), Tier: b.req.Tier, Cap: b.req.Cap,
		Adaptive: b.req.Adaptive}
	if rates {
		copy(give.Limits, b.req.Limits)
		give.Limits[LimPair] = Limit{}
		b.rates = false
	}
	if pair {
		give.Limits[LimPair] = b.req.Limits[LimPair]
		b.pair = false
	}
	r := b.Reservation
	r.TierAdded, r.CapAdded = room && b.tier, room && b.cap
	if room {
		b.tier, b.cap = false, false
	}
	if err := b.s.lim.refund(context.WithoutCancel(ctx), give, r); err != nil {
		return fmt.Errorf("limits: give back: %w", err)
	}
	return nil
}

// Adopt takes over the room in the tier and the cap that old (a late booking given back as
// Late) still holds, so it goes back with this booking. When this booking wrote no tier
// member of its own (refused, or an open window), the member keeps the score old wrote, so
// that is the score its give-back looks for.
func (b *Booking) Adopt(old *Booking) {
	if old == nil {
		return
	}
	if old.tier && b.tierAt == 0 {
		b.tierAt = old.tierAt
	}
	b.tier = b.tier || old.tier
	b.cap = b.cap || old.cap
	b.TierAdded, b.CapAdded = b.tier, b.cap
	old.tier, old.cap = false, false
}
