// Package config loads Herald's configuration file and environment overrides, and validates
// them with errors that name the key, and the file, line and column of its value when the file
// set it. Secrets never live in the file: the API key, the webhook secret and the Redis
// password come from the environment or from files named in the config.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/heraldmsg/herald/internal/backoff"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/internal/sendpolicy"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/suggest"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/heraldmsg/herald/internal/yamlerr"
)

// Config is the whole configuration file.
type Config struct {
	Redis     Redis             `yaml:"redis"`
	Connectly Connectly         `yaml:"connectly"`
	Senders   []Sender          `yaml:"senders"`
	Windows   Windows           `yaml:"windows"`
	Worker    Worker            `yaml:"worker"`
	Retry     Retry             `yaml:"retry"`
	Errors    map[string]string `yaml:"errors"`
	StopRun   StopRun           `yaml:"stop_run"`
	Limits    Limits            `yaml:"limits"`
	Log       Log               `yaml:"log"`
	Webhooks  Webhooks          `yaml:"webhooks"`
	Scheduler Scheduler         `yaml:"scheduler"`
	Campaigns Campaigns         `yaml:"campaigns"`
	// Suppression says which sends a marketing-only opt-out stops.
	Suppression Suppression `yaml:"suppression"`

	// APIKey and WebhookSecret are resolved from the environment or the *_file keys.
	APIKey        string `yaml:"-"`
	WebhookSecret string `yaml:"-"`
}

type Redis struct {
	// URL is the Redis to use (env HERALD_REDIS_URL). Written in the file it must not hold a
	// password (Load refuses it); HERALD_REDIS_URL may. After Load it holds the password of
	// PasswordFile or HERALD_REDIS_PASSWORD: show it only through redisx.Redact.
	URL string `yaml:"url"`
	// PasswordFile names a file holding the Redis password (surrounding whitespace trimmed);
	// env HERALD_REDIS_PASSWORD wins over it. Default "": the URL's own, or none.
	PasswordFile string `yaml:"password_file"`
}

type Connectly struct {
	BaseURL           string   `yaml:"base_url"`
	BusinessID        string   `yaml:"business_id"`
	APIKeyFile        string   `yaml:"api_key_file"`
	WebhookSecretFile string   `yaml:"webhook_secret_file"`
	Timeout           Duration `yaml:"timeout"`
	// BusinessRate is Connectly's request limit per second for the business.
	BusinessRate float64 `yaml:"business_rate"`
	// SessionBSUIDField says where a session message to a BSUID recipient puts the BSUID:
	// "id" (recipient.id, bare; the default, as Connectly's current docs say) or "userId"
	// (recipient.userId, as its older docs say). Phone numbers always go in recipient.id.
	// Env CONNECTLY_SESSION_BSUID_FIELD.
	SessionBSUIDField connectly.BSUIDField `yaml:"session_bsuid_field"`
	// SendCampaignName puts the campaign id in campaignName on every send; off (the default),
	// no send carries campaignName. Connectly's docs call the field an analytics tag in one
	// place and, in another, say it can start the Flow-Builder flow of that name, which would
	// message every recipient outside Herald's limits, suppression and at-most-once.
	// Env CONNECTLY_SEND_CAMPAIGN_NAME (true or false).
	SendCampaignName bool `yaml:"send_campaign_name"`
}

// Wire is how Herald encodes its sends to Connectly under this configuration: the client's
// requests and every request shown without sending (campaign plan, on_reply previews) follow it.
func (c Connectly) Wire() connectly.Wire {
	return connectly.Wire{BSUIDField: c.SessionBSUIDField, CampaignName: c.SendCampaignName}
}

type Sender struct {
	Number string `yaml:"number"`
	// Rate is the number's messages/s, 1 to 1000; 0 (or left out) means
	// limits.DefaultSenderRate, which Validate puts in its place.
	Rate float64 `yaml:"rate"`
}

// Windows configures customer service windows. A customer opens a window by writing to one
// business number, and only a send from that number is inside it; Herald records each window
// under the number the inbound webhook names.
type Windows struct {
	// Scope is what a window recorded with no business number counts for (an inbound webhook
	// that names none, or a window recorded before Herald told numbers apart): sender (the
	// default) counts it only for a send from the one number senders lists (or when it lists
	// none); business counts it for a send from every number. See servicewindow.Scope.
	Scope servicewindow.Scope `yaml:"scope"`
	// LateFallbackFor is how long the worker keeps a session message's fallback template
	// after the message went, for a late refusal: Connectly accepted the message, then
	// reported it undelivered because the customer's window had closed (a delivery_failed
	// event), and the webhook receiver sends the fallback then, once. Default 24h; off keeps
	// none (such a recipient stays failed with Connectly's code). About 320 bytes a session
	// message with a fallback while kept (measured: docs/benchmarks.md).
	LateFallbackFor OffDuration `yaml:"late_fallback_for"`
}

// WindowPolicy is how the business's windows are recorded and read: its sender numbers and
// windows.scope. The worker, the webhook receiver and the commands that read windows share it.
func (c *Config) WindowPolicy() servicewindow.Policy {
	return servicewindow.Policy{Scope: c.Windows.Scope, Senders: c.SenderNumbers()}
}

type Worker struct {
	Concurrency int `yaml:"concurrency"`
	// ShutdownTimeout is how long sends in flight may take on SIGTERM; 0 or left out:
	// connectly.timeout + sendpolicy.ShutdownGrace (Validate), so it follows a raised timeout.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// WindowMargin is how long before its close the worker counts a customer service window
	// as closed when it decides whether a session message goes (the fallback template goes,
	// or none); the longest wait for a slot is added to it. 0 counts it open until it closes.
	// With that wait it must fit in servicewindow.MaxAhead (checkWindowMargin).
	WindowMargin Duration `yaml:"window_margin"`
}

type Retry struct {
	MaxAttempts int      `yaml:"max_attempts"`
	Base        Duration `yaml:"base"`
	Cap         Duration `yaml:"cap"`
	// ThrottleDelay is the wait after a 429 without Retry-After, HoldDelay how often a task of
	// a paused run looks again, MaxPaceWait how far ahead a send books its rate permits. Each
	// must be positive: the worker would put its default in place of a zero or negative one.
	ThrottleDelay Duration `yaml:"throttle_delay"`
	HoldDelay     Duration `yaml:"hold_delay"`
	MaxPaceWait   Duration `yaml:"max_pace_wait"`
	// KeepPlaceFor is how long a send whose limits are booked beyond max_pace_wait keeps its
	// place (its task stays with the worker) before it is rescheduled; off reschedules at once.
	KeepPlaceFor OffDuration `yaml:"keep_place_for"`
	// AmbiguousStatuses are the 5xx answers that may follow an accepted send ("maybe sent"),
	// with or without Connectly's error body: at-most-once runs mark such recipients unknown
	// instead of resending. A 5xx not listed reads as "not taken" and is retried. Unset (the
	// default): every 5xx (the reference lists 500, 502, 503 and 504 as a duplicate risk).
	AmbiguousStatuses []int `yaml:"ambiguous_statuses"`
	// RequestFaults are the answers (codes, types, gRPC statuses, HTTP_<status>) whose
	// permanent refusal is of the request itself, its number or content, so an earlier
	// attempt of the same request got it too: under at-least-once, a recipient whose earlier
	// attempt may have gone out and whose retry is refused with one of these is failed; with
	// any other refusal (an opt-out, a closed window), unknown. Unset (the default): the
	// classification table's number and content codes (connectly.Rule.RequestFault); []:
	// none, so every such recipient is unknown.
	RequestFaults []string `yaml:"request_faults"`
	// RetryAfterHolds is what a 429's Retry-After holds: business (every send of the
	// business waits, the default), sender (every send from that number) or send (only the
	// refused one). See limits.HoldScope.
	RetryAfterHolds string `yaml:"retry_after_holds"`
}

// Limits configures limits shared by every worker.
type Limits struct {
	// PairInterval is the least time between two messages from one sender to one person; off
	// turns the pair limit off.
	PairInterval OffDuration `yaml:"pair_interval"`
	// MessagingTier is the business portfolio's daily messaging limit: unique recipients per
	// rolling TierPeriod (24 h; key tier_window). 0 (written off, or unlimited) means no limit.
	MessagingTier Tier `yaml:"messaging_tier"`
	// TierPeriod is the tier's rolling period (key tier_window); Meta's is 24h (change it only to rehearse).
	TierPeriod Duration `yaml:"tier_window"`
	// TierRecheck is the longest a send waiting for the tier sleeps before it looks again.
	TierRecheck Duration `yaml:"tier_recheck"`
	// FrequencyCaps limit messages per recipient by template category, across campaigns.
	FrequencyCaps map[string]FrequencyCap `yaml:"frequency_caps"`
	// Adaptive is the sender's backoff after the provider throttled it.
	Adaptive Adaptive `yaml:"adaptive"`
}

// Tier is a messaging tier: a number of unique recipients, or 0, no limit, written off (or, as
// before, unlimited or 0).
type Tier int

func (t *Tier) UnmarshalYAML(n *yaml.Node) error {
	if isOff(n) || strings.EqualFold(n.Value, "unlimited") {
		*t = 0
		return nil
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < 0 {
		return &valueError{line: n.Line, column: n.Column, msg: fmt.Sprintf("%q: want a number of recipients (250, 2000, 10000, 100000) or off (unlimited)", n.Value)}
	}
	*t = Tier(v)
	return nil
}

// FrequencyCap is at most Max messages to one recipient per Period (key window).
type FrequencyCap struct {
	Max    int      `yaml:"max"`
	Period Duration `yaml:"window"`
}

// Adaptive configures each sender's adaptive rate (see limits.Policy): the share of the
// sender's requests the provider throttled (answers whose code is in Codes) is measured over
// the last Period (key window); above Threshold the sender's rate drops to what got through in
// the latest second (never below MinFactor of the configured rate) and holds a second, then
// climbs back by RecoverStep of the configured rate every RecoverEvery while the share stays
// at or under Threshold. Defaults: limits.DefaultPolicy. `adaptive: off` turns it off (as does the older
// `off: true` inside the section).
type Adaptive struct {
	Off          bool     `yaml:"off"`
	MinFactor    float64  `yaml:"min_factor"`
	Period       Duration `yaml:"window"`
	Threshold    float64  `yaml:"threshold"`
	RecoverEvery Duration `yaml:"recover_every"`
	RecoverStep  float64  `yaml:"recover_step"`
	// Cooldown was the least time between two halvings of the controller that Period replaced; it
	// is still read so that a file setting it gets an error that says so.
	Cooldown Duration `yaml:"cooldown"`
	Codes    []string `yaml:"codes"`
}

// Policy is the limits policy a; off, its Period is negative (limits.Config.Adapts).
func (a Adaptive) Policy() limits.Policy {
	p := limits.Policy{Min: a.MinFactor, Period: a.Period.D(), Threshold: a.Threshold, Every: a.RecoverEvery.D(),
		Step: a.RecoverStep}
	if a.Off {
		p.Period = -1
	}
	return p
}

func defaultAdaptive() Adaptive {
	p := limits.DefaultPolicy()
	return Adaptive{MinFactor: p.Min, Period: Duration(p.Period), Threshold: p.Threshold, RecoverEvery: Duration(p.Every),
		RecoverStep: p.Step, Codes: sendpolicy.DefaultAdaptiveCodes()}
}

// UnmarshalYAML reads `adaptive: off`, or the section's settings (keys left out keep their
// values).
func (a *Adaptive) UnmarshalYAML(unmarshal func(any) error) error {
	var word string
	if unmarshal(&word) == nil {
		if word == "" { // an empty section: the defaults
			return nil
		}
		if !strings.EqualFold(word, Off) {
			return &Error{Key: "limits.adaptive", Msg: fmt.Sprintf("%q: want off, or the adaptive rate's settings", word)}
		}
		a.Off = true
		return nil
	}
	type plain Adaptive
	return unmarshal((*plain)(a))
}

// StopRun configures pausing a run on a burst of one permanent code.
type StopRun struct {
	// BurstSample is how many recent outcomes of a run are looked at (key burst_window); off
	// turns detection off.
	BurstSample OffInt `yaml:"burst_window"`
	// BurstShare is the share of that sample one permanent code may fill before the run pauses.
	BurstShare float64 `yaml:"burst_share"`
}

// Webhooks configures the webhook receiver (`herald webhooks`, or inside `herald worker`).
// Its signing secret is connectly.webhook_secret_file / CONNECTLY_WEBHOOK_SECRET.
type Webhooks struct {
	// Listen is the address the receiver serves on when `herald webhooks` has no --listen,
	// and the one `herald worker` uses when InWorker is set. Example "127.0.0.1:8090".
	Listen string `yaml:"listen"`
	// InWorker also serves the receiver inside `herald worker`, on Listen.
	InWorker bool `yaml:"in_worker"`
	// MaxBody is the largest webhook body accepted, in bytes; larger ones get 413.
	// Default webhooks.DefaultMaxBody.
	MaxBody int64 `yaml:"max_body"`
	// OptOutWords are, per language, inbound texts that opt the sender out in addition to
	// STOP and UNSUBSCRIBE. All languages apply to every message.
	OptOutWords map[string][]string `yaml:"opt_out_words"`
	// ParkFor is how long a delivery event that arrived before its send was recorded keeps
	// being retried (an event whose entry is still being sent is kept longer, up to
	// ledger.ParkedMaxAge). Default webhooks.DefaultParkFor.
	ParkFor Duration `yaml:"park_for"`
}

// Words returns every configured opt-out word, all languages together.
func (w Webhooks) Words() []string {
	var out []string
	for _, ws := range w.OptOutWords {
		out = append(out, ws...)
	}
	return out
}

// Scheduler configures `herald scheduler` and the expansion of runs. Its keys are read by
// UnmarshalYAML, which also takes the backlog keys' old names.
type Scheduler struct {
	// Poll is how often a scheduler looks for submitted or removed campaigns.
	Poll Duration
	// Backlog is how much sending time a run's queued tasks may cover (times the run's rate):
	// key backlog, formerly window.
	Backlog Duration
	// MinBacklog and MaxBacklog bound the backlog in tasks: keys min_backlog and max_backlog,
	// formerly min_window and max_window.
	MinBacklog int
	MaxBacklog int
	// ExpandConcurrency is how many runs one scheduler process expands at once; 0 (written
	// off) leaves expansion to other processes.
	ExpandConcurrency int
}

// schedulerFile is the scheduler section as written: every key, old names included, nil when
// the file leaves it out.
type schedulerFile struct {
	Poll              *Duration `yaml:"poll"`
	Backlog           *Duration `yaml:"backlog"`
	Window            *Duration `yaml:"window"`
	MinBacklog        *int      `yaml:"min_backlog"`
	MinWindow         *int      `yaml:"min_window"`
	MaxBacklog        *int      `yaml:"max_backlog"`
	MaxWindow         *int      `yaml:"max_window"`
	ExpandConcurrency *OffInt   `yaml:"expand_concurrency"`
}

// UnmarshalYAML reads the scheduler section. The backlog keys were once named window,
// min_window and max_window; either name loads, and a file giving one setting both names is
// refused with both.
func (s *Scheduler) UnmarshalYAML(unmarshal func(any) error) error {
	var f schedulerFile
	if err := unmarshal(&f); err != nil {
		return err
	}
	if f.Poll != nil {
		s.Poll = *f.Poll
	}
	if err := renamed(&s.Backlog, "backlog", f.Backlog, "window", f.Window); err != nil {
		return err
	}
	if err := renamed(&s.MinBacklog, "min_backlog", f.MinBacklog, "min_window", f.MinWindow); err != nil {
		return err
	}
	if err := renamed(&s.MaxBacklog, "max_backlog", f.MaxBacklog, "max_window", f.MaxWindow); err != nil {
		return err
	}
	if f.ExpandConcurrency != nil {
		s.ExpandConcurrency = max(int(*f.ExpandConcurrency), 0)
	}
	return nil
}

// renamed sets *dst from a scheduler key written under its name or its old name, not both.
func renamed[T any](dst *T, key string, v *T, oldKey string, old *T) error {
	switch {
	case v != nil && old != nil:
		return &Error{Key: "scheduler." + key, Msg: "also set as scheduler." + oldKey + ", its old name: keep scheduler." + key + " only"}
	case v != nil:
		*dst = *v
	case old != nil:
		*dst = *old
	}
	return nil
}

// Campaigns confines the files campaigns name and bounds what reading them may cost; every
// process that reads audiences (campaign validate, plan, send, submit, scheduler, worker)
// applies it. Zero values take the campaigns package's defaults.
type Campaigns struct {
	// Root is the folder every file a campaign names (its audience) must resolve inside,
	// symbolic links followed; relative to the working directory. Default "": each campaign
	// file's own folder. Env HERALD_CAMPAIGNS_ROOT.
	Root string `yaml:"root"`
	// MaxRecordBytes bounds one CSV record or JSON line, in bytes. Default
	// campaigns.DefaultMaxRecordBytes.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// MaxFileBytes bounds an audience file, in bytes. Default campaigns.DefaultMaxFileBytes.
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// MaxRows bounds an audience's rows. Default campaigns.DefaultMaxRows.
	MaxRows int `yaml:"max_rows"`
}

// Suppression configures what an entry of the suppression list for marketing only (a person
// who stopped marketing messages, Meta 131050) stops; an entry for every message (any other
// opt-out, a STOP, an on_reply rule's suppress) stops everything whatever this says. Unset keys
// take the worker's defaults.
type Suppression struct {
	// CampaignSessionsAreMarketing says whether a campaign's session message counts as
	// marketing, so that it is not sent to such a person. Default true (worker.Config's): a
	// broadcast is usually promotional. A follow-up's session message, which answers the
	// customer's own reply, never counts; a template counts by its category (an unknown one as
	// marketing).
	CampaignSessionsAreMarketing *bool `yaml:"campaign_sessions_are_marketing"`
}

// SessionsNotMarketing is the worker's setting under s (worker.Config.CampaignSessionsNotMarketing):
// true only when the file turned campaign_sessions_are_marketing off.
func (s Suppression) SessionsNotMarketing() bool {
	return s.CampaignSessionsAreMarketing != nil && !*s.CampaignSessionsAreMarketing
}

type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Duration is a time.Duration written as "10s", "500ms", "5m".
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return &valueError{line: n.Line, column: n.Column, msg: fmt.Sprintf("%q is not a duration (e.g. 500ms, 10s, 5m)", n.Value)}
	}
	*d = Duration(v)
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Off is the one word a config file turns a setting off with, as in `pair_interval: off`.
// Every key that can be turned off takes it: limits.pair_interval, limits.messaging_tier,
// limits.adaptive, retry.keep_place_for, stop_run.burst_window, windows.late_fallback_for and
// scheduler.expand_concurrency. Their older spellings still load with the same meaning: 0 or
// 0s, unlimited (messaging_tier), `off: true` inside limits.adaptive.
const Off = "off"

// isOff says whether n is the word off.
func isOff(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && strings.EqualFold(n.Value, Off) }

// OffDuration is a duration that can be turned off: off (or 0s, its older spelling) is held
// as a negative duration, which is how worker.Config and limits.Config read off.
type OffDuration time.Duration

// readOff reads into *dst a value that can be turned off: off, or its older spelling zero, is
// -1 (how the components read off); a negative value, or one parse refuses, is an error saying
// the value wanted (want, e.g. "a number"), and *dst is left as it was.
func readOff[T ~int | ~int64](n *yaml.Node, dst *T, parse func(string) (T, error), want string) error {
	if isOff(n) {
		*dst = -1
		return nil
	}
	v, err := parse(n.Value)
	if err != nil || v < 0 {
		return &valueError{line: n.Line, column: n.Column, msg: fmt.Sprintf("%q: want %s or off", n.Value, want)}
	}
	if v == 0 {
		v = -1
	}
	*dst = v
	return nil
}

func (d *OffDuration) UnmarshalYAML(n *yaml.Node) error {
	return readOff(n, d, func(s string) (OffDuration, error) {
		v, err := time.ParseDuration(s)
		return OffDuration(v), err
	}, "a duration (e.g. 500ms, 10s, 5m)")
}

// D returns the time.Duration, negative when off.
func (d OffDuration) D() time.Duration { return time.Duration(d) }

// IsOff says whether d is turned off.
func (d OffDuration) IsOff() bool { return d < 0 }

// String is the duration, or off.
func (d OffDuration) String() string {
	if d.IsOff() {
		return Off
	}
	return time.Duration(d).String()
}

// OffInt is a count that can be turned off: off (or 0, its older spelling) is held as a
// negative number, which is how worker.Config reads off.
type OffInt int

func (i *OffInt) UnmarshalYAML(n *yaml.Node) error {
	return readOff(n, i, func(s string) (OffInt, error) {
		v, err := strconv.Atoi(s)
		return OffInt(v), err
	}, "a number")
}

// IsOff says whether i is turned off.
func (i OffInt) IsOff() bool { return i < 0 }

// valueError is a value in the file that does not parse; Load names its key.
type valueError struct {
	line, column int
	msg          string
}

func (e *valueError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// fileError is a config file that does not decode (its YAML is broken): yaml's message, at
// the file and line where the problem is (yamlerr), with yaml's error as its cause.
type fileError struct {
	path string
	data []byte
	err  error
}

func (e *fileError) Error() string {
	msg := strings.TrimPrefix(e.err.Error(), "yaml: ")
	// yaml lists the problems it met decoding one a line ("unmarshal errors:\n  line 3: ...");
	// the first is told, and how many more there are.
	if list, ok := strings.CutPrefix(msg, "unmarshal errors:\n"); ok {
		lines := strings.Split(list, "\n")
		more := ""
		if n := len(lines) - 1; n > 0 {
			more = fmt.Sprintf(" (and %d more problem(s) in the file)", n)
		}
		if line, rest, ok := yamlerr.CutLine(strings.TrimSpace(lines[0])); ok {
			return fmt.Sprintf("%s:%d:1: %s%s", e.path, line, rest, more)
		}
		return "config " + e.path + ": " + strings.TrimSpace(lines[0]) + more
	}
	if line, problem := yamlerr.In(e.err, e.data); line > 0 {
		return fmt.Sprintf("%s:%d:1: %s", e.path, line, problem)
	}
	return "config " + e.path + ": " + msg
}

func (e *fileError) Unwrap() error { return e.err }

// source is where Load's values came from: the file (parsed, for positions) and the
// environment variables that replaced its values.
type source struct {
	path string
	data []byte     // the file's bytes, nil without a file
	doc  *yaml.Node // nil without a file
	env  map[string]string
}

// locate fills in where the value of err's key came from (see Error), when err is an *Error
// that does not say yet.
func (src *source) locate(err error) error {
	var ce *Error
	if !errors.As(err, &ce) || ce.Line > 0 || ce.Env != "" {
		return err
	}
	for alt := ce.or; alt != nil && !src.written(ce.Key); alt = alt.or {
		if src.written(alt.Key) {
			return src.locate(alt)
		}
	}
	if v, ok := src.env[ce.Key]; ok {
		ce.Env = v
		return err
	}
	key, n := src.find(ce.Key)
	if e, ok := src.entry(key); ok && ce.atKey && e.keyNode != nil {
		n = e.keyNode
	}
	if n != nil {
		ce.File, ce.Line, ce.Column = src.path, n.Line, n.Column
		if key != ce.Key {
			// Validation speaks of the new name, and says which name the file used.
			ce.Msg += " (written as " + key + ", its old name)"
		}
	}
	return err
}

// oldNames are the former names of keys that still load under them (see Scheduler).
var oldNames = map[string]string{
	"scheduler.backlog":     "scheduler.window",
	"scheduler.min_backlog": "scheduler.min_window",
	"scheduler.max_backlog": "scheduler.max_window",
}

// find returns the value written in the file for a dotted key and the name it is written
// under: the key's, or its old name's (oldNames); nil when neither is written.
func (src *source) find(key string) (string, *yaml.Node) {
	if n := src.node(key); n != nil {
		return key, n
	}
	if old, ok := oldNames[key]; ok {
		if n := src.node(old); n != nil {
			return old, n
		}
	}
	return key, nil
}

// written says whether the file or the environment gave key a value.
func (src *source) written(key string) bool {
	_, ok := src.env[key]
	_, n := src.find(key)
	return ok || n != nil
}

// node returns the value written in the file for a dotted key (senders[0].number), or nil.
func (src *source) node(key string) *yaml.Node {
	if e, ok := src.entry(key); ok {
		return e.valueNode
	}
	return nil
}

// entry returns what the file writes for a dotted key.
func (src *source) entry(key string) (entry, bool) {
	for _, e := range src.entries() {
		if e.key == key {
			return e, true
		}
	}
	return entry{}, false
}

// entry is a value written in the file: its dotted key, its key node (nil for a list item)
// and its value node.
type entry struct {
	key       string
	keyNode   *yaml.Node
	valueNode *yaml.Node
}

// entries lists every value written in the file, in file order.
func (src *source) entries() []entry {
	var out []entry
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				out = append(out, entry{key: p, keyNode: n.Content[i], valueNode: n.Content[i+1]})
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := path + "[" + strconv.Itoa(i) + "]"
				out = append(out, entry{key: p, valueNode: c})
				walk(c, p)
			}
		}
	}
	if src.doc != nil {
		walk(src.doc, "")
	}
	return out
}

// valueAt returns the entry whose value starts at line and column.
func (src *source) valueAt(line, column int) (entry, bool) {
	for _, e := range src.entries() {
		if e.valueNode.Line == line && e.valueNode.Column == column {
			return e, true
		}
	}
	return entry{}, false
}

// keyAt returns the entry whose key, named name, is written at line.
func (src *source) keyAt(line int, name string) (entry, bool) {
	for _, e := range src.entries() {
		if e.keyNode != nil && e.keyNode.Line == line && e.keyNode.Value == name {
			return e, true
		}
	}
	return entry{}, false
}

// lastKeyAt is keyAt for a key written twice on one line ({a: 1, a: 2}): the later one.
func (src *source) lastKeyAt(line int, name string) (entry, bool) {
	var last entry
	found := false
	for _, e := range src.entries() {
		if e.keyNode != nil && e.keyNode.Line == line && e.keyNode.Value == name {
			last, found = e, true
		}
	}
	return last, found
}

// typeAt returns the entry yaml's type error at line is about: a value of the kind yaml
// names (!!map, !!seq, else a scalar) at line, the one whose text yaml quotes (shortened to
// 7 characters and "..." when long) if several.
func (src *source) typeAt(line int, tag, shown string) (entry, bool) {
	kind := yaml.ScalarNode
	switch tag {
	case "map":
		kind = yaml.MappingNode
	case "seq":
		kind = yaml.SequenceNode
	}
	var first *entry
	for _, e := range src.entries() {
		if e.valueNode.Line != line || e.valueNode.Kind != kind {
			continue
		}
		if shown == "" || e.valueNode.Value == shown ||
			(strings.HasSuffix(shown, "...") && strings.HasPrefix(e.valueNode.Value, strings.TrimSuffix(shown, "..."))) {
			return e, true
		}
		if first == nil {
			first = &e
		}
	}
	if first != nil {
		return *first, true
	}
	return entry{}, false
}

// decodeError turns an error decoding the file into an *Error naming the key, the file, the
// line and the column, when the key can be found; else a *fileError.
func (src *source) decodeError(err error) error {
	var ce *Error
	if errors.As(err, &ce) {
		return src.locate(ce)
	}
	at := func(e entry, n *yaml.Node, msg string) error {
		return &Error{Key: e.key, Msg: msg, Err: err, File: src.path, Line: n.Line, Column: n.Column}
	}
	var ve *valueError
	if errors.As(err, &ve) {
		if e, ok := src.valueAt(ve.line, ve.column); ok {
			return at(e, e.valueNode, ve.msg)
		}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		more := ""
		if n := len(te.Errors) - 1; n > 0 {
			more = fmt.Sprintf(" (and %d more problem(s) in the file)", n)
		}
		if line, msg, ok := yamlerr.CutLine(te.Errors[0]); ok {
			if name, ok := unknownKey(msg); ok {
				if e, ok := src.keyAt(line, name); ok {
					return at(e, e.keyNode, unknownKeyMessage(e.key)+more)
				}
			} else if m := duplicateRE.FindStringSubmatch(msg); m != nil {
				name, err := strconv.Unquote(m[1])
				if e, ok := src.lastKeyAt(line, name); ok && err == nil {
					return at(e, e.keyNode, "written twice, first at line "+m[2]+": keep one"+more)
				}
			} else if m := typeRE.FindStringSubmatch(msg); m != nil {
				if e, ok := src.typeAt(line, m[1], m[2]); ok {
					return at(e, e.valueNode, typeMessage(m)+more)
				}
			}
		}
	}
	return &fileError{path: src.path, data: src.data, err: err}
}

// unknownKey reads yaml's "field api_kee not found in type config.Connectly".
func unknownKey(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "field ")
	if !ok {
		return "", false
	}
	name, _, ok := strings.Cut(rest, " not found in type")
	return name, ok
}

// duplicateRE reads yaml's error about a key written twice in one section: `mapping key
// "redis" already defined at line 1`.
var duplicateRE = regexp.MustCompile(`^mapping key ("(?:[^"\\]|\\.)*") already defined at line ([0-9]+)$`)

// typeRE reads yaml's type errors: "cannot unmarshal !!str `many` into int".
var typeRE = regexp.MustCompile("^cannot unmarshal !!([a-z]+)(?: `(.*)`)? into (.+)$")

// typeMessage says what a key wants, for yaml's type error m (see typeRE).
func typeMessage(m []string) string {
	got := map[string]string{"str": "a string", "int": "a number", "float": "a number", "bool": "true or false",
		"map": "a section", "seq": "a list", "null": "nothing", "timestamp": "a time"}[m[1]]
	if m[2] != "" {
		got = strconv.Quote(m[2])
	}
	if got == "" {
		got = "!!" + m[1]
	}
	want := "a value of type " + m[3]
	switch t := m[3]; {
	case t == "int" || t == "int64" || t == "config.OffInt" || t == "config.Tier":
		want = "a whole number"
	case t == "float64":
		want = "a number"
	case t == "bool":
		want = "true or false"
	case t == "string":
		want = "a single value"
	case strings.HasPrefix(t, "[]"):
		want = "a list"
	case strings.HasPrefix(t, "map[") || strings.HasPrefix(t, "config."):
		want = "a section of keys"
	}
	return got + ": want " + want
}

// Error is a configuration problem naming the key. Load fills in where the key's value came
// from: the file, line and column it is written at, or the environment variable that set it.
type Error struct {
	Key string
	Msg string
	// Err is the cause, when the problem came from another error (a file that could not be
	// read, a class that does not parse); errors.Is and errors.As see it through Unwrap.
	Err error
	// File, Line and Column are where the value is written in the config file (Line 0: not
	// written there: a default, or a value the environment gave).
	File         string
	Line, Column int
	// Env is the environment variable that gave the value, if one did.
	Env string

	// atKey places the problem at the key as written, not at its value: the key is wrong.
	atKey bool
	// or is the same problem told of another key, when it is about several (retry.base and
	// retry.cap), and so on down the list: Load tells it of the first key the user wrote (see
	// source.locate), else of Key.
	or *Error
}

// checkWindowMargin keeps worker.window_margin, with the longest a session send may still
// wait after its window check, within servicewindow.MaxAhead: the worker sends a session
// message only while its window stays open for the two, and an on_reply follow-up at its
// longest delay (campaigns.MaxSessionReplyDelay) must still find it so. The wait is the
// worker's gateAhead: keeping its place (retry.keep_place_for, none when off), then its slot,
// booked at most retry.max_pace_wait ahead, up to three times.
func (c *Config) checkWindowMargin() error {
	m := c.Worker.WindowMargin.D()
	pace := c.Retry.MaxPaceWait.D() // positive: Validate checked it
	keep := max(c.Retry.KeepPlaceFor.D(), 0)
	wait := keep + 3*pace
	if m+wait <= servicewindow.MaxAhead {
		return nil
	}
	wants := fmt.Sprintf("with the send's longest wait after its window check (retry.keep_place_for %v + 3 × retry.max_pace_wait %v) "+
		"it must fit in %v, so that an on_reply session follow-up at its longest delay (%s after the reply) still goes", keep, pace,
		servicewindow.MaxAhead, strings.TrimSuffix((servicewindow.Length-servicewindow.MaxAhead-servicewindow.FollowupLate).String(), "0m0s"))
	// Told of the margin, else of the key the file writes of the two that make the wait.
	alts := &Error{Key: "retry.max_pace_wait", Msg: fmt.Sprintf("%v: too long for worker.window_margin %v: %s", pace, m, wants),
		or: &Error{Key: "retry.keep_place_for", Msg: fmt.Sprintf("%v: too long for worker.window_margin %v: %s", keep, m, wants)}}
	if wait > servicewindow.MaxAhead {
		return &Error{Key: "worker.window_margin", Msg: fmt.Sprintf("%v: no margin fits: %s; lower retry.max_pace_wait or retry.keep_place_for", m, wants),
			or: alts}
	}
	return &Error{Key: "worker.window_margin", Msg: fmt.Sprintf("%v: at most %v: %s", m, servicewindow.MaxAhead-wait, wants), or: alts}
}

// Error reads "herald.yaml:4:11: senders[0].number: ..." for a value written in the file (as
// campaign files' errors do), else "config: key: ...", with the variable that set it if any.
func (e *Error) Error() string {
	if e.File != "" && e.Line > 0 {
		return e.File + ":" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column) + ": " + e.Key + ": " + e.Msg
	}
	if e.Env != "" {
		return "config: " + e.Key + " (" + e.Env + "): " + e.Msg
	}
	return "config: " + e.Key + ": " + e.Msg
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		Redis: Redis{URL: "redis://127.0.0.1:6379/0"},
		Connectly: Connectly{BaseURL: connectly.DefaultBaseURL, Timeout: Duration(sendpolicy.DefaultRequestTimeout),
			BusinessRate: limits.DefaultBusinessRate, SessionBSUIDField: connectly.BSUIDInID},
		Windows: Windows{Scope: servicewindow.ScopeSender, LateFallbackFor: OffDuration(sendpolicy.DefaultLateFallbackFor)},
		Worker: Worker{Concurrency: sendpolicy.DefaultConcurrency, ShutdownTimeout: Duration(sendpolicy.DefaultRequestTimeout + sendpolicy.ShutdownGrace),
			WindowMargin: Duration(servicewindow.DefaultMargin)},
		Retry: Retry{MaxAttempts: sendpolicy.DefaultMaxAttempts, Base: Duration(backoff.DefaultBase), Cap: Duration(backoff.DefaultCap),
			ThrottleDelay: Duration(sendpolicy.DefaultThrottleDelay), HoldDelay: Duration(sendpolicy.DefaultHoldDelay),
			MaxPaceWait: Duration(limits.DefaultMaxWait), KeepPlaceFor: OffDuration(sendpolicy.DefaultKeepPlaceFor)},
		StopRun: StopRun{BurstSample: sendpolicy.DefaultBurstSample, BurstShare: sendpolicy.DefaultBurstShare},
		Limits: Limits{PairInterval: OffDuration(limits.DefaultPairInterval), TierPeriod: Duration(limits.DefaultTierPeriod),
			TierRecheck: Duration(sendpolicy.DefaultTierRecheck),
			Adaptive:    defaultAdaptive()},
		Log:      Log{Level: "info", Format: "auto"},
		Webhooks: Webhooks{MaxBody: webhooks.DefaultMaxBody, ParkFor: Duration(webhooks.DefaultParkFor)},
		Scheduler: Scheduler{Poll: Duration(defstore.DefaultPoll), Backlog: Duration(sendpolicy.DefaultBacklog),
			MinBacklog: sendpolicy.DefaultMinBacklog, MaxBacklog: sendpolicy.DefaultMaxBacklog, ExpandConcurrency: sendpolicy.DefaultExpandConcurrency},
	}
}

// envKeys are the environment variables that replace a key's value, by key.
var envKeys = []struct{ key, env string }{
	{"redis.url", "HERALD_REDIS_URL"},
	{"connectly.base_url", "CONNECTLY_BASE_URL"},
	{"connectly.business_id", "CONNECTLY_BUSINESS_ID"},
	{"connectly.session_bsuid_field", "CONNECTLY_SESSION_BSUID_FIELD"},
	{"connectly.send_campaign_name", "CONNECTLY_SEND_CAMPAIGN_NAME"},
	{"log.level", "HERALD_LOG_LEVEL"},
	{"log.format", "HERALD_LOG_FORMAT"},
	{"webhooks.listen", "HERALD_WEBHOOKS_LISTEN"},
	{"campaigns.root", "HERALD_CAMPAIGNS_ROOT"},
}

// Load reads the file at path (none when path is ""), applies environment overrides from
// getenv, resolves secrets and validates. Its errors are *Error naming the key and where its
// value came from (file:line:column, or the variable), or a *fileError for a file whose YAML
// is broken.
func Load(path string, getenv func(string) string) (Config, error) {
	c := Default()
	// Left out, the shutdown timeout follows connectly.timeout (Validate's 0), as Default's
	// does the default timeout: a raised timeout must not leave SIGTERM cutting requests.
	c.Worker.ShutdownTimeout = 0
	src := &source{path: path, env: map[string]string{}}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return c, &fileError{path: path, data: data, err: err}
		}
		src.doc, src.data = &doc, data
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, src.decodeError(err)
		}
		if redisx.HasPassword(c.Redis.URL) && src.node("redis.url") != nil {
			return c, src.locate(&Error{Key: "redis.url", Msg: fmt.Sprintf("%q holds a password, and secrets are not read from the config file: "+
				"put the password in a file named by redis.password_file, or set HERALD_REDIS_PASSWORD, or give the whole URL in HERALD_REDIS_URL",
				redisx.Redact(c.Redis.URL))})
		}
	}
	for _, e := range envKeys {
		if getenv(e.env) != "" {
			src.env[e.key] = e.env
		}
	}
	env := func(k string, dst *string) {
		if v := getenv(k); v != "" {
			*dst = v
		}
	}
	env("HERALD_REDIS_URL", &c.Redis.URL)
	env("CONNECTLY_BASE_URL", &c.Connectly.BaseURL)
	env("CONNECTLY_BUSINESS_ID", &c.Connectly.BusinessID)
	if v := getenv("CONNECTLY_SESSION_BSUID_FIELD"); v != "" {
		c.Connectly.SessionBSUIDField = connectly.BSUIDField(v)
	}
	if v := getenv("CONNECTLY_SEND_CAMPAIGN_NAME"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return c, &Error{Key: "connectly.send_campaign_name", Msg: fmt.Sprintf("CONNECTLY_SEND_CAMPAIGN_NAME=%q: want true or false", v), Err: err}
		}
		c.Connectly.SendCampaignName = on
	}
	env("HERALD_LOG_LEVEL", &c.Log.Level)
	env("HERALD_LOG_FORMAT", &c.Log.Format)
	env("HERALD_WEBHOOKS_LISTEN", &c.Webhooks.Listen)
	env("HERALD_CAMPAIGNS_ROOT", &c.Campaigns.Root)
	var err error
	if c.APIKey, err = secret(getenv, "CONNECTLY_API_KEY", "connectly.api_key_file", c.Connectly.APIKeyFile); err != nil {
		return c, src.locate(err)
	}
	if c.WebhookSecret, err = secret(getenv, "CONNECTLY_WEBHOOK_SECRET", "connectly.webhook_secret_file", c.Connectly.WebhookSecretFile); err != nil {
		return c, src.locate(err)
	}
	if err := c.Validate(); err != nil {
		return c, src.locate(err)
	}
	if err := resolveRedisPassword(&c, getenv); err != nil {
		return c, src.locate(err)
	}
	return c, nil
}

// resolveRedisPassword puts the password of HERALD_REDIS_PASSWORD or redis.password_file in
// the Redis URL (which has been validated). A URL that holds one already (HERALD_REDIS_URL's)
// and a second password are refused: which one is meant cannot be told.
func resolveRedisPassword(c *Config, getenv func(string) string) error {
	pw, err := secret(getenv, "HERALD_REDIS_PASSWORD", "redis.password_file", c.Redis.PasswordFile)
	if err != nil || pw == "" {
		return err
	}
	if redisx.HasPassword(c.Redis.URL) {
		e := &Error{Key: "redis.password_file", Msg: "the Redis URL (HERALD_REDIS_URL) holds a password too: give it in one place"}
		if getenv("HERALD_REDIS_PASSWORD") != "" {
			e.Env = "HERALD_REDIS_PASSWORD"
		}
		return e
	}
	u, err := url.Parse(c.Redis.URL)
	if err != nil {
		// Validate parsed it; a URL that does not parse is refused there.
		return &Error{Key: "redis.url", Msg: fmt.Sprintf("%q does not parse", redisx.Redact(c.Redis.URL))}
	}
	name := ""
	if u.User != nil {
		name = u.User.Username()
	}
	u.User = url.UserPassword(name, pw)
	c.Redis.URL = u.String()
	return nil
}

// unknownKeyMessage says what is wrong with the unknown key key (a dotted path): a pointer
// to the right place when it is a secret someone put in the file, else the known key it is
// closest to, or the keys its section knows.
func unknownKeyMessage(key string) string {
	const msg = "unknown key"
	parent, name := "", key
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		parent, name = key[:i], key[i+1:]
	}
	switch name {
	case "api_key", "webhook_secret":
		return msg + " (secrets are not read from the config file: set CONNECTLY_API_KEY / CONNECTLY_WEBHOOK_SECRET or api_key_file / webhook_secret_file)"
	case "password":
		return msg + " (secrets are not read from the config file: set HERALD_REDIS_PASSWORD or redis.password_file)"
	}
	known := knownKeys(parent)
	if s := suggest.Closest(name, known); s != "" {
		return msg + fmt.Sprintf(" (did you mean %q?)", s)
	}
	if len(known) > 0 {
		return msg + " (known keys: " + strings.Join(known, ", ") + ")"
	}
	return msg
}

// knownKeys lists, sorted, the keys the section at path (a dotted key such as senders[0]; ""
// for the top level) takes, or none when path names no section.
func knownKeys(path string) []string {
	t := sectionType(reflect.TypeFor[Config]())
	if path != "" {
		for _, seg := range strings.Split(path, ".") {
			name, _, _ := strings.Cut(seg, "[")
			switch t.Kind() {
			case reflect.Struct:
				f, ok := yamlFields(t)[name]
				if !ok {
					return nil
				}
				t = f
			case reflect.Map:
				t = t.Elem()
			default:
				return nil
			}
			for range strings.Count(seg, "[") { // a list's item
				if t.Kind() != reflect.Slice {
					return nil
				}
				t = t.Elem()
			}
			t = sectionType(t)
		}
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	keys := slices.Collect(maps.Keys(yamlFields(t)))
	slices.Sort(keys)
	return keys
}

// sectionType is the struct a section of type t is read into: t itself, less pointers, or
// the struct its UnmarshalYAML reads.
func sectionType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[Scheduler]() {
		return reflect.TypeFor[schedulerFile]()
	}
	return t
}

// yamlFields maps the keys of struct type t to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

// secret reads a secret from the environment, else from the file named by the config key.
func secret(getenv func(string) string, envKey, fileKey, file string) (string, error) {
	if v := getenv(envKey); v != "" {
		return v, nil
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", secretFileError(fileKey, file, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// secretFileError says that the file named by fileKey could not be read, without its name:
// the value may be the secret itself, pasted by mistake. Its cause is the reason alone
// (os.ErrNotExist, os.ErrPermission... match it), without the path that *fs.PathError holds.
func secretFileError(fileKey, file string, err error) error {
	cause := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		cause = pe.Err
	}
	msg := fmt.Sprintf("the file it names (%d characters) could not be read: %v", utf8.RuneCountInString(file), cause)
	if errors.Is(cause, fs.ErrNotExist) {
		msg = fmt.Sprintf("the file it names (%d characters) does not exist", utf8.RuneCountInString(file))
		if looksLikeSecret(file) {
			msg += "; the value looks like a secret rather than a path: put the secret in a file and name that file here, or set " +
				secretEnv[fileKey]
		}
	}
	return &Error{Key: fileKey, Msg: msg, Err: cause}
}

// secretEnv is the variable that gives each secret instead of its file.
var secretEnv = map[string]string{
	"connectly.api_key_file":        "CONNECTLY_API_KEY",
	"connectly.webhook_secret_file": "CONNECTLY_WEBHOOK_SECRET",
	"redis.password_file":           "HERALD_REDIS_PASSWORD",
}

// looksLikeSecret says whether a value given as a file name reads more like a key or a
// password: no folder, no space and no file extension (.txt, .key) in it, at least 12
// characters, letters and digits mixed.
func looksLikeSecret(v string) bool {
	if len(v) < 12 || strings.ContainsAny(v, "/\\ \t") || fileExt.MatchString(v) {
		return false
	}
	letters, digits := false, false
	for _, r := range v {
		letters = letters || unicode.IsLetter(r)
		digits = digits || unicode.IsDigit(r)
	}
	return letters && digits
}

// fileExt is a file name's extension: a dot and up to 5 letters at its end.
var fileExt = regexp.MustCompile(`\.[A-Za-z]{1,5}$`)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// urlScheme is what a URL's scheme may be.
var urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]{0,31}$`)

// notRedisURL says what a redis.url that is no Redis URL is without quoting it: a value that
// is not a URL at all may be a password given in the wrong place (HERALD_REDIS_URL=secret),
// so only a URL's scheme is named.
func notRedisURL(u string) string {
	if u == "" {
		return "empty"
	}
	if scheme, _, ok := strings.Cut(u, "://"); ok && urlScheme.MatchString(scheme) {
		return fmt.Sprintf("a %s:// URL", scheme)
	}
	return "not a URL (not shown: it may be a password)"
}

// Validate checks every key and returns the first problem as *Error.
func (c *Config) Validate() error {
	u := c.Redis.URL
	if !(strings.HasPrefix(u, "redis://") || strings.HasPrefix(u, "rediss://") ||
		strings.HasPrefix(u, "redis-sentinel://") || strings.HasPrefix(u, "redis-cluster://") ||
		strings.HasPrefix(u, "redis-socket://")) {
		return &Error{Key: "redis.url", Msg: notRedisURL(u) + ": want redis://, rediss://, redis-sentinel://, redis-cluster:// or redis-socket://"}
	}
	if _, err := redisx.ConnOpt(u); err != nil {
		return &Error{Key: "redis.url", Msg: err.Error(), Err: err}
	}
	if _, err := logx.ParseLevel(c.Log.Level); err != nil {
		return &Error{Key: "log.level", Msg: fmt.Sprintf("%q: want trace, debug, info, warn or error", c.Log.Level), Err: err}
	}
	if err := logx.CheckFormat(c.Log.Format); err != nil {
		return &Error{Key: "log.format", Msg: fmt.Sprintf("%q: want json, console or auto", c.Log.Format), Err: err}
	}
	if !strings.HasPrefix(c.Connectly.BaseURL, "http://") && !strings.HasPrefix(c.Connectly.BaseURL, "https://") {
		return &Error{Key: "connectly.base_url", Msg: fmt.Sprintf("%q is not an http(s) URL", c.Connectly.BaseURL)}
	}
	if c.Connectly.Timeout.D() < time.Second {
		return &Error{Key: "connectly.timeout", Msg: "must be at least 1s"}
	}
	f, err := connectly.ParseBSUIDField(string(c.Connectly.SessionBSUIDField))
	if err != nil {
		return &Error{Key: "connectly.session_bsuid_field", Msg: fmt.Sprintf("%q: want id (recipient.id, the default) or userId (recipient.userId)",
			c.Connectly.SessionBSUIDField), Err: err}
	}
	c.Connectly.SessionBSUIDField = f
	if c.Connectly.BusinessRate < 0 {
		return &Error{Key: "connectly.business_rate", Msg: fmt.Sprintf("must not be negative (0 means the default %g)", limits.DefaultBusinessRate)}
	}
	seen := map[string]bool{}
	for i, s := range c.Senders {
		key := "senders[" + strconv.Itoa(i) + "]"
		if !e164.MatchString(s.Number) {
			return &Error{Key: key + ".number", Msg: fmt.Sprintf("%q is not an E.164 number (+ and 7 to 15 digits)", s.Number)}
		}
		if seen[s.Number] {
			return &Error{Key: key + ".number", Msg: s.Number + " is listed twice"}
		}
		seen[s.Number] = true
		if s.Rate != 0 && (s.Rate < 1 || s.Rate > 1000) {
			return &Error{Key: key + ".rate", Msg: fmt.Sprintf("%g: want 1 to 1000 messages/s (0 means the default %g)", s.Rate, limits.DefaultSenderRate)}
		}
		if s.Rate == 0 {
			c.Senders[i].Rate = limits.DefaultSenderRate
		}
	}
	scope, err := servicewindow.ParseScope(string(c.Windows.Scope))
	if err != nil {
		return &Error{Key: "windows.scope", Msg: err.Error() + " (what a window recorded with no business number counts for)", Err: err}
	}
	c.Windows.Scope = scope
	if c.Worker.Concurrency < 1 || c.Worker.Concurrency > 10000 {
		return &Error{Key: "worker.concurrency", Msg: fmt.Sprintf("%d: want 1 to 10000", c.Worker.Concurrency)}
	}
	switch st := c.Worker.ShutdownTimeout.D(); {
	case st < 0:
		return &Error{Key: "worker.shutdown_timeout", Msg: fmt.Sprintf("%v: must not be negative (0 means connectly.timeout + %v)", st, sendpolicy.ShutdownGrace)}
	case st == 0:
		// The worker's own default, so the worker and the expansion server started from this
		// config wait alike.
		c.Worker.ShutdownTimeout = c.Connectly.Timeout + Duration(sendpolicy.ShutdownGrace)
	}
	if m := c.Worker.WindowMargin.D(); m < 0 {
		return &Error{Key: "worker.window_margin", Msg: fmt.Sprintf("%v: must not be negative (0s counts a window open until it closes)", m)}
	}
	if c.Retry.MaxAttempts < 1 {
		return &Error{Key: "retry.max_attempts", Msg: "must be at least 1"}
	}
	if b := c.Retry.Base.D(); b <= 0 {
		return &Error{Key: "retry.base", Msg: fmt.Sprintf("%v: must be positive (e.g. 1s)", b)}
	}
	if b, cp := c.Retry.Base.D(), c.Retry.Cap.D(); cp < b {
		return &Error{Key: "retry.cap", Msg: fmt.Sprintf("%v: must be at least retry.base (%v)", cp, b),
			or: &Error{Key: "retry.base", Msg: fmt.Sprintf("%v: must be at most retry.cap (%v)", b, cp)}}
	}
	// The worker and the limits would put their defaults in place of a zero or negative wait:
	// a value written that way is refused instead of being replaced without a word.
	for _, d := range []struct {
		key string
		v   Duration
		def time.Duration
	}{
		{"retry.throttle_delay", c.Retry.ThrottleDelay, sendpolicy.DefaultThrottleDelay},
		{"retry.hold_delay", c.Retry.HoldDelay, sendpolicy.DefaultHoldDelay},
		{"retry.max_pace_wait", c.Retry.MaxPaceWait, limits.DefaultMaxWait},
	} {
		if d.v.D() <= 0 {
			return &Error{Key: d.key, Msg: fmt.Sprintf("%v: must be positive (default %v)", d.v.D(), d.def)}
		}
	}
	if p := c.Limits.PairInterval; !p.IsOff() && (p.D() == 0 || p.D() > time.Hour) {
		return &Error{Key: "limits.pair_interval", Msg: fmt.Sprintf("%v: want off or up to 1h", p.D())}
	}
	if k := c.Retry.KeepPlaceFor; !k.IsOff() && (k.D() == 0 || k.D() > 5*time.Minute) {
		return &Error{Key: "retry.keep_place_for", Msg: fmt.Sprintf("%v: want off (reschedule at once) or up to 5m", k.D())}
	}
	if err := c.checkWindowMargin(); err != nil {
		return err
	}
	if c.Limits.TierPeriod.D() < time.Second {
		return &Error{Key: "limits.tier_window", Msg: "must be at least 1s (Meta's window is 24h)"}
	}
	if c.Limits.TierRecheck.D() < time.Second {
		return &Error{Key: "limits.tier_recheck", Msg: "must be at least 1s"}
	}
	for cat, fc := range c.Limits.FrequencyCaps {
		key := "limits.frequency_caps." + cat
		if !slices.Contains([]string{"marketing", "utility", "authentication"}, cat) {
			return &Error{Key: key, Msg: "want a template category: marketing, utility or authentication"}
		}
		if fc.Max < 1 {
			return &Error{Key: key + ".max", Msg: fmt.Sprintf("%d: want at least 1 message", fc.Max)}
		}
		if fc.Period.D() < time.Minute {
			return &Error{Key: key + ".window", Msg: "want at least 1m (e.g. 24h, 168h)"}
		}
	}
	if a := c.Limits.Adaptive; !a.Off {
		if a.MinFactor <= 0 || a.MinFactor > 1 {
			return &Error{Key: "limits.adaptive.min_factor", Msg: fmt.Sprintf("%g: want above 0 and at most 1", a.MinFactor)}
		}
		if a.RecoverStep <= 0 || a.RecoverStep > 1 {
			return &Error{Key: "limits.adaptive.recover_step", Msg: fmt.Sprintf("%g: want above 0 and at most 1", a.RecoverStep)}
		}
		if a.RecoverEvery.D() <= 0 {
			return &Error{Key: "limits.adaptive.recover_every", Msg: "must be positive"}
		}
		if w := a.Period.D(); w < time.Second || w > limits.MaxPeriod || w%time.Second != 0 {
			return &Error{Key: "limits.adaptive.window", Msg: fmt.Sprintf("%v: want whole seconds from 1s to %v", w, limits.MaxPeriod)}
		}
		if a.Threshold <= 0 || a.Threshold >= 1 {
			return &Error{Key: "limits.adaptive.threshold", Msg: fmt.Sprintf("%g: want a share above 0 and below 1 (e.g. 0.05)", a.Threshold)}
		}
		// The codes are answers' keys, as errors' are: a misspelt one would never count.
		for i, code := range a.Codes {
			if err := connectly.CheckOverrideKey(code); err != nil {
				return &Error{Key: fmt.Sprintf("limits.adaptive.codes[%d]", i), Msg: err.Error(), Err: err}
			}
		}
	}
	if c.Limits.Adaptive.Cooldown != 0 {
		return &Error{Key: "limits.adaptive.cooldown", Msg: "replaced by window: the sender's rate now follows the share of throttled " +
			"requests over the window and decreases at most once per window; remove cooldown"}
	}
	if w := c.StopRun.BurstSample; !w.IsOff() && (w == 0 || w > 10000) {
		return &Error{Key: "stop_run.burst_window", Msg: fmt.Sprintf("%d: want off or 1 to 10000", w)}
	}
	if c.StopRun.BurstShare <= 0 || c.StopRun.BurstShare > 1 {
		return &Error{Key: "stop_run.burst_share", Msg: fmt.Sprintf("%g: want a share above 0 and at most 1", c.StopRun.BurstShare)}
	}
	for i, st := range c.Retry.AmbiguousStatuses {
		if st < 500 || st > 599 {
			return &Error{Key: fmt.Sprintf("retry.ambiguous_statuses[%d]", i), Msg: fmt.Sprintf("%d: want a 5xx status", st)}
		}
	}
	for i, key := range c.Retry.RequestFaults {
		if err := connectly.CheckOverrideKey(key); err != nil {
			return &Error{Key: fmt.Sprintf("retry.request_faults[%d]", i), Msg: err.Error(), Err: err}
		}
	}
	if _, err := limits.ParseHoldScope(c.Retry.RetryAfterHolds); err != nil {
		return &Error{Key: "retry.retry_after_holds", Msg: err.Error(), Err: err}
	}
	if c.Webhooks.MaxBody < 1024 || c.Webhooks.MaxBody > 64<<20 {
		return &Error{Key: "webhooks.max_body", Msg: fmt.Sprintf("%d: want 1024 to 67108864 bytes", c.Webhooks.MaxBody)}
	}
	if c.Webhooks.ParkFor.D() < time.Second || c.Webhooks.ParkFor.D() > 24*time.Hour {
		return &Error{Key: "webhooks.park_for", Msg: "want 1s to 24h"}
	}
	if c.Webhooks.InWorker && c.Webhooks.Listen == "" {
		return &Error{Key: "webhooks.in_worker", Msg: "needs webhooks.listen (or HERALD_WEBHOOKS_LISTEN)"}
	}
	for lang, words := range c.Webhooks.OptOutWords {
		for i, w := range words {
			if strings.TrimSpace(w) == "" {
				return &Error{Key: fmt.Sprintf("webhooks.opt_out_words.%s[%d]", lang, i), Msg: "is empty"}
			}
		}
	}
	if c.Scheduler.Poll.D() < 100*time.Millisecond || c.Scheduler.Poll.D() > 10*time.Minute {
		return &Error{Key: "scheduler.poll", Msg: "want 100ms to 10m"}
	}
	if c.Scheduler.Backlog.D() < time.Second {
		return &Error{Key: "scheduler.backlog", Msg: "must be at least 1s"}
	}
	if n := c.Scheduler.MinBacklog; n < 1 {
		return &Error{Key: "scheduler.min_backlog", Msg: fmt.Sprintf("%d: want at least 1 task", n)}
	}
	if lo, hi := c.Scheduler.MinBacklog, c.Scheduler.MaxBacklog; hi < lo {
		return &Error{Key: "scheduler.max_backlog", Msg: fmt.Sprintf("%d: must be at least scheduler.min_backlog (%d)", hi, lo),
			or: &Error{Key: "scheduler.min_backlog", Msg: fmt.Sprintf("%d: must be at most scheduler.max_backlog (%d)", lo, hi)}}
	}
	if c.Scheduler.ExpandConcurrency < 0 || c.Scheduler.ExpandConcurrency > 100 {
		return &Error{Key: "scheduler.expand_concurrency", Msg: fmt.Sprintf("%d: want off (leave expansion to other processes) or 1 to 100",
			c.Scheduler.ExpandConcurrency)}
	}
	if n := c.Campaigns.MaxRecordBytes; n != 0 && (n < 1024 || n > 64<<20) {
		return &Error{Key: "campaigns.max_record_bytes", Msg: fmt.Sprintf("%d: want 1024 to 67108864 bytes (0: 65536)", n)}
	}
	if n := c.Campaigns.MaxFileBytes; n < 0 || (n > 0 && n < 1024) {
		return &Error{Key: "campaigns.max_file_bytes", Msg: fmt.Sprintf("%d: want at least 1024 bytes (0: 2 GiB)", n)}
	}
	if c.Campaigns.MaxRows < 0 {
		return &Error{Key: "campaigns.max_rows", Msg: fmt.Sprintf("%d: want at least 1 row (0: 10000000)", c.Campaigns.MaxRows)}
	}
	return CheckErrors(c.Errors)
}

// CheckErrors checks the errors section, overrides (an answer's code → its class), by the
// rules of the classification table built from it: each code one an answer is looked up
// under (connectly.CheckOverrideKey: a code written in another case, or misspelt, would do
// nothing) and each class one the code may take (connectly.ParseOverride). Validate and
// serve.ErrorTable call it. The first problem in the codes' order is returned, as an *Error
// for the key errors.CODE (placed at the code when the code is the problem).
func CheckErrors(overrides map[string]string) error {
	for _, code := range slices.Sorted(maps.Keys(overrides)) {
		key := "errors." + code
		if err := connectly.CheckOverrideKey(code); err != nil {
			return &Error{Key: key, Msg: err.Error(), Err: err, atKey: true}
		}
		if _, err := connectly.ParseOverride(code, overrides[code]); err != nil {
			return &Error{Key: key, Msg: err.Error(), Err: err}
		}
	}
	return nil
}

// RequireWebhookSecret checks what receiving webhooks needs: a signing secret.
func (c *Config) RequireWebhookSecret() error {
	if strings.TrimSpace(c.WebhookSecret) == "" {
		return &Error{Key: "connectly.webhook_secret_file", Msg: "no webhook secret: set CONNECTLY_WEBHOOK_SECRET or connectly.webhook_secret_file"}
	}
	return nil
}

// RequireConnectly checks what sending needs: a business id and an API key.
func (c *Config) RequireConnectly() error {
	if c.Connectly.BusinessID == "" {
		return &Error{Key: "connectly.business_id", Msg: "is required (or set CONNECTLY_BUSINESS_ID)"}
	}
	if c.APIKey == "" {
		return &Error{Key: "connectly.api_key_file", Msg: "no API key: set CONNECTLY_API_KEY or connectly.api_key_file"}
	}
	return nil
}

// SenderNumbers are the configured sender numbers, in E.164: the business's own numbers, which
// the webhook receiver tells from customers by.
func (c *Config) SenderNumbers() []string {
	out := make([]string, 0, len(c.Senders))
	for _, s := range c.Senders {
		out = append(out, s.Number)
	}
	return out
}

// SenderRates maps each configured sender to its rate.
func (c *Config) SenderRates() map[string]float64 {
	m := make(map[string]float64, len(c.Senders))
	for _, s := range c.Senders {
		m[s.Number] = s.Rate
	}
	return m
}

// SenderRequiredError says a send names no sender while the config lists several: which
// of them it goes from cannot be guessed.
type SenderRequiredError struct {
	// Senders is how many senders the config lists.
	Senders int
}

func (e *SenderRequiredError) Error() string {
	return fmt.Sprintf("sender: required, the config lists %d senders", e.Senders)
}

// SenderFor is the number a send goes from when it names name ("" when it names none): name
// itself; else the config's only sender; else, when the config lists none, "" (the
// business's number). A send that names none while the config lists several gets a
// *SenderRequiredError. Campaigns and one-off messages pick their sender with it alike.
func (c *Config) SenderFor(name string) (string, error) {
	if name != "" {
		return name, nil
	}
	switch len(c.Senders) {
	case 0:
		return "", nil
	case 1:
		return c.Senders[0].Number, nil
	default:
		return "", &SenderRequiredError{Senders: len(c.Senders)}
	}
}

// SenderRate is a sender's configured rate, else limits.DefaultSenderRate.
func (c *Config) SenderRate(number string) float64 {
	for _, s := range c.Senders {
		if s.Number == number && s.Rate > 0 {
			return s.Rate
		}
	}
	return limits.DefaultSenderRate
}
