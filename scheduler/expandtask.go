package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/logx"
)

// ExpandConfig configures expansion tasks. Zero values take the defaults shown.
type ExpandConfig struct {
	// Window is how much sending time a run's pending tasks may cover: the window holds
	// Window × the run's rate (the campaign's rate, else its sender's) tasks. Default 2m.
	Window time.Duration
	// MinWindow and MaxWindow bound the window in tasks. Defaults 1,000 and 5,000 (about
	// 4 MB of Redis at asynq's ~760 bytes a task); a negative MaxWindow removes the bound.
	MinWindow int
	MaxWindow int
	// TopUp is how often a full window is looked at again. Default 1s.
	TopUp time.Duration
	// Hold is how long one task waits in place for room before it hands over to a
	// continuation task TopUp later (freeing its worker slot). Default 0: at once, so no
	// task sits on a run's expansion: a process killed while it held one would stall the
	// run until its task is recovered (see internal/reclaim).
	Hold time.Duration
	// BatchSize is the number of audience rows per ledger script. Default 500.
	BatchSize int
	// Task are the asynq options of send tasks (queue from the campaign's category).
	Task campaigns.TaskOptions
}

func (c *ExpandConfig) setDefaults() {
	c.Window = cmp.Or(c.Window, 2*time.Minute)
	c.MinWindow = cmp.Or(c.MinWindow, 1000)
	c.MaxWindow = cmp.Or(c.MaxWindow, 5000)
	c.TopUp = cmp.Or(c.TopUp, time.Second)
	c.BatchSize = cmp.Or(c.BatchSize, 500)
}

// ExpandDeps are what expansion tasks need from the process.
type ExpandDeps struct {
	Redis  redis.UniversalClient
	Logger zerolog.Logger
	// Sender picks the sender of a new run (the campaign's, else the configured one).
	Sender func(def *campaigns.Definition) (string, error)
	// SenderRate is a sender's messages/s, to size the window. Default: 80 for every sender.
	SenderRate func(sender string) float64
	// Now defaults to time.Now.
	Now func() time.Time
	// Enqueuer enqueues continuation tasks; default an asynq client on Redis.
	Enqueuer Enqueuer
	// OnEnqueued, when set, is told how many send tasks each expansion step wrote (metrics).
	OnEnqueued func(campaign string, n int)
}

// ExpandHandler runs TypeExpand tasks.
type ExpandHandler struct {
	cfg    ExpandConfig
	deps   ExpandDeps
	store  *Store
	ledger *ledger.Ledger
	batch  *BatchEnqueuer
	log    zerolog.Logger
}

// NewExpandHandler returns the handler of expansion tasks.
func NewExpandHandler(cfg ExpandConfig, deps ExpandDeps) *ExpandHandler {
	if deps.Redis == nil || deps.Sender == nil {
		panic("scheduler: NewExpandHandler needs Redis and Sender")
	}
	cfg.setDefaults()
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.SenderRate == nil {
		deps.SenderRate = func(string) float64 { return limits.DefaultSenderRate }
	}
	if deps.Enqueuer == nil {
		deps.Enqueuer = asynq.NewClientFromRedisClient(deps.Redis)
	}
	return &ExpandHandler{cfg: cfg, deps: deps, store: NewStore(deps.Redis, deps.Now),
		ledger: ledger.New(deps.Redis, deps.Now), batch: NewBatchEnqueuer(deps.Redis),
		log: deps.Logger.With().Str(logx.KeyComponent, "expand").Logger()}
}

// RegisterHandlers registers the expansion task handler on an asynq mux (a worker's, or the
// expansion server's).
func RegisterHandlers(mux *asynq.ServeMux, h *ExpandHandler) {
	mux.Handle(campaigns.TypeExpand, h)
}

// WindowFor returns the window in tasks for a run sending at rate messages/s.
func (h *ExpandHandler) WindowFor(rate float64) int { return h.cfg.WindowFor(rate) }

// WindowFor returns the window in tasks for a run sending at rate messages/s under this
// config (zero fields taking their defaults).
func (c ExpandConfig) WindowFor(rate float64) int {
	c.setDefaults()
	n := int(rate * c.Window.Seconds())
	n = max(n, c.MinWindow)
	if c.MaxWindow > 0 {
		n = min(n, c.MaxWindow)
	}
	return n
}

// ProcessTask creates the task's run if it does not exist yet, then expands it until the
// audience is done or the run's window is full; then (after waiting in place up to Hold, by
// default not at all) it enqueues a continuation task TopUp later and returns. A continuation
// that finds the window still full hands over again at the cost of two reads, so a run's
// expansion is a chain of short tasks that any living expansion server takes. Everything it does is keyed by the run
// and guarded by the ledger's cursors, so a task that is run twice, or crashes anywhere and is
// run again, neither skips nor duplicates a recipient.
func (h *ExpandHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := campaigns.DecodeExpand(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	log := h.log.With().Str(logx.KeyRun, p.Run).Str(logx.KeyCampaign, p.Campaign).Int("seq", p.Seq).Logger()
	if full, err := h.stillFull(ctx, p); err != nil || full {
		if err != nil {
			return err
		}
		return h.continueLater(ctx, p, p.Window, log)
	}
	run, err := h.ledger.GetRun(ctx, p.Run)
	var def *campaigns.Definition
	switch {
	case errors.Is(err, ledger.ErrRunNotFound):
		if run, def, err = h.createRun(ctx, p, log); err != nil {
			return err
		}
	case err != nil:
		return err
	case run.Version == 0:
		// A run started from a file (herald campaign send) continues from the same file.
		if def, err = campaigns.Load(run.Definition); err != nil {
			return fmt.Errorf("run %s: %w: %w", run.ID, err, asynq.SkipRetry)
		}
		if def.ID != run.Campaign {
			return fmt.Errorf("run %s: %s now holds campaign %s, not %s: %w", run.ID, run.Definition, def.ID, run.Campaign, asynq.SkipRetry)
		}
	default:
		sub, err := h.store.Version(ctx, run.Campaign, run.Version)
		if err != nil {
			return fmt.Errorf("run %s: %w: %w", run.ID, err, asynq.SkipRetry)
		}
		if def, err = sub.Definition(); err != nil {
			return fmt.Errorf("run %s: campaign %s version %d: %w: %w", run.ID, run.Campaign, run.Version, err, asynq.SkipRetry)
		}
	}
	rate := def.Rate
	if rate <= 0 {
		rate = h.deps.SenderRate(run.Sender)
	}
	window := h.WindowFor(rate)
	exp := NewExpander(ExpanderConfig{Ledger: h.ledger, Batch: h.batch, Window: window, Task: h.cfg.Task,
		BatchSize: h.cfg.BatchSize, Logger: h.log, Now: h.deps.Now})
	deadline := time.Now().Add(h.cfg.Hold)
	for {
		// A cancelled run is still expanded to the end, every remaining row skipped(cancelled)
		// without a task, so its states add up to the audience.
		if run.Expanded {
			return nil
		}
		st, err := exp.Expand(ctx, def, run)
		if h.deps.OnEnqueued != nil && st.Enqueued > 0 {
			h.deps.OnEnqueued(run.Campaign, st.Enqueued)
		}
		switch {
		case err == nil:
			log.Info().Int("rows", st.Rows).Msg("run expanded")
			return nil
		case errors.Is(err, ledger.ErrStaleBatch):
			// Another expansion of this run moved the cursor under us (a tick enqueued again
			// after its first task was gone): that one carries on.
			log.Warn().Err(err).Msg("run is being expanded by another task; this one stops")
			return nil
		case !errors.Is(err, ErrWindowFull):
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		log.Debug().Int("window", window).Int("planned", st.Planned).Msg("window full")
		if h.cfg.Hold <= 0 {
			return h.continueLater(ctx, p, window, log)
		}
		if err := h.waitForRoom(ctx, run.ID, window, deadline); err != nil {
			if !errors.Is(err, errHoldOver) {
				return err
			}
			return h.continueLater(ctx, p, window, log)
		}
		if run, err = h.ledger.GetRun(ctx, run.ID); err != nil {
			return err
		}
	}
}

var errHoldOver = errors.New("hold over")

// waitForRoom polls the run's pending count every TopUp until a quarter of the window is free,
// and returns errHoldOver once deadline passes.
func (h *ExpandHandler) waitForRoom(ctx context.Context, runID string, window int, deadline time.Time) error {
	tick := time.NewTicker(h.cfg.TopUp)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		pending, err := h.ledger.Pending(ctx, runID)
		if err != nil {
			return err
		}
		if pending <= int64(window-window/4) {
			return nil
		}
		if !time.Now().Before(deadline) {
			return errHoldOver
		}
	}
}

// stillFull reports whether a continuation that knows its run's window finds it still without
// room (less than a quarter free) and the run not yet expanded: then it only hands over again,
// without loading the campaign or opening its audience.
func (h *ExpandHandler) stillFull(ctx context.Context, p campaigns.ExpandPayload) (bool, error) {
	if p.Seq == 0 || p.Window <= 0 {
		return false, nil
	}
	run, err := h.ledger.GetRun(ctx, p.Run)
	if err != nil || run.Expanded {
		return false, nil // the full path reports it, or finds nothing to do
	}
	pending, err := h.ledger.Pending(ctx, p.Run)
	if err != nil {
		return false, err
	}
	return pending > int64(p.Window-p.Window/4), nil
}

// continueLater enqueues the next task of this expansion, TopUp from now, telling it the
// run's window.
func (h *ExpandHandler) continueLater(ctx context.Context, p campaigns.ExpandPayload, window int, log zerolog.Logger) error {
	next := p
	next.Seq++
	next.Window = window
	if err := EnqueueContinuation(ctx, h.deps.Enqueuer, next, h.cfg.TopUp); err != nil {
		return err
	}
	log.Debug().Msg("window still full; a continuation task takes over")
	return nil
}

// EnqueueContinuation enqueues expansion step p (p.Seq > 0) of a run already created, to run
// after delay; one that exists already counts as enqueued.
func EnqueueContinuation(ctx context.Context, enq Enqueuer, p campaigns.ExpandPayload, delay time.Duration) error {
	task, err := campaigns.NewExpandTask(p, delay, 0)
	if err != nil {
		return err
	}
	if _, err := enq.EnqueueContext(ctx, task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("run %s: enqueue expansion step %d: %w", p.Run, p.Seq, err)
	}
	return nil
}

// createRun creates the run of a first expansion task from the campaign version it names.
// A campaign whose audience has too many invalid rows gets no run: the task is archived with
// the reason (see `herald task ls --state archived`).
func (h *ExpandHandler) createRun(ctx context.Context, p campaigns.ExpandPayload, log zerolog.Logger) (ledger.Run, *campaigns.Definition, error) {
	sub, err := h.store.Version(ctx, p.Campaign, p.Version)
	if err != nil {
		return ledger.Run{}, nil, fmt.Errorf("run %s: %w: %w", p.Run, err, asynq.SkipRetry)
	}
	def, err := sub.Definition()
	if err != nil {
		return ledger.Run{}, nil, fmt.Errorf("run %s: campaign %s version %d: %w: %w", p.Run, p.Campaign, p.Version, err, asynq.SkipRetry)
	}
	sender, err := h.deps.Sender(def)
	if err != nil {
		return ledger.Run{}, nil, fmt.Errorf("run %s: %w: %w", p.Run, err, asynq.SkipRetry)
	}
	rep, err := campaigns.Plan(def, sender, campaigns.PlanOptions{Samples: -1})
	if err != nil {
		return ledger.Run{}, nil, fmt.Errorf("run %s: %w", p.Run, err)
	}
	if err := rep.CheckInvalidShare(def.Audience.MaxInvalidShare); err != nil {
		return ledger.Run{}, nil, fmt.Errorf("run %s not started: %w: %w", p.Run, err, asynq.SkipRetry)
	}
	exp := NewExpander(ExpanderConfig{Ledger: h.ledger, Batch: h.batch, Logger: h.log, Now: h.deps.Now})
	run, err := exp.CreateVersionRun(ctx, def, sender, p.Run, p.Version)
	if errors.Is(err, ledger.ErrRunExists) {
		run, err = h.ledger.GetRun(ctx, p.Run)
	}
	if err != nil {
		return ledger.Run{}, nil, err
	}
	log.Info().Int("version", p.Version).Str("trigger", p.Trigger).Int("rows", rep.Rows).Msg("run created")
	return run, def, nil
}
