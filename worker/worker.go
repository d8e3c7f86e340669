package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// Sender sends one template message; *connectly.Client implements it.
type Sender interface {
	SendTemplate(ctx context.Context, msg connectly.TemplateMessage) (connectly.SendResult, error)
}

var _ Sender = (*connectly.Client)(nil)

// Config configures a Worker. Zero values take the defaults shown.
type Config struct {
	// Concurrency is the number of sends in flight in this process. Default 50.
	Concurrency int
	// Queues maps queue names to priorities. Default campaigns.Queues.
	Queues map[string]int
	// MaxAttempts is how many times a recipient is tried on transient failures. Default 5.
	MaxAttempts int
	// Backoff for transient failures. Default base 1s, cap 5m.
	Backoff Backoff
	// ThrottleDelay is how long a send waits after a 429 without Retry-After. Default 2s.
	ThrottleDelay time.Duration
	// HoldDelay is how often a task of a paused run looks again. Default 5s.
	HoldDelay time.Duration
	// MaxPaceWait is the furthest ahead a send books a rate-limit permit (and then waits for
	// it). Default 1s.
	MaxPaceWait time.Duration
	// KeepPlaceFor is how long a send whose limits are booked further ahead than MaxPaceWait
	// keeps its place, looking again as slots free, before its task is rescheduled. Holding the
	// task is the backpressure: asynq takes no more tasks than the limits can serve, instead
	// of cycling the whole backlog through the retry set. Default 20s; negative reschedules at
	// once.
	KeepPlaceFor time.Duration
	// RequestTimeout bounds one Connectly request. Shutdown lets requests in flight finish
	// (a request cut off mid-way leaves its outcome unknown). Default 10s.
	RequestTimeout time.Duration
	// ShutdownTimeout is how long Shutdown waits for handlers. Default RequestTimeout + 5s.
	ShutdownTimeout time.Duration
	// DelayedTaskCheckInterval is how often asynq moves due retries back to pending. Default 1s.
	DelayedTaskCheckInterval time.Duration
	// TaskCheckInterval is how often an idle worker polls its queues. Default 1s.
	TaskCheckInterval time.Duration
	// BusinessID keys the business-wide limit.
	BusinessID string
	// BusinessRate is Connectly's request limit for the business, per second. Default 200;
	// negative disables.
	BusinessRate float64
	// SenderRates maps sender numbers to messages/s; a sender not listed gets DefaultSenderRate.
	SenderRates map[string]float64
	// DefaultSenderRate defaults to 80 (Meta's default throughput per number).
	DefaultSenderRate float64
	// PairInterval is the least time between two messages from one sender to one person,
	// across campaigns (Meta's pair rate limit is about one message per 6 s). Default 6s;
	// negative disables.
	PairInterval time.Duration
	// BurstWindow and BurstShare stop a run that burns its audience on one permanent code:
	// when a code accounts for more than BurstShare of the run's last BurstWindow outcomes, the
	// run pauses. Defaults 100 and 0.2; a negative window turns it off.
	BurstWindow int
	BurstShare  float64
	// DailyTier is the business's messaging tier: at most this many unique recipients per
	// rolling TierWindow (24 h), shared by all sender numbers. 0 means unlimited.
	DailyTier  int
	TierWindow time.Duration
	// TierRecheck is the longest a send waiting for room in the tier sleeps before it looks
	// again. Default 5m.
	TierRecheck time.Duration
	// FrequencyCaps limit messages per recipient by template category, across runs.
	FrequencyCaps map[string]FrequencyCap
	// Adaptive is how a sender's rate follows the share of its sends the provider throttles.
	Adaptive limits.Policy
	// AdaptiveCodes are the throttle keys (connectly.Decision.Key: HTTP_429 for every 429,
	// whatever its body, else the throttle code) that count as the provider throttling the
	// sender. Default HTTP_429, 130429, 4 and 80007; AdaptiveOff disables the adaptive rate.
	AdaptiveCodes []string
	AdaptiveOff   bool
	// ResendSweepEvery is how often this worker looks for unknown recipients whose quiet
	// period (a campaign's unknown.resend_after) has passed, to send them once more
	// (resend.go). Default 5s; negative turns the sweep off in this process.
	ResendSweepEvery time.Duration
	// ResendLease is how long a sweep holds the recipients it took before another worker may
	// take them (a sweep that died meanwhile). Default 1m.
	ResendLease time.Duration
	// ResendTask sets the asynq options of resend tasks (the queue is the run's). Default:
	// MaxRetry MaxAttempts+20, Timeout RequestTimeout+MaxPaceWait+KeepPlaceFor+30s, Retention
	// 24h, as campaign send tasks.
	ResendTask campaigns.TaskOptions
}

// FrequencyCap is at most Max messages to one recipient per Window.
type FrequencyCap struct {
	Max    int
	Window time.Duration
}

// DefaultAdaptiveCodes are the throttles that say the sender goes too fast (not 131056, which
// is about one recipient).
var DefaultAdaptiveCodes = []string{"HTTP_429", "130429", "4", "80007"}

func (c *Config) setDefaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 50
	}
	if len(c.Queues) == 0 {
		c.Queues = campaigns.Queues
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.Backoff.Base <= 0 {
		c.Backoff.Base = time.Second
	}
	if c.Backoff.Cap <= 0 {
		c.Backoff.Cap = 5 * time.Minute
	}
	if c.ThrottleDelay <= 0 {
		c.ThrottleDelay = 2 * time.Second
	}
	if c.HoldDelay <= 0 {
		c.HoldDelay = 5 * time.Second
	}
	if c.MaxPaceWait <= 0 {
		c.MaxPaceWait = time.Second
	}
	if c.KeepPlaceFor == 0 {
		c.KeepPlaceFor = 20 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = c.RequestTimeout + 5*time.Second
	}
	if c.DelayedTaskCheckInterval <= 0 {
		c.DelayedTaskCheckInterval = time.Second
	}
	if c.TaskCheckInterval <= 0 {
		c.TaskCheckInterval = time.Second
	}
	if c.BusinessRate == 0 {
		c.BusinessRate = 200
	}
	if c.DefaultSenderRate <= 0 {
		c.DefaultSenderRate = limits.DefaultSenderRate
	}
	if c.PairInterval == 0 {
		c.PairInterval = 6 * time.Second
	}
	if c.BurstWindow == 0 {
		c.BurstWindow = 100
	}
	if c.BurstShare <= 0 {
		c.BurstShare = 0.2
	}
	if c.TierWindow <= 0 {
		c.TierWindow = 24 * time.Hour
	}
	if c.TierRecheck <= 0 {
		c.TierRecheck = 5 * time.Minute
	}
	if c.AdaptiveCodes == nil {
		c.AdaptiveCodes = DefaultAdaptiveCodes
	}
	if c.ResendSweepEvery == 0 {
		c.ResendSweepEvery = 5 * time.Second
	}
	if c.ResendLease <= 0 {
		c.ResendLease = time.Minute
	}
	if c.ResendTask.MaxRetry <= 0 {
		c.ResendTask.MaxRetry = c.MaxAttempts + 20
	}
	if c.ResendTask.Timeout <= 0 {
		c.ResendTask.Timeout = c.RequestTimeout + c.MaxPaceWait + max(c.KeepPlaceFor, 0) + 30*time.Second
	}
	if c.ResendTask.Retention <= 0 {
		c.ResendTask.Retention = 24 * time.Hour
	}
}

// Deps are the Worker's collaborators.
type Deps struct {
	Redis  redis.UniversalClient
	Sender Sender
	Table  *connectly.Table
	Logger zerolog.Logger
	// Metrics, when set, receives send counters and latencies.
	Metrics *metrics.Metrics
	// Now defaults to time.Now.
	Now func() time.Time
}

// Worker is one worker process's asynq server and send handler.
type Worker struct {
	// paced is set while the rate limits make sends wait (see paceAndClaim).
	paced atomic.Bool
	// running is set between Start and Stop, for readiness.
	running atomic.Bool
	metrics *metrics.Metrics
	rdb     redis.UniversalClient
	cfg     Config
	ledger  *ledger.Ledger
	limiter *limits.Limiter
	sender  Sender
	table   *connectly.Table
	log     zerolog.Logger
	srv     *asynq.Server
	now     func() time.Time
	adapt   map[string]bool
	// stopCtx ends when Stop is called: sends still waiting for a slot give up then.
	stopCtx  context.Context
	stopSend context.CancelFunc
	// enq enqueues resend tasks; sweepStop ends the sweep of unknown recipients started by
	// Start, which closes sweepDone when it has returned.
	enq       enqueuer
	sweepStop context.CancelFunc
	sweepDone chan struct{}
}

// New builds a Worker; Start runs it.
func New(cfg Config, d Deps) *Worker {
	if d.Redis == nil || d.Sender == nil {
		panic("worker: New needs Redis and a Sender")
	}
	cfg.setDefaults()
	if d.Table == nil {
		d.Table, _ = connectly.NewTable(nil)
	}
	log := d.Logger.With().Str(logx.KeyComponent, "worker").Logger()
	l := ledger.New(d.Redis, d.Now)
	l.SetBurst(cfg.BurstWindow, cfg.BurstShare)
	w := &Worker{
		rdb: d.Redis, cfg: cfg, ledger: l, metrics: d.Metrics, limiter: limits.New(d.Redis),
		sender: d.Sender, table: d.Table, log: log, now: d.Now, adapt: map[string]bool{},
		enq: asynq.NewClientFromRedisClient(d.Redis),
	}
	if w.now == nil {
		w.now = time.Now
	}
	w.stopCtx, w.stopSend = context.WithCancel(context.Background())
	for _, c := range cfg.AdaptiveCodes {
		w.adapt[c] = true
	}
	w.srv = asynq.NewServerFromRedisClient(d.Redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   cfg.Queues,
		IsFailure:                isFailure,
		RetryDelayFunc:           cfg.Backoff.retryDelay,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		DelayedTaskCheckInterval: cfg.DelayedTaskCheckInterval,
		TaskCheckInterval:        cfg.TaskCheckInterval,
		Logger:                   logx.Asynq{L: d.Logger.With().Str(logx.KeyComponent, "asynq").Logger()},
		LogLevel:                 asynq.WarnLevel,
		ErrorHandler:             asynq.ErrorHandlerFunc(w.logTaskError),
	})
	return w
}

// Mux returns the handler mux (exported for tests that drive tasks directly).
func (w *Worker) Mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.HandleFunc(campaigns.TypeSend, w.HandleSend)
	return mux
}

// Start starts processing; it returns once the server runs.
func (w *Worker) Start() error {
	// The send path pipelines scripts by SHA; load them first (a NOSCRIPT later, after a
	// Redis restart, falls back to a direct call).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.ledger.LoadScripts(ctx); err != nil {
		return fmt.Errorf("worker: start: %w", err)
	}
	if err := w.limiter.Load(ctx); err != nil {
		return fmt.Errorf("worker: start: %w", err)
	}
	if err := w.srv.Start(w.Mux()); err != nil {
		return fmt.Errorf("worker: start: %w", err)
	}
	w.running.Store(true)
	if w.cfg.ResendSweepEvery > 0 {
		var sctx context.Context
		sctx, w.sweepStop = context.WithCancel(context.Background())
		w.sweepDone = make(chan struct{})
		go w.sweepLoop(sctx, w.sweepDone)
	}
	w.log.Info().Int("concurrency", w.cfg.Concurrency).Msg("worker started")
	return nil
}

// Stop stops taking new tasks (first step of a graceful shutdown).
func (w *Worker) Stop() {
	w.running.Store(false)
	w.stopSend()
	w.stopSweep()
	w.srv.Stop()
}

// stopSweep ends the sweep of unknown recipients and waits for it to return.
func (w *Worker) stopSweep() {
	if w.sweepStop == nil {
		return
	}
	w.sweepStop()
	<-w.sweepDone
}

// Running reports whether the worker is taking tasks (between Start and Stop).
func (w *Worker) Running() bool { return w.running.Load() }

// Queues returns the names of the queues the worker takes tasks from, sorted.
func (w *Worker) Queues() []string { return slices.Sorted(maps.Keys(w.cfg.Queues)) }

// count adds one settled send to the metrics.
func (w *Worker) count(p campaigns.SendPayload, outcome, class string) {
	if w.metrics != nil {
		w.metrics.Sends.WithLabelValues(p.Campaign, p.Sender, outcome, class).Inc()
	}
}

// outcomeLabel names a ledger outcome for herald_sends_total.
func outcomeLabel(o ledger.Outcome) string {
	switch {
	case o.State == ledger.Accepted:
		return metrics.OutcomeAccepted
	case o.State == ledger.Failed:
		return metrics.OutcomeFailed
	case o.State == ledger.Unknown:
		return metrics.OutcomeUnknown
	case o.Mode == ledger.ReleaseRetry:
		return metrics.OutcomeRetried
	case o.Mode == ledger.ReleaseHold:
		return metrics.OutcomeHeld
	default:
		return metrics.OutcomeThrottled
	}
}

// Shutdown waits up to ShutdownTimeout for sends in flight, puts unstarted work back, and
// returns. Safe to call after Stop.
func (w *Worker) Shutdown() {
	w.stopSweep()
	w.srv.Shutdown()
	w.log.Info().Msg("worker stopped")
}

// logTaskError logs handler errors by meaning: holds and throttles at debug; recorded
// outcomes (a permanent failure, a transient one that will retry) at info; anything else,
// such as Redis being unreachable, at warn. The handler already logged the outcome itself.
func (w *Worker) logTaskError(ctx context.Context, t *asynq.Task, err error) {
	id, _ := asynq.GetTaskID(ctx)
	var te *connectly.TransportError
	var ae *connectly.Error
	lvl := zerolog.WarnLevel
	switch {
	case !isFailure(err):
		lvl = zerolog.DebugLevel
	case errors.Is(err, asynq.SkipRetry), errors.As(err, &ae), errors.As(err, &te):
		lvl = zerolog.InfoLevel
	}
	w.log.WithLevel(lvl).Str(logx.KeyTaskID, id).Str("error", logx.MaskDigits(err.Error())).Msg("send task did not finish")
}

func (w *Worker) senderRate(sender string) float64 {
	if r, ok := w.cfg.SenderRates[sender]; ok && r > 0 {
		return r
	}
	return w.cfg.DefaultSenderRate
}

// senderOf names the sender of a send in limiter keys ("default" when the payload has none).
func senderOf(p campaigns.SendPayload) string {
	if p.Sender == "" {
		return "default"
	}
	return p.Sender
}

// Positions of the rate limits in a Request's keys.
const (
	limSender = iota
	limBusiness
	limRun
	limPair
)

// requestFor returns the reservation a send needs: the sender's rate (scaled down while
// backing off after a throttle), the business's request limit, the campaign's own cap, the
// pair limit to this recipient, room in the daily tier and the frequency cap of its category.
// All keys share the business hash tag, so one script reserves them together.
func (w *Worker) requestFor(ctx context.Context, p campaigns.SendPayload) *limits.Request {
	biz, sender := w.cfg.BusinessID, senderOf(p)
	pair := limits.Limit{}
	if w.cfg.PairInterval > 0 {
		pair = limits.Limit{Rate: 1 / w.cfg.PairInterval.Seconds(), Burst: 1}
	}
	r := &limits.Request{
		Keys: []string{rkeys.SenderLimit(biz, sender), rkeys.BusinessLimit(biz),
			rkeys.RunLimit(biz, p.Run), rkeys.PairLimit(biz, sender, p.To)},
		Limits: []limits.Limit{limits.PerSecond(w.senderRate(sender)), limits.PerSecond(w.cfg.BusinessRate),
			limits.PerSecond(p.Rate), pair},
		MaxWait: w.cfg.MaxPaceWait,
		Usage:   []int{limSender, limBusiness},
		Now:     w.now(),
	}
	if !w.cfg.AdaptiveOff {
		r.Adaptive = &limits.Adaptive{Key: rkeys.SenderBackoff(biz, sender), Index: limSender, Policy: w.cfg.Adaptive}
	}
	if w.cfg.DailyTier > 0 {
		// A recipient whose customer service window is open takes no room in the tier (Meta
		// counts only people messaged outside one); the script reads the window it is
		// recorded under (the phone's, or the BSUID's for a "bsuid:" recipient).
		wk, wf := servicewindow.Locate(biz, p.To)
		r.Tier = &limits.Tier{Key: rkeys.Tier(biz), Limit: w.cfg.DailyTier, Window: w.cfg.TierWindow, Member: p.To,
			Windows: []limits.WindowRef{{Key: wk, Field: wf}}}
	}
	cat := categoryOf(ctx, p)
	if c, ok := w.cfg.FrequencyCaps[cat]; ok && c.Max > 0 {
		r.Cap = &limits.Cap{Key: rkeys.Cap(biz, cat, ledger.BucketOf(p.To, rkeys.CapBuckets)), Field: p.To,
			Max: c.Max, Window: c.Window, Tag: CapTag(p.Run)}
	}
	return r
}

// CapTag is the short mark a run leaves in a recipient's frequency-cap record.
func CapTag(runID string) string {
	h := fnv.New64a()
	h.Write([]byte(runID))
	return strconv.FormatUint(h.Sum64(), 36)
}

// categoryOf is the template category of a send: from the payload, else from its queue
// ("herald:marketing"), else marketing.
func categoryOf(ctx context.Context, p campaigns.SendPayload) string {
	if p.Category != "" {
		return p.Category
	}
	if q, ok := asynq.GetQueueName(ctx); ok {
		if c, found := strings.CutPrefix(q, campaigns.QueueFor("")); found && c != "" {
			return c
		}
	}
	return "marketing"
}

// paceAndClaim reserves a pacing permit (sender and business limits) and claims the
// recipient's ledger entry.
//
// While the limits let sends through without waiting, both go out in one pipeline: that
// saves a Redis round trip per send when throughput is bound by Redis, not by the limits.
// Once permits come with a wait, the send is rate-bound and the round trip costs nothing, so
// the permit is reserved and waited for first and the entry claimed after: a worker that dies
// while waiting then leaves no claim behind (a claim found later would make the recipient
// unknown under at-most-once although nothing was sent).
func (w *Worker) paceAndClaim(ctx context.Context, p campaigns.SendPayload, req *limits.Request) (ledger.Claim, booking, error) {
	if w.paced.Load() {
		return w.pacedClaim(ctx, p, req)
	}
	var rc *limits.ReserveCmd
	var cc *ledger.ClaimCmd
	_, _ = w.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		rc = w.limiter.ReserveIn(ctx, pipe, req)
		cc = w.ledger.ClaimIn(ctx, pipe, p.Address(), ledger.Delivery(p.Delivery))
		return nil
	})
	// Each result is read on its own: a failed reservation must not hide a claim that happened.
	c, cerr := cc.Result(ctx)
	r, rerr := rc.Result(ctx)
	b := booked(r, time.Now())
	if rerr == nil {
		w.paced.Store(!r.OK || r.Wait > 0)
	}
	if cerr != nil {
		if rerr == nil && r.OK {
			w.refund(ctx, req, r)
		}
		return c, b, cerr
	}
	return c, b, rerr
}

// booking is a reservation with its slot on this process's clock. The reservation says how
// long after Redis ran it the slot comes; that moment lies between asking and the answer, so
// wake (answered + wait) is the earliest the send may leave without going before its slot.
type booking struct {
	limits.Reservation
	wake time.Time
	// waited: the send waited for its slot before it claimed (see refundSpent).
	waited bool
}

func booked(r limits.Reservation, answered time.Time) booking {
	return booking{Reservation: r, wake: answered.Add(r.Wait)}
}

// book reserves req now.
func (w *Worker) book(ctx context.Context, req *limits.Request) (booking, error) {
	req.Now = w.now()
	r, err := w.limiter.ReserveRequest(ctx, req)
	return booked(r, time.Now()), err
}

// pacedClaim is paceAndClaim while the limits make sends wait: reserve (keeping the place for
// up to KeepPlaceFor in all), wait for the slot, then claim. Waiting stops when the worker
// stops, so a shutdown never starts a send; what was reserved and not used is given back as
// refundSpent says (the shared rate slots stay used).
func (w *Worker) pacedClaim(ctx context.Context, p campaigns.SendPayload, req *limits.Request) (ledger.Claim, booking, error) {
	notClaimed := ledger.Claim{Verdict: ledger.VerdictNotClaimed}
	// A paused run's tasks would otherwise hold a place and book permits only to be held.
	if st, err := w.rdb.HMGet(ctx, rkeys.Run(p.Run), "status", "pause_reason").Result(); err == nil && len(st) == 2 {
		if status, _ := st[0].(string); status == string(ledger.RunPaused) {
			reason, _ := st[1].(string)
			return ledger.Claim{Verdict: ledger.VerdictPaused, Detail: cmp.Or(reason, status)}, booking{}, nil
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(w.stopCtx, cancel)()
	deadline := time.Now().Add(w.cfg.KeepPlaceFor)
	for try := 1; ; try++ {
		b, err := w.reserveKeepingPlace(wctx, req, deadline)
		if err != nil || !b.OK {
			return notClaimed, b, err
		}
		b.waited = true
		w.paced.Store(b.Wait > 0)
		// The claim's round trip is made just before the slot, so the request can leave at
		// it (onTime waits for the rest).
		if err := sleepCtx(wctx, time.Until(b.wake.Add(-claimLead))); err != nil {
			w.refundSpent(ctx, req, b.Reservation)
			return notClaimed, booking{}, err
		}
		// A send that wakes well after its slot (the process stalled: GC, a busy CPU) would
		// go out together with the sends of the slots after it and crowd one second; it lets
		// its slot go and takes a fresh one (its pair slot is given back, or its own booking
		// would refuse it). HandleSend looks again after the claim (onTime).
		if w.late(b) && try < 3 {
			w.refundSpent(ctx, req, b.Reservation)
			continue
		}
		c, err := w.ledger.Claim(ctx, p.Address(), ledger.Delivery(p.Delivery))
		if err != nil {
			w.refundSpent(ctx, req, b.Reservation)
		}
		return c, b, err
	}
}

// refund gives back what r reserved for req, for a send that will not happen; a failure
// costs only capacity, so it is logged, not returned.
func (w *Worker) refund(ctx context.Context, req *limits.Request, r limits.Reservation) {
	if !r.OK {
		return
	}
	if err := w.limiter.Refund(context.WithoutCancel(ctx), req, r); err != nil {
		w.log.Warn().Err(err).Msg("could not give rate-limit permits back")
	}
}

// refundSpent gives back what r reserved for req once the send has waited for its slot: only
// what is the recipient's own (the pair slot, new room in the daily tier and the frequency
// cap), not the shared rate limits (sender, business, run). A rate permit given back frees
// the last slot booked, not this one: the next reservation takes a slot some other send
// already holds, about MaxPaceWait later, and any second that holds that doubled slot but not
// this unused one carries one send more than the rate (measured: a stall that made 26 sends
// wake late put 106 sends in one second at 80/s). An unused slot is lost instead.
func (w *Worker) refundSpent(ctx context.Context, req *limits.Request, r limits.Reservation) {
	own := *req
	own.Limits = make([]limits.Limit, len(req.Limits))
	own.Limits[limPair] = req.Limits[limPair]
	w.refund(ctx, &own, r)
}

// lateLimit is how late after its slot a send may still go out; a later one lets its slot go
// and takes a fresh one. Sends leave between their slot and lateLimit after it, so a sliding
// one-second window holds at most rate × (1 s + lateLimit) + 1 of them before the network's
// jitter: at 80/s 82 (1.025×), at 200/s 204. A tighter limit lets more slots go unused on a
// busy machine (docs/benchmarks.md).
const lateLimit = 15 * time.Millisecond

// claimLead is how long before its slot a paced send claims its recipient: about a loaded
// machine's round trip to Redis, so the claim does not make the send late. The claim is then
// held that long before the request, much less than a send that reserved and claimed in one
// round trip holds it.
const claimLead = 10 * time.Millisecond

// late reports whether a send is past its slot by more than lateLimit, and counts it. The
// slot is taken as b.wake: an answer that came late is not counted (counting it cost a
// quarter of the throughput on a loaded machine, where Redis's round trips reach tens of ms).
func (w *Worker) late(b booking) bool {
	if time.Since(b.wake) <= lateLimit {
		return false
	}
	if w.metrics != nil {
		w.metrics.LimitWaits.WithLabelValues("late").Inc()
	}
	return true
}

// onTime waits for b's slot and returns once the claimed send may leave: within lateLimit of
// its slot. A send found later (the claim's round trip or the process stalled) lets its slot
// go (the shared limits keep it used, see refundSpent) and waits for a fresh one, at most
// twice, keeping its claim: for up to MaxPaceWait, as a send that reserved and claimed in one
// round trip already does. The booking returned is !OK when no fresh slot came within
// MaxPaceWait (it says why); err is Redis's or ctx's.
func (w *Worker) onTime(ctx context.Context, req *limits.Request, b booking) (booking, error) {
	for try := 1; ; try++ {
		if err := sleepCtx(ctx, time.Until(b.wake)); err != nil {
			return b, err
		}
		if try > 2 || !w.late(b) {
			return b, nil
		}
		// Only the pair slot goes back (the fresh booking would wait for it otherwise); the
		// room in the tier and the cap stays taken, and the fresh booking finds it its own.
		pair := *req
		pair.Limits = make([]limits.Limit, len(req.Limits))
		pair.Limits[limPair] = req.Limits[limPair]
		w.refund(ctx, &pair, limits.Reservation{OK: true, Factor: b.Factor})
		nb, err := w.book(ctx, req)
		nb.TierAdded = nb.TierAdded || b.TierAdded
		nb.CapAdded = nb.CapAdded || b.CapAdded
		nb.waited = true
		if err != nil || !nb.OK {
			// Not sent after all: the room taken in the tier and the cap goes back.
			room := *req
			room.Limits = make([]limits.Limit, len(req.Limits))
			w.refund(ctx, &room, b.Reservation)
			nb.TierAdded, nb.CapAdded = false, false
			return nb, err
		}
		b = nb
	}
}

// reserveKeepingPlace reserves, and while the sender, business or run limits are booked
// further ahead than MaxPaceWait it waits in place until a slot should be free (with a little
// jitter, so the waiting sends do not all ask at once) and asks again, until deadline.
func (w *Worker) reserveKeepingPlace(ctx context.Context, req *limits.Request, deadline time.Time) (booking, error) {
	for {
		b, err := w.book(ctx, req)
		r := b.Reservation
		// A wait for one person's pair slot is theirs alone: reschedule it, keep the place
		// for the next task.
		if err != nil || r.OK || r.Reason != limits.ReasonRate || r.Binding == limPair {
			return b, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return b, nil
		}
		d := min(r.Wait-w.cfg.MaxPaceWait, left) + rand.N(20*time.Millisecond)
		if err := sleepCtx(ctx, d); err != nil {
			return b, err
		}
	}
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// HandleSend is the handler of campaigns.TypeSend tasks.
func (w *Worker) HandleSend(ctx context.Context, t *asynq.Task) error {
	p, err := campaigns.DecodeSend(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	log := w.log.With().Str(logx.KeyRun, p.Run).Str(logx.KeyRecipient, logx.Phone(p.To)).Logger()
	if handled, err := w.beforeSend(ctx, log, p); handled {
		return err // outside its send window, or expired
	}

	req := w.requestFor(ctx, p)
	c, r, err := w.paceAndClaim(ctx, p, req)
	if err != nil {
		if c.Verdict == ledger.VerdictSend {
			// Claimed but the permit is unknown: give the claim back and try again later.
			if rerr := w.release(p, c.Attempts, ledger.ReleaseThrottle, "PACE_ERROR"); rerr != nil {
				log.Error().Err(rerr).Msg("could not give the claim back; the recipient may read as unknown")
			}
		}
		if ctx.Err() != nil || errors.Is(err, context.Canceled) {
			return err
		}
		// Redis trouble is not the recipient's: the task waits and tries again without
		// spending asynq's retry budget (which would archive it, the entry still queued).
		log.Warn().Err(err).Msg("limits or ledger unreachable; the send will try again")
		return &ThrottledError{RetryAfter: w.cfg.ThrottleDelay, Reason: "limits or ledger unreachable"}
	}
	if r.Reason == limits.ReasonCapped && (c.Verdict == ledger.VerdictSend || c.Verdict == ledger.VerdictNotClaimed) {
		return w.skipCapped(ctx, log, p, c)
	}
	if c.Verdict == ledger.VerdictNotClaimed {
		return w.waitFor(ctx, log, p, r.Reservation)
	}
	if c.Verdict != ledger.VerdictSend && r.OK {
		// Reserved but nothing will be sent (paused, done, cancelled): give the permits back,
		// so held tasks do not eat the rate limits and the person's pair slot stays free; a
		// slot already waited for keeps its shared limits used (refundSpent).
		if r.waited {
			w.refundSpent(ctx, req, r.Reservation)
		} else if err := w.limiter.Refund(context.WithoutCancel(ctx), req, r.Reservation); err != nil {
			log.Warn().Err(err).Msg("could not give rate-limit permits back")
		}
	}
	switch c.Verdict {
	case ledger.VerdictSend:
	case ledger.VerdictPaused:
		return &HeldError{RetryAfter: w.cfg.HoldDelay, Reason: c.Detail}
	case ledger.VerdictUnknown, ledger.VerdictFound:
		if c.Verdict == ledger.VerdictFound {
			// The run resends unknown recipients: settling it here keeps the payload for that.
			if _, err := w.settleFound(p, c); err != nil {
				return err
			}
		}
		w.count(p, metrics.OutcomeUnknown, "claim_found")
		log.Warn().Int(logx.KeyAttempt, c.Attempts).Msg("earlier attempt may have been sent; marked unknown (at-most-once)")
		return nil
	case ledger.VerdictCancelled:
		w.count(p, metrics.OutcomeSkipped, "cancelled")
		return nil
	case ledger.VerdictDone:
		log.Debug().Str("state", string(c.State)).Msg("nothing to send")
		return nil
	default:
		log.Warn().Str("verdict", string(c.Verdict)).Msg("task has no run or ledger entry; dropped")
		return nil
	}
	if r.OK {
		if w.metrics != nil && !r.waited && r.Wait > 0 {
			w.metrics.PaceWait.Observe(r.Wait.Seconds())
		}
		if r, err = w.onTime(ctx, req, r); err != nil {
			code := "PACE_ERROR"
			if ctx.Err() != nil {
				code = "SHUTDOWN"
			}
			if rerr := w.release(p, c.Attempts, ledger.ReleaseThrottle, code); rerr != nil {
				return rerr
			}
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				return err
			}
			log.Warn().Err(err).Msg("limits unreachable; the send will try again")
			return &ThrottledError{RetryAfter: w.cfg.ThrottleDelay, Reason: "limits or ledger unreachable"}
		}
	}
	if !r.OK {
		code := "RATE_LIMIT"
		if r.Reason == limits.ReasonTier {
			code = "DAILY_TIER"
		}
		if err := w.release(p, c.Attempts, ledger.ReleaseThrottle, code); err != nil {
			return err
		}
		return w.waitFor(ctx, log, p, r.Reservation)
	}

	msg := connectly.TemplateMessage{
		Number: p.To, TemplateName: p.Template, Language: p.Language, Parameters: p.Params,
		Sender: p.Sender, CallbackData: p.Callback(), CampaignName: p.Campaign,
	}
	// The request runs to completion even when the worker shuts down: cutting it off would
	// leave its outcome unknown.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.RequestTimeout)
	began := time.Now()
	res, sendErr := w.sender.SendTemplate(sctx, msg)
	cancel()
	d := w.table.Decide(sendErr)
	if w.metrics != nil {
		class := "ok"
		if sendErr != nil {
			class = d.Class.String()
		}
		w.metrics.RequestDuration.WithLabelValues(class).Observe(time.Since(began).Seconds())
	}
	// Turned away (a throttle, a stop-the-run code): no message reached the person, so the
	// room it took in the daily tier and the frequency cap is given back.
	if d.Class == connectly.ClassThrottle || d.Class == connectly.ClassStopRun {
		room := *req
		room.Limits = make([]limits.Limit, len(req.Limits))
		w.refund(ctx, &room, r.Reservation)
	}
	return w.settle(context.WithoutCancel(ctx), log, p, c.Attempts, res, d, sendErr)
}

// adaptiveTrigger reports whether an answer says the sender goes too fast, so its rate backs
// off: a throttle whose key is one of AdaptiveCodes. The key is the classified one, so every
// 429 matches HTTP_429 whatever code its body carries (Connectly's error body always has one,
// ERROR_CODE_UNSPECIFIED when nothing is more specific).
func (w *Worker) adaptiveTrigger(d connectly.Decision) bool {
	return !w.cfg.AdaptiveOff && d.Class == connectly.ClassThrottle && w.adapt[d.Key]
}

// waitFor answers a send the limits refused for now: a throttle, which uses no attempt and
// brings the task back when a permit (or room in the daily tier) should be free. A tier wait
// is noted on the run, so `herald run show` says what it waits for.
func (w *Worker) waitFor(ctx context.Context, log zerolog.Logger, p campaigns.SendPayload, r limits.Reservation) error {
	if r.Reason != limits.ReasonTier {
		if w.metrics != nil {
			w.metrics.LimitWaits.WithLabelValues(limits.ReasonRate).Inc()
		}
		return &ThrottledError{RetryAfter: r.Wait, Reason: "rate limit"}
	}
	after := min(r.Wait, w.cfg.TierRecheck)
	now := w.now()
	note := fmt.Sprintf("daily tier: %d unique recipients in %s used; room again at %s", w.cfg.DailyTier,
		w.cfg.TierWindow, now.Add(r.Wait).UTC().Format(time.RFC3339))
	if err := w.ledger.SetWaiting(context.WithoutCancel(ctx), p.Run, note, now.Add(after)); err != nil {
		log.Warn().Err(err).Msg("could not note the tier wait on the run")
	}
	if w.metrics != nil {
		w.metrics.LimitWaits.WithLabelValues(limits.ReasonTier).Inc()
	}
	log.Debug().Dur("retry_in", after).Msg("waiting for the daily tier")
	return &ThrottledError{RetryAfter: after, Reason: "daily tier"}
}

// skipCapped settles a send the frequency cap refused: the recipient had enough messages of
// this category within the cap's window, so the entry becomes skipped(capped).
func (w *Worker) skipCapped(ctx context.Context, log zerolog.Logger, p campaigns.SendPayload, c ledger.Claim) error {
	applied := false
	if c.Verdict == ledger.VerdictSend {
		r, err := w.finishRetrying(p, ledger.Outcome{State: ledger.Skipped, Code: limits.ReasonCapped, Attempt: c.Attempts})
		if err != nil {
			return err
		}
		applied = r.Applied
	} else {
		ok, err := w.skipEntry(context.WithoutCancel(ctx), p, limits.ReasonCapped)
		if err != nil {
			return err
		}
		applied = ok
	}
	if applied {
		w.count(p, metrics.OutcomeSkipped, limits.ReasonCapped)
		log.Info().Msg("skipped: frequency cap reached")
	}
	return nil
}

// release gives a claim back without a send (the request never went out).
func (w *Worker) release(p campaigns.SendPayload, attempt int, mode ledger.ReleaseMode, code string) error {
	o := ledger.Outcome{State: ledger.Queued, Code: code, Mode: mode, Attempt: attempt}
	r, err := w.finishRetrying(p, o)
	if err == nil && r.Applied {
		w.count(p, outcomeLabel(o), "pacing")
	}
	return err
}

// finishRetrying records an outcome, retrying a failing Redis call a few times (about 1.5 s in
// all): an outcome that is not recorded leaves the claim behind, which later reads as "maybe
// sent". It runs on its own context so a shutdown does not cut it short.
func (w *Worker) finishRetrying(p campaigns.SendPayload, o ledger.Outcome) (ledger.FinishResult, error) {
	var (
		r   ledger.FinishResult
		err error
	)
	delay := 50 * time.Millisecond
	for try := 0; try < 5; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err = w.ledger.Finish(ctx, p.Address(), o)
		cancel()
		if err == nil {
			return r, nil
		}
		time.Sleep(delay)
		delay *= 2
	}
	return r, err
}

// settle records the outcome of a send, as read by Table.Decide, and returns the task's
// result: accepted; refused (failed, or the run paused); not taken (a throttle waits without
// using an attempt, anything else retries); maybe sent (unknown under at-most-once, retried
// under at-least-once).
func (w *Worker) settle(ctx context.Context, log zerolog.Logger, p campaigns.SendPayload, attempt int, res connectly.SendResult, d connectly.Decision, sendErr error) error {
	classLabel := "none"
	finish := func(o ledger.Outcome) error {
		o.Attempt = attempt
		r, err := w.finishRetrying(p, o)
		if err != nil {
			return err
		}
		if r.Applied {
			w.count(p, outcomeLabel(o), classLabel)
		}
		if r.PausedFor != "" {
			log.Error().Str("reason", r.PausedFor).Msg("run paused: burst of one permanent code")
		}
		if r.RunCompleted {
			w.log.Info().Str(logx.KeyRun, p.Run).Str(logx.KeyCampaign, p.Campaign).Msg("run completed")
		}
		return nil
	}
	if d.Outcome == connectly.OutcomeAccepted {
		log.Debug().Int(logx.KeyAttempt, attempt).Str("message_id", res.ID).Msg("accepted")
		return finish(ledger.Outcome{State: ledger.Accepted, MessageID: res.ID})
	}
	class, rule, code := d.Class, d.Rule, d.Key
	classLabel = class.String()
	log = log.With().Str(logx.KeyCode, code).Str(logx.KeyClass, class.String()).Int(logx.KeyAttempt, attempt).Logger()

	switch class {
	case connectly.ClassThrottle:
		if err := finish(ledger.Outcome{State: ledger.Queued, Code: code, Mode: ledger.ReleaseThrottle}); err != nil {
			return err
		}
		after := w.cfg.ThrottleDelay
		var ae *connectly.Error
		if errors.As(sendErr, &ae) && ae.RetryAfterSeconds > 0 {
			after = time.Duration(ae.RetryAfterSeconds) * time.Second
		}
		if w.adaptiveTrigger(d) {
			sender := senderOf(p)
			ctl := limits.SenderControl(w.cfg.BusinessID, sender, w.senderRate(sender), w.cfg.Adaptive)
			t, err := w.limiter.Throttled(ctx, ctl, w.now())
			switch {
			case err != nil:
				log.Warn().Err(err).Msg("could not record the throttle for the sender's adaptive rate")
			case t.Decreased:
				log.Warn().Str("sender", logx.Phone(sender)).Float64("rate", ctl.Rate*t.Factor).
					Float64("throttled_share", t.Share).Msg("throttled by the provider: sender rate lowered")
			}
		}
		log.Debug().Msg("throttled by Connectly")
		return &ThrottledError{RetryAfter: after, Reason: code}

	case connectly.ClassStopRun:
		if err := finish(ledger.Outcome{State: ledger.Queued, Code: code, Mode: ledger.ReleaseHold}); err != nil {
			return err
		}
		reason := code + ": " + rule.Why
		paused, err := w.ledger.Pause(ctx, p.Run, reason)
		if err != nil {
			return err
		}
		if paused {
			log.Error().Str("reason", reason).Msg("run paused")
		}
		return &HeldError{RetryAfter: w.cfg.HoldDelay, Reason: reason}

	case connectly.ClassPermanent:
		if err := finish(ledger.Outcome{State: ledger.Failed, Code: code, Permanent: true}); err != nil {
			return err
		}
		if rule.OptOut {
			if err := w.ledger.Suppress(ctx, p.To, code); err != nil {
				return err
			}
			log.Info().Msg("opted out: added to the suppression list")
		}
		log.Info().Msg("failed permanently")
		return fmt.Errorf("%s: %w", code, asynq.SkipRetry)

	default: // transient: not taken, or maybe sent
		if d.Outcome == connectly.OutcomeMaybeSent && ledger.Delivery(p.Delivery) != ledger.AtLeastOnce {
			log.Warn().Msg("the message may have gone out (a 5xx, or no answer after the request was written); marked unknown (at-most-once)")
			// The payload is kept only when the run resends unknown recipients.
			return finish(ledger.Outcome{State: ledger.Unknown, Code: code, Payload: campaigns.EncodeSend(p)})
		}
		if attempt >= w.cfg.MaxAttempts {
			if err := finish(ledger.Outcome{State: ledger.Failed, Code: code}); err != nil {
				return err
			}
			log.Warn().Msg("failed: attempts used up")
			return fmt.Errorf("%s after %d attempts: %w", code, attempt, asynq.SkipRetry)
		}
		if err := finish(ledger.Outcome{State: ledger.Queued, Code: code, Mode: ledger.ReleaseRetry}); err != nil {
			return err
		}
		log.Debug().Msg("transient failure; will retry")
		return fmt.Errorf("%s (attempt %d of %d): %w", code, attempt, w.cfg.MaxAttempts, sendErr)
	}
}
