package ledger

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// Follow-ups: what a campaign's on_reply rules send after a recipient's reply.
//
// Each rule of a run has a follow-up run, FollowupRun(run, rule) ("RUN~RULE"): a run of its
// own, created by its first entry, whose entries (one per recipient, at most) go through the
// same claim, finish and delivery scripts as a campaign's and whose messages carry its
// address as callbackData, so their delivery events and the replies to them land in its
// statistics. It is never marked expanded and so never completes. Its keys all share its own
// hash tag; the entry, its task payload and its place in the run's outbox are written by one
// script (lua/followup.lua), exactly once per (run, recipient, rule).
//
// The task itself lives in asynq's keys, which another script cannot write on Redis Cluster.
// So the receiver writes the task after the entry, with the deterministic task id
// Ledger.TaskID(follow-up run, recipient), then takes the entry out of the outbox
// (FollowupQueued). A crash between the two leaves the entry in the outbox, where a sweep
// (FollowupOutbox) finds it and writes the task again; a task written twice is harmless, as
// the claim sends an entry once.

//go:embed lua/followup.lua
var followupLua string

// followupCmd creates one follow-up entry. Its KEYS, ARGV and reply are documented at the top
// of lua/followup.lua.
var followupCmd = redis.NewScript(luaLib + followupLua)

//go:embed lua/followup_forget.lua
var followupForgetLua string

// followupForgetCmd takes an idle follow-up run out of the sweep's registry. Its KEYS, ARGV and
// reply are documented at the top of lua/followup_forget.lua.
var followupForgetCmd = redis.NewScript(followupForgetLua)

// FollowupIdle is how long a follow-up run with an empty outbox stays in the sweep's registry
// after its last new entry. It only has to outlast the step between registering a run and
// writing its entry; a later entry registers the run again.
const FollowupIdle = time.Hour

//go:embed lua/once_campaign.lua
var onceCampaignLua string

// onceCampaignCmd gives a campaign-scoped follow-up to one run. Its KEYS, ARGV and reply are
// documented at the top of lua/once_campaign.lua.
var onceCampaignCmd = redis.NewScript(onceCampaignLua)

//go:embed lua/tag.lua
var tagLua string

// tagCmd adds a tag to a recipient's tags in a run. Its KEYS, ARGV and reply are documented at
// the top of lua/tag.lua.
var tagCmd = redis.NewScript(tagLua)

// followupSep separates a run id from a rule id in a follow-up run's id. Run ids are made of a
// campaign id, a time and letters and digits, and rule ids of [a-z0-9_-]: neither holds it.
const followupSep = "~"

// FollowupRun returns the id of the follow-up run of a run's rule.
func FollowupRun(run, rule string) string { return run + followupSep + rule }

// FollowupOf returns the run and rule of a follow-up run's id; ok is false for any other id.
func FollowupOf(id string) (run, rule string, ok bool) {
	i := strings.LastIndex(id, followupSep)
	if i <= 0 || i == len(id)-1 {
		return "", "", false
	}
	return id[:i], id[i+1:], true
}

// Followup is one follow-up entry to create.
type Followup struct {
	// Parent is the run replied to; Rule the rule's id.
	Parent ParentRun
	Rule   string
	// Recipient is the entry's ledger key in the parent run (E.164 or "bsuid:<id>").
	Recipient string
	// Row is the recipient's audience row in the parent run (0 when unknown).
	Row int
	// Payload is the task payload to store until the task is written.
	Payload []byte
	// Skip, when set, writes the entry skipped with this reason and no task (e.g. suppressed).
	Skip string
	// Queue is the follow-up run's send queue: its tasks', and so its resends' and `run
	// show`'s. A follow-up is queued by its own category, not its parent's
	// (conversation.Followups chooses it); "" leaves the follow-up run's queue as it is, or
	// empty for a new one.
	Queue string
}

// ParentRun is what a follow-up run copies from the run replied to. Its delivery policy is
// the parent's, unknown.resend_after included (ResendAfter), so a follow-up left unknown is
// sent once more as the parent's recipients are (resend.go).
type ParentRun struct {
	ID, Campaign, Template, Language, Sender, Definition, Audience string
	Delivery                                                       Delivery
	ResendAfter                                                    time.Duration
	Version, Buckets                                               int
}

// FollowupVerdict says what CreateFollowup did.
type FollowupVerdict int

// Verdicts of CreateFollowup.
const (
	// FollowupQueuedBefore: the entry existed and its task was written; nothing to do.
	FollowupQueuedBefore FollowupVerdict = iota
	// FollowupCreated: the entry is new; write its task.
	FollowupCreated
	// FollowupPending: the entry existed and its task may not have been written; write it
	// (Payload is the one stored first).
	FollowupPending
	// FollowupSkipped: the entry is new and skipped (Followup.Skip); no task.
	FollowupSkipped
)

// FollowupResult is CreateFollowup's answer.
type FollowupResult struct {
	Verdict FollowupVerdict
	// Run is the follow-up run's id; Address the entry's address in it (its callbackData).
	Run     string
	Address Address
	// Payload is the stored payload, for FollowupPending.
	Payload []byte
}

// FollowupAddress returns the address of recipient's entry in the follow-up run of (run,
// rule), given the parent run's bucket count.
func FollowupAddress(run, rule, recipient string, buckets int) Address {
	return AddressIn(FollowupRun(run, rule), recipient, max(1, buckets))
}

// CreateFollowup creates the entry of f, once: a second call for the same (run, recipient,
// rule), from a retried webhook or another receiver replica, changes nothing and says whether
// the task may still have to be written. The follow-up run is registered for the outbox sweep
// first, so a crash at any point leaves nothing the sweep cannot find. The follow-up run's
// queue (f.Queue) and resend policy (Parent.ResendAfter) are written on every call, so a
// follow-up run created by an earlier version, with its parent's queue and no resend policy,
// takes them with its next entry; its other fields are written once, with its first entry.
func (l *Ledger) CreateFollowup(ctx context.Context, f Followup) (FollowupResult, error) {
	p := f.Parent
	if p.ID == "" || f.Rule == "" || f.Recipient == "" {
		return FollowupResult{}, errors.New("ledger: create follow-up: run, rule and recipient are required")
	}
	run := FollowupRun(p.ID, f.Rule)
	addr := FollowupAddress(p.ID, f.Rule, f.Recipient, p.Buckets)
	now := l.nowMS()
	if err := l.rdb.ZAdd(ctx, rkeys.FollowupActive(), redis.Z{Score: float64(now), Member: run}).Err(); err != nil {
		return FollowupResult{}, fmt.Errorf("ledger: create follow-up in %s: %w", run, err)
	}
	field := f.Recipient
	if d, ok := digitField(f.Recipient); ok {
		field = d
	}
	keys := []string{rkeys.Run(run), rkeys.Counts(run), rkeys.Codes(run), rkeys.LedgerBucket(run, addr.Bucket),
		rkeys.FollowupOutbox(run), rkeys.FollowupDue(run)}
	resendAfter := ""
	if p.ResendAfter > 0 {
		// The scripts read the policy in the run hash (lua/lib.lua's track_unknown): only
		// such runs fill the resend set. The run is listed for the resend sweep as each
		// entry's task is written (ListFollowupResends).
		resendAfter = strconv.FormatInt(p.ResendAfter.Milliseconds(), 10)
	}
	args := []any{field, f.Row, f.Payload, now, f.Skip, f.Queue, resendAfter,
		"id", run, "campaign", p.Campaign, "status", string(RunRunning), "delivery", string(p.Delivery),
		"template", p.Template, "language", p.Language, "sender", p.Sender, "queue", f.Queue,
		"audience", p.Audience, "definition", p.Definition, "parent", p.ID, "version", p.Version,
		"buckets", max(1, p.Buckets), "created", now, "planned_to", 0, "queued_to", 0, "format", format2,
		"rule", f.Rule}
	v, err := scriptReply(followupCmd.Run(ctx, l.rdb, keys, args...), 2, "create follow-up in "+run)
	if err != nil {
		return FollowupResult{}, err
	}
	res := FollowupResult{Verdict: FollowupVerdict(replyInt(v[0])), Run: run, Address: addr}
	if res.Verdict == FollowupPending {
		res.Payload = []byte(replyString(v[1]))
	}
	return res, nil
}

// FollowupQueued records that the task of recipient's entry in follow-up run run exists: the
// entry leaves the outbox.
func (l *Ledger) FollowupQueued(ctx context.Context, run, recipient string) error {
	field := recipient
	if d, ok := digitField(recipient); ok {
		field = d
	}
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, rkeys.FollowupOutbox(run), field)
		p.ZRem(ctx, rkeys.FollowupDue(run), field)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger: follow-up queued in %s: %w", run, err)
	}
	return nil
}

// OutboxItem is a follow-up entry whose task may not exist.
type OutboxItem struct {
	Run       string
	Recipient string
	Payload   []byte
	Created   time.Time
}

// FollowupOutbox returns up to n entries, over every follow-up run, created before before and
// still in their run's outbox: a receiver died between the entry and its task. A run whose
// outbox is empty and that has had no new entry for FollowupIdle leaves the sweep's registry,
// so a sweep costs a round trip per recently active run, not per follow-up run ever made.
func (l *Ledger) FollowupOutbox(ctx context.Context, before time.Time, n int) ([]OutboxItem, error) {
	if err := l.migrateFollowupRuns(ctx); err != nil {
		return nil, err
	}
	runs, err := l.rdb.ZRange(ctx, rkeys.FollowupActive(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("ledger: follow-up outbox: %w", err)
	}
	var out []OutboxItem
	for _, run := range runs {
		if len(out) >= n {
			break
		}
		zs, err := l.rdb.ZRangeByScoreWithScores(ctx, rkeys.FollowupDue(run), &redis.ZRangeBy{
			Min: "-inf", Max: "(" + strconv.FormatInt(before.UnixMilli(), 10), Count: int64(n - len(out))}).Result()
		if err != nil {
			return nil, fmt.Errorf("ledger: follow-up outbox of %s: %w", run, err)
		}
		if len(zs) == 0 {
			if err := l.forgetIdleFollowup(ctx, run); err != nil {
				return nil, err
			}
			continue
		}
		fields := make([]string, len(zs))
		for i, z := range zs {
			fields[i], _ = z.Member.(string)
		}
		vals, err := l.rdb.HMGet(ctx, rkeys.FollowupOutbox(run), fields...).Result()
		if err != nil {
			return nil, fmt.Errorf("ledger: follow-up outbox of %s: %w", run, err)
		}
		for i, z := range zs {
			s, _ := vals[i].(string)
			if s == "" {
				continue
			}
			out = append(out, OutboxItem{Run: run, Recipient: recipientOf(fields[i]), Payload: []byte(s),
				Created: time.UnixMilli(int64(z.Score))})
		}
	}
	return out, nil
}

// forgetIdleFollowup takes run out of the sweep's registry when nothing at all waits in its
// outbox (not even an entry too recent for this sweep) and it has had no new entry for
// FollowupIdle.
func (l *Ledger) forgetIdleFollowup(ctx context.Context, run string) error {
	waiting, err := l.rdb.ZCard(ctx, rkeys.FollowupDue(run)).Result()
	if err == nil && waiting == 0 {
		cutoff := l.nowMS() - FollowupIdle.Milliseconds()
		err = followupForgetCmd.Run(ctx, l.rdb, []string{rkeys.FollowupActive()}, run, cutoff).Err()
	}
	if err != nil {
		return fmt.Errorf("ledger: follow-up outbox of %s: %w", run, err)
	}
	return nil
}

// migrateFollowupRuns moves the runs of the registry kept before FollowupActive (a plain set)
// into FollowupActive, registered now, and deletes it. A run added twice keeps its newer
// score; the set is gone after the first sweep.
func (l *Ledger) migrateFollowupRuns(ctx context.Context) error {
	old, err := l.rdb.SMembers(ctx, rkeys.FollowupRunsV1()).Result()
	if err == nil && len(old) > 0 {
		zs := make([]redis.Z, len(old))
		for i, run := range old {
			zs[i] = redis.Z{Score: float64(l.nowMS()), Member: run}
		}
		if err = l.rdb.ZAddNX(ctx, rkeys.FollowupActive(), zs...).Err(); err == nil {
			err = l.rdb.Del(ctx, rkeys.FollowupRunsV1()).Err()
		}
	}
	if err != nil {
		return fmt.Errorf("ledger: follow-up outbox: registry: %w", err)
	}
	return nil
}

// OncePerCampaign gives the follow-up of a campaign's rule to a recipient in one run only:
// true when run owns it (the first to ask, or the same run asking again).
func (l *Ledger) OncePerCampaign(ctx context.Context, campaign, rule, recipient, run string) (bool, error) {
	holder, err := l.ClaimOncePerCampaign(ctx, campaign, rule, recipient, run, "")
	return holder == run, err
}

// ClaimOncePerCampaign is OncePerCampaign naming the run that owns the follow-up (run, or the
// other run that does). With from set, a follow-up held by run from passes to run: the caller
// has seen from's follow-up end without a message going out (FollowupGaveBack). The slot is
// given back so, by the next reply that asks for it, rather than when the follow-up ends: the
// follow-up's outcome and the slot are in different hash slots, so no one script writes both,
// and nothing is left to do after a crash between the two; the take-over only happens while
// from still holds the slot, so two receivers doing it at once give it to one run.
func (l *Ledger) ClaimOncePerCampaign(ctx context.Context, campaign, rule, recipient, run, from string) (string, error) {
	holder, err := onceCampaignCmd.Run(ctx, l.rdb, []string{rkeys.FollowupOnce(campaign, rule)}, recipient, run, from).Text()
	if err != nil {
		return "", fmt.Errorf("ledger: once per campaign %s/%s: %w", campaign, rule, err)
	}
	return holder, nil
}

// OnceFollowup returns recipient's entry in the follow-up run of (run, rule): the follow-up
// that holds a once_per: campaign slot for run; ok is false when there is none (yet).
func (l *Ledger) OnceFollowup(ctx context.Context, run, rule, recipient string) (Entry, bool, error) {
	fr, err := l.GetRun(ctx, FollowupRun(run, rule))
	if errors.Is(err, ErrRunNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	return l.Entry(ctx, AddressIn(fr.ID, recipient, max(1, fr.Buckets)))
}

// FollowupGaveBack reports whether a follow-up entry ended without a message going out, so
// that its once_per: campaign slot goes to the next run a reply asks for it: skipped, for any
// reason, or failed with no message id (Connectly refused the request; a request whose fate
// is not known is recorded unknown, never failed). One failed after Connectly accepted it
// (its delivery failed) keeps the slot: a message went.
func FollowupGaveBack(e Entry) bool {
	return e.State == Skipped || (e.State == Failed && e.MessageID == "")
}

// Tag adds a tag to recipient's tags in run (an on_reply rule's tag:). A recipient keeps every
// tag rules gave them; adding one already there changes nothing.
func (l *Ledger) Tag(ctx context.Context, run, recipient, tag string) error {
	if tag == "" || strings.Contains(tag, ",") {
		return fmt.Errorf("ledger: tag %q: want a non-empty tag without commas", tag)
	}
	if err := tagCmd.Run(ctx, l.rdb, []string{rkeys.Tags(run)}, recipient, tag).Err(); err != nil {
		return fmt.Errorf("ledger: tag in %s: %w", run, err)
	}
	return nil
}

// Tags returns the tags recorded in run, by recipient, each recipient's sorted.
func (l *Ledger) Tags(ctx context.Context, run string) (map[string][]string, error) {
	m, err := l.rdb.HGetAll(ctx, rkeys.Tags(run)).Result()
	if err != nil {
		return nil, fmt.Errorf("ledger: tags of %s: %w", run, err)
	}
	out := make(map[string][]string, len(m))
	for r, v := range m {
		if t := splitTags(v); len(t) > 0 {
			out[r] = t
		}
	}
	return out, nil
}

// RecipientTags returns recipient's tags in run, sorted; none when rules gave them none.
func (l *Ledger) RecipientTags(ctx context.Context, run, recipient string) ([]string, error) {
	v, err := l.rdb.HGet(ctx, rkeys.Tags(run), recipient).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: tags of %s in %s: %w", recipient, run, err)
	}
	return splitTags(v), nil
}

// splitTags reads a tags value of lua/tag.lua: tags joined by commas (one tag, as a run
// recorded before recipients kept several, reads as itself).
func splitTags(v string) []string {
	var out []string
	for _, t := range strings.Split(v, ",") {
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

// NotePausedFollowup lists run in FollowupsPaused when it is a follow-up run (a no-op for any
// other run). Pause writes it before the pause; Finish after the burst pause it reports; and
// the worker again for every follow-up it holds because its run is paused, so a listing lost
// to a crash or a race comes back within a hold. A listed run that is running stays listed
// (it may be about to pause) and is not reported; one cancelled or gone is dropped.
func (l *Ledger) NotePausedFollowup(ctx context.Context, run string) error {
	if _, _, ok := FollowupOf(run); !ok {
		return nil
	}
	if err := l.rdb.ZAddNX(ctx, rkeys.FollowupsPaused(), redis.Z{Score: float64(l.nowMS()), Member: run}).Err(); err != nil {
		return fmt.Errorf("ledger: list paused follow-up run %s: %w", run, err)
	}
	return nil
}

// PausedFollowups returns the paused follow-up runs of run (RUN~RULE for each rule whose
// follow-ups a run-stopping answer, or an operator, paused), or of every run when run is "".
// Listed runs that are cancelled or gone are dropped from the list as they are found; running
// ones are left listed, unreported (NotePausedFollowup).
func (l *Ledger) PausedFollowups(ctx context.Context, run string) ([]Run, error) {
	ids, err := l.rdb.ZRange(ctx, rkeys.FollowupsPaused(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("ledger: paused follow-up runs: %w", err)
	}
	var out []Run
	for _, id := range ids {
		parent, _, ok := FollowupOf(id)
		if !ok || (run != "" && parent != run) {
			continue
		}
		r, err := l.GetRun(ctx, id)
		switch {
		case errors.Is(err, ErrRunNotFound) || (err == nil && (r.Status == RunCancelled || r.Status == RunCompleted)):
			l.rdb.ZRem(ctx, rkeys.FollowupsPaused(), id)
		case err != nil:
			return nil, err
		case r.Status == RunPaused:
			out = append(out, r)
		}
	}
	return out, nil
}
