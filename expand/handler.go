package expand

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
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/sendpolicy"
	"github.com/heraldmsg/herald/internal/tick"
)

// DefaultTopUp is how often a full backlog is looked at again (Config.TopUp): the delay of a
// continuation task, and the period of a Hold's checks.
const DefaultTopUp = time.Second

// Config configures expansion tasks. Zero values take the defaults shown.
type Config struct {
	// Backlog is how much sending time a run's tasks ahead of the workers may cover: a run's
	// backlog holds Backlog × the run's rate (the campaign's rate, else its sender's) tasks.
	// Default sendpolicy.DefaultBacklog. (Config file: scheduler.backlog.)
	Backlog time.Duration
	// MinBacklog and MaxBacklog bound the backlog in tasks. Defaults
	// sendpolicy.DefaultMinBacklog and DefaultMaxBacklog (a pending task costs Redis about
	// 760 bytes in asynq); a negative MaxBacklog removes the bound. (Config file:
	// scheduler.min_backlog, max_backlog.)
	MinBacklog int
	MaxBacklog int
	// TopUp is how often a full backlog is looked at again. Default DefaultTopUp.
	TopUp time.Duration
	// Hold is how long one task waits in place for room before it hands over to a
	// continuation task TopUp later (freeing its worker slot). Default 0: at once, so no
	// task sits on a run's expansion: a process killed while it held one would stall the
	// run until its task is recovered (see internal/reclaim).
	Hold time.Duration
	// BatchSize is the number of audience rows per ledger script. Default DefaultBatchSize.
	BatchSize int
	// Task are the asynq options of send tasks (queue from the campaign's category).
	Task campaigns.TaskOptions
}

func (c *Config) setDefaults() {
	c.Backlog = cmp.Or(c.Backlog, sendpolicy.DefaultBacklog)
	c.MinBacklog = cmp.Or(c.MinBacklog, sendpolicy.DefaultMinBacklog)
	c.MaxBacklog = cmp.Or(c.MaxBacklog, sendpolicy.DefaultMaxBacklog)
	c.TopUp = cmp.Or(c.TopUp, DefaultTopUp)
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
}

// errRunStarting is returned by a step of a run its command has not stored yet: asynq tries
// it again, and the failure is not logged as one.
var errRunStarting = errors.New("not stored yet by the command that starts it: trying again")

// BacklogFor returns the backlog in tasks of a run sending at rate messages/s under this
// config (zero fields taking their defaults).
func (c Config) BacklogFor(rate float64) int {
	c.setDefaults()
	n := int(rate * c.Backlog.Seconds())
	n = max(n, c.MinBacklog)
	if c.MaxBacklog > 0 {
		n = min(n, c.MaxBacklog)
	}
	return n
}

// Deps are what expansion needs from the process.
type Deps struct {
	Redis  redis.UniversalClient
	Logger zerolog.Logger
	// Sender picks the sender of a new run (the campaign's, else the configured one).
	// Default: the campaign's.
	Sender func(def *campaigns.Definition) (string, error)
	// SenderRate is a sender's messages/s, to size the backlog. Default: limits.DefaultSenderRate
	// for every sender.
	SenderRate func(sender string) float64
	// Now is expansion's clock (the ledger's and the expander's times, new run ids, the end
	// of a Hold). Default time.Now.
	Now func() time.Time
	// Sleep is the wait of a task held in place for room (Config.Hold): it waits d on the
	// clock that Now reads and returns ctx's error when ctx ends first. Default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Enqueuer enqueues expansion tasks; default an asynq client on Redis.
	Enqueuer Enqueuer
	// Tasks writes send tasks; default asynqbatch.New(Redis).
	Tasks asynqbatch.Writer
	// OnEnqueued, when set, is told how many send tasks each expansion step wrote (metrics).
	OnEnqueued func(campaign string, n int)
}

// Handler runs TypeExpand tasks.
type Handler struct {
	runs *Runs
	log  zerolog.Logger
}

// NewHandler returns the handler of expansion tasks; deps.Redis is required.
func NewHandler(cfg Config, deps Deps) *Handler {
	if deps.Sleep == nil {
		deps.Sleep = tick.Sleep
	}
	r := NewRuns(cfg, deps)
	return &Handler{runs: r, log: r.log}
}

// Register registers the expansion task handler on an asynq mux (a worker's, or the
// expansion server's).
func Register(mux *asynq.ServeMux, h *Handler) {
	mux.Handle(campaigns.TypeExpand, h)
}

// BacklogFor returns the backlog in tasks for a run sending at rate messages/s.
func (h *Handler) BacklogFor(rate float64) int { return h.runs.cfg.BacklogFor(rate) }

// ProcessTask creates the task's run if it does not exist yet, then expands it until the
// audience is done or the run's backlog is full; then (after waiting in place up to Hold, by
// default not at all) it enqueues a continuation task TopUp later and returns. A continuation
// that finds the backlog still full hands over again at the cost of two reads, so a run's
// expansion is a chain of short tasks that any living expansion server takes. Everything it does is keyed by the run
// and guarded by the ledger's cursors, so a task that is run twice, or crashes anywhere and is
// run again, neither skips nor duplicates a recipient; a step that finds another expansion of
// the run ahead of it hands over to a continuation all the same, so no chain stops before the
// run is expanded.
//
// A run whose campaign or audience can no longer be read as it started (the kept campaign
// file or version gone, the audience file removed or rewritten), or whose campaign cannot be
// expanded (send hours or a zone that do not load, a template that does not compile), is
// paused with the reason, and its chain looks at its status every Recheck, trying nothing
// while it stays paused: once the run is resumed (with the file back as it was), the
// expansion is tried again; a run cancelled meanwhile is closed at the rows it had read. A
// cancelled run's step that fails in any other way than of a passing cause closes it too:
// nothing of it is tried again.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := campaigns.DecodeExpand(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	log := h.log.With().Str(logx.KeyRun, p.Run).Str(logx.KeyCampaign, p.Campaign).Int("seq", p.Seq).Logger()
	if full, err := h.stillFull(ctx, p); err != nil || full {
		if err != nil {
			return err
		}
		return h.continueLater(ctx, p, p.Backlog, log)
	}
	run, err := h.runs.ledger.GetRun(ctx, p.Run)
	var def *campaigns.Definition
	switch {
	case errors.Is(err, ledger.ErrRunNotFound) && p.Seq > 0 && p.Made > 0 &&
		h.runs.deps.Now().Sub(time.UnixMilli(p.Made)) < startGrace:
		// The command that enqueued this step is storing the run (Runs.handOver).
		return fmt.Errorf("run %s: %w", p.Run, errRunStarting)
	case errors.Is(err, ledger.ErrRunNotFound) && p.Seq > 0:
		// Only a run's first task creates it: a continuation of a run that is not there (or
		// that its command never stored) has nothing to carry on.
		return fmt.Errorf("run %s: %w: %w", p.Run, err, asynq.SkipRetry)
	case errors.Is(err, ledger.ErrRunNotFound):
		if run, def, err = h.createRun(ctx, p, log); err != nil {
			return err
		}
	case err != nil:
		return err
	case run.Expanded:
		// A cancelled run is still expanded to the end, every remaining row
		// skipped(cancelled) without a task, so its states add up to the audience.
		return nil
	case p.Stopped && run.Status == ledger.RunPaused:
		// The run's expansion stopped and the run waits for its operator: nothing is tried
		// again until it is resumed (or cancelled).
		return h.recheckLater(ctx, p)
	default:
		// A run continues from the campaign it was started from: its stored version, or the
		// file as it was kept when the run started (herald campaign send).
		if def, err = h.runs.SourceOf(ctx, run); err != nil {
			return h.failed(ctx, p, run, err, log)
		}
	}
	keep, err := h.runs.keepOf(ctx, run)
	if err != nil {
		return err
	}
	backlog := h.runs.backlogOf(def, run.Sender)
	exp := h.runs.expander(backlog, nil)
	deadline := h.runs.deps.Now().Add(h.runs.cfg.Hold)
	for {
		if run.Expanded {
			return nil
		}
		st, err := exp.ExpandOnly(ctx, def, run, keep)
		if h.runs.deps.OnEnqueued != nil && st.Enqueued > 0 {
			h.runs.deps.OnEnqueued(run.Campaign, st.Enqueued)
		}
		switch {
		case err == nil:
			log.Info().Int("rows", st.Rows).Msg("run expanded")
			return nil
		case errors.Is(err, ledger.ErrStaleBatch):
			// Another expansion of this run moved the cursor past this one's batch (a tick
			// enqueued again after its first task was gone, a task put back while its old
			// holder still ran, the command that started the run still expanding). This one
			// does not simply stop: that other one may stop next. It hands over to a
			// continuation, which a task of the other chain with the same step merges with.
			if run, err = h.runs.ledger.GetRun(ctx, run.ID); err != nil {
				return err
			}
			if run.Expanded {
				return nil
			}
			log.Warn().Msg("run is being expanded by another task too; a continuation takes over")
			return h.continueLater(ctx, p, backlog, log)
		case !errors.Is(err, ErrBacklogFull):
			return h.failed(ctx, p, run, err, log)
		}
		log.Debug().Int("backlog", backlog).Int("planned", st.Planned).Msg("backlog full")
		if h.runs.cfg.Hold <= 0 {
			return h.continueLater(ctx, p, backlog, log)
		}
		if err := h.waitForRoom(ctx, run.ID, backlog, deadline); err != nil {
			if !errors.Is(err, errHoldOver) {
				return err
			}
			return h.continueLater(ctx, p, backlog, log)
		}
		if run, err = h.runs.ledger.GetRun(ctx, run.ID); err != nil {
			return err
		}
	}
}

// Recheck is how often the step of a run whose expansion stopped looks at the run's status
// again (a cheap read: nothing is retried while the run stays paused).
const Recheck = time.Minute

// failed is what an expansion step returns when it stopped with err. An error no retry cures
// (Permanent) stops the run's expansion (blocked). Any other error that asynq would count as a
// failure, of a run that is cancelled by now, closes the run at the rows it had read: nothing
// more of it is sent, so nothing is tried again. Anything else is returned for asynq to try
// the step again.
func (h *Handler) failed(ctx context.Context, p campaigns.ExpandPayload, run ledger.Run, err error, log zerolog.Logger) error {
	if Permanent(err) {
		return h.blocked(ctx, p, run, err, log)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !expandIsFailure(err) {
		return err
	}
	now, gerr := h.runs.ledger.GetRun(ctx, run.ID)
	if gerr != nil || now.Status != ledger.RunCancelled {
		return err
	}
	return h.blocked(ctx, p, now, err, log)
}

// blocked stops the expansion of run, which cannot go on (cause: its campaign or audience can
// no longer be read as it started, or its campaign cannot be expanded): the run is paused with
// the reason, and a step marked Stopped looks at its status again Recheck later, and again
// while it stays paused, trying nothing; once the run is resumed that step tries the
// expansion again. A cancelled run is closed at the rows it had read, and its chain ends.
func (h *Handler) blocked(ctx context.Context, p campaigns.ExpandPayload, run ledger.Run, cause error, log zerolog.Logger) error {
	if err := h.runs.block(ctx, run, cause); err != nil {
		return err
	}
	if run.Status == ledger.RunCancelled {
		log.Warn().Str("error", logx.MaskDigits(cause.Error())).Msg("cancelled run closed at the rows it had read")
		return nil
	}
	log.Warn().Str("error", logx.MaskDigits(cause.Error())).Msg("run paused: its expansion cannot go on")
	return h.recheckLater(ctx, p)
}

// recheckLater enqueues the step that looks again, Recheck from now, at a run whose expansion
// stopped.
func (h *Handler) recheckLater(ctx context.Context, p campaigns.ExpandPayload) error {
	next := p
	next.Seq++
	next.Backlog = 0
	next.Stopped = true
	return EnqueueContinuation(ctx, h.runs.deps.Enqueuer, next, Recheck)
}

// block pauses run, whose expansion cannot go on (Permanent), with cause as the reason
// ("expansion stopped: ..."); a cancelled run, which needs nothing more read, is closed at
// the rows it had read instead, so that it completes. The run is listed first, as by every expansion
// step (ExpandOnly), which a run blocked at its first step never reached.
func (r *Runs) block(ctx context.Context, run ledger.Run, cause error) error {
	if err := r.ledger.ListRun(ctx, run); err != nil {
		return err
	}
	if run.Status == ledger.RunCancelled {
		_, err := r.ledger.CloseExpansion(ctx, run.ID)
		return err
	}
	_, err := r.ledger.Pause(ctx, run.ID, stoppedReason+cause.Error())
	return err
}

// stoppedReason starts the pause reason of a run whose expansion cannot go on (block).
const stoppedReason = "expansion stopped: "

// keepOf returns the filter of a retry run's rows (its pick set: the recipients it sends to
// again, read once per process while the run expands: pickCache); nil for any other run.
func (r *Runs) keepOf(ctx context.Context, run ledger.Run) (func(string) bool, error) {
	if run.Picked == 0 {
		return nil, nil
	}
	picked, err := r.picks.get(ctx, run.ID, r.ledger.PickSet)
	if err != nil {
		return nil, err
	}
	return func(rcpt string) bool { return picked[rcpt] }, nil
}

var errHoldOver = errors.New("hold over")

// waitForRoom reads the run's pending count every TopUp (waiting through Deps.Sleep) until a
// quarter of the backlog is free, and returns errHoldOver once deadline passes (by the
// handler's clock, Deps.Now).
func (h *Handler) waitForRoom(ctx context.Context, runID string, backlog int, deadline time.Time) error {
	for {
		if err := h.runs.deps.Sleep(ctx, h.runs.cfg.TopUp); err != nil {
			return err
		}
		pending, err := h.runs.ledger.Pending(ctx, runID)
		if err != nil {
			return err
		}
		if pending <= int64(backlog-backlog/4) {
			return nil
		}
		if !h.runs.deps.Now().Before(deadline) {
			return errHoldOver
		}
	}
}

// stillFull reports whether a continuation that knows its run's backlog finds it still without
// room (less than a quarter free) and the run not yet expanded: then it only hands over again,
// without loading the campaign or opening its audience.
func (h *Handler) stillFull(ctx context.Context, p campaigns.ExpandPayload) (bool, error) {
	if p.Seq == 0 || p.Backlog <= 0 {
		return false, nil
	}
	run, err := h.runs.ledger.GetRun(ctx, p.Run)
	if err != nil || run.Expanded {
		return false, nil // the full path reports it, or finds nothing to do
	}
	pending, err := h.runs.ledger.Pending(ctx, p.Run)
	if err != nil {
		return false, err
	}
	return pending > int64(p.Backlog-p.Backlog/4), nil
}

// continueLater enqueues the next task of this expansion, TopUp from now, telling it the
// run's backlog.
func (h *Handler) continueLater(ctx context.Context, p campaigns.ExpandPayload, backlog int, log zerolog.Logger) error {
	next := p
	next.Seq++
	next.Backlog = backlog
	next.Stopped = false
	if err := EnqueueContinuation(ctx, h.runs.deps.Enqueuer, next, h.runs.cfg.TopUp); err != nil {
		return err
	}
	log.Debug().Msg("backlog still full; a continuation task takes over")
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
func (h *Handler) createRun(ctx context.Context, p campaigns.ExpandPayload, log zerolog.Logger) (ledger.Run, *campaigns.Definition, error) {
	sub, err := h.runs.store.Version(ctx, p.Campaign, p.Version)
	switch {
	case errors.Is(err, defstore.ErrNotSubmitted):
		return ledger.Run{}, nil, fmt.Errorf("run %s: %w: %w", p.Run, err, asynq.SkipRetry)
	case err != nil:
		// Redis failing: the tick's run is created once it answers.
		return ledger.Run{}, nil, fmt.Errorf("run %s: %w", p.Run, err)
	}
	def, err := Definition(sub)
	if err != nil {
		return ledger.Run{}, nil, fmt.Errorf("run %s: campaign %s version %d: %w: %w", p.Run, p.Campaign, p.Version, err, asynq.SkipRetry)
	}
	sender, err := h.runs.deps.Sender(def)
	if err != nil {
		return ledger.Run{}, nil, fmt.Errorf("run %s: %w: %w", p.Run, err, asynq.SkipRetry)
	}
	run, rep, err := h.runs.expander(0, nil).create(ctx, def, sender, newRun{id: p.Run, version: p.Version})
	switch {
	case errors.Is(err, ledger.ErrRunExists):
		run, err = h.runs.ledger.GetRun(ctx, p.Run)
	case errors.Is(err, ErrRefused):
		return ledger.Run{}, nil, fmt.Errorf("run %s not started: %w: %w", p.Run, err, asynq.SkipRetry)
	case err != nil:
		err = fmt.Errorf("run %s: %w", p.Run, err)
	}
	if err != nil {
		return ledger.Run{}, nil, err
	}
	log.Info().Int("version", p.Version).Str("trigger", p.Trigger).Int("rows", rep.Rows).Msg("run created")
	return run, def, nil
}
