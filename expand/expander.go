package expand

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
)

// Options configure an Expander.
type Options struct {
	Ledger *ledger.Ledger
	// Store keeps the campaign file a run of a file is started from (Runs.StartRun); an
	// Expander without one creates runs of files that read the file again at each step.
	Store *defstore.Store
	// Tasks writes a batch's send tasks in one round trip (asynqbatch.New in production).
	Tasks asynqbatch.Writer
	// MaxBacklog is the most recipients of one run that may have a task in the queue at once,
	// ahead of the workers (planned, queued or submitting): the run's backlog. Expansion stops
	// with an error wrapping ErrBacklogFull when the next batch would go above it, and
	// continues when called again. Negative means no limit, and so does 0: Options has no
	// default bound (a run's default backlog is expand.Config's, which Runs passes here).
	MaxBacklog int
	// Task sets the asynq options of send tasks (the queue comes from the campaign category).
	Task campaigns.TaskOptions
	// Checked writes every batch's tasks with asynq's existence check, a new batch's too: for
	// an expansion that another expansion of the same run may overlap from its start (a
	// command whose run's next step is already enqueued), which would replay the batch this
	// one is writing.
	Checked bool
	// BatchSize is the number of audience rows written to the ledger in one script. Default
	// DefaultBatchSize (500).
	BatchSize int
	Logger    zerolog.Logger
	// Progress, when set, is called after each batch with rows done and the estimated total.
	Progress func(done, estimate int)
	// Now defaults to time.Now.
	Now func() time.Time
}

// DefaultBatchSize is the number of audience rows written to the ledger in one script
// (Options.BatchSize, Config.BatchSize) unless set.
const DefaultBatchSize = 500

// Expander creates runs and streams their audiences into ledger entries and send tasks.
type Expander struct {
	cfg Options
}

// NewExpander returns an Expander; Ledger and Tasks are required.
func NewExpander(cfg Options) *Expander {
	if cfg.Ledger == nil || cfg.Tasks == nil {
		panic("expand: NewExpander needs a Ledger and a task writer")
	}
	cfg.BatchSize = cmp.Or(cfg.BatchSize, DefaultBatchSize)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Expander{cfg: cfg}
}

// newToken returns the token of one expansion step (ledger.Batch.Token).
func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewRunID returns a fresh run id for a campaign started at t: "<campaign>-<UTC time>-<random>".
func NewRunID(campaign string, t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return campaign + "-" + t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// CreateRun checks def's audience and stores a new run of it, sending from sender, as
// Runs.StartRun does before it expands (see create), and returns the run (runID "": a fresh
// id) for Expand.
func (e *Expander) CreateRun(ctx context.Context, def *campaigns.Definition, sender, runID string) (ledger.Run, error) {
	run, _, err := e.create(ctx, def, sender, newRun{id: runID})
	return run, err
}

// create checks def's audience (one pass: a file with too many invalid rows, or without a
// column the on_reply rules read, is refused, wrapping ErrRefused, before anything is
// written) and stores a new run of it. It is the one place a run of a campaign is created
// (a retry's child run, whose recipients come from its parent's ledger, aside).
func (e *Expander) create(ctx context.Context, def *campaigns.Definition, sender string, run newRun) (ledger.Run, campaigns.PlanReport, error) {
	// Follow-ups read the columns the sends carry: a rule reading a column the audience does
	// not have would render it empty for every recipient.
	if err := campaigns.CheckReplyColumns(def); err != nil {
		var fe campaigns.Errors
		if errors.As(err, &fe) {
			err = refusedError{err}
		}
		return ledger.Run{}, campaigns.PlanReport{}, err
	}
	rep, err := campaigns.Plan(def, sender, campaigns.PlanOptions{Samples: -1})
	if err != nil {
		return ledger.Run{}, rep, err
	}
	if err := rep.CheckInvalidShare(def.Audience.MaxInvalidShare); err != nil {
		return ledger.Run{}, rep, refusedError{err}
	}
	run.rows = rep.Rows
	created, err := e.createRun(ctx, def, sender, run)
	return created, rep, err
}

// createRun stores a new run of def, unchecked.
func (e *Expander) createRun(ctx context.Context, def *campaigns.Definition, sender string, n newRun) (ledger.Run, error) {
	run, err := e.prepareRun(def, sender, n)
	if err != nil {
		return ledger.Run{}, err
	}
	if n.beforeStore != nil {
		if err := n.beforeStore(run); err != nil {
			return ledger.Run{}, unborn{err}
		}
	}
	return e.storeRun(ctx, def, run, n)
}

// unborn marks an error after which the run being created certainly does not exist: it came
// before the run's create script was sent. Any other error of storeRun may leave the run
// stored (the script ran and its reply was lost, or another call holds the id), so the step
// a command enqueued for it must stay (Runs.createFailed).
type unborn struct{ err error }

func (u unborn) Error() string { return u.err.Error() }
func (u unborn) Unwrap() error { return u.err }

// prepareRun returns the run createRun stores: its audience's size (the ledger's buckets)
// and fingerprint are read here.
func (e *Expander) prepareRun(def *campaigns.Definition, sender string, n newRun) (ledger.Run, error) {
	runID := n.id
	if runID == "" {
		runID = NewRunID(def.ID, e.cfg.Now())
	}
	lines, err := campaigns.CountLines(def)
	if err != nil {
		return ledger.Run{}, err
	}
	// The file CountLines has just opened, as it opens the audience: a regular file inside
	// the campaigns root.
	fp, err := audienceFingerprint(def.AudiencePath())
	if err != nil {
		return ledger.Run{}, fmt.Errorf("audience %s: %w", def.AudiencePath(), err)
	}
	delivery, err := ledger.ParseDelivery(def.Delivery)
	if err != nil {
		return ledger.Run{}, err
	}
	return ledger.Run{
		ID: runID, Campaign: def.ID, Delivery: delivery,
		Template: def.Template.Name, Language: def.Template.Language, Sender: sender,
		Queue: queueOf(def), Audience: def.AudiencePath(), AudienceFP: fp.String(),
		Definition: absPath(def.Path), Parent: n.parent, Version: n.version, Source: n.source,
		Buckets: ledger.BucketsFor(lines), Created: e.cfg.Now(), ResendAfter: def.ResendAfter(), Rows: n.rows,
	}, nil
}

// storeRun keeps the campaign file's text n carries (a run of a file) and stores run, with
// the recipients n picked (a retry run), and returns it as stored. An error wrapped in unborn
// says nothing of the run was stored. A run stored whose listing failed (ledger.ErrRunUnlisted)
// is stored: its expansion lists it (ExpandOnly).
func (e *Expander) storeRun(ctx context.Context, def *campaigns.Definition, run ledger.Run, n newRun) (ledger.Run, error) {
	if n.yaml != nil && e.cfg.Store != nil {
		sha, err := e.cfg.Store.KeepFile(ctx, def.ID, def.Path, n.yaml)
		if err != nil {
			return ledger.Run{}, unborn{err}
		}
		run.Source = sha
	}
	err := e.cfg.Ledger.CreateRetryRun(ctx, run, n.picked)
	switch {
	case errors.Is(err, ledger.ErrRunUnlisted):
		e.cfg.Logger.Warn().Str(logx.KeyRun, run.ID).Str("error", logx.MaskDigits(err.Error())).
			Msg("run stored but not listed; its expansion lists it")
	case err != nil:
		return ledger.Run{}, err
	}
	return e.cfg.Ledger.GetRun(ctx, run.ID)
}

// queueOf is the send queue of def's runs.
func queueOf(def *campaigns.Definition) string { return campaigns.QueueFor(def.SendCategory()) }

// ErrBacklogFull is wrapped by ExpandOnly when it stopped because the run has as many tasks
// ahead of the workers as the expander's MaxBacklog allows; call it again once sends have
// completed.
var ErrBacklogFull = errors.New("expansion backlog full")

// Stats summarises one expansion call.
type Stats struct {
	Rows     int
	Planned  int
	Enqueued int
	// Scheduled counts tasks enqueued for a later opening of the send hours (part of Enqueued).
	Scheduled int
	// Skipped counts rows that did not reach the ledger, by reason.
	Skipped map[string]int
}

// Expand streams the run's audience into the ledger and the queue, starting from the run's
// cursor, so calling it again after a crash continues where it stopped. Rows already planned
// but not known to be queued are enqueued again; their TaskID (and the ledger) make that safe.
func (e *Expander) Expand(ctx context.Context, def *campaigns.Definition, run ledger.Run) (Stats, error) {
	return e.ExpandOnly(ctx, def, run, nil)
}

// ExpandOnly is Expand for the audience rows whose recipient keep accepts (nil keeps all):
// the others, and rows without a valid recipient, are not part of the run at all. A retry
// run uses it to send to exactly the recipients it retries.
func (e *Expander) ExpandOnly(ctx context.Context, def *campaigns.Definition, run ledger.Run, keep func(recipient string) bool) (Stats, error) {
	log := e.cfg.Logger.With().Str("run", run.ID).Str("campaign", run.Campaign).Logger()
	st := Stats{Skipped: map[string]int{}}
	if run.Expanded {
		return st, nil
	}
	// The run's listing is written after the run is stored, in other slots: one lost to an
	// error or a kill in between is written here, by every step, so `run ls` shows the run and
	// the resend sweep finds it.
	if err := e.cfg.Ledger.ListRun(ctx, run); err != nil {
		return st, err
	}
	rd, err := e.open(def, run)
	if err != nil {
		return st, err
	}
	defer rd.close()
	renderer, timing, ar, held := rd.renderer, rd.timing, rd.ar, rd.held
	estimate := run.Buckets * 64
	keys, err := e.cfg.Ledger.TaskIDs(ctx)
	if err != nil {
		return st, err
	}
	ids := keys.ForRun(run.ID)

	planned, queued := run.PlannedTo, run.QueuedTo
	// A batch's ledger entries and, one per entry, its send task, encoded as its row is read.
	batch := make([]ledger.PlanEntry, 0, e.cfg.BatchSize)
	tasks := make([]asynqbatch.Task, 0, e.cfg.BatchSize)
	opts := e.taskOptions(run)
	skipped := map[string]int{}
	from := queued
	rows := 0        // rows that belong to the run
	lastN := 0       // file position of the last row read: the cursors count file rows
	var curOff int64 // file offset just after row lastN

	// Rows up to queued_to are done: seek past them when the offset recorded with the cursor
	// is still the cursor's. The cursor also says how many of those rows belong to the run
	// (all of them unless keep filters): a retry run (keep) seeks only when it was recorded,
	// else it reads every row to count its recipients.
	if queued > 0 {
		cur, ok, err := e.cfg.Ledger.QueuedCursor(ctx, run.ID)
		if err != nil {
			return st, err
		}
		if ok && cur.Row == queued && (keep == nil || cur.RowsKnown) {
			if err := ar.SeekRow(cur.Offset, cur.Row); err != nil {
				return st, err
			}
			rows, lastN, curOff = cur.Rows, queued, cur.Offset
		}
	}

	// Batches go to Redis on a writer goroutine, in cursor order, while this one prepares the
	// next: Redis works on batch k while batch k+1 is encoded.
	// Whether a suppression blocks a send depends on what the run sends, the same for every
	// row (campaigns.MarketingForSuppression).
	marketing := campaigns.MarketingForSuppression(def.SendKind(), def.SendCategory())
	w := newBatchWriter(e, run, &st, estimate, newToken(), marketing)
	go w.loop(ctx)
	defer w.stop() // on the early returns below

	flush := func(to int) error {
		if to == from {
			return nil
		}
		// Rows read from a file rewritten in place as it was read are not planned.
		if err := held.checkStat(); err != nil {
			return err
		}
		j := expandJob{from: from, to: to, batch: batch, tasks: tasks, fresh: to > planned, off: curOff, rows: rows}
		if len(skipped) > 0 {
			j.skipped = make(map[string]int, len(skipped))
			for r, n := range skipped {
				j.skipped[r] = n
			}
		}
		if err := w.send(j); err != nil {
			return err
		}
		planned = max(planned, to)
		from, queued = to, to
		batch = make([]ledger.PlanEntry, 0, e.cfg.BatchSize)
		tasks = make([]asynqbatch.Task, 0, e.cfg.BatchSize)
		clear(skipped)
		return nil
	}

	// Rows are read, normalised and rendered ahead on every core while batches go to Redis.
	feed := func() error {
		done := make(chan struct{})
		defer close(done)
		for b := range campaigns.Stream(ar, renderer, done) {
			if b.Err != nil {
				return b.Err
			}
			for _, it := range b.Rows {
				if err := ctx.Err(); err != nil {
					return err
				}
				row := it.Row
				lastN, curOff = row.N, it.Offset
				if keep != nil && (row.Recipient == "" || !keep(row.Recipient)) {
					if row.N == planned && planned > queued {
						if err := flush(row.N); err != nil {
							return err
						}
					}
					continue
				}
				rows++
				if row.N <= queued {
					continue
				}
				switch {
				case row.SkipReason != "":
					skipped[row.SkipReason]++
					log.Debug().Int("row", row.N).Str("reason", row.SkipReason).Msg("row skipped")
				case it.RenderErr != nil:
					skipped["invalid_params"]++
					log.Debug().Int("row", row.N).Err(it.RenderErr).Msg("row skipped")
				default:
					entry, task := e.sendOf(def, run, timing, ids, opts, it)
					batch = append(batch, entry)
					tasks = append(tasks, task)
				}
				// Cut batches at the batch size and at the planned cursor, so a resumed expansion
				// replays exactly the batches that were planned but not marked queued.
				if row.N-from >= e.cfg.BatchSize || row.N == planned {
					if err := flush(row.N); err != nil {
						return err
					}
				}
			}
		}
		return flush(lastN)
	}
	ferr := feed()
	// The writer finishes what it was handed before the stats are read.
	if err := w.stop(); err != nil {
		return st, err
	}
	if ferr != nil {
		return st, ferr
	}
	// The end of the file is the end of the audience only if the file is still the one the
	// run started from: one rewritten in place as it was read ends early, its last row maybe
	// cut short.
	if err := held.checkWhole(); err != nil {
		return st, err
	}
	st.Rows = rows
	completed, err := e.cfg.Ledger.FinishExpansion(ctx, run.ID, rows)
	if err != nil {
		return st, err
	}
	log.Info().Int("rows", rows).Int("planned", st.Planned).Bool("completed", completed).Msg("expansion finished")
	return st, nil
}

// reading is what a step reads a run's audience with (Expander.open).
type reading struct {
	renderer *campaigns.Renderer
	timing   *campaigns.Timing
	ar       *campaigns.AudienceReader
	held     *heldAudience
}

// open readies the reading of run's audience from def: its renderer, its send hours and
// expiry, and the audience file, which must be the one the run started from (an error
// wrapping ErrAudienceChanged otherwise), held open to be checked again as it is read
// (heldAudience). Close it when done.
func (e *Expander) open(def *campaigns.Definition, run ledger.Run) (*reading, error) {
	// What the run's campaign says cannot change under it (a stored version, or the file's
	// text kept as the run started): an error reading its templates or its times is one no
	// retry cures.
	renderer, err := campaigns.NewRenderer(def)
	if err != nil {
		return nil, cannotExpand{err}
	}
	timing, err := campaigns.NewTiming(def, run.Created, e.cfg.Now)
	if err != nil {
		return nil, cannotExpand{err}
	}
	ar, err := campaigns.OpenAudience(def)
	if err != nil {
		return nil, err
	}
	held, err := holdAudience(def.AudiencePath(), run.AudienceFP)
	if err != nil {
		ar.Close()
		return nil, err
	}
	return &reading{renderer: renderer, timing: timing, ar: ar, held: held}, nil
}

func (r *reading) close() {
	r.held.close()
	r.ar.Close()
}

// taskOptions are the options of run's send tasks: the expander's, on the run's queue unless
// they name one.
func (e *Expander) taskOptions(run ledger.Run) campaigns.TaskOptions {
	opts := e.cfg.Task
	if opts.Queue == "" {
		opts.Queue = run.Queue
	}
	return opts
}

// sendOf is the send of one audience row of run, rendered, that expansion plans and writes a
// task of: its ledger entry, and its send task named by ids with options opts (taskOptions),
// the payload encoded straight into the task's message, due when its send hours open.
func (e *Expander) sendOf(def *campaigns.Definition, run ledger.Run, timing *campaigns.Timing, ids ledger.RunTaskIDs,
	opts campaigns.TaskOptions, it campaigns.Resolved) (ledger.PlanEntry, asynqbatch.Task) {
	row := it.Row
	p := campaigns.SendPayload{
		Run: run.ID, To: row.Recipient, Bucket: ledger.BucketOf(row.Recipient, run.Buckets), Row: row.N,
		Campaign: run.Campaign, Template: run.Template, Language: cmp.Or(row.Language, run.Language), Sender: run.Sender,
		Params: it.Params, Delivery: string(run.Delivery), Rate: def.Rate, Category: def.SendCategory(),
		Kind: def.SendKind(), Session: it.Session, ReplyCols: def.OnReply.PickColumns(row.Cols),
	}
	at, skip := timing.Apply(&p, row, e.cfg.Now())
	task := asynqbatch.NewTask(asynqbatch.Task{Type: campaigns.TypeSend, ID: ids.TaskID(p.To),
		Queue: opts.Queue, MaxRetry: opts.MaxRetry, Timeout: opts.Timeout, Retention: opts.Retention, ProcessAt: at},
		campaigns.SendSize(&p), func(b []byte) []byte { return campaigns.AppendSend(b, &p) })
	return ledger.PlanEntry{Recipient: p.To, Bucket: p.Bucket, Row: row.N, Skip: skip}, task
}

func absPath(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// expandJob is one batch of audience rows (from, to] for the writer.
type expandJob struct {
	from, to int
	// batch are the batch's ledger entries, and tasks their send tasks, encoded, one per
	// entry (a task's ProcessAt, when set, is the opening of the send hours it waits for).
	batch   []ledger.PlanEntry
	tasks   []asynqbatch.Task
	skipped map[string]int
	// fresh: rows past the planned cursor (plan them); else a batch planned before an
	// interruption, replayed.
	fresh bool
	// off is the audience file offset just after row to.
	off int64
	// rows counts the rows up to row to that belong to the run.
	rows int
}

// batchWriter applies an expansion's batches to Redis in order, in two stages on two
// goroutines, so Redis always has work: while one batch's tasks are written, the next
// batch is planned in the ledger. A full backlog stops the planning, and the batches already
// planned still get their tasks. An error stops both stages; the cursors in Redis then say
// what a resumed expansion does again (batches planned but not queued are replayed).
type batchWriter struct {
	e        *Expander
	run      ledger.Run
	st       *Stats
	estimate int
	// token names this expansion to the ledger (ledger.Batch.Token).
	token string
	// marketing says a suppression of marketing blocks the run's sends (see ExpandOnly).
	marketing bool
	jobs      chan expandJob
	done      chan struct{} // closed when both stages have returned
	halted    chan struct{} // closed when no more batches are planned, after err is set
	failed    chan struct{} // closed at the first error other than a full backlog, after err is set
	mu        sync.Mutex
	err       error
	stopped   bool
	// noted is the opening of the send hours this expansion noted on the run (noteWaiting).
	noted time.Time
}

func newBatchWriter(e *Expander, run ledger.Run, st *Stats, estimate int, token string, marketing bool) *batchWriter {
	return &batchWriter{e: e, run: run, st: st, estimate: estimate, token: token, marketing: marketing, jobs: make(chan expandJob, 1),
		done: make(chan struct{}), halted: make(chan struct{}), failed: make(chan struct{})}
}

// halt stops the planning of batches with err. Unless err is ErrBacklogFull, the batches
// planned and not yet written are dropped too, and err is reported over a full backlog.
func (w *batchWriter) halt(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	full := errors.Is(err, ErrBacklogFull)
	if w.err == nil || (!full && errors.Is(w.err, ErrBacklogFull)) {
		w.err = err
	}
	if !isClosed(w.halted) {
		close(w.halted)
	}
	if !full && !isClosed(w.failed) {
		close(w.failed)
	}
}

// error returns what stopped the writer (nil: nothing yet).
func (w *batchWriter) error() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// plannedJob is a batch whose ledger entries are written, waiting for its tasks.
type plannedJob struct {
	expandJob
	// fresh says, per row, whether it needs a task.
	fresh []bool
}

// beforeQueue, set by tests, is called by the writer's second stage with each planned batch
// before it decides whether to write the batch's tasks; planDone is closed once the first
// stage has returned. It lets a test hold a planned batch until planning is over.
var beforeQueue atomic.Pointer[func(planDone <-chan struct{})]

func (w *batchWriter) loop(ctx context.Context) {
	defer close(w.done)
	planned := make(chan plannedJob, 1)
	planDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pj := range planned {
			if hook := beforeQueue.Load(); hook != nil {
				(*hook)(planDone)
			}
			// A planned batch is written even after a full backlog stopped the planning: its
			// ledger entries wait for these tasks.
			if isClosed(w.failed) {
				continue
			}
			if err := w.queue(ctx, pj); err != nil {
				w.halt(err)
			}
		}
	}()
	for j := range w.jobs {
		if isClosed(w.halted) {
			continue
		}
		pj, err := w.plan(ctx, j)
		if err != nil {
			w.halt(err)
			continue
		}
		planned <- pj
	}
	close(planDone)
	close(planned)
	wg.Wait()
}

// send hands a batch to the writer; it returns what stopped the writer once it has stopped
// planning.
func (w *batchWriter) send(j expandJob) error {
	select {
	case w.jobs <- j:
		return nil
	case <-w.halted:
		return w.error()
	}
}

// stop waits for the writer to finish the batches handed to it and returns what stopped it
// (ErrBacklogFull once the batches planned before the backlog filled are written).
func (w *batchWriter) stop() error {
	if !w.stopped {
		w.stopped = true
		close(w.jobs)
	}
	<-w.done
	return w.error()
}

// plan writes a batch's ledger entries (or, for a replayed batch, reads which still need a
// task).
func (w *batchWriter) plan(ctx context.Context, j expandJob) (plannedJob, error) {
	e, run, st := w.e, w.run, w.st
	entries := j.batch
	fresh := make([]bool, len(j.batch))
	if j.fresh {
		// One read: the run's status, its pending count, and who opted out.
		rcpts := make([]string, len(entries))
		for i, e := range entries {
			rcpts[i] = e.Recipient
		}
		view, err := e.cfg.Ledger.ViewBatch(ctx, run.ID, rcpts)
		if err != nil {
			return plannedJob{}, err
		}
		if view.Status == "" {
			return plannedJob{}, fmt.Errorf("run %s: %w", run.ID, ledger.ErrRunNotFound)
		}
		// A run cancelled while it expands still accounts for every row: the rest are
		// planned as skipped(cancelled), with no task, so its states add up to the audience.
		cancelled := view.Status == ledger.RunCancelled
		if e.cfg.MaxBacklog > 0 && len(j.batch) > 0 && !cancelled {
			if view.Pending > 0 && view.Pending+int64(len(j.batch)) > int64(e.cfg.MaxBacklog) {
				return plannedJob{}, fmt.Errorf("run %s: %d tasks pending, backlog %d: %w", run.ID, view.Pending, e.cfg.MaxBacklog, ErrBacklogFull)
			}
		}
		// People who opted out of what the row sends are planned as skipped(suppressed): of
		// every message, or of marketing when the run's sends count as marketing.
		for i, s := range view.Suppressed {
			if s.Blocks(w.marketing) {
				entries[i].Skip = ledger.SkipSuppressed
			}
			if cancelled {
				entries[i].Skip = "cancelled"
			}
		}
		// A new batch: write the ledger first, straight as queued (the tasks follow in one
		// round trip); only newly planned recipients get a task.
		flags, err := e.cfg.Ledger.PlanQueued(ctx, ledger.Batch{Run: run.ID, From: j.from, To: j.to, Skipped: j.skipped,
			Entries: entries, Token: w.token})
		switch {
		case errors.Is(err, ledger.ErrBatchApplied):
			// Planned already by this expansion (the script ran twice, its first reply lost):
			// as a batch planned before an interruption, with the tasks' existence checked.
			j.fresh = false
		case err != nil:
			return plannedJob{}, err
		default:
			for r, n := range j.skipped {
				st.Skipped[r] += n
			}
			return plannedJob{expandJob: j, fresh: flags}, nil
		}
	}
	// Planned before an interruption: the ledger says which rows planned an entry that no
	// worker has claimed yet; enqueue those again, the TaskID keeps each single. A duplicate
	// row must not: its task would win the TaskID race half the time and send that row's
	// parameters. Nor does a suppressed row, or an entry already in flight.
	addrs := make([]ledger.Address, len(j.batch))
	for i, p := range j.batch {
		addrs[i] = ledger.Address{Run: run.ID, Bucket: p.Bucket, Recipient: p.Recipient}
	}
	ens, err := e.cfg.Ledger.Entries(ctx, addrs)
	if err != nil {
		return plannedJob{}, err
	}
	for i, p := range j.batch {
		en := ens[i]
		fresh[i] = (en.State == ledger.Planned || en.State == ledger.Queued) && en.Row == p.Row
	}
	return plannedJob{expandJob: j, fresh: fresh}, nil
}

// queue writes a planned batch's tasks and moves the queued cursor past it.
func (w *batchWriter) queue(ctx context.Context, pj plannedJob) error {
	e, run, st := w.e, w.run, w.st
	j, fresh := pj.expandJob, pj.fresh
	// Only the rows that need a task (all of them, in a batch of new recipients).
	tasks := j.tasks
	if slices.Contains(fresh, false) {
		tasks = make([]asynqbatch.Task, 0, len(j.tasks))
		for i := range j.tasks {
			if fresh[i] {
				tasks = append(tasks, j.tasks[i])
			}
		}
	}
	st.Planned += len(tasks)
	// A fresh batch's tasks are new: their ledger entries were created just now (unless
	// another expansion may be replaying the batch: Checked).
	n, sched, err := e.writeTasks(ctx, run.ID, tasks, j.fresh && !e.cfg.Checked)
	st.Enqueued += n
	st.Scheduled += sched
	if err != nil {
		return err
	}
	w.noteWaiting(ctx, tasks)
	if err := e.cfg.Ledger.MarkQueuedRows(ctx, run.ID, j.from, j.to, j.off, j.rows); err != nil {
		return err
	}
	if e.cfg.Progress != nil {
		e.cfg.Progress(j.to, max(w.estimate, j.to))
	}
	return nil
}

// noteWaiting notes on the run, as the worker does for a send it holds back, that its sends
// wait for the send hours (campaigns.SendHoursNote) when tasks written are scheduled for an
// opening earlier than this expansion noted: no worker sees such a task before it, so `run
// show` would otherwise make up a time left. The note reads as stale from the opening on
// (ledger.Run.WaitingNow), when the sends resume. A failure to write it is only logged.
func (w *batchWriter) noteWaiting(ctx context.Context, tasks []asynqbatch.Task) {
	var first time.Time
	for _, t := range tasks {
		if !t.ProcessAt.IsZero() && (first.IsZero() || t.ProcessAt.Before(first)) {
			first = t.ProcessAt
		}
	}
	if first.IsZero() || (!w.noted.IsZero() && !first.Before(w.noted)) {
		return
	}
	if err := w.e.cfg.Ledger.SetWaiting(ctx, w.run.ID, campaigns.SendHoursNote(first), first); err != nil {
		w.e.cfg.Logger.Warn().Str(logx.KeyRun, w.run.ID).Err(err).Msg("could not note the send-hours wait on the run")
		return
	}
	w.noted = first
}

// writeTasks writes run's encoded tasks in one round trip and counts those created, and those
// of them scheduled for later; fresh says no task with their ids can exist (see
// asynqbatch.RedisWriter.Write).
func (e *Expander) writeTasks(ctx context.Context, runID string, tasks []asynqbatch.Task, fresh bool) (int, int, error) {
	if len(tasks) == 0 {
		return 0, 0, nil
	}
	created, err := e.cfg.Tasks.Write(ctx, tasks, fresh)
	n, sched := 0, 0
	for i, c := range created {
		if c {
			n++
			if !tasks[i].ProcessAt.IsZero() {
				sched++
			}
		}
	}
	if err != nil {
		return n, sched, fmt.Errorf("enqueue tasks of run %s: %w", runID, err)
	}
	return n, sched, nil
}
