package worker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/backoff"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/sendpolicy"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/tick"
)

// Sender sends one template message; *connectly.Client implements it.
type Sender interface {
	SendTemplate(ctx context.Context, msg connectly.TemplateMessage) (connectly.SendResult, error)
}

var _ Sender = (*connectly.Client)(nil)

// Config configures a Worker. Zero values take the defaults named: internal/sendpolicy's
// (shared with the config file's defaults), internal/backoff's and limits.Config's. A field
// that can be turned off is off when negative.
type Config struct {
	// Concurrency is the number of sends in flight in this process. Default
	// sendpolicy.DefaultConcurrency.
	Concurrency int
	// Queues maps queue names to priorities. Default campaigns.Queues.
	Queues map[string]int
	// MaxAttempts is how many times a recipient is tried on transient failures. Default
	// sendpolicy.DefaultMaxAttempts.
	MaxAttempts int
	// Backoff for transient failures. Default backoff.DefaultBase and backoff.DefaultCap.
	Backoff backoff.Backoff
	// ThrottleDelay is how long a send waits after a 429 without Retry-After. Default
	// sendpolicy.DefaultThrottleDelay.
	ThrottleDelay time.Duration
	// RetryAfterHolds is what a throttle's Retry-After holds for its wait: every send of the
	// business (the default, limits.DefaultHoldScope), every send from the sender number,
	// or only the refused send. Connectly documents neither the header nor the scope of its
	// request limit, so the default is the widest.
	RetryAfterHolds limits.HoldScope
	// HoldDelay is how often a task of a paused run looks again. Default
	// sendpolicy.DefaultHoldDelay.
	HoldDelay time.Duration
	// KeepPlaceFor is how long a send whose limits are booked further ahead than
	// Limits.MaxWait keeps its place, looking again as slots free, before its task is
	// rescheduled. Holding the task is the backpressure: asynq takes no more tasks than the
	// limits can serve, instead of cycling the whole backlog through the retry set. Default
	// sendpolicy.DefaultKeepPlaceFor; negative (off) reschedules at once.
	KeepPlaceFor time.Duration
	// RequestTimeout bounds one Connectly request. Shutdown lets requests in flight finish
	// (a request cut off mid-way leaves its outcome unknown). Default
	// sendpolicy.DefaultRequestTimeout.
	RequestTimeout time.Duration
	// ShutdownTimeout is how long Shutdown waits for handlers. Default RequestTimeout +
	// sendpolicy.ShutdownGrace.
	ShutdownTimeout time.Duration
	// DelayedTaskCheckInterval is how often asynq moves due retries back to pending. Default
	// sendpolicy.DefaultPollInterval.
	DelayedTaskCheckInterval time.Duration
	// TaskCheckInterval is how often an idle worker polls its queues. Default
	// sendpolicy.DefaultPollInterval.
	TaskCheckInterval time.Duration
	// Limits is every limit the sends are held to (the business, its senders' rates and
	// adaptive rate, the pair limit, the daily tier, the frequency caps) and Limits.MaxWait,
	// the furthest ahead a send books its permits and then waits for them. Zero values take
	// limits.Config's defaults (WithDefaults).
	Limits limits.Config
	// BurstSample and BurstShare stop a run that burns its audience on one permanent code:
	// when a code accounts for more than BurstShare of the run's last BurstSample outcomes, the
	// run pauses. Defaults sendpolicy.DefaultBurstSample and DefaultBurstShare; a negative
	// BurstSample turns it off.
	BurstSample int
	BurstShare  float64
	// TierRecheck is the longest a send waiting for room in the tier sleeps before it looks
	// again. Default sendpolicy.DefaultTierRecheck.
	TierRecheck time.Duration
	// AdaptiveCodes are the throttle keys (connectly.Decision.Key: the throttle code, also at a
	// 429, else HTTP_429 for a 429) that count as the provider throttling the sender. A list
	// that names HTTP_429 without 130429 and 80007 no longer backs off for those codes at a
	// 429. Default sendpolicy.DefaultAdaptiveCodes (HTTP_429, 130429, 80007 and
	// GRPC_RESOURCE_EXHAUSTED);
	// a negative Limits.Adaptive.Period turns the adaptive rate off.
	AdaptiveCodes []string
	// ResendSweepEvery is how often this worker looks for unknown recipients whose quiet
	// period (a campaign's unknown.resend_after) has passed, to send them once more
	// (resend.go). Default sendpolicy.DefaultResendSweepEvery; negative turns the sweep off
	// in this process.
	ResendSweepEvery time.Duration
	// ResendLease is how long a sweep holds the recipients it took before another worker may
	// take them (a sweep that died meanwhile). Default sendpolicy.DefaultResendLease.
	ResendLease time.Duration
	// Windows says which recorded customer service windows count for a send from its sender
	// number (the config's senders and windows.scope): a customer opens a window by writing
	// to one business number. The zero Policy counts the windows recorded with no number for
	// every send, as for a business with one number.
	Windows servicewindow.Policy
	// ResendTask sets the asynq options of resend tasks (the queue is the run's). Default, as
	// campaign send tasks: MaxRetry sendpolicy.MaxRetry(MaxAttempts), Timeout
	// sendpolicy.TaskTimeout(RequestTimeout, Limits.MaxWait, KeepPlaceFor), Retention
	// sendpolicy.Retention.
	ResendTask campaigns.TaskOptions
	// CampaignSessionsNotMarketing lets a campaign's session messages through to a person on
	// the suppression list for marketing only (who stopped marketing messages, Meta 131050).
	// Default false: they count as marketing, a broadcast being usually promotional. A
	// follow-up's session message, which answers the customer's own reply, never counts; a
	// template counts by its category (an unknown one as marketing). (Config file:
	// suppression.campaign_sessions_are_marketing.)
	CampaignSessionsNotMarketing bool
	// LateFallbackFor is how long the fallback template of a session message that went is
	// kept (ledger.KeepFallback), so that the webhook receiver can send it should Connectly
	// report the message undelivered because the customer's window had closed (a late
	// refusal). Default sendpolicy.DefaultLateFallbackFor; negative keeps none, and a late
	// refusal then leaves the recipient failed with Connectly's code. (Config file:
	// windows.late_fallback_for.)
	LateFallbackFor time.Duration
}

// FrequencyCap is at most Max messages to one recipient per Period.
type FrequencyCap = limits.FrequencyCap

func (c *Config) setDefaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = sendpolicy.DefaultConcurrency
	}
	if len(c.Queues) == 0 {
		c.Queues = campaigns.Queues
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = sendpolicy.DefaultMaxAttempts
	}
	if c.Backoff.Base <= 0 {
		c.Backoff.Base = backoff.DefaultBase
	}
	if c.Backoff.Cap <= 0 {
		c.Backoff.Cap = backoff.DefaultCap
	}
	if c.ThrottleDelay <= 0 {
		c.ThrottleDelay = sendpolicy.DefaultThrottleDelay
	}
	if c.HoldDelay <= 0 {
		c.HoldDelay = sendpolicy.DefaultHoldDelay
	}
	if c.RetryAfterHolds == "" {
		c.RetryAfterHolds = limits.DefaultHoldScope
	}
	if c.LateFallbackFor == 0 {
		c.LateFallbackFor = sendpolicy.DefaultLateFallbackFor
	}
	if c.KeepPlaceFor == 0 {
		c.KeepPlaceFor = sendpolicy.DefaultKeepPlaceFor
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = sendpolicy.DefaultRequestTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = c.RequestTimeout + sendpolicy.ShutdownGrace
	}
	if c.DelayedTaskCheckInterval <= 0 {
		c.DelayedTaskCheckInterval = sendpolicy.DefaultPollInterval
	}
	if c.TaskCheckInterval <= 0 {
		c.TaskCheckInterval = sendpolicy.DefaultPollInterval
	}
	// The limits' defaults are set in one place, internal/limits.
	c.Limits = c.Limits.WithDefaults()
	if c.BurstSample == 0 {
		c.BurstSample = sendpolicy.DefaultBurstSample
	}
	if c.BurstShare <= 0 {
		c.BurstShare = sendpolicy.DefaultBurstShare
	}
	if c.TierRecheck <= 0 {
		c.TierRecheck = sendpolicy.DefaultTierRecheck
	}
	if c.AdaptiveCodes == nil {
		c.AdaptiveCodes = sendpolicy.DefaultAdaptiveCodes()
	}
	if c.ResendSweepEvery == 0 {
		c.ResendSweepEvery = sendpolicy.DefaultResendSweepEvery
	}
	if c.ResendLease <= 0 {
		c.ResendLease = sendpolicy.DefaultResendLease
	}
	if c.ResendTask.MaxRetry <= 0 {
		c.ResendTask.MaxRetry = sendpolicy.MaxRetry(c.MaxAttempts)
	}
	if c.ResendTask.Timeout <= 0 {
		c.ResendTask.Timeout = sendpolicy.TaskTimeout(c.RequestTimeout, c.Limits.MaxWait, c.KeepPlaceFor)
	}
	if c.ResendTask.Retention <= 0 {
		c.ResendTask.Retention = sendpolicy.Retention
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
	// Now is the worker's clock (send hours and expiry, the daily tier, the frequency caps,
	// the adaptive rate, the ledger's timestamps, how long a send keeps its place). Sleep
	// must pass its time: a send keeping its place sleeps until its deadline on Now. How
	// late a send comes to its slot is measured on the process's monotonic clock. Default
	// time.Now.
	Now func() time.Time
	// Sleep is every wait of the worker: for a rate slot, while keeping a place, between
	// retries of a ledger write. It returns ctx's error when ctx ends first. Default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Tasks writes the resend tasks of unknown recipients; default asynqbatch.New(Redis), the
	// writer of every send task.
	Tasks asynqbatch.Writer
}

// Worker is one worker process's asynq server and send handler.
type Worker struct {
	// paced maps a sender to an *atomic.Bool set while the sender's limits make its sends
	// wait (see paceAndClaim).
	paced sync.Map
	// running is set between Start and Stop, for readiness.
	running atomic.Bool
	metrics *metrics.Metrics
	// senders labels the sender numbers in the metrics (masked; built from the configured
	// senders, cfg.Limits.SenderRates, as the limits collector's are).
	senders metrics.SenderLabels
	rdb     redis.UniversalClient
	cfg     Config
	ledger  *ledger.Ledger
	limits  *limits.Sends
	windows *servicewindow.Tracker
	client  Client
	table   *connectly.Table
	log     zerolog.Logger
	srv     *asynq.Server
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error
	// mono is the process's clock that a paced send's slot and its lateness are measured on
	// (booking.wake, late, tooLate): time.Now, whose monotonic reading Sub uses. A test on a
	// simulated clock replaces it with one its Sleep moves, so only the stalls it makes on
	// purpose make a send late, not a busy machine.
	mono  func() time.Time
	adapt map[string]bool
	// stopCtx ends when Stop is called: sends still waiting for a slot give up then.
	stopCtx  context.Context
	stopSend context.CancelFunc
	// tasks writes resend tasks; sweepStop ends the sweep of unknown recipients started by
	// Start, which closes sweepDone when it has returned.
	tasks     asynqbatch.Writer
	sweepStop context.CancelFunc
	sweepDone chan struct{}
	// sending is called before each send's request (OnSending; followup.go).
	sending func(ctx context.Context, p campaigns.SendPayload) error
	// messageOf builds the Message a task's payload carries (the function messageOf; a test
	// plugs in a kind of its own here).
	messageOf func(p *campaigns.SendPayload, category string) (Message, error)
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
	l.SetBurst(cfg.BurstSample, cfg.BurstShare)
	w := &Worker{
		rdb: d.Redis, cfg: cfg, ledger: l, metrics: d.Metrics, limits: limits.NewSends(limits.New(d.Redis), cfg.Limits),
		windows: servicewindow.New(d.Redis, d.Now), client: clientOf(d.Sender), table: d.Table, log: log, now: d.Now, sleep: d.Sleep, mono: time.Now, adapt: map[string]bool{},
		tasks: d.Tasks, messageOf: messageOf, senders: metrics.NewSenderLabels(slices.Collect(maps.Keys(cfg.Limits.SenderRates))),
	}
	w.windows.SetPolicy(cfg.Windows)
	if w.tasks == nil {
		w.tasks = asynqbatch.New(d.Redis)
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.sleep == nil {
		w.sleep = tick.Sleep
	}
	w.stopCtx, w.stopSend = context.WithCancel(context.Background())
	for _, c := range cfg.AdaptiveCodes {
		w.adapt[c] = true
	}
	w.srv = asynq.NewServerFromRedisClient(d.Redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   cfg.Queues,
		IsFailure:                isFailure,
		RetryDelayFunc:           retryDelay(cfg.Backoff),
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
	if err := w.limits.Limiter().Load(ctx); err != nil {
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

// count adds one settled send to the metrics: every count of a send goes through here. A
// follow-up's (its run "RUN~RULE") counts in herald_followup_sends_total too, by its rule.
func (w *Worker) count(p campaigns.SendPayload, outcome, class string) {
	if w.metrics == nil {
		return
	}
	w.metrics.Sends.WithLabelValues(p.Campaign, w.senders.Of(p.Sender), outcome, class).Inc()
	if _, rule, ok := ledger.FollowupOf(p.Run); ok {
		w.metrics.FollowupSends.WithLabelValues(p.Campaign, rule, outcome, class).Inc()
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
	case o.Mode == ledger.ReleaseRetry || o.Mode == ledger.ReleaseRetryMaybeSent:
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

// senderOf names the sender of a send in limiter keys ("default" when the payload has none).
func senderOf(p campaigns.SendPayload) string { return limits.SenderKey(p.Sender) }
