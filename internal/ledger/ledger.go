package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// ErrRunExists is wrapped by CreateRun when the run id is taken.
var ErrRunExists = errors.New("run already exists")

// ErrRunNotFound is wrapped by GetRun and the counters when no run has the id.
var ErrRunNotFound = errors.New("run not found")

// ErrRunUnlisted is wrapped by CreateRun when the run was stored but its listing (ListRun:
// the run lists and the set of runs that resend unknown recipients, in other cluster slots)
// could not be written: the run exists, and ListRun, which every expansion step of the run
// calls, writes the listing again.
var ErrRunUnlisted = errors.New("run stored but not listed")

// Ledger reads and changes runs and their recipient entries in Redis.
type Ledger struct {
	rdb redis.UniversalClient
	now func() time.Time
	// formats remembers each run's entry format (format.go).
	formats sync.Map
	// burstSample and burstLimit configure burst detection (see SetBurst).
	burstSample int
	burstLimit  int
	// taskIDs is the deployment's task id key once read (TaskIDs).
	taskIDs atomic.Pointer[TaskIDs]
}

// SetBurst turns on burst detection: when one permanent code accounts for more than share of
// the last sample outcomes of a run, the outcome that crosses the line pauses the run.
// sample 0 turns it off. Call it before use.
func (l *Ledger) SetBurst(sample int, share float64) {
	l.burstSample = max(0, sample)
	l.burstLimit = int(float64(sample) * share)
}

// New returns a Ledger on rdb. now defaults to time.Now.
func New(rdb redis.UniversalClient, now func() time.Time) *Ledger {
	if now == nil {
		now = time.Now
	}
	return &Ledger{rdb: rdb, now: now}
}

func (l *Ledger) nowMS() int64 { return l.now().UnixMilli() }

// Run is a run's metadata as stored in its hash.
type Run struct {
	ID       string
	Campaign string
	Status   RunStatus
	Delivery Delivery
	// Template, Language, Sender and Queue are what the run sends with.
	Template string
	Language string
	Sender   string
	Queue    string
	// Audience names the audience file the run was expanded from.
	Audience string
	// Definition is the campaign file the run was started from.
	Definition string
	// Source is the content hash under which the campaign file a run of a file (Version 0)
	// was started from is kept (defstore.Store.KeepFile): its continuations, retries and
	// follow-ups read that, not the file as it is now. "" for runs of a submitted version,
	// and for runs created before files were kept.
	Source string
	// AudienceFP is the fingerprint of the audience file taken when the run was created
	// (expand's audience fingerprint: size, modification time and a hash of its first and
	// last blocks); every later expansion step checks the file still has it. "" when none was
	// taken (runs created before fingerprints).
	AudienceFP string
	// Parent is the run this one retries, if any.
	Parent string
	// Picked is the number of recipients a retry run sends to again, kept in its pick set
	// (PickSet); 0 for every other run.
	Picked int
	// RetriedBy are the retry runs started from this run, oldest first (MarkRetry).
	RetriedBy []RetryMark
	// Version is the submitted campaign version the run was started from (0: started from a
	// file with campaign send).
	Version int
	// Buckets is the number of ledger buckets (see BucketOf).
	Buckets int
	// ResendAfter, when set, is the quiet period after which a recipient still unknown, with
	// no delivery event, is sent once more (the campaign's unknown.resend_after; resend.go).
	ResendAfter time.Duration
	// Total is the number of audience rows; valid once Expanded.
	Total int
	// Rows is the number of audience rows as read when the run was created, before its
	// expansion has read them all: what a report of a run still expanding counts toward. 0
	// when not known (a retry run counts its Picked; a run created before Herald kept it).
	Rows     int
	Expanded bool
	// PlannedTo and QueuedTo are the expansion cursors, in audience rows.
	PlannedTo   int
	QueuedTo    int
	PauseReason string
	// Followups is an operator's hold on the follow-ups of the run once completed
	// (PauseFollowups, CancelFollowups; FollowupsGo when none), FollowupsReason its reason.
	Followups       FollowupsHold
	FollowupsReason string
	// Waiting says why sends of a running run wait (e.g. "daily tier"), until WaitingUntil;
	// both are stale once WaitingUntil has passed.
	Waiting      string
	WaitingUntil time.Time
	Created      time.Time
	Finished     time.Time
}

// CreateRun stores a new run with status running, and lists it (ListRun). It returns an
// error wrapping ErrRunExists when another call took the id, and one wrapping ErrRunUnlisted
// when the run was stored but not listed.
func (l *Ledger) CreateRun(ctx context.Context, r Run) error {
	return l.CreateRetryRun(ctx, r, nil)
}

// CreateRetryRun stores a new run as CreateRun does and, in the same step, its pick set: the
// recipients it sends to (a retry run's, read back with PickSet; none for any other run).
// r.Picked is set from picked.
//
// The call creates the run under a token of its own, which the run keeps: the create script
// sent again after its reply was lost (go-redis does so on a dropped connection) finds the
// run its first run created and answers created, so a call never reads its own run as taken.
func (l *Ledger) CreateRetryRun(ctx context.Context, r Run, picked []string) error {
	if r.ID == "" || r.Buckets < 1 {
		return fmt.Errorf("ledger: create run: id and buckets are required")
	}
	r.Picked = len(picked)
	if r.Created.IsZero() {
		r.Created = l.now()
	}
	// The hash keeps milliseconds: the listing's scores are written from the same value
	// whether they come from this call or from ListRun of the run as read back.
	r.Created = time.UnixMilli(r.Created.UnixMilli())
	fields := []any{"id", r.ID, "campaign", r.Campaign, "status", string(RunRunning), "delivery", string(r.Delivery),
		"template", r.Template, "language", r.Language, "sender", r.Sender, "queue", r.Queue,
		"audience", r.Audience, "definition", r.Definition, "parent", r.Parent, "version", r.Version, "buckets", r.Buckets,
		"created", r.Created.UnixMilli(), "planned_to", 0, "queued_to", 0, "format", format2}
	if r.ResendAfter > 0 {
		// The scripts read the policy here: only such runs fill the resend set.
		fields = append(fields, "resend_after", r.ResendAfter.Milliseconds())
	}
	for _, f := range [][2]string{{"source", r.Source}, {"audience_fp", r.AudienceFP}} {
		if f[1] != "" {
			fields = append(fields, f[0], f[1])
		}
	}
	if r.Picked > 0 {
		fields = append(fields, "picked", r.Picked)
	}
	if r.Rows > 0 {
		fields = append(fields, "rows", r.Rows)
	}
	args := make([]any, 0, 2+len(fields)+len(picked))
	args = append(args, NewClaimToken(), len(fields))
	args = append(args, fields...)
	for _, p := range picked {
		args = append(args, p)
	}
	n, err := createRunCmd.Run(ctx, l.rdb, []string{rkeys.Run(r.ID), rkeys.RunPicked(r.ID)}, args...).Int()
	if err != nil {
		return fmt.Errorf("ledger: create run %s: %w", r.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("ledger: create run %s: %w", r.ID, ErrRunExists)
	}
	r.Status = RunRunning
	if err := l.ListRun(ctx, r); err != nil {
		return fmt.Errorf("%w: %w", ErrRunUnlisted, err)
	}
	return nil
}

// ListRun lists a run where `run ls`, the resend sweep and the run gauges find it: in the run
// list and its campaign's (by creation time), its campaign in the campaign list (by its latest
// run), when it resends unknown recipients (ResendAfter) in the set the sweep reads, and while
// its Status is running or paused in the index of runs not yet ended (active.go). Those keys
// live in other cluster slots than the run's, so they cannot be written by the script that
// creates the run: CreateRun lists it right after, and every expansion step of the run lists
// it again, so a listing lost to an error or a crash in between is written once the run
// expands. Listing a run again changes nothing: a listed run keeps its place, and a
// campaign's latest run is never moved back to an older one.
func (l *Ledger) ListRun(ctx context.Context, r Run) error {
	created := float64(r.Created.UnixMilli())
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAddNX(ctx, rkeys.Runs(), redis.Z{Score: created, Member: r.ID})
		p.ZAddNX(ctx, rkeys.CampaignRuns(r.Campaign), redis.Z{Score: created, Member: r.ID})
		p.ZAddGT(ctx, rkeys.Campaigns(), redis.Z{Score: created, Member: r.Campaign})
		if r.ResendAfter > 0 {
			p.SAdd(ctx, rkeys.ResendRuns(), r.ID)
		}
		if r.Status.Active() {
			p.ZAddNX(ctx, rkeys.ActiveRuns(), redis.Z{Score: created, Member: r.ID})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger: list run %s: %w", r.ID, err)
	}
	return nil
}

// GetRun reads a run's metadata. It returns an error wrapping ErrRunNotFound when absent.
func (l *Ledger) GetRun(ctx context.Context, id string) (Run, error) {
	m, err := l.rdb.HGetAll(ctx, rkeys.Run(id)).Result()
	if err != nil {
		return Run{}, fmt.Errorf("ledger: read run %s: %w", id, err)
	}
	if len(m) == 0 {
		return Run{}, fmt.Errorf("ledger: run %s: %w", id, ErrRunNotFound)
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	ms := func(s string) time.Time {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n == 0 {
			return time.Time{}
		}
		return time.UnixMilli(n)
	}
	return Run{
		ID: id, Campaign: m["campaign"], Status: RunStatus(m["status"]), Delivery: Delivery(m["delivery"]),
		Template: m["template"], Language: m["language"], Sender: m["sender"], Queue: m["queue"],
		Audience: m["audience"], Definition: m["definition"], Source: m["source"], AudienceFP: m["audience_fp"],
		Parent: m["parent"], Picked: atoi(m["picked"]), RetriedBy: parseRetryMarks(m["retried_by"]), Version: atoi(m["version"]),
		Buckets: atoi(m["buckets"]), Total: atoi(m["total"]), Rows: atoi(m["rows"]), ResendAfter: time.Duration(atoi(m["resend_after"])) * time.Millisecond,
		Expanded: m["expanded"] == "1", PlannedTo: atoi(m["planned_to"]), QueuedTo: atoi(m["queued_to"]),
		PauseReason: m["pause_reason"], Followups: FollowupsHold(m["followups"]), FollowupsReason: m["followups_reason"],
		Waiting: m["waiting"], WaitingUntil: ms(m["waiting_until"]),
		Created: ms(m["created"]), Finished: ms(m["finished"]),
	}, nil
}

// RecentRuns returns up to n run ids, newest first; with campaign set, only that campaign's.
func (l *Ledger) RecentRuns(ctx context.Context, campaign string, n int) ([]string, error) {
	key := rkeys.Runs()
	if campaign != "" {
		key = rkeys.CampaignRuns(campaign)
	}
	ids, err := l.rdb.ZRevRange(ctx, key, 0, int64(n-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("ledger: list runs: %w", err)
	}
	return ids, nil
}

// CampaignSummary is a campaign as seen through its runs. A campaign with no run yet (a
// submitted one, in campaign ls) has no last run: its fields are left out of JSON rather than
// written as "" and the year 1.
type CampaignSummary struct {
	Campaign string    `json:"campaign"`
	Runs     int64     `json:"runs"`
	LastRun  string    `json:"last_run,omitempty"`
	LastAt   time.Time `json:"last_run_at,omitzero"`
}

// Campaigns lists up to n campaigns that have runs, most recently run first.
func (l *Ledger) Campaigns(ctx context.Context, n int) ([]CampaignSummary, error) {
	zs, err := l.rdb.ZRevRangeWithScores(ctx, rkeys.Campaigns(), 0, int64(n-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("ledger: list campaigns: %w", err)
	}
	out := make([]CampaignSummary, 0, len(zs))
	for _, z := range zs {
		id, _ := z.Member.(string)
		cs := CampaignSummary{Campaign: id, LastAt: time.UnixMilli(int64(z.Score)).UTC()}
		if cs.Runs, err = l.rdb.ZCard(ctx, rkeys.CampaignRuns(id)).Result(); err != nil {
			return nil, fmt.Errorf("ledger: list campaigns: %w", err)
		}
		if last, err := l.RecentRuns(ctx, id, 1); err == nil && len(last) == 1 {
			cs.LastRun = last[0]
		}
		out = append(out, cs)
	}
	return out, nil
}

// Verdict is the answer of Claim.
type Verdict string

const (
	VerdictSend      Verdict = "send"
	VerdictDone      Verdict = "done"
	VerdictPaused    Verdict = "paused"
	VerdictCancelled Verdict = "cancelled"
	VerdictUnknown   Verdict = "unknown"
	// VerdictWithdrawn: the run is cancelled, and the entry, queued for a retry after an
	// answer that may follow a message that went out (ReleaseRetryMaybeSent), is now unknown
	// with that answer's code (Detail), never skipped: its retry will not be sent.
	VerdictWithdrawn Verdict = "withdrawn"
	// VerdictFound is VerdictUnknown in a run that resends unknown recipients: the earlier
	// claim is still in place, and the caller settles it with Finish (State Unknown, Code
	// CodeClaimFound, Attempt the Claim's Attempts, Payload the task's), so the resend keeps
	// the task's payload.
	VerdictFound   Verdict = "found"
	VerdictNoRun   Verdict = "norun"
	VerdictNoEntry Verdict = "noentry"
	// VerdictNotClaimed is never returned by Claim: callers use it for "no claim was made".
	VerdictNotClaimed Verdict = ""
)

// CodeClaimFound is the code of an entry made unknown because a claim from an earlier attempt
// was found (the worker died mid-request, or its answer never came).
const CodeClaimFound = "CLAIM_FOUND"

// Claim is the result of claiming a recipient before its send.
type Claim struct {
	Verdict Verdict
	// State is the entry's state after the claim.
	State State
	// Attempts counts this attempt when Verdict is VerdictSend.
	Attempts int
	// Detail is the pause reason for VerdictPaused, else the entry's last code.
	Detail string
}

// Claim claims a recipient of a run before its send request, with a token of its own (see
// ClaimWith). See claimCmd for the verdicts.
func (l *Ledger) Claim(ctx context.Context, a Address, d Delivery) (Claim, error) {
	return l.ClaimWith(ctx, a, d, NewClaimToken())
}

// ClaimWith is Claim under the caller's token (NewClaimToken), which the claim leaves in the
// entry. A claim whose answer never came (the connection reset, a failover, a read timeout)
// may have run all the same: run again with the same token it answers VerdictSend again
// without counting another attempt, and Finish with the token and no Attempt gives it back
// (Outcome.Token) while the entry still holds it. Another token finds it as an earlier
// attempt's claim.
func (l *Ledger) ClaimWith(ctx context.Context, a Address, d Delivery, token string) (Claim, error) {
	if !validToken(token) {
		return Claim{}, fmt.Errorf("ledger: claim in run %s: malformed token %q", a.Run, token)
	}
	field, err := l.field(ctx, a.Run, a.Recipient)
	if err != nil {
		return Claim{}, err
	}
	keys, args := l.claimArgs(a, field, d, token)
	return l.claimed(ctx, a.Run, claimCmd.Run(ctx, l.rdb, keys, args...))
}

// NewClaimToken returns a token for ClaimWith: 12 random letters and digits, unique among the
// attempts at one recipient (it lives in the entry only while it is submitting).
func NewClaimToken() string {
	const digits = "0123456789abcdefghijklmnopqrstuv"
	var b [12]byte
	n := rand.Uint64()
	for i := range b {
		b[i] = digits[n&31]
		n >>= 5
	}
	return string(b[:])
}

// validToken reports whether t can be a claim token: 1 to 32 ASCII letters and digits. It
// sits last in the entry, where a message id goes, so it must not look like a packed one
// (format.go), and a token made of such characters cannot.
func validToken(t string) bool {
	if len(t) == 0 || len(t) > 32 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// ClaimCmd is a claim queued in a pipeline; read it with Result after the pipeline ran.
type ClaimCmd struct {
	err   error // the claim could not be queued
	cmd   *redis.Cmd
	l     *Ledger
	runID string
	keys  []string
	args  []any
}

// ClaimIn queues the same claim as ClaimWith in a pipeline, so it can share a round trip
// with other commands. Result falls back to a direct call only when Redis answered NOSCRIPT,
// in which case the claim did not run.
func (l *Ledger) ClaimIn(ctx context.Context, p redis.Pipeliner, a Address, d Delivery, token string) *ClaimCmd {
	if !validToken(token) {
		return &ClaimCmd{err: fmt.Errorf("ledger: claim in run %s: malformed token %q", a.Run, token)}
	}
	field, err := l.field(ctx, a.Run, a.Recipient)
	if err != nil {
		return &ClaimCmd{err: err}
	}
	keys, args := l.claimArgs(a, field, d, token)
	return &ClaimCmd{cmd: claimCmd.EvalSha(ctx, p, keys, args...), l: l, runID: a.Run, keys: keys, args: args}
}

// Result returns the claim.
func (c *ClaimCmd) Result(ctx context.Context) (Claim, error) {
	if c.err != nil {
		return Claim{}, c.err
	}
	if err := c.cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		return c.l.claimed(ctx, c.runID, claimCmd.Run(ctx, c.l.rdb, c.keys, c.args...))
	}
	return c.l.claimed(ctx, c.runID, c.cmd)
}

// LoadScripts loads the send-path scripts into Redis, for pipelined use.
func (l *Ledger) LoadScripts(ctx context.Context) error {
	for _, s := range []*redis.Script{claimCmd, finishCmd} {
		if err := s.Load(ctx, l.rdb).Err(); err != nil {
			return fmt.Errorf("ledger: load scripts: %w", err)
		}
	}
	return nil
}

func (l *Ledger) claimArgs(a Address, field string, d Delivery, token string) ([]string, []any) {
	policy := "amo"
	if d == AtLeastOnce {
		policy = "alo"
	}
	keys := []string{rkeys.Run(a.Run), rkeys.Counts(a.Run), rkeys.Codes(a.Run), rkeys.LedgerBucket(a.Run, a.Bucket),
		rkeys.History(a.Run, a.Bucket)}
	return keys, []any{field, policy, l.nowMS(), token}
}

// claimed reads a claim's reply. A claim that settled an earlier attempt's entry unknown may
// have completed the run (it was the last entry): the run then leaves the index of runs not
// yet ended.
func (l *Ledger) claimed(ctx context.Context, runID string, c *redis.Cmd) (Claim, error) {
	cl, err := parseClaim(runID, c)
	if err == nil && (cl.Verdict == VerdictUnknown || cl.Verdict == VerdictWithdrawn) {
		l.unlistEnded(ctx, runID)
		l.relistFollowup(ctx, runID)
	}
	return cl, err
}

func parseClaim(runID string, c *redis.Cmd) (Claim, error) {
	res, err := scriptReply(c, 4, "claim in run "+runID)
	if err != nil {
		return Claim{}, err
	}
	return Claim{Verdict: Verdict(replyString(res[0])), State: fromLetter[replyString(res[1])],
		Attempts: int(replyInt(res[2])), Detail: replyString(res[3])}, nil
}

// ReleaseMode says why a claim is given back without an outcome.
type ReleaseMode string

const (
	// ReleaseRetry: a transient failure; the attempt stays counted and the task retries.
	ReleaseRetry ReleaseMode = "retry"
	// ReleaseRetryMaybeSent: the same after an answer that may follow a message that went
	// out (a 5xx, or no answer after the request was written: connectly.OutcomeMaybeSent)
	// in an at-least-once run; counted as ReleaseRetry. Its history event (the mode's name)
	// marks the recipient as one that may hold the message: from then on, whatever would
	// skip it before its retry is sent (a cancel, a deleted task, a repair, a worker's own
	// skip) settles it unknown instead, with that answer's code and a history event
	// EventRetryWithdrawn saying why. It is never skipped: "skipped" says never sent. Nor is
	// it failed when its later attempts end on answers that say nothing went (a Failed
	// outcome that is not Permanent): it is unknown with that answer's code
	// (EventRetriesExhausted).
	ReleaseRetryMaybeSent ReleaseMode = "retry_maybe_sent"
	// ReleaseThrottle: a 429 or pacing; the attempt is given back.
	ReleaseThrottle ReleaseMode = "throttle"
	// ReleaseHold: the run was paused by this answer; the attempt is given back.
	ReleaseHold ReleaseMode = "hold"
	// ReleaseRequeue: the claim was given back unused, nothing requested and nothing
	// refused (a paced send that came late to its slot takes a fresh one; a claim whose
	// answer was lost goes back by its token); the attempt is given back and nothing is
	// counted.
	ReleaseRequeue ReleaseMode = "requeue"
)

// Outcome is the result of a claimed send.
type Outcome struct {
	// State is Accepted, Failed, Unknown or Skipped; or Queued to release the claim.
	State     State
	Code      string
	MessageID string
	// Mode is required when State is Queued.
	Mode ReleaseMode
	// Permanent marks a failure whose code counts towards burst detection. A Failed outcome
	// that is not permanent, of an entry retried after a maybe-sent answer, settles it unknown
	// instead (FinishResult.Exhausted); so does a permanent one without RequestFault
	// (FinishResult.RetryRefused).
	Permanent bool
	// RequestFault marks a Permanent failure that is a refusal of the request itself (the
	// number it names, the content it carries: connectly.Decision.RequestFault), which an
	// earlier attempt of the same request would have got too: an entry retried after a
	// maybe-sent answer fails with it. Any other permanent refusal of such an entry (an
	// opt-out, a closed window, Meta's per-user limit: something that may have come after the
	// attempt that may have sent) settles it unknown with that answer's code, its history
	// saying EventRetryRefused.
	RequestFault bool
	// Attempt, when set, is the attempt number the settling claim was given: the outcome
	// applies only while the entry still holds that claim.
	Attempt int
	// Payload is the send task's payload, given with an Unknown outcome: a run that resends
	// unknown recipients keeps it to build the resend task (without it the entry is never
	// resent).
	Payload []byte
	// Token, when set, is the token of the settling claim (ClaimWith): the outcome applies
	// only while the entry still holds that claim.
	Token string
	// WindowRefused, when set, is the code with which Connectly refused an earlier request of
	// the same claim as outside the customer service window (the session message, before its
	// fallback template went): the history records it (EventWindowRefused) before the outcome,
	// and an Accepted outcome (the fallback's) is counted in Counters.WindowRefusedFallback.
	WindowRefused string
	// OutsideWindow marks a Failed outcome of a session message Connectly refused as outside
	// the customer service window, no fallback template sent: counted in
	// Counters.WindowRefused.
	OutsideWindow bool
}

// EventRetryWithdrawn is the history outcome of a recipient retried after an answer that may
// follow a message that went out (ReleaseRetryMaybeSent) whose retry will not be sent (its run
// was cancelled, its task deleted, or a skip's reason: expired, window_closed, capped...): the
// recipient is unknown, with the code of that answer, never skipped. Its code is why, not an
// answer of Connectly's.
const EventRetryWithdrawn = "retry_withdrawn"

// EventRetriesExhausted is the history outcome of the last attempt of a recipient retried
// after an answer that may follow a message that went out (ReleaseRetryMaybeSent), when the
// attempts ran out on an answer that says nothing went (a Failed outcome, not Permanent: a
// 408, a refused connection): its code is that last answer, Connectly's. The recipient is
// unknown, with the code of the earlier maybe-sent answer, never failed: that attempt may
// have delivered the message, and a delivery event still settles it.
const EventRetriesExhausted = "retries_exhausted"

// EventRetryRefused is the history outcome of a recipient retried after an answer that may
// follow a message that went out (ReleaseRetryMaybeSent) whose later attempt Connectly refused
// for good for a reason that may have come after that answer (an opt-out, a closed window, a
// per-user limit of Meta's; not a refusal of the request itself, Outcome.RequestFault): its code is
// that refusal, Connectly's. The recipient is unknown with the code of the earlier maybe-sent
// answer, never failed: that attempt may have delivered the message, and a delivery event
// still settles it.
const EventRetryRefused = "retry_refused"

// EventWindowRefused is the history outcome of a session message Connectly refused as
// outside the customer service window while Herald's record said open, its fallback
// template then sent under the same claim (Outcome.WindowRefused); its code is Connectly's.
const EventWindowRefused = "window_refused"

// valid reports whether o is one Finish accepts: an end state of a send, or Queued with a
// known release mode. Anything else would move a claimed entry somewhere the state machine
// has no edge to (back to planned, or straight to delivered) or release it without counting.
func (o Outcome) valid() bool {
	switch o.State {
	case Accepted, Failed, Unknown, Skipped:
		return o.Mode == ""
	case Queued:
		return o.Mode == ReleaseRetry || o.Mode == ReleaseRetryMaybeSent || o.Mode == ReleaseThrottle || o.Mode == ReleaseHold ||
			o.Mode == ReleaseRequeue
	}
	return false
}

// FinishResult reports what Finish did.
type FinishResult struct {
	// Applied is false when the entry was not submitting (another attempt already finished it).
	Applied bool
	// RunCompleted is true when this outcome made every row of the run terminal.
	RunCompleted bool
	// PausedFor is the pause reason when this outcome paused the run for a burst of its code.
	PausedFor string
	// Withdrawn says a Skipped outcome settled the entry unknown instead: an earlier attempt
	// may have sent (ReleaseRetryMaybeSent), so its retry is withdrawn (EventRetryWithdrawn).
	Withdrawn bool
	// Exhausted says a Failed outcome that was not Permanent settled the entry unknown
	// instead: an earlier attempt may have sent (ReleaseRetryMaybeSent), and the retries that
	// ran out say nothing of it (EventRetriesExhausted). The entry records that earlier
	// answer's code.
	Exhausted bool
	// RetryRefused says a Permanent Failed outcome that was not a RequestFault settled the
	// entry unknown instead: an earlier attempt may have sent (ReleaseRetryMaybeSent), and the
	// refusal may have come after it (EventRetryRefused). The entry records that earlier
	// answer's code.
	RetryRefused bool
	// ResendWithdrawn says a Skipped outcome of an entry's one resend settled it unknown
	// instead, with the code it had before (its first message may have gone): the resend is
	// withdrawn (history resend_withdrawn with the skip's reason), and nothing new is counted.
	ResendWithdrawn bool
}

// Moved returns the state the entry moved to when the outcome asked for state: state, Unknown
// for a withdrawn skip or a failure that settled it unknown after a maybe-sent answer, "" when
// nothing was applied or nothing new is to be counted (a withdrawn resend, unknown as before).
func (r FinishResult) Moved(state State) State {
	switch {
	case !r.Applied, r.ResendWithdrawn:
		return ""
	case r.Withdrawn, r.Exhausted, r.RetryRefused:
		return Unknown
	}
	return state
}

// Finish records the outcome of a claimed send.
func (l *Ledger) Finish(ctx context.Context, a Address, o Outcome) (FinishResult, error) {
	runID, bucket := a.Run, a.Bucket
	if !o.valid() {
		return FinishResult{}, fmt.Errorf("ledger: finish: invalid outcome %+v", o)
	}
	letter := o.State.Letter()
	if strings.Contains(o.Code, "|") || strings.Contains(o.MessageID, "|") {
		return FinishResult{}, fmt.Errorf("ledger: finish: '|' in code or message id")
	}
	// These codes go in history events ("outcome:attempt:code:seconds", ';' between events)
	// that are read back (a maybe-sent retry's code, when it is withdrawn): their separators
	// are dropped, never the outcome.
	noSeparators := func(r rune) rune {
		if r == '|' || r == ':' || r == ';' {
			return -1
		}
		return r
	}
	if o.Mode == ReleaseRetryMaybeSent {
		o.Code = strings.Map(noSeparators, o.Code)
	}
	refused := strings.Map(noSeparators, o.WindowRefused)
	outside := ""
	if o.OutsideWindow && o.State == Failed {
		outside = "1"
	}
	keys := []string{rkeys.Run(runID), rkeys.Counts(runID), rkeys.Codes(runID), rkeys.LedgerBucket(runID, bucket),
		rkeys.Recent(runID), rkeys.History(runID, bucket), rkeys.Unknown(runID), rkeys.UnknownPayloads(runID)}
	permanent, fault := "0", "0"
	if o.Permanent {
		permanent = "1"
	}
	if o.Permanent && o.RequestFault {
		fault = "1"
	}
	attempt := ""
	if o.Attempt > 0 {
		attempt = strconv.Itoa(o.Attempt)
	}
	if o.Token != "" && !validToken(o.Token) {
		return FinishResult{}, fmt.Errorf("ledger: finish: malformed token %q", o.Token)
	}
	f, err := l.formatOf(ctx, runID)
	if err != nil {
		return FinishResult{}, err
	}
	var payload []byte
	if o.State == Unknown {
		payload = o.Payload
	}
	field := f.field(a.Recipient)
	res, err := scriptReply(finishCmd.Run(ctx, l.rdb, keys, field, letter, o.Code, f.messageID(o.MessageID), string(o.Mode), l.nowMS(),
		l.burstSample, l.burstLimit, permanent, attempt, resendMember(bucket, field), payload, o.Token, refused, outside, fault), 7,
		"finish in run "+runID)
	if err != nil {
		return FinishResult{}, err
	}
	out := FinishResult{Applied: replyInt(res[0]) == 1, RunCompleted: replyInt(res[1]) == 1, PausedFor: replyString(res[3]),
		Withdrawn: replyInt(res[4]) == 1, ResendWithdrawn: replyInt(res[4]) == 2, Exhausted: replyInt(res[5]) == 1,
		RetryRefused: replyInt(res[6]) == 1}
	if out.RunCompleted {
		l.unlist(ctx, runID)
	}
	if out.Applied && out.Moved(o.State) == Unknown {
		l.relistFollowup(ctx, runID)
	}
	if out.PausedFor != "" {
		// The burst paused a follow-up run: list it where its parent finds it. The outcome is
		// written whatever becomes of the listing (an error here would have it written
		// twice); the worker lists the run again as it holds the run's next follow-up.
		_ = l.NotePausedFollowup(ctx, runID)
	}
	return out, nil
}

// Pause pauses a running run with a reason. It reports whether this call paused it. A
// follow-up run ("RUN~RULE") is listed as paused first (FollowupsPaused), where `run show`
// and `run resume` of the run it follows find it: follow-up runs are not in the run list.
func (l *Ledger) Pause(ctx context.Context, runID, reason string) (bool, error) {
	if err := l.NotePausedFollowup(ctx, runID); err != nil {
		return false, err
	}
	prev, err := pauseCmd.Run(ctx, l.rdb, []string{rkeys.Run(runID)}, reason, l.nowMS(), NewClaimToken()).Text()
	if err != nil {
		return false, fmt.Errorf("ledger: pause run %s: %w", runID, err)
	}
	if prev == "" {
		return false, fmt.Errorf("ledger: pause run %s: %w", runID, ErrRunNotFound)
	}
	return prev == string(RunRunning), nil
}

// Entry reads one recipient's ledger entry; ok is false when the run has no such recipient.
func (l *Ledger) Entry(ctx context.Context, a Address) (e Entry, ok bool, err error) {
	v, ok, err := l.recipientField(ctx, a, rkeys.LedgerBucket(a.Run, a.Bucket), "entry")
	if err != nil || !ok {
		return Entry{}, false, err
	}
	e, err = decodeEntry(v)
	if err != nil {
		return Entry{}, false, err
	}
	return e, true, nil
}

// recipientField reads a's field in key, one of the bucket hashes of its run (its entry's or
// its history's); ok is false when the hash has none. what names the hash in errors.
func (l *Ledger) recipientField(ctx context.Context, a Address, key, what string) (v string, ok bool, err error) {
	field, err := l.field(ctx, a.Run, a.Recipient)
	if err != nil {
		return "", false, err
	}
	v, err = l.rdb.HGet(ctx, key, field).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("ledger: read %s in run %s: %w", what, a.Run, err)
	}
	return v, true, nil
}

// Counters are a run's counters.
type Counters struct {
	// States counts recipients (and skipped rows) per state; every state is present.
	States map[State]int64
	// Codes counts outcomes by "<state>:<code or reason>", e.g. "failed:ERROR_CODE_...",
	// "skipped:duplicate", and "retried:<code>" for transient failures that were retried.
	Codes map[string]int64
	// Attempts counts requests that reached Connectly or may have.
	Attempts int64
	// Retries counts transient failures that were retried.
	Retries int64
	// Throttled counts sends put back because of a 429 or pacing (no attempt used).
	Throttled int64
	// AcceptedAfterRetry counts recipients accepted on a second or later attempt.
	AcceptedAfterRetry int64
	// Resent counts at-least-once sends made after finding an earlier claim.
	Resent int64
	// ResentUnknown counts unknown recipients queued for their one resend after the
	// campaign's quiet period (unknown.resend_after), less those whose resend was withdrawn
	// before it made a request (the run cancelled, its task deleted, a skip, also at send
	// time); ResendWaiting those still waiting for it.
	ResentUnknown int64
	ResendWaiting int64
	// WindowRefused counts session messages Connectly refused as outside the customer service
	// window with no fallback template sent: failed, under Connectly's code (Codes) or the
	// code that says why no fallback could go (Outcome.OutsideWindow); or unknown, when an
	// earlier attempt may have sent the message (EventRetryRefused).
	WindowRefused int64
	// WindowRefusedFallback counts session messages Connectly refused as outside the customer
	// service window (Herald's record said open) whose fallback template then went and was
	// accepted under the same claim (Outcome.WindowRefused): counted with the accept, among
	// the "accepted:fallback" codes. The other accepted fallbacks went because Herald's record
	// said the window was closed.
	WindowRefusedFallback int64
}

// Sum adds up the per-state counts.
func (c Counters) Sum() int64 {
	var n int64
	for _, v := range c.States {
		n += v
	}
	return n
}

// Counters reads a run's counters.
func (l *Ledger) Counters(ctx context.Context, runID string) (Counters, error) {
	var counts, codes *redis.MapStringStringCmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		counts = p.HGetAll(ctx, rkeys.Counts(runID))
		codes = p.HGetAll(ctx, rkeys.Codes(runID))
		return nil
	})
	if err != nil {
		return Counters{}, fmt.Errorf("ledger: read counters of run %s: %w", runID, err)
	}
	c := Counters{States: make(map[State]int64, len(States)), Codes: map[string]int64{}}
	for _, s := range States {
		c.States[s] = 0
	}
	// The counts hash holds these counters beside one field per state.
	named := map[string]*int64{"attempts": &c.Attempts, "retries": &c.Retries, "throttled": &c.Throttled,
		"accepted_after_retry": &c.AcceptedAfterRetry, "resent": &c.Resent, "resent_unknown": &c.ResentUnknown,
		"resend_waiting": &c.ResendWaiting, "window_refused": &c.WindowRefused, "window_refused_fallback": &c.WindowRefusedFallback}
	for k, v := range counts.Val() {
		n, _ := strconv.ParseInt(v, 10, 64)
		if p, ok := named[k]; ok {
			*p = n
		} else {
			c.States[State(k)] = n
		}
	}
	for k, v := range codes.Val() {
		n, _ := strconv.ParseInt(v, 10, 64)
		if n != 0 {
			c.Codes[k] = n
		}
	}
	return c, nil
}
