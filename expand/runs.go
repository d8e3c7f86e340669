package expand

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/logx"
)

// Enqueuer is the part of asynq.Client that enqueues expansion tasks.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// ErrRefused is wrapped when a run is not started because its audience has more invalid rows
// than the campaign's audience.max_invalid_share allows, or lacks a column its on_reply rules
// read (campaigns.CheckReplyColumns): no run is created.
var ErrRefused = errors.New("run refused")

// refusedError keeps the report's text as the error's and adds ErrRefused to its chain.
type refusedError struct{ err error }

func (e refusedError) Error() string   { return e.err.Error() }
func (e refusedError) Unwrap() []error { return []error{e.err, ErrRefused} }

// Runs starts and retries runs: `campaign send`, `campaign run`, `demo`, the scheduler's
// ticks, `run retry` and the expansion task itself all start a run through it.
type Runs struct {
	cfg    Config
	deps   Deps
	ledger *ledger.Ledger
	store  *defstore.Store
	log    zerolog.Logger
	// picks keeps the pick set of the retry run expanded last (keepOf).
	picks pickCache
}

// NewRuns returns Runs on deps.Redis (required); zero fields take their defaults.
func NewRuns(cfg Config, deps Deps) *Runs {
	if deps.Redis == nil {
		panic("expand: NewRuns needs Redis")
	}
	cfg.setDefaults()
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Sender == nil {
		deps.Sender = func(def *campaigns.Definition) (string, error) { return def.Sender, nil }
	}
	if deps.SenderRate == nil {
		deps.SenderRate = func(string) float64 { return limits.DefaultSenderRate }
	}
	if deps.Enqueuer == nil {
		deps.Enqueuer = asynq.NewClientFromRedisClient(deps.Redis)
	}
	if deps.Tasks == nil {
		deps.Tasks = asynqbatch.New(deps.Redis)
	}
	return &Runs{cfg: cfg, deps: deps, ledger: ledger.New(deps.Redis, deps.Now), store: defstore.New(deps.Redis, deps.Now),
		log: deps.Logger.With().Str(logx.KeyComponent, "expand").Logger()}
}

// Ledger returns the ledger the runs are written to.
func (r *Runs) Ledger() *ledger.Ledger { return r.ledger }

// expander returns an Expander writing through the one task writer, at most maxBacklog tasks
// of a run ahead of the workers (0 or negative: no bound, see Options.MaxBacklog).
func (r *Runs) expander(maxBacklog int, progress func(done, estimate int)) *Expander {
	return NewExpander(Options{Ledger: r.ledger, Store: r.store, Tasks: r.deps.Tasks, MaxBacklog: maxBacklog, Task: r.cfg.Task,
		BatchSize: r.cfg.BatchSize, Logger: r.log, Progress: progress, Now: r.deps.Now})
}

// backlogOf returns the backlog in tasks of a run of def sending from sender.
func (r *Runs) backlogOf(def *campaigns.Definition, sender string) int {
	rate := def.Rate
	if rate <= 0 {
		rate = r.deps.SenderRate(sender)
	}
	return r.cfg.BacklogFor(rate)
}

// newRun names a run to create: its id ("": a new one), the run it retries, the submitted
// campaign version it is of (0: a campaign file), the campaign file's text to keep for it (a
// run of a file) or the kept file it reads (source: a retry of such a run), and the
// recipients a retry run picked. beforeStore, when set, is called with the run once it is
// prepared and before anything of it is stored; its error stops the creation.
type newRun struct {
	id, parent  string
	version     int
	yaml        []byte
	source      string
	picked      []string
	beforeStore func(run ledger.Run) error
	// rows is the audience's row count as read when the run is created (ledger.Run.Rows).
	rows int
}

// StartParams say which run StartRun starts. Set Def for a run of a campaign file, or
// Campaign and Version for a run of a submitted campaign.
type StartParams struct {
	// Def is a campaign loaded from its file (campaign send, demo): the run is created and
	// expanded in the call, from Deps.Sender(Def).
	Def *campaigns.Definition
	// Bounded expands at most the run's backlog in the call, the run's next expansion step
	// enqueued first for an expansion server to carry on as sends complete, or when the call
	// is stopped part way (campaign send). Otherwise the whole audience is expanded (demo).
	Bounded bool
	// Progress, when set, is told rows done and the estimated total after each batch (Def).
	Progress func(done, estimate int)

	// Campaign and Version name a submitted campaign version (campaign run, the scheduler's
	// ticks): the run's first expansion task is enqueued, and the expansion server that takes
	// it creates and expands the run. Version 0 is the campaign's current version; an error
	// wrapping defstore.ErrNotSubmitted says it has none.
	Campaign string
	Version  int
	// RunID is the run's id; default NewRunID(campaign, now). A tick's is TickRunID.
	RunID string
	// Fire is the tick the run belongs to (zero for a run started by hand).
	Fire time.Time
	// Trigger says what started the run: cron, at, missed, manual.
	Trigger string
	// Retention keeps the completed first task, and with it its TaskID, this long, so the
	// same tick cannot be enqueued twice.
	Retention time.Duration
	// Check, when set, checks the submitted version (Campaign) before its first task is
	// enqueued: the on_reply check against the templates as the provider has them now, which
	// may have changed since the submit. Its error starts nothing.
	Check func(ctx context.Context, def *campaigns.Definition) error
}

// Started is what StartRun did.
type Started struct {
	// RunID is the run's id.
	RunID string
	// Version is the submitted version the run was started from (Campaign).
	Version int
	// Run is the run as created (Def only).
	Run ledger.Run
	// Stats are the expansion's (Def only). Rows is the whole audience's.
	Stats Stats
	// Continues says the backlog filled and an expansion task carries on (Def, Bounded).
	Continues bool
	// Backlog is the run's backlog in tasks (Def, Bounded).
	Backlog int
	// Enqueued says the run's first expansion task is new (Version); false: it existed
	// already (another scheduler replica enqueued the same tick).
	Enqueued bool
}

// StartRun starts a run: of a campaign file (p.Def) by creating and expanding it here, or of
// a submitted campaign version by enqueuing its first expansion task. A run of a file whose
// audience has too many invalid rows is refused with an error wrapping ErrRefused.
//
// A run of a file keeps the file's text as it is read here (defstore.Store.KeepFile): its
// later expansion steps, its retries and its follow-ups read that, whatever becomes of the
// file. A Bounded run's next expansion step is enqueued before the command expands anything:
// whatever stops the command (Ctrl-C, a kill, a Redis error), that task carries the run on
// from the cursors.
func (r *Runs) StartRun(ctx context.Context, p StartParams) (Started, error) {
	if p.Def == nil {
		return r.enqueueRun(ctx, p)
	}
	def := p.Def
	sender, err := r.deps.Sender(def)
	if err != nil {
		return Started{}, err
	}
	n := newRun{id: p.RunID}
	if def.Path != "" {
		if n.yaml, err = r.readSource(def); err != nil {
			return Started{}, err
		}
	}
	var next campaigns.ExpandPayload
	if p.Bounded {
		// The run's next step exists before the run does, so a command stopped anywhere
		// leaves either no run or a run with a step that carries it on.
		n.beforeStore = func(run ledger.Run) error {
			next = campaigns.ExpandPayload{Run: run.ID, Campaign: run.Campaign, Trigger: "send", Seq: 1}
			return r.handOver(ctx, next)
		}
	}
	run, rep, err := r.expander(0, nil).create(ctx, def, sender, n)
	if err != nil {
		return Started{}, r.createFailed(next, err)
	}
	out := Started{RunID: run.ID, Run: run}
	if p.Bounded {
		out.Backlog = r.backlogOf(def, sender)
	}
	exp := r.expander(out.Backlog, p.Progress)
	// The step enqueued above may start while this expansion still runs: it replays the
	// batch this one is writing, so every batch is written with the tasks' existence checked.
	exp.cfg.Checked = p.Bounded
	out.Stats, err = exp.Expand(ctx, def, run)
	switch {
	case err == nil:
		if p.Bounded {
			r.withdraw(run.ID, 1)
		}
		return out, nil
	case p.Bounded && (errors.Is(err, ErrBacklogFull) || errors.Is(err, ledger.ErrStaleBatch)):
		// The expansion stopped part way (the backlog is full, or the expansion task is
		// already at work): the rows are the whole audience's, as read above.
		out.Stats.Rows = rep.Rows
		out.Continues = true
		return out, nil
	case p.Bounded:
		out.Continues = true
		return out, r.stopped(ctx, run, err)
	}
	return out, fmt.Errorf("expand run %s: %w", run.ID, err)
}

// readSource reads the campaign file def was loaded from, to keep with its run, and checks
// that it still holds def's campaign.
func (r *Runs) readSource(def *campaigns.Definition) ([]byte, error) {
	data, err := campaigns.ReadFile(def.Path)
	if err != nil {
		return nil, fmt.Errorf("campaign: %w", err)
	}
	again, err := campaigns.Parse(def.Path, data)
	if err != nil {
		return nil, err
	}
	if again.ID != def.ID {
		return nil, fmt.Errorf("%s now holds campaign %s, not %s: it changed as the run started", def.Path, again.ID, def.ID)
	}
	return data, nil
}

// startGrace is how long the next step of a run a command is creating (handOver) waits for
// the run to exist: the command stores it right after the step is enqueued, so a step that
// still finds no run after this long belongs to a command that stopped before it stored
// anything, and is archived.
const startGrace = 10 * time.Minute

// handOver enqueues next, the expansion step that will carry a run on from its cursors,
// before the run is stored and expanded (newRun.beforeStore): a command stopped at any point
// after leaves a run that is carried on, and one stopped before leaves no run. next is marked
// as made now, so a step that starts before its run is stored waits for it (startGrace).
func (r *Runs) handOver(ctx context.Context, next campaigns.ExpandPayload) error {
	next.Made = r.deps.Now().UnixMilli()
	if err := EnqueueContinuation(ctx, r.deps.Enqueuer, next, r.cfg.TopUp); err != nil {
		return fmt.Errorf("run %s not started: %w", next.Run, err)
	}
	return nil
}

// withdrawUnborn withdraws the step handOver enqueued for a run that was not created and
// never will be by this command (nothing if none was enqueued). Best effort: a step left
// behind finds no run and is archived after startGrace.
func (r *Runs) withdrawUnborn(next campaigns.ExpandPayload) {
	if next.Run != "" {
		r.withdraw(next.Run, next.Seq)
	}
}

// createFailed is what a command reports when storing the run of next (its step enqueued by
// handOver) failed with err. The step is withdrawn only when nothing of the run was stored
// (unborn). After any other error the run may exist (its create script ran and the reply was
// lost, its listing failed, another call holds the id), and a run without its step would
// stay running and never expand: the step stays, carries the run on if it exists, and is
// archived after startGrace if it does not.
func (r *Runs) createFailed(next campaigns.ExpandPayload, err error) error {
	var u unborn
	if next.Run == "" || errors.As(err, &u) {
		r.withdrawUnborn(next)
		return err
	}
	return fmt.Errorf("%w (if run %s was stored, its expansion task carries it on)", err, next.Run)
}

// withdraw deletes expansion step seq of a run that its command expanded whole, when no
// server has taken it yet: it would only find the run expanded. Best effort: a step already
// taken finds just that.
func (r *Runs) withdraw(runID string, seq int) {
	err := asynq.NewInspectorFromRedisClient(r.deps.Redis).DeleteTask(campaigns.ExpandQueue, campaigns.ExpandTaskID(runID, seq))
	if err != nil {
		r.log.Debug().Str(logx.KeyRun, runID).Err(err).Msg("expansion step of a run expanded whole left in the queue")
	}
}

// stopped is what an expansion inside a command reports when it stopped with err: its
// expansion task carries the run on, and a run whose campaign or audience can no longer be
// read as it started is paused with the reason (see blocked).
func (r *Runs) stopped(ctx context.Context, run ledger.Run, err error) error {
	if Permanent(err) {
		if perr := r.block(ctx, run, err); perr != nil {
			return fmt.Errorf("expand run %s: %w; %w", run.ID, err, perr)
		}
		return fmt.Errorf("run %s paused: %w", run.ID, err)
	}
	return fmt.Errorf("expand run %s: %w (its expansion task carries it on)", run.ID, err)
}

// enqueueRun enqueues the first expansion task of a run of a submitted campaign version.
func (r *Runs) enqueueRun(ctx context.Context, p StartParams) (Started, error) {
	if p.Campaign == "" || p.Version < 0 {
		return Started{}, fmt.Errorf("expand: StartRun needs a campaign file or a submitted campaign version")
	}
	if p.Version == 0 || p.Check != nil {
		sub, err := r.store.Current(ctx, p.Campaign)
		if p.Version != 0 {
			sub, err = r.store.Version(ctx, p.Campaign, p.Version)
		}
		if err != nil {
			return Started{}, err
		}
		p.Version = sub.Version
		if p.Check != nil {
			def, err := Definition(sub)
			if err != nil {
				return Started{}, err
			}
			if err := p.Check(ctx, def); err != nil {
				return Started{}, err
			}
		}
	}
	runID := cmp.Or(p.RunID, NewRunID(p.Campaign, r.deps.Now()))
	payload := campaigns.ExpandPayload{Run: runID, Campaign: p.Campaign, Version: p.Version, Trigger: p.Trigger}
	if !p.Fire.IsZero() {
		payload.Fire = p.Fire.UTC()
	}
	task, err := campaigns.NewExpandTask(payload, 0, p.Retention)
	if err != nil {
		return Started{}, err
	}
	_, err = r.deps.Enqueuer.EnqueueContext(ctx, task)
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict):
		return Started{RunID: runID, Version: p.Version}, nil
	case err != nil:
		return Started{}, fmt.Errorf("enqueue run %s: %w", runID, err)
	}
	return Started{RunID: runID, Version: p.Version, Enqueued: true}, nil
}

// TickRunID is the run id of a campaign's tick: the same on every scheduler replica.
func TickRunID(campaign string, fire time.Time) string {
	return campaign + "-" + fire.UTC().Format("20060102T150405Z")
}

// Definition parses a stored campaign version, as campaigns.Load would its file, less the
// checks of a new file only (campaigns.ParseStored): a version submitted before a check was
// added keeps its scheduled runs, and the replies to its runs are answered.
func Definition(v defstore.Submitted) (*campaigns.Definition, error) {
	return campaigns.ParseStored(v.Path, v.YAML)
}

// SourceOf returns the campaign a run was started from: the stored version for runs of a
// submitted campaign (so a retry sends what the run sent, whatever the file says now), the
// campaign file as the run started with it for runs of a file (kept with the run, and with
// its parent for a follow-up run), else (runs started before files were kept) the campaign
// file the run records, which must still hold the run's campaign. It is the one way a run's
// campaign is read: its expansion, a retry and the replies to it all come here. An error for
// a campaign that is gone for good (a version or a kept file missing, a file removed or
// holding another campaign) says so to permanent.
func (r *Runs) SourceOf(ctx context.Context, run ledger.Run) (*campaigns.Definition, error) {
	if run.Version > 0 {
		sub, err := r.store.Version(ctx, run.Campaign, run.Version)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", run.ID, err)
		}
		def, err := Definition(sub)
		if err != nil {
			return nil, fmt.Errorf("run %s: campaign %s version %d: %w", run.ID, run.Campaign, run.Version, err)
		}
		return def, nil
	}
	source := run.Source
	if source == "" && run.Parent != "" {
		// A follow-up run records its parent's campaign file, not the kept copy.
		parent, err := r.ledger.GetRun(ctx, run.Parent)
		if err != nil && !errors.Is(err, ledger.ErrRunNotFound) {
			return nil, err
		}
		if err == nil && parent.Campaign == run.Campaign {
			source = parent.Source
		}
	}
	if source != "" {
		sub, err := r.store.File(ctx, run.Campaign, source)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", run.ID, err)
		}
		def, err := Definition(sub)
		if err != nil {
			return nil, gone{fmt.Errorf("run %s: campaign %s as the run started: %w", run.ID, run.Campaign, err)}
		}
		return def, nil
	}
	if run.Definition == "" {
		return nil, gone{fmt.Errorf("run %s does not record its campaign file", run.ID)}
	}
	if _, err := os.Stat(run.Definition); err != nil {
		return nil, fmt.Errorf("run %s was started from %s, which cannot be read: %w", run.ID, run.Definition, err)
	}
	def, err := campaigns.LoadStored(run.Definition)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", run.ID, err)
	}
	if def.ID != run.Campaign {
		return nil, gone{fmt.Errorf("run %s: %s now holds campaign %s, not %s", run.ID, run.Definition, def.ID, run.Campaign)}
	}
	return def, nil
}

// cannotExpand marks an error of the campaign as a run holds it (its templates, its send hours,
// its zones) that stops the run's expansion: the run's campaign does not change under it, so
// no retry cures it (see Permanent).
type cannotExpand struct{ err error }

func (c cannotExpand) Error() string { return "its campaign cannot be expanded: " + c.err.Error() }
func (c cannotExpand) Unwrap() error { return c.err }

// gone marks an error as one that no retry will cure (see Permanent).
type gone struct{ err error }

func (g gone) Error() string { return g.err.Error() }
func (g gone) Unwrap() error { return g.err }

// Permanent reports whether err says that something a run needs is gone for good, or is no
// longer what the run started with: its campaign (a submitted version, a kept file, the file
// of an older run), its audience file (removed, rewritten, or now refused as an audience); or
// that its campaign cannot be expanded (a campaign that no longer parses, send hours or a zone
// that do not load, a template that does not compile). A Redis or network error, or a
// cancelled context, is not: the step is tried again.
func Permanent(err error) bool {
	var g gone
	var ce campaigns.Errors
	var ne cannotExpand
	switch {
	case err == nil:
		return false
	case errors.As(err, &g), errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, ErrAudienceChanged), errors.Is(err, defstore.ErrNotSubmitted), errors.Is(err, defstore.ErrNotKept),
		errors.Is(err, fs.ErrNotExist), errors.Is(err, campaigns.ErrOutsideRoot), errors.Is(err, campaigns.ErrNotRegular),
		errors.Is(err, campaigns.ErrTooLarge), errors.Is(err, campaigns.ErrEncoding):
		return true
	}
	return false
}
