package conversation

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/tick"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// Follow-ups: the receiver's side of on_reply. For each inbound message that is not an
// opt-out, Followups joins the reply to its run entry, matches the run's rules, and for the
// rule that matches records its tag, suppresses the recipient if it says so, and creates
// the follow-up: one ledger entry per (run, recipient, rule) in the rule's follow-up run
// (ledger.FollowupRun), then its send task, written with a task id derived from the entry.
// Exactly once comes from the ledger and the join pin, not from the webhook: every copy of an
// inbound message (a repeated webhook, a second receiver replica, a delivery again after a
// failure anywhere in between) is joined to the entry its first copy was (pin.go), so it
// matches the same rule and finds the same follow-up entry, and at most writes its task again
// (the outbox sweep, Sweep, writes the tasks of entries whose receiver died first); the
// worker's claim sends an entry once whatever the number of its tasks.

// Reason codes of follow-up entries written skipped.
const (
	// SkipSuppressed: the recipient was on the suppression list for the follow-up's message
	// when they replied (the ledger's one reason for it).
	SkipSuppressed = ledger.SkipSuppressed
	// SkipRender: the follow-up could not be rendered for the recipient.
	SkipRender = "invalid_params"
	// SkipExpired: a delayed follow-up whose send hours open only after its expiry (the
	// campaign's expire_after, counted from when the follow-up is due), as a campaign's
	// recipient is planned skipped(expired).
	SkipExpired = "expired"
	// SkipNotReached: the reply joined an entry whose message, as the ledger has it, never
	// reached the customer and never will: its send failed (or its delivery failed, and the
	// reply does not name the message), or it was skipped. Written only for such a settled
	// entry; a reply to an entry whose send is still to come (planned, queued) writes nothing,
	// so the rule's one follow-up is kept for a reply once its message has gone.
	SkipNotReached = "not_reached"
	// ReasonOnReply is the suppression reason of a suppress: true rule.
	ReasonOnReply = "ON_REPLY"
)

// RunInfo is what follow-ups need of a run: its ledger record and the campaign version it
// was started from.
type RunInfo struct {
	Run ledger.Run
	Def *campaigns.Definition
}

// Resolver returns a run's RunInfo; ok is false for a run that does not exist (any more).
// RunResolver returns the one Herald uses: it reads the run's campaign version and caches it.
type Resolver func(ctx context.Context, run string) (info RunInfo, ok bool, err error)

// FollowupConfig configures Followups.
type FollowupConfig struct {
	// Redis holds the ledger and the index of recent sends. Required.
	Redis redis.UniversalClient
	// Business is the Connectly business id (the index's key).
	Business string
	// Tasks writes send tasks; default asynqbatch.New(Redis).
	Tasks asynqbatch.Writer
	// Resolve gives a run's campaign. Required.
	Resolve Resolver
	// Task sets the asynq options of follow-up tasks. Their queue is chosen by the follow-up's
	// category (FollowupQueue), not the parent run's, unless Task.Queue names one.
	Task campaigns.TaskOptions
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger zerolog.Logger
	// Metrics may be nil.
	Metrics *Metrics
	// SweepEvery is how often RunSweep looks at the outbox; default DefaultSweepEvery.
	// SweepAfter is how old an outbox entry left without its task must be before the sweep
	// writes the task; default DefaultSweepAfter.
	SweepEvery, SweepAfter time.Duration
	// JoinMemory is how long the join of an inbound message is pinned, so that every copy of
	// the message is joined as its first was (see the join pin); it must outlast the
	// provider's retries of a webhook. Default DefaultJoinMemory.
	JoinMemory time.Duration
	// LateFallbackAfter is how long after a late window refusal its fallback's task is due
	// (HandleLateRefusal): events of the same message that contradict the failure (a
	// delivered, a read: one may have waited in the receiver's parked set while the message's
	// send was being recorded, retried every second) apply first, and the worker, which reads
	// the message's entry again before sending, skips the fallback. Default
	// DefaultLateFallbackAfter; negative: due at once.
	LateFallbackAfter time.Duration
}

// DefaultLateFallbackAfter is FollowupConfig.LateFallbackAfter's default: several turns of the
// receiver's parked-event loop (every second by default).
const DefaultLateFallbackAfter = 10 * time.Second

// The follow-up outbox sweep's defaults: how often it runs, and how old an entry left without
// its task must be (a receiver writes the task right after the entry, within milliseconds).
const (
	DefaultSweepEvery = 10 * time.Second
	DefaultSweepAfter = 30 * time.Second
)

// Followups turns replies into follow-up sends. It implements webhooks.ReplyHandler.
type Followups struct {
	cfg     FollowupConfig
	ledger  *ledger.Ledger
	index   *Index
	columns *Columns
	history *History
	log     zerolog.Logger
}

var _ webhooks.ReplyHandler = (*Followups)(nil)

// NewFollowups returns Followups for cfg.
func NewFollowups(cfg FollowupConfig) (*Followups, error) {
	if cfg.Redis == nil || cfg.Resolve == nil {
		return nil, errors.New("conversation: follow-ups need Redis and a resolver")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tasks == nil {
		cfg.Tasks = asynqbatch.New(cfg.Redis)
	}
	cfg.SweepEvery = cmp.Or(cfg.SweepEvery, DefaultSweepEvery)
	cfg.SweepAfter = cmp.Or(cfg.SweepAfter, DefaultSweepAfter)
	cfg.JoinMemory = cmp.Or(cfg.JoinMemory, DefaultJoinMemory)
	cfg.LateFallbackAfter = cmp.Or(cfg.LateFallbackAfter, DefaultLateFallbackAfter)
	return &Followups{cfg: cfg, ledger: ledger.New(cfg.Redis, cfg.Now), index: NewIndex(cfg.Redis, cfg.Business, cfg.Now),
		columns: NewColumns(cfg.Redis), history: NewHistory(cfg.Redis, cfg.Now), log: cfg.Logger.With().Str(logx.KeyComponent, "followups").Logger()}, nil
}

// Index returns the index of recent sends the follow-ups join replies with.
func (f *Followups) Index() *Index { return f.index }

// Outcome says what a reply did.
type Outcome struct {
	// Entry is the run entry the reply joined; zero when none.
	Entry Entry
	// Rule is the matching rule's id; "" when none matched (or the reply was too late).
	Rule string
	// Late is set when the reply came after the run's on_reply.until.
	Late bool
	// Verdict is what CreateFollowup did, when a follow-up was asked for.
	Verdict ledger.FollowupVerdict
	// Created is set when this call created the follow-up entry.
	Created bool
	// Repeat is set when an earlier copy of the same inbound message was joined first: Entry
	// is the one it pinned (zero when it joined none).
	Repeat bool
	// ForeignCallback is set when the reply's callbackData named another customer than its
	// sender (ForeignCallback) and was not used for the join.
	ForeignCallback bool
	// Unanswered is why a rule matched and no follow-up was asked for although the rule has
	// one (or, for a rule with none, its tag was not given): SkipNotReached, or
	// UnansweredNotSent (the entry's send is still to come), UnansweredNoEntry (the run has
	// no entry for the recipient), UnansweredCancelled, UnansweredNoRun, UnansweredOnceHeld.
	// "" otherwise.
	Unanswered string
	// HeldBy is the run whose follow-up holds the rule's once_per: campaign slot
	// (UnansweredOnceHeld).
	HeldBy string
}

// Reasons of Outcome.Unanswered besides SkipNotReached (which also writes the follow-up's
// entry skipped).
const (
	// UnansweredNotSent: the joined entry's send is still to come (planned, or queued for a
	// retry or a resend): nothing is written, and a later reply may still get the follow-up.
	UnansweredNotSent = "not_sent"
	// UnansweredNoEntry: the run has no entry for the recipient the join named.
	UnansweredNoEntry = "no_entry"
	// UnansweredCancelled: the run was cancelled: no follow-up is created (MayFollowUp).
	UnansweredCancelled = "cancelled"
	// UnansweredNoRun: the run's record is gone.
	UnansweredNoRun = "no_run"
	// UnansweredOnceHeld: the rule is once_per: campaign and another run's follow-up
	// (Outcome.HeldBy) holds it for the recipient.
	UnansweredOnceHeld = "once_per_campaign"
)

// HandleReply acts on one inbound message (see the package's follow-ups above) and returns
// the run it joined the message to, so the receiver counts a plain-text reply there.
func (f *Followups) HandleReply(ctx context.Context, in *webhooks.Inbound) (string, error) {
	out, err := f.Reply(ctx, ReplyOf(*in))
	return out.Entry.Run, err
}

// Reply acts on one reply and says what it did. Every reply it joins goes into the
// recipient's conversation record (recipient explain's timeline) with the rule it matched,
// whatever the rule made of it; a repeated webhook is recorded once.
func (f *Followups) Reply(ctx context.Context, r Reply) (Outcome, error) {
	out, err := f.reply(ctx, r)
	if out.Entry.Run != "" {
		if _, herr := f.history.RecordNote(ctx, out.Entry, r, r.MessageID, out.Rule, NoteOf(out)); herr != nil && err == nil {
			err = herr
		}
	}
	return out, err
}

func (f *Followups) reply(ctx context.Context, r Reply) (Outcome, error) {
	var out Outcome
	join := func() (Entry, bool, error) { return f.index.Join(ctx, r) }
	var (
		e   Entry
		ok  bool
		err error
	)
	if key := inboundKey(r); key != "" {
		e, ok, out.Repeat, err = pinJoin(ctx, f.cfg.Redis, pinKey(f.cfg.Business, key), f.cfg.JoinMemory, join)
	} else {
		e, ok, err = join()
	}
	if err != nil {
		return out, err
	}
	if out.ForeignCallback = ForeignCallback(r); out.ForeignCallback && !out.Repeat {
		f.foreignCallback(ctx, r, e, ok)
	}
	if !ok {
		return out, nil
	}
	out.Entry = e
	parent := e.Run
	if p, _, isFollowup := ledger.FollowupOf(e.Run); isFollowup {
		// A reply to a follow-up answers the run it follows: its rules apply, each still once.
		parent = p
	}
	info, ok, err := f.cfg.Resolve(ctx, parent)
	if err != nil || !ok || info.Def == nil || !info.Def.OnReply.Enabled() {
		return out, err
	}
	run, def := info.Run, info.Def
	if !Within(&def.OnReply, run.Created, r.At, f.cfg.Now()) {
		out.Late = true
		if !out.Repeat {
			f.count(run.Campaign, "", "late", e.Via)
		}
		return out, nil
	}
	rule, ok := Match(def.OnReply.Rules, r)
	if !ok {
		// An opt-out (the receiver has suppressed the customer) matches only the campaign's
		// own unsubscribe (suppress: true), whose confirmation still goes, past the
		// suppression (SendPayload.ConfirmsOptOut); without one it is only recorded, and
		// counted by the receiver as an opt-out, not here.
		if !out.Repeat && !r.OptOut {
			f.unmatched(run, r, e)
		}
		return out, nil
	}
	out.Rule = rule.ID()
	if row, ok := rowOf(rule, r); ok {
		r = r.asListChoice(row)
	}
	// The entry must be the run's: a callbackData names any run and recipient.
	entry := ledger.AddressIn(parent, e.Recipient, run.Buckets)
	pe, ok, err := f.ledger.Entry(ctx, entry)
	if err != nil {
		return out, err
	}
	if !ok || !Answerable(pe, Named(e.Via)) {
		// Never sent (or refused): nothing of this run's was there to answer.
		return f.unanswered(ctx, out, run, def, rule, e, pe, ok)
	}
	if !out.Repeat {
		// Once per reply: every copy of it runs the steps below again, each idempotent.
		f.count(run.Campaign, rule.ID(), "matched", e.Via)
	}
	if rule.Tag != "" {
		if err := f.ledger.Tag(ctx, parent, e.Recipient, rule.Tag); err != nil {
			return out, err
		}
	}
	sups, err := f.ledger.Suppressions(ctx, []string{e.Recipient})
	if err != nil {
		return out, err
	}
	sup := sups[0]
	// A suppress: true rule's own confirmation still goes: the suppression is its effect, not
	// a reason to skip it. It is written after the follow-up's entry: a copy of the reply
	// delivered after a failure in between then finds the entry, or the recipient not yet
	// suppressed, and still sends the confirmation, where suppressed first it would write the
	// confirmation skipped. It stops every message: it widens an entry for marketing only.
	suppress := func() error {
		if !rule.Suppress || sup.Covers(ledger.ScopeOf(ReasonOnReply)) {
			return nil
		}
		return f.ledger.Suppress(ctx, e.Recipient, ReasonOnReply)
	}
	if rule.None {
		return out, suppress()
	}
	if may, why, err := f.MayFollowUp(ctx, parent); err != nil || !may {
		if err == nil {
			out.Unanswered = why
			f.notAnswered(out, run, rule, e)
		}
		return out, errors.Join(err, suppress())
	}
	if rule.Scope() == campaigns.OncePerCampaign {
		holder, err := f.claimOnce(ctx, run, rule, e.Recipient)
		if err != nil {
			return out, err
		}
		if holder != parent {
			out.Unanswered, out.HeldBy = UnansweredOnceHeld, holder
			f.notAnswered(out, run, rule, e)
			return out, suppress()
		}
	}
	at := cmp.Or(r.At, f.cfg.Now())
	if now := f.cfg.Now(); at.After(now) {
		at = now
	}
	addr := ledger.FollowupAddress(parent, rule.ID(), e.Recipient, run.Buckets)
	fu := ledger.Followup{Parent: parentOf(run), Rule: rule.ID(), Recipient: e.Recipient, Row: pe.Row,
		Queue: f.queue(Category(def, rule))}
	// The recipient's audience columns, stored by the worker at the parent run's send (a
	// reply to a follow-up reads them too); missing ones render as empty columns.
	var cols map[string]string
	if def.OnReply.Carries() && (rule.Suppress || !sup.Blocks(false)) {
		if cols, err = f.columns.Load(ctx, entry); err != nil {
			return out, err
		}
	}
	due := at.Add(rule.DelayDuration())
	p, rerr := Payload(FollowupOf{Run: run, Def: def, Rule: rule, Addr: addr, Row: pe.Row, Reply: r, Audience: cols, Due: due})
	sendAt, expired := SendAt(p, due)
	// A follow-up answers the customer's own reply: its session message is no marketing send,
	// even to a person who stopped marketing messages; its template counts by its category
	// (ledger.MarketingCategory). The send reads the list again for what it sends (the
	// fallback template when the window has closed). The confirmation of a suppress: true
	// rule goes whatever the list says (SendPayload.ConfirmsOptOut, as the send decides):
	// the receiver has suppressed a customer who tapped an opt-out word such as Unsubscribe
	// before the rule is matched.
	switch {
	case !rule.Suppress && sup.Blocks(rule.Message.IsZero() && ledger.MarketingCategory(p.Category)):
		fu.Skip = SkipSuppressed
	case rerr != nil:
		fu.Skip = SkipRender
		f.log.Warn().Str(logx.KeyRun, parent).Str("rule", rule.ID()).Err(rerr).Msg("follow-up not rendered: skipped")
	case expired:
		fu.Skip = SkipExpired
	default:
		// Without HTML escapes, as a campaign's payload: a raw message is measured as written.
		fu.Payload, err = connectly.EncodeJSON(envelope{At: sendAt.UnixMilli(), P: campaigns.EncodeSend(p)})
		if err != nil {
			return out, err
		}
	}
	res, err := f.ledger.CreateFollowup(ctx, fu)
	if err != nil {
		return out, err
	}
	if err := suppress(); err != nil {
		return out, err
	}
	out.Verdict = res.Verdict
	switch res.Verdict {
	case ledger.FollowupCreated:
		out.Created = true
		f.count(run.Campaign, rule.ID(), "created", e.Via)
		return out, f.enqueue(ctx, ledger.OutboxItem{Run: res.Run, Recipient: e.Recipient, Payload: fu.Payload}, run.ResendAfter > 0)
	case ledger.FollowupPending:
		return out, f.enqueue(ctx, ledger.OutboxItem{Run: res.Run, Recipient: e.Recipient, Payload: res.Payload}, run.ResendAfter > 0)
	case ledger.FollowupSkipped:
		out.Created = true
		f.count(run.Campaign, rule.ID(), "skipped", e.Via)
	}
	return out, nil
}

// NoteOf is the conversation record's note on a reply whose rule asked for no follow-up for
// a reason recipient explain should say (History.RecordNote): "" for any other.
func NoteOf(out Outcome) string {
	switch out.Unanswered {
	case UnansweredOnceHeld:
		return "once per campaign: answered in run " + out.HeldBy
	case UnansweredCancelled:
		return "run or its follow-ups cancelled: no follow-up"
	}
	return ""
}

// MayFollowUp decides whether a reply may create a follow-up of run (the run replied to, not
// a follow-up run): why says why not, an Outcome.Unanswered reason. It reads the run's status
// as it is now (the resolver's run record is cached and may be older): no follow-up is created
// for a cancelled run, or a completed one whose follow-ups an operator cancelled
// (ledger.FollowupsState), and no once_per: campaign slot taken for it. It is the one place that
// decides it, for every reply of every rule.
func (f *Followups) MayFollowUp(ctx context.Context, run string) (may bool, why string, err error) {
	c, err := f.ledger.FollowupsState(ctx, run)
	switch {
	case err != nil:
		return false, "", err
	case c.Run.Status == "":
		return false, UnansweredNoRun, nil
	case c.Cancelled():
		// The run, or (once it completed) its follow-ups, cancelled by an operator.
		return false, UnansweredCancelled, nil
	}
	return true, "", nil
}

// claimOnce gives the once_per: campaign follow-up of rule to recipient in run, and returns
// the run that holds it: run, or the other run whose follow-up took it. A follow-up that
// ended without a message going out (ledger.FollowupGaveBack: skipped, or refused by
// Connectly) gives its slot back: this reply takes it over.
func (f *Followups) claimOnce(ctx context.Context, run ledger.Run, rule *campaigns.ReplyRule, recipient string) (string, error) {
	holder, err := f.ledger.ClaimOncePerCampaign(ctx, run.Campaign, rule.ID(), recipient, run.ID, "")
	if err != nil || holder == run.ID {
		return holder, err
	}
	fe, ok, err := f.ledger.OnceFollowup(ctx, holder, rule.ID(), recipient)
	if err != nil || !ok || !ledger.FollowupGaveBack(fe) {
		return holder, err
	}
	return f.ledger.ClaimOncePerCampaign(ctx, run.Campaign, rule.ID(), recipient, run.ID, holder)
}

// notAnswered logs, once per reply, a reply that matched a rule and asked for no follow-up
// for out.Unanswered (a cancelled run, a once_per: campaign follow-up held by another run).
func (f *Followups) notAnswered(out Outcome, run ledger.Run, rule *campaigns.ReplyRule, e Entry) {
	if out.Repeat {
		return
	}
	f.count(run.Campaign, rule.ID(), "unanswered", e.Via)
	f.log.Info().Str(logx.KeyRun, run.ID).Str(logx.KeyRecipient, logx.Phone(e.Recipient)).Str("rule", rule.ID()).
		Str("reason", out.Unanswered).Str("held_by", out.HeldBy).Msg("reply matched a rule: no follow-up")
}

// unmatched counts and logs (at debug level: every reply that no rule is about would
// otherwise fill the log), once per reply, a reply within on_reply.until that matched none of
// the run's rules: outcome "unmatched", rule "". The log line names the reply's kind, never
// its text.
func (f *Followups) unmatched(run ledger.Run, r Reply, e Entry) {
	f.count(run.Campaign, "", "unmatched", e.Via)
	f.log.Debug().Str(logx.KeyRun, run.ID).Str(logx.KeyRecipient, logx.Phone(e.Recipient)).Str("kind", string(r.Kind)).
		Str("via", e.Via).Msg("reply matched no on_reply rule: no follow-up")
}

// unanswered settles a reply that matched rule but joined an entry whose message cannot be
// what it answers (found says the entry pe exists): it is counted (outcome "unanswerable",
// once per reply) and logged with its reason, and for an entry that is settled without
// having reached the customer (failed, skipped) the rule's follow-up entry is written skipped
// (SkipNotReached), counted "skipped" once, as every skipped follow-up. A rule without a
// follow-up (none: true) writes none; an entry whose send is still to come (planned, queued)
// writes nothing either, so a reply once its message has gone may still get the follow-up.
func (f *Followups) unanswered(ctx context.Context, out Outcome, run ledger.Run, def *campaigns.Definition,
	rule *campaigns.ReplyRule, e Entry, pe ledger.Entry, found bool) (Outcome, error) {
	switch {
	case !found:
		out.Unanswered = UnansweredNoEntry
	case pe.State == ledger.Failed || pe.State == ledger.Skipped:
		out.Unanswered = SkipNotReached
	default:
		out.Unanswered = UnansweredNotSent
	}
	if !out.Repeat {
		f.count(run.Campaign, rule.ID(), "unanswerable", e.Via)
		f.log.Info().Str(logx.KeyRun, run.ID).Str(logx.KeyRecipient, logx.Phone(e.Recipient)).Str("rule", rule.ID()).
			Str("via", e.Via).Str("state", string(pe.State)).Str("reason", out.Unanswered).
			Msg("reply matched a rule, but the message it joined did not reach the customer: no follow-up")
	}
	if out.Unanswered != SkipNotReached || rule.None {
		return out, nil
	}
	if may, _, err := f.MayFollowUp(ctx, run.ID); err != nil || !may {
		return out, err
	}
	fu := ledger.Followup{Parent: parentOf(run), Rule: rule.ID(), Recipient: e.Recipient, Row: pe.Row,
		Queue: f.queue(Category(def, rule)), Skip: SkipNotReached}
	res, err := f.ledger.CreateFollowup(ctx, fu)
	if err != nil {
		return out, err
	}
	out.Verdict = res.Verdict
	if res.Verdict == ledger.FollowupSkipped {
		out.Created = true
		f.count(run.Campaign, rule.ID(), "skipped", e.Via)
	}
	return out, nil
}

// foreignCallback counts and logs, once per reply, a reply whose callbackData named another
// customer than its sender (ForeignCallback): the join ignored it and took the sender's own
// run, if any (joined, the entry e). It is counted under the campaign of the run the
// callbackData names, outcome "foreign_callback".
func (f *Followups) foreignCallback(ctx context.Context, r Reply, e Entry, joined bool) {
	cb := r.Callback
	parent := cb.Run
	if p, _, ok := ledger.FollowupOf(parent); ok {
		parent = p
	}
	campaign := ""
	if info, ok, err := f.cfg.Resolve(ctx, parent); err == nil && ok {
		campaign = info.Run.Campaign
	}
	via := "none"
	if joined {
		via = e.Via
	}
	f.count(campaign, "", "foreign_callback", via)
	f.log.Warn().Str(logx.KeyRun, cb.Run).Str(logx.KeyRecipient, logx.Phone(cb.Recipient)).
		Str("sender", logx.Phone(strings.Join(r.From.Keys(), ","))).Str("joined", e.Run).
		Msg("reply's callbackData names another customer than its sender: joined as a reply without it")
}

// envelope is what a follow-up entry keeps in its run's outbox: the task payload and when it
// is due (the reply's time plus the rule's delay, or, for a delayed follow-up, the opening of
// the campaign's send hours after that: SendAt).
type envelope struct {
	At int64           `json:"at"`
	P  json.RawMessage `json:"p"`
}

// Category is the category of the follow-up of rule in a run of def: a follow-up template is
// sent in the campaign's category, and a session message without a fallback template in
// campaigns.SessionOnlyCategory, as a session campaign's sends (campaigns.SendCategory). It
// chooses the follow-up's frequency cap (its payload's Category) and its queue
// (FollowupQueue).
func Category(def *campaigns.Definition, rule *campaigns.ReplyRule) string {
	switch {
	case rule.Template != nil:
		return cmp.Or(rule.Template.Category, def.Template.Category)
	case !rule.Message.IsZero():
		// A session message with no fallback template is no marketing send: as a session
		// campaign's, no marketing cap counts it, nor refuses the answer to the customer's
		// own tap, and it goes ahead of marketing sends.
		return campaigns.SessionOnlyCategory
	}
	return def.Template.Category
}

// FollowupQueue is the send queue of a follow-up of category (Category, or its payload's
// Category): the queue of a campaign's sends of that category (campaigns.QueueFor), not the
// run it follows. A session message without a fallback template goes in the utility queue,
// as a session campaign's does, so pausing the marketing queue does not hold an answer to
// the customer's own tap, nor does the answer wait at marketing's weight. Every writer of a
// follow-up's task uses it: the receiver, the outbox sweep, the follow-up run's queue (which
// the resend of an unknown follow-up and `run show RUN~RULE` read).
func FollowupQueue(category string) string { return campaigns.QueueFor(category) }

// queue is the queue of a follow-up of category under f's task options.
func (f *Followups) queue(category string) string {
	return cmp.Or(f.cfg.Task.Queue, FollowupQueue(category))
}

// enqueue writes the task of a follow-up entry from its outbox item (its run, recipient and
// envelope) on the queue of its payload's category, unless a task with its id exists, then
// takes the entry out of the outbox. The existence check is needed even by the copy of a
// reply that created the entry: until the entry leaves the outbox, another copy (a repeated
// webhook, a second receiver) or the sweep may write the task first, and writing it again
// would queue its id twice, so two workers would take it at once and the second to finish
// would find it gone. When the run it follows resends unknown recipients, the follow-up run is
// listed for the resend sweep first (ledger.ListFollowupResends).
func (f *Followups) enqueue(ctx context.Context, it ledger.OutboxItem, resends bool) error {
	run, recipient, raw := it.Run, it.Recipient, it.Payload
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("conversation: follow-up of %s: %w", run, err)
	}
	p, err := campaigns.DecodeSend(env.P)
	if err != nil {
		return fmt.Errorf("conversation: follow-up of %s: %w", run, err)
	}
	id, err := f.ledger.TaskID(ctx, run, recipient)
	if err != nil {
		return fmt.Errorf("conversation: follow-up of %s: %w", run, err)
	}
	if resends {
		if err := f.ledger.ListFollowupResends(ctx, run); err != nil {
			return fmt.Errorf("conversation: follow-up of %s: %w", run, err)
		}
	}
	t := asynqbatch.Task{Type: campaigns.TypeSend, Payload: env.P, ID: id,
		Queue: f.queue(p.Category), MaxRetry: f.cfg.Task.MaxRetry,
		Timeout: f.cfg.Task.Timeout, Retention: f.cfg.Task.Retention}
	if env.At > f.cfg.Now().UnixMilli() {
		t.ProcessAt = time.UnixMilli(env.At)
	}
	written, err := f.writtenElsewhere(ctx, id, t.Queue)
	if err != nil {
		return fmt.Errorf("conversation: follow-up task of %s: %w", run, err)
	}
	if !written {
		if _, err := f.cfg.Tasks.Write(ctx, []asynqbatch.Task{t}, false); err != nil {
			return fmt.Errorf("conversation: follow-up task of %s: %w", run, err)
		}
	}
	return f.ledger.FollowupQueued(ctx, run, recipient)
}

// writtenElsewhere reports whether the task id is already in another of Herald's send queues
// than queue: a follow-up task an earlier Herald wrote under the queue of the run it follows,
// before follow-ups were queued by their own category, and left in the outbox (its receiver
// died before it was marked queued). The writer's check of an id is per queue, so writing it
// again to its category's queue would put two tasks of one recipient in two queues, and two
// workers would take them at once.
func (f *Followups) writtenElsewhere(ctx context.Context, id, queue string) (bool, error) {
	var cmds []*redis.IntCmd
	_, err := f.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, q := range slices.Sorted(maps.Keys(campaigns.Queues)) {
			if q != queue {
				cmds = append(cmds, p.Exists(ctx, rkeys.AsynqTask(q, id)))
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	for _, c := range cmds {
		if c.Val() > 0 {
			return true, nil
		}
	}
	return false, nil
}

// Sweep writes the tasks of follow-up entries that stayed in their outbox longer than
// olderThan (their receiver stopped between the entry and its task) and returns how many.
func (f *Followups) Sweep(ctx context.Context, olderThan time.Duration) (int, error) {
	items, err := f.ledger.FollowupOutbox(ctx, f.cfg.Now().Add(-olderThan), 500)
	if err != nil {
		return 0, err
	}
	resends := map[string]bool{}
	n := 0
	for _, it := range items {
		rs, ok := resends[it.Run]
		if !ok {
			r, err := f.ledger.GetRun(ctx, it.Run)
			if err != nil {
				return n, err
			}
			rs, resends[it.Run] = r.ResendAfter > 0, r.ResendAfter > 0
		}
		if err := f.enqueue(ctx, it, rs); err != nil {
			return n, err
		}
		n++
	}
	if n > 0 {
		f.log.Warn().Int("tasks", n).Msg("follow-up tasks written by the outbox sweep (a receiver stopped before writing them)")
	}
	return n, nil
}

// RunSweep sweeps the outbox every SweepEvery (entries older than SweepAfter) until ctx ends.
func (f *Followups) RunSweep(ctx context.Context) {
	tick.Every(ctx, f.cfg.SweepEvery, func(ctx context.Context) {
		if _, err := f.Sweep(ctx, f.cfg.SweepAfter); err != nil && ctx.Err() == nil {
			f.log.Warn().Err(err).Msg("follow-up outbox sweep")
		}
	})
}

func parentOf(r ledger.Run) ledger.ParentRun {
	return ledger.ParentRun{ID: r.ID, Campaign: r.Campaign, Template: r.Template, Language: r.Language, Sender: r.Sender,
		Definition: r.Definition, Audience: r.Audience, Delivery: r.Delivery, ResendAfter: r.ResendAfter, Version: r.Version,
		Buckets: r.Buckets}
}

// ReplyColumns are the values of the reply itself a follow-up's message and parameters read
// (campaigns' reply fields), besides the audience columns the run's sends carried:
//
//	reply     what the customer sent: the typed text, else the button's or the row's text
//	button    the tapped button's text (or payload)
//	list_row  the chosen row's id
func ReplyColumns(r Reply) map[string]string {
	return map[string]string{
		campaigns.ReplyFieldReply:   cmp.Or(r.Text, r.ButtonText, r.ButtonPayload, r.ListRowText, r.ListRowID),
		campaigns.ReplyFieldButton:  cmp.Or(r.ButtonText, r.ButtonPayload, r.ButtonID),
		campaigns.ReplyFieldListRow: r.ListRowID,
	}
}

// FollowupOf is one follow-up to render (Payload): the run the reply answers and its
// campaign, the rule that matched, the follow-up's entry and the recipient's audience row, the
// reply, the recipient's audience columns (the values the run's send carried,
// campaigns.OnReply.PickColumns; a column missing from it renders as an empty column), and
// when the follow-up is due (the reply's time plus the rule's delay; zero: not said, as for
// campaign plan's samples).
type FollowupOf struct {
	Run      ledger.Run
	Def      *campaigns.Definition
	Rule     *campaigns.ReplyRule
	Addr     ledger.Address
	Row      int
	Reply    Reply
	Audience map[string]string
	Due      time.Time
}

// Payload returns the send payload of a rule's follow-up: a session message rendered from the
// recipient's audience columns and the reply's fields (ReplyColumns), with the rule's template
// as its fallback when the window has closed, or the template alone.
//
// A follow-up with a delay (and a due time) is a send the campaign makes later, not an answer
// in the conversation: it carries the campaign's send hours, in the recipient's zone as the
// campaign's sends read it (the audience's time zone column the run's send carried, else the
// number's prefix, else the campaign's zone) or the send hours' own zone, and an expiry of the
// campaign's expire_after counted from when it is due. The worker holds it until its send
// hours open and skips it expired after that (campaigns.CheckTime); SendAt says when its task
// is due. A follow-up without a delay answers the customer's reply at once, whatever the send
// hours: the customer is writing now.
func Payload(f FollowupOf) (campaigns.SendPayload, error) {
	run, def, rule, addr, row, r, audience := f.Run, f.Def, f.Rule, f.Addr, f.Row, f.Reply, f.Audience
	cols := make(map[string]string, len(audience)+3)
	for _, c := range def.OnReply.Columns() {
		cols[c] = audience[c]
	}
	maps.Copy(cols, ReplyColumns(r))
	p := campaigns.SendPayload{Run: addr.Run, To: addr.Recipient, Bucket: addr.Bucket, Row: row, Campaign: run.Campaign,
		Sender: run.Sender, Delivery: string(run.Delivery), Rate: def.Rate, Category: Category(def, rule),
		ConfirmsOptOut: rule.Suppress}
	if rule.DelayDuration() > 0 && !f.Due.IsZero() {
		t, err := campaigns.NewTiming(def, f.Due, nil)
		if err != nil {
			return p, err
		}
		// Its skip reason is SendAt's to say, from what the payload carries.
		t.Apply(&p, campaigns.Row{Cols: audience, Recipient: addr.Recipient}, f.Due)
	}
	if rule.Template != nil {
		p.Template = rule.Template.Name
		p.Language = cmp.Or(rule.Template.Language, def.Template.Language)
		rd, err := campaigns.NewRenderer(&campaigns.Definition{Parameters: rule.Parameters})
		if err != nil {
			return p, err
		}
		if p.Params, err = rd.Render(cols); err != nil {
			return p, err
		}
	}
	if !rule.Message.IsZero() {
		content, err := MessageOf(rule)
		if err != nil {
			return p, err
		}
		sr, err := campaigns.NewSessionRenderer(content)
		if err != nil {
			return p, err
		}
		if p.Session, err = sr.Render(cols); err != nil {
			return p, err
		}
		p.Kind = campaigns.KindSession
	}
	return p, nil
}

// SendAt returns when the follow-up payload p, due at due, may be sent: due, or the opening
// of the send hours it carries (Payload) when they are closed then; expired reports that they
// open only after its expiry (it is written skipped(expired), as a campaign's recipient is
// planned). The worker checks them again when the task runs.
func SendAt(p campaigns.SendPayload, due time.Time) (at time.Time, expired bool) {
	expired, wait := campaigns.CheckTime(p, due)
	return due.Add(wait), expired
}

// MessageOf decodes a rule's session message. A key a session message does not declare is an
// error (*campaigns.UnknownKeysError), as campaign validation reports it: a follow-up with one
// is skipped (SkipRender) rather than sent without the part the key meant.
func MessageOf(rule *campaigns.ReplyRule) (connectly.SessionContent, error) {
	c, err := rule.Message.Content()
	if err != nil {
		return c, fmt.Errorf("on_reply rule %s: %w", rule.ID(), err)
	}
	return c, nil
}
