package scheduler

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/sendpolicy"
	"github.com/heraldmsg/herald/internal/tick"
)

// Defaults of Config.
const (
	// DefaultReload is how often every submitted campaign is read again without a change.
	DefaultReload = time.Minute
	// DefaultOnTime is how late a tick may be found and still count as on time.
	DefaultOnTime = time.Minute
)

// Config configures a Scheduler. Zero values take the defaults shown.
type Config struct {
	// Poll is how often the scheduler reads the definitions' change counter (one GET); a
	// change reloads the submitted campaigns. Default defstore.DefaultPoll; negative: off (the
	// campaigns are read once, at Start).
	Poll time.Duration
	// Reload reloads every submitted campaign this often even without a change. Default
	// DefaultReload; negative: off (only a change reloads).
	Reload time.Duration
	// Retention keeps a tick's completed first expansion task (and with it its TaskID) this
	// long, so a replica whose clock lags cannot enqueue the tick again. Default
	// sendpolicy.Retention.
	Retention time.Duration
	// OnTime is how late a tick may be found and still count as on time rather than missed
	// (a restart that straddles a tick, a retry of a tick whose run could not be started).
	// Default DefaultOnTime.
	OnTime time.Duration
	// Parse turns a cron spec (five fields, with a "CRON_TZ=zone " prefix) into a schedule.
	// Default cron.ParseStandard. Tests inject a compressed clock through it.
	Parse func(spec string) (cron.Schedule, error)
	// Now is the scheduler's clock: missed ticks, fire records and the Reload period are
	// measured on it. Default time.Now.
	Now func() time.Time
}

// Deps are a Scheduler's collaborators.
type Deps struct {
	Redis  redis.UniversalClient
	Logger zerolog.Logger
	// Runs starts the runs of ticks; default expand.NewRuns on Redis.
	Runs *expand.Runs
	// OnTick, when set, is told what became of each tick (metrics): "fired", "duplicate"
	// (another replica fired it), "missed_run", "missed_skipped" or "error" (an attempt to
	// start its run failed, or Check refused it; it is tried again).
	OnTick func(campaign, result string)
	// Check, when set, checks a campaign as each tick is about to start its run
	// (expand.StartParams.Check: its on_reply rules against the templates as the provider has
	// them now, as campaign submit checked them then). A refused tick starts no run and is
	// tried again as one whose run could not be started, so a template put right within the
	// tick's retry window still gets its run.
	Check func(ctx context.Context, def *campaigns.Definition) error
}

// Scheduler turns submitted campaigns' schedules into runs: robfig/cron decides when (each
// campaign in its own zone through CRON_TZ, kept to its wall clock across daylight-saving
// changes, with panic recovery and skip-if-still-running wired explicitly), and each tick
// starts a run through expand.Runs, which enqueues one expansion task whose TaskID is the run
// id derived from the campaign and the fire time, so any number of replicas, and any number
// of attempts at a tick whose run could not be started, make one run.
type Scheduler struct {
	cfg    Config
	store  *defstore.Store
	runs   *expand.Runs
	log    zerolog.Logger
	cron   *cron.Cron
	onTick func(campaign, result string)
	check  func(ctx context.Context, def *campaigns.Definition) error

	mu      sync.Mutex
	entries map[string]*entry
	gen     int64
	// loaded is when the campaigns were last reloaded, on cfg.Now's clock: poll reloads
	// again once Reload has passed on it.
	loaded time.Time

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
}

// entry is one scheduled campaign version.
type entry struct {
	sub   defstore.Submitted
	def   *campaigns.Definition
	sched cron.Schedule
	id    cron.EntryID
	// mu guards last and retry and is held while a tick is fired, so a campaign's ticks are
	// fired one at a time: the cron job waits for it, a retry of the poll loop skips a turn.
	mu sync.Mutex
	// last is the latest tick this process handled: fired, or given up.
	last time.Time
	// retry is a tick whose run could not be started, tried again until it starts or its
	// time is up.
	retry retry
	// gone says a reload replaced the entry (a new version) or removed it: it fires nothing
	// more, even from a poll round that listed it before.
	gone atomic.Bool
}

// handled is what an entry replaced by a new version had handled.
type handled struct {
	last  time.Time
	retry retry
}

// retry is a tick waiting to be tried again (zero tick: none).
type retry struct {
	tick     time.Time
	attempts int
	// at is when to try next, on Config.Now's clock.
	at time.Time
}

// Backoff of a tick whose run could not be started: the first retry a second after the
// failure, then twice as long each time up to maxRetryDelay.
const (
	minRetryDelay = time.Second
	maxRetryDelay = 30 * time.Second
)

func retryDelay(attempts int) time.Duration {
	d := minRetryDelay
	for i := 1; i < attempts && d < maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, maxRetryDelay)
}

// New returns a Scheduler; Start runs it.
func New(cfg Config, d Deps) *Scheduler {
	if d.Redis == nil {
		panic("scheduler: New needs Redis")
	}
	cfg.Poll = cmp.Or(cfg.Poll, defstore.DefaultPoll)
	cfg.Reload = cmp.Or(cfg.Reload, DefaultReload)
	cfg.Retention = cmp.Or(cfg.Retention, sendpolicy.Retention)
	cfg.OnTime = cmp.Or(cfg.OnTime, DefaultOnTime)
	if cfg.Parse == nil {
		cfg.Parse = cron.ParseStandard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if d.Runs == nil {
		d.Runs = expand.NewRuns(expand.Config{}, expand.Deps{Redis: d.Redis, Logger: d.Logger, Now: cfg.Now})
	}
	log := d.Logger.With().Str(logx.KeyComponent, "scheduler").Logger()
	cl := logx.Cron{L: log}
	return &Scheduler{
		cfg: cfg, store: defstore.New(d.Redis, cfg.Now), runs: d.Runs, log: log, entries: map[string]*entry{}, onTick: d.OnTick,
		check: d.Check,
		// cron.New installs no chain: panics would kill the process and a slow job would
		// overlap itself, so both are wired here.
		cron: cron.New(cron.WithLocation(time.UTC), cron.WithLogger(cl),
			cron.WithChain(cron.Recover(cl), cron.SkipIfStillRunning(cl))),
		done: make(chan struct{}),
	}
}

// Start loads the submitted campaigns (firing or skipping ticks missed while no scheduler ran,
// by each campaign's policy), starts cron and the reload loop, and returns. Loading can take a
// while (a catch-up's run checks its campaign with the provider), and cron counts each entry's
// next tick from when it starts: a tick that fell meanwhile is handled once cron runs.
func (s *Scheduler) Start(ctx context.Context) error {
	if err := s.reload(ctx); err != nil {
		return err
	}
	s.cron.Start()
	s.handleDue(ctx)
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	go s.loop(lctx)
	s.log.Info().Int("campaigns", s.count()).Msg("scheduler started")
	return nil
}

// Stop stops firing ticks and waits for jobs in flight and the reload loop. Safe to call
// twice.
func (s *Scheduler) Stop() {
	s.stopOnce.Do(func() {
		if s.cancel == nil {
			close(s.done)
			return
		}
		s.cancel()
		<-s.cron.Stop().Done()
		<-s.done
		s.log.Info().Msg("scheduler stopped")
	})
}

func (s *Scheduler) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// loop polls the change counter, reloads on a change or every Reload, and handles the ticks
// that are due: failed ones whose backoff is over, and any that no cron wake-up handled. With
// Poll off it only handles ticks, every minRetryDelay. The poll comes first, so a campaign
// removed (or edited) while one of its ticks waits for a retry is seen before the retry: a
// removed campaign starts no run.
func (s *Scheduler) loop(ctx context.Context) {
	defer close(s.done)
	every := s.cfg.Poll
	if every <= 0 {
		every = minRetryDelay
	}
	tick.Every(ctx, every, s.round)
}

// round is one turn of the loop.
func (s *Scheduler) round(ctx context.Context) {
	if s.cfg.Poll > 0 {
		s.poll(ctx)
	}
	s.handleDue(ctx)
}

// handleDue handles every campaign's due tick: one whose run could not be started and whose
// backoff is over, or one no cron wake-up handled (it fell while the scheduler was starting,
// or the process was stalled).
func (s *Scheduler) handleDue(ctx context.Context) {
	s.mu.Lock()
	entries := make([]*entry, 0, len(s.entries))
	for _, e := range s.entries {
		entries = append(entries, e)
	}
	s.mu.Unlock()
	for _, e := range entries {
		if ctx.Err() != nil {
			return
		}
		s.handle(ctx, e, true)
	}
}

// poll reloads the campaigns when the change counter moved or Reload has passed.
func (s *Scheduler) poll(ctx context.Context) {
	gen, err := s.store.Gen(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("cannot read campaign changes; will try again")
		}
		return
	}
	s.mu.Lock()
	due := gen != s.gen || (s.cfg.Reload > 0 && s.cfg.Now().Sub(s.loaded) >= s.cfg.Reload)
	s.mu.Unlock()
	if !due {
		return
	}
	if err := s.reload(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn().Err(err).Msg("cannot reload campaigns; will try again")
	}
}

// reload brings the cron entries in line with the submitted campaigns: new and changed
// versions are (re)scheduled, removed campaigns unscheduled.
func (s *Scheduler) reload(ctx context.Context) error {
	gen, err := s.store.Gen(ctx)
	if err != nil {
		return err
	}
	active, err := s.store.Active(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, sub := range active {
		seen[sub.ID] = true
		if e, ok := s.entries[sub.ID]; ok && e.sub.Version == sub.Version {
			continue
		}
		var prev *handled
		if e, ok := s.entries[sub.ID]; ok {
			s.cron.Remove(e.id)
			e.gone.Store(true)
			// Wait for a tick being fired to finish, then take what it left.
			e.mu.Lock()
			prev = &handled{last: e.last, retry: e.retry}
			e.mu.Unlock()
			delete(s.entries, sub.ID)
		}
		e, err := s.schedule(ctx, sub, prev)
		if err != nil {
			s.log.Error().Err(err).Str(logx.KeyCampaign, sub.ID).Int("version", sub.Version).Msg("campaign not scheduled")
			continue
		}
		s.entries[sub.ID] = e
	}
	for id, e := range s.entries {
		if !seen[id] {
			s.cron.Remove(e.id)
			e.gone.Store(true)
			delete(s.entries, id)
			s.log.Info().Str(logx.KeyCampaign, id).Msg("campaign removed: no further runs")
		}
	}
	s.gen, s.loaded = gen, s.cfg.Now()
	return nil
}

// onceSchedule is a one-shot `at` schedule: it fires once, at at.
type onceSchedule struct{ at time.Time }

func (o onceSchedule) Next(t time.Time) time.Time {
	if t.Before(o.at) {
		return o.at
	}
	return time.Time{}
}

// Schedule returns a campaign's schedule: its cron spec in its zone (UTC when it names none),
// kept to the zone's wall clock across daylight-saving changes (followWallClock), or its
// one-shot time; nil when it has neither (it runs only by hand).
func Schedule(def *campaigns.Definition, parse func(string) (cron.Schedule, error)) (cron.Schedule, error) {
	if parse == nil {
		parse = cron.ParseStandard
	}
	s := def.Schedule
	switch {
	case s.At != "":
		at, err := time.Parse(time.RFC3339, s.At)
		if err != nil {
			return nil, fmt.Errorf("schedule.at: %w", err)
		}
		return onceSchedule{at: at}, nil
	case s.Cron != "":
		spec := strings.TrimSpace(s.Cron)
		if !strings.HasPrefix(spec, "CRON_TZ=") && !strings.HasPrefix(spec, "TZ=") {
			// No zone is UTC (robfig/cron would read the zone of the time it is given).
			spec = "CRON_TZ=" + cmp.Or(s.Timezone, "UTC") + " " + spec
		}
		sched, err := parse(spec)
		if err != nil {
			return nil, fmt.Errorf("schedule.cron: %w", err)
		}
		return followWallClock(spec, sched), nil
	}
	return nil, nil
}

// NextFire returns a campaign's next tick after t (zero when it has none).
func NextFire(def *campaigns.Definition, t time.Time) time.Time {
	sched, err := Schedule(def, nil)
	if err != nil || sched == nil {
		return time.Time{}
	}
	return sched.Next(t)
}

// schedule adds a campaign version to cron, after handling the ticks it missed; prev is what
// the version it replaces in this process had handled (nil: none loaded).
func (s *Scheduler) schedule(ctx context.Context, sub defstore.Submitted, prev *handled) (*entry, error) {
	def, err := expand.Definition(sub)
	if err != nil {
		return nil, err
	}
	sched, err := Schedule(def, s.cfg.Parse)
	if err != nil {
		return nil, err
	}
	e := &entry{sub: sub, def: def, sched: sched}
	if sched == nil {
		return e, nil // runs only by hand (herald campaign run)
	}
	now := s.cfg.Now()
	if err := s.catchUp(ctx, e, now, prev); err != nil {
		return nil, err
	}
	e.id = s.cron.Schedule(sched, cron.FuncJob(func() { s.tick(e) }))
	if next := sched.Next(now); next.IsZero() {
		s.log.Warn().Str(logx.KeyCampaign, sub.ID).Int("version", sub.Version).Msg("campaign's schedule has no future time; start runs with herald campaign run")
	} else {
		s.log.Info().Str(logx.KeyCampaign, sub.ID).Int("version", sub.Version).Time("next", next).Msg("campaign scheduled")
	}
	return e, nil
}

// catchUp finds the ticks between the campaign's last recorded fire and now. The latest of
// them runs when it is on time, or when the campaign's policy is run-last and it is within
// grace; otherwise it is skipped, and said so. A run that cannot be started is left to the
// retries of the poll loop. A campaign seen for the first time starts from now.
//
// A version's ticks count from when it was submitted: the ones before were the previous
// version's, which handled them (an edit made after the day's run must not start another
// the same day). A tick of the previous version still waiting for a retry (prev) is kept when
// the new schedule has it too, else dropped.
func (s *Scheduler) catchUp(ctx context.Context, e *entry, now time.Time, prev *handled) error {
	id := e.sub.ID
	last, ok, err := s.store.LastFire(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		e.last = now
		return s.store.RecordFire(ctx, id, now)
	}
	from := last
	if prev != nil && prev.last.After(from) {
		from = prev.last
	}
	// The submitter's clock may be ahead of this one: not later than now.
	if submitted := e.sub.Submitted; submitted.After(from) {
		from = submitted
		if from.After(now) {
			from = now
		}
	}
	e.last = from
	if prev != nil && s.carry(e, prev.retry, from) {
		return nil
	}
	var latest time.Time
	missed := 0
	for t := e.sched.Next(from); !t.IsZero() && !t.After(now) && missed < maxTicks; t = e.sched.Next(t) {
		latest = t
		missed++
	}
	if latest.IsZero() {
		return nil
	}
	late := now.Sub(latest)
	log := s.log.With().Str(logx.KeyCampaign, id).Time("tick", latest).Dur("late", late).Int("missed", missed).Logger()
	switch {
	case late <= s.cfg.OnTime:
		if err := s.fire(ctx, e.sub, latest, triggerOf(e.def)); err != nil {
			s.failed(e, latest, now, err)
			return nil
		}
	case e.def.Schedule.Missed == "run-last" && late <= graceOf(e.def):
		log.Warn().Msg("running a tick missed while no scheduler ran (missed: run-last)")
		if err := s.fire(ctx, e.sub, latest, "missed"); err != nil {
			s.failed(e, latest, now, err)
			return nil
		}
		s.report(id, "missed_run")
	default:
		log.Warn().Str("policy", cmp.Or(e.def.Schedule.Missed, "skip")).Msg("skipping a tick missed while no scheduler ran")
		s.report(id, "missed_skipped")
	}
	e.last = latest
	return s.store.RecordFire(ctx, id, latest)
}

// carry keeps a tick of the previous version waiting for a retry (r) as the new version's when
// its schedule has that tick and no other between it and from, where the new version's ticks
// begin; it reports whether it did. Otherwise the tick is dropped, and said so.
func (s *Scheduler) carry(e *entry, r retry, from time.Time) bool {
	f := r.tick
	if f.IsZero() || f.After(from) {
		return false // none, or a tick of the new version counted from from
	}
	log := s.log.With().Str(logx.KeyCampaign, e.sub.ID).Int("version", e.sub.Version).Time("tick", f).Int("attempts", r.attempts).Logger()
	if e.sched.Next(f.Add(-time.Nanosecond)).Equal(f) {
		if n := e.sched.Next(f); n.IsZero() || n.After(from) {
			e.last, e.retry = f.Add(-time.Nanosecond), r
			log.Info().Msg("tick waiting for a retry kept: the new version has it too")
			return true
		}
	}
	log.Warn().Msg("tick waiting for a retry dropped: the new version's schedule does not have it, or has a later tick before the edit")
	s.report(e.sub.ID, "missed_skipped")
	return false
}

// graceOf is how late a missed tick of a campaign may still run under missed: run-last.
func graceOf(def *campaigns.Definition) time.Duration { return def.Schedule.GraceDuration() }

// retryWindow is how late a tick whose run could not be started may still be tried: while it
// is on time, or under missed: run-last within grace, as if it had been missed.
func (s *Scheduler) retryWindow(def *campaigns.Definition) time.Duration {
	if def.Schedule.Missed == "run-last" {
		return max(s.cfg.OnTime, graceOf(def))
	}
	return s.cfg.OnTime
}

// failed notes that the run of tick t could not be started (e.mu held, or e not yet shared):
// the poll loop tries it again after a backoff. e.last stays before t, so t is still due.
func (s *Scheduler) failed(e *entry, t, now time.Time, err error) {
	attempts := 1
	if e.retry.tick.Equal(t) {
		attempts = e.retry.attempts + 1
	}
	e.retry = retry{tick: t, attempts: attempts, at: now.Add(retryDelay(attempts))}
	s.log.Error().Err(err).Str(logx.KeyCampaign, e.sub.ID).Time("tick", t).Int("attempts", attempts).
		Time("retry_at", e.retry.at).Msg("run of a tick not started; will try again")
	s.report(e.sub.ID, "error")
}

func triggerOf(def *campaigns.Definition) string {
	if def.Schedule.At != "" {
		return "at"
	}
	return "cron"
}

// report tells OnTick what became of a tick.
func (s *Scheduler) report(campaign, result string) {
	if s.onTick != nil {
		s.onTick(campaign, result)
	}
}

// tick is the cron job of a campaign: it fires the latest tick not yet handled.
func (s *Scheduler) tick(e *entry) { s.handle(context.Background(), e, false) }

// maxTicks bounds the ticks counted between two handled ones (a minutely schedule's two years).
const maxTicks = 1_000_000

// handle fires the latest due tick of a campaign not yet handled; earlier ones it replaces are
// reported missed_skipped. A tick found later than it may run (retryWindow: on time, or under
// missed: run-last within grace, as a missed run) is skipped and recorded. A run that cannot be
// started is tried again (from the poll loop, polling, once its backoff is over) until it
// starts, a later tick replaces it, or it is later than retryWindow. Any number of attempts,
// here and on other replicas, make one run: the run id is the tick's.
func (s *Scheduler) handle(ctx context.Context, e *entry, polling bool) {
	if !polling {
		e.mu.Lock()
	} else if !e.mu.TryLock() {
		return // the cron job is firing the campaign's latest tick
	}
	defer e.mu.Unlock()
	if e.gone.Load() {
		return // replaced by a new version, or removed
	}
	now := s.cfg.Now()
	if polling && !e.retry.tick.IsZero() && now.Before(e.retry.at) {
		return
	}
	var t, first time.Time
	replaced := 0
	for n := e.sched.Next(e.last); !n.IsZero() && !n.After(now) && replaced < maxTicks; n = e.sched.Next(n) {
		if !t.IsZero() {
			replaced++
		} else {
			first = n
		}
		t = n
	}
	if t.IsZero() {
		return
	}
	id := e.sub.ID
	failed := e.retry.tick
	if t.Before(failed) {
		return // the clock went back: the failed tick is not due yet
	}
	log := s.log.With().Str(logx.KeyCampaign, id).Time("tick", t).Logger()
	if replaced > 0 {
		l := log.Warn().Time("replaced", first).Int("ticks", replaced)
		if !failed.IsZero() {
			l = l.Time("failed_tick", failed).Int("attempts", e.retry.attempts)
		}
		l.Msg("ticks never started; the latest due tick replaces them")
		for range replaced {
			s.report(id, "missed_skipped")
		}
		e.retry = retry{}
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	trigger := triggerOf(e.def)
	switch late := now.Sub(t); {
	case late > s.retryWindow(e.def):
		l := log.Warn()
		if !e.retry.tick.IsZero() {
			l = log.Error().Int("attempts", e.retry.attempts)
		}
		l.Dur("late", late).Str("policy", cmp.Or(e.def.Schedule.Missed, "skip")).Msg("run of a tick not started in time; skipping it")
		s.report(id, "missed_skipped")
		e.last, e.retry = t, retry{}
		if err := s.store.RecordFire(fctx, id, t); err != nil {
			s.log.Warn().Err(err).Str(logx.KeyCampaign, id).Msg("skipped tick not recorded")
		}
		return
	case late > s.cfg.OnTime:
		trigger = "missed"
	}
	if err := s.fire(fctx, e.sub, t, trigger); err != nil {
		if ctx.Err() == nil { // not the scheduler stopping
			s.failed(e, t, now, err)
		}
		return
	}
	if trigger == "missed" {
		s.report(id, "missed_run")
	}
	e.last, e.retry = t, retry{}
	if err := s.store.RecordFire(fctx, id, t); err != nil {
		s.log.Warn().Err(err).Str(logx.KeyCampaign, id).Msg("tick fired but not recorded")
	}
}

// TickRunID is the run id of a campaign's tick: the same on every replica.
func TickRunID(campaign string, fire time.Time) string { return expand.TickRunID(campaign, fire) }

// fire starts the run of a tick; finding its first task already enqueued means another
// replica (or an earlier attempt) already did, which is success.
func (s *Scheduler) fire(ctx context.Context, sub defstore.Submitted, t time.Time, trigger string) error {
	runID := TickRunID(sub.ID, t)
	st, err := s.runs.StartRun(ctx, expand.StartParams{Campaign: sub.ID, Version: sub.Version, RunID: runID, Fire: t,
		Trigger: trigger, Retention: s.cfg.Retention, Check: s.check})
	if err != nil {
		return err
	}
	log := s.log.With().Str(logx.KeyCampaign, sub.ID).Str(logx.KeyRun, runID).Int("version", sub.Version).Str("trigger", trigger).Logger()
	if st.Enqueued {
		log.Info().Msg("run enqueued")
		s.report(sub.ID, "fired")
	} else {
		log.Debug().Msg("run already enqueued by another scheduler")
		s.report(sub.ID, "duplicate")
	}
	return nil
}

// Loaded returns the version of a campaign this scheduler has loaded (0: none).
func (s *Scheduler) Loaded(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[id]; ok {
		return e.sub.Version
	}
	return 0
}
