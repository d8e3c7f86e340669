package report

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/words"
)

// Explanation is the whole story of one recipient in a run, as `recipient explain --json`
// prints it.
type Explanation struct {
	Run       string `json:"run"`
	Recipient string `json:"recipient"`
	InLedger  bool   `json:"in_ledger"`
	State     string `json:"state,omitempty"`
	Row       int    `json:"row,omitempty"`
	Attempts  int    `json:"attempts"`
	Code      string `json:"code,omitempty"`
	Class     string `json:"class,omitempty"`
	Why       string `json:"why,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	// SentAs says what Connectly accepted for the recipient: session (the session message),
	// fallback (a session campaign's fallback template) or in_window (a template sent inside
	// the customer service window); empty for a template outside any window, and before an
	// accept.
	SentAs string `json:"sent_as,omitempty"`
	// FallbackWhy, with SentAs fallback, says why the fallback went: window_closed (Herald's
	// record said the window was closed when the send was due) or window_refused (Connectly
	// refused the session message as outside it, with RefusedCode, and the fallback went at
	// once under the same claim).
	FallbackWhy string `json:"fallback_why,omitempty"`
	RefusedCode string `json:"refused_code,omitempty"`
	Suppressed  bool   `json:"suppressed"`
	// Suppression is the recipient's entry on the suppression list now, when it has one: what
	// it blocks (every message, or marketing only), why and since when.
	Suppression *Suppression `json:"suppression,omitempty"`
	// Window is the recipient's customer service window now (not at the time of the run).
	Window Window `json:"window"`
	// History lists every outcome when the story is more than one clean accept.
	History []HistoryLine `json:"history"`
	// Followups are the on_reply follow-ups the recipient's replies created, in the order of
	// the campaign's rules; rules that created none are left out.
	Followups []FollowupStory `json:"followups,omitempty"`
	// Tags are the tags on_reply rules gave the recipient in the run, sorted.
	Tags []string `json:"tags,omitempty"`
	// Replies are what the recipient sent back, oldest first (ExplainParams.Replies).
	Replies []Reply `json:"replies"`
	// Timeline is every event above in time order (see Timeline).
	Timeline []TimelineEvent `json:"timeline"`
}

// Suppression is a recipient's entry on the suppression list, as `recipient explain --json`
// prints it.
type Suppression struct {
	// Scope is all (every message) or marketing (marketing messages only: the person stopped
	// marketing messages, Meta 131050).
	Scope string `json:"scope"`
	// Reason is the opt-out code, or what opted the person out (INBOUND_OPT_OUT, ON_REPLY).
	Reason string `json:"reason,omitempty"`
	// Since is when the entry was written; absent when it does not say.
	Since *time.Time `json:"since,omitempty"`
}

// Entry says what the entry blocks, why and since when, as ledger.Suppression does: "for
// marketing (131050) since 2026-01-02T03:04:05Z".
func (s Suppression) Entry() string {
	e := ledger.Suppression{Scope: ledger.Scope(s.Scope), Reason: s.Reason}
	if s.Since != nil {
		e.At = *s.Since
	}
	return e.String()
}

// Reply is one reply of the recipient, as the conversation record keeps it. Phone-like
// digits in its text are masked to their last 4 digits; the rest is the customer's own words.
type Reply struct {
	At time.Time `json:"at"`
	// Kind is button, list_row, text or other.
	Kind string `json:"kind"`
	// ID is the tapped button's payload or id, or the chosen row's id.
	ID   string `json:"id,omitempty"`
	Text string `json:"text,omitempty"`
	// MessageID is the inbound message's provider id.
	MessageID string `json:"message_id"`
	// Run is the run the reply was joined to: the run, or one of its follow-up runs.
	Run string `json:"run"`
	// Via is how it was joined: callback, reply_to or recent.
	Via string `json:"via,omitempty"`
	// Rule is the on_reply rule the reply matched; empty when none did (or it came late).
	Rule string `json:"rule,omitempty"`
	// OptOut is set on a message the receiver took as an opt-out (STOP).
	OptOut bool `json:"opt_out,omitempty"`
	// Note says why the rule it matched sent nothing, when the receiver recorded why (e.g.
	// "once per campaign: answered in run X").
	Note string `json:"note,omitempty"`
}

// RepliesFunc reads a recipient's replies in a run, oldest first (serve.ExplainRecipient
// gives one that reads the conversation record).
type RepliesFunc func(ctx context.Context, run, recipient string) ([]Reply, error)

// Kinds of timeline events.
const (
	// EventRun: the run started.
	EventRun = "run"
	// EventSend: an outcome of the send to the recipient (the ledger's history).
	EventSend = "send"
	// EventStatus: the delivery state the send's webhooks reached (sent, delivered, read, or
	// failed: a message Connectly accepted whose delivery failed).
	EventStatus = "status"
	// EventReply: a reply of the recipient.
	EventReply = "reply"
	// EventFollowup: an outcome of a follow-up's send, or the delivery state it reached.
	EventFollowup = "followup"
)

// TimelineEvent is one event of a recipient's story. At is zero when Herald does not record
// the event's time: a send accepted on its first attempt keeps no history, and the ledger
// keeps the delivery state a send reached but not when. Such an event is placed after the
// event that must have come before it.
type TimelineEvent struct {
	At   time.Time `json:"at,omitzero"`
	Kind string    `json:"kind"`
	// Rule is the follow-up's rule (EventFollowup).
	Rule string `json:"rule,omitempty"`
	// Outcome is the history's outcome (EventSend, EventFollowup) or the delivery state
	// (EventStatus; EventFollowup with Status set).
	Outcome string `json:"outcome,omitempty"`
	// Status marks a follow-up event that is its delivery state rather than a send outcome.
	Status  bool   `json:"status,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	Code    string `json:"code,omitempty"`
	Class   string `json:"class,omitempty"`
	// Reply is the reply (EventReply).
	Reply *Reply `json:"reply,omitempty"`
}

// FollowupStory is one follow-up of a recipient: the rule that created it and its entry in
// the rule's follow-up run.
type FollowupStory struct {
	Rule     string `json:"rule"`
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
	// Code is the entry's code: a failure's, or, once Connectly accepted it, how it went
	// (session, fallback, in_window; SentAs says so in words).
	Code      string `json:"code,omitempty"`
	Class     string `json:"class,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	// SentAs is what Connectly accepted for the follow-up, as Explanation.SentAs.
	SentAs string `json:"sent_as,omitempty"`
	// Due is when a follow-up still to be sent (queued) is next due: when its task runs
	// next (a delayed follow-up's delay, the opening of its send hours, or the next look of
	// a send held back); absent once its task is due now, and when it has no task.
	Due *time.Time `json:"due,omitempty"`
	// Task is the state of its task while it is queued: scheduled, retry, pending, active or
	// archived; "none" when no queue holds it (its receiver had not written it yet).
	Task string `json:"task,omitempty"`
	// HeldBy says what holds a queued follow-up back, when something does: HeldByPause or
	// HeldBySendHours; HeldWhy says it in words (the pause's reason, masked; the send hours).
	HeldBy  string        `json:"held_by,omitempty"`
	HeldWhy string        `json:"held_why,omitempty"`
	History []HistoryLine `json:"history"`
}

// What holds a queued follow-up back (FollowupStory.HeldBy).
const (
	// HeldByPause: the run it follows (or its follow-ups, or its own follow-up run) is paused.
	HeldByPause = "pause"
	// HeldBySendHours: it waits for its campaign's send hours to open.
	HeldBySendHours = "send_hours"
)

// Line says a follow-up in one line, as `recipient explain` prints it after "Follow-up":
// "later: queued, 0 attempts, due 2026-03-03T08:00:00Z (in 12h58m), held by the send hours:
// mon-fri 09:00-18:00 Europe/Madrid"; "yes: read, 1 attempt, sent as the session message,
// message wamid.X".
func (f FollowupStory) Line(now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s, %s", f.Rule, f.State, words.Count(f.Attempts, "attempt", "attempts"))
	switch {
	case f.SentAs != "":
		b.WriteString(", sent as " + sentAsShort(f.SentAs))
		if f.Code != "" && f.Code != f.SentAs {
			b.WriteString(", code " + f.Code)
		}
	case f.Code != "":
		b.WriteString(", code " + f.Code)
	}
	if f.MessageID != "" {
		b.WriteString(", message " + f.MessageID)
	}
	switch {
	case f.Due != nil:
		fmt.Fprintf(&b, ", due %s", f.Due.UTC().Format(time.RFC3339))
		if d := f.Due.Sub(now); d >= time.Minute {
			fmt.Fprintf(&b, " (in %s)", shortDuration(d.Truncate(time.Minute)))
		} else if d >= time.Second {
			fmt.Fprintf(&b, " (in %s)", shortDuration(d.Truncate(time.Second)))
		}
	case f.Task == "pending" || f.Task == "active":
		b.WriteString(", due now")
	case f.Task == "none":
		b.WriteString(", no task in any queue (not written yet, or deleted)")
	case f.Task != "":
		b.WriteString(", task " + f.Task)
	}
	switch f.HeldBy {
	case HeldByPause:
		b.WriteString(", held by a pause: " + f.HeldWhy)
	case HeldBySendHours:
		b.WriteString(", held by the send hours: " + f.HeldWhy)
	}
	return b.String()
}

// sentAsShort names what Connectly accepted (ledger.SentSession...) in a few words.
func sentAsShort(sentAs string) string {
	switch sentAs {
	case ledger.SentSession:
		return "the session message"
	case ledger.SentFallback:
		return "the fallback template"
	case ledger.SentInWindow:
		return "the template, inside the window"
	}
	return sentAs
}

// HistoryLine is one event of a recipient's story, with its code's class.
type HistoryLine struct {
	ledger.Event
	Class string `json:"class,omitempty"`
}

// ExplainParams names the recipient to explain.
type ExplainParams struct {
	Run string
	// Recipient is the normalised recipient (E.164 or bsuid:...); Shown is how it is printed.
	Recipient, Shown string
	// Business is the business whose service window is read; Windows is its window policy
	// (its sender numbers and windows.scope); WindowMargin the worker's (worker.window_margin:
	// a window closing within it takes no session message).
	// WindowAhead is the longest a campaign's send waits after its window check (SendAhead of
	// the retry settings), which the workers add to the margin.
	Business                  string
	Windows                   servicewindow.Policy
	WindowMargin, WindowAhead time.Duration
	// Table gives codes their class and meaning; nil leaves them without.
	Table *connectly.Table
	// RuleIDs, when set, returns the ids of the on_reply rules of the run's campaign, in order,
	// as for ShowParams.RuleIDs: the recipient's follow-ups are read for them (none, or nil:
	// no follow-ups read).
	RuleIDs RuleIDs
	// Replies reads the recipient's replies; nil reads none.
	Replies RepliesFunc
	Now     time.Time
}

// Explain reads a recipient's story in a run: its ledger entry, every outcome of its
// history, the class and meaning of its codes, its suppression and its service window now,
// its replies and follow-ups, and all of it in time order as the Timeline.
// It returns an error wrapping ledger.ErrRunNotFound when there is no such run.
func Explain(ctx context.Context, l *ledger.Ledger, rdb redis.UniversalClient, p ExplainParams) (Explanation, error) {
	r, err := l.GetRun(ctx, p.Run)
	if err != nil {
		return Explanation{}, err
	}
	addr := ledger.AddressIn(r.ID, p.Recipient, r.Buckets)
	e, ok, err := l.Entry(ctx, addr)
	if err != nil {
		return Explanation{}, err
	}
	supp, err := l.Suppressions(ctx, []string{p.Recipient})
	if err != nil {
		return Explanation{}, err
	}
	x := Explanation{Run: r.ID, Recipient: p.Shown, InLedger: ok, Suppressed: supp[0].Listed(), History: []HistoryLine{}, Replies: []Reply{}}
	if s := supp[0]; s.Listed() {
		x.Suppression = &Suppression{Scope: string(s.Scope), Reason: s.Reason}
		if !s.At.IsZero() {
			x.Suppression.Since = &s.At
		}
	}
	if x.Window, err = ReadWindow(ctx, rdb, WindowQuery{Business: p.Business, Customer: p.Recipient, Shown: p.Shown,
		Policy: p.Windows, Margin: p.WindowMargin, Ahead: p.WindowAhead, Now: p.Now}); err != nil {
		return Explanation{}, err
	}
	if x.History, err = historyOf(ctx, l, addr, p.Table); err != nil {
		return Explanation{}, err
	}
	var rules []string
	if p.RuleIDs != nil {
		rules = p.RuleIDs(ctx, r)
	}
	if _, _, followup := ledger.FollowupOf(r.ID); !followup {
		// The fallback templates sent after a late window refusal of the run's message, or
		// of a rule's (ledger.LateFallbackRun), are follow-ups of their own.
		late := make([]string, 0, len(rules)+1)
		for _, rule := range append([]string{""}, rules...) {
			src := r.ID
			if rule != "" {
				src = ledger.FollowupRun(r.ID, rule)
			}
			_, _, lr := ledger.LateFallbackRun(src)
			late = append(late, lr)
		}
		rules = append(rules, late...)
	}
	for _, rule := range rules {
		fa := ledger.FollowupAddress(r.ID, rule, p.Recipient, r.Buckets)
		fe, found, err := l.Entry(ctx, fa)
		if err != nil {
			return Explanation{}, err
		}
		if !found {
			continue
		}
		fs := FollowupStory{Rule: rule, State: string(fe.State), Attempts: fe.Attempts, Code: fe.Code, MessageID: fe.MessageID}
		if fe.Code != "" && fe.State == ledger.Failed {
			fs.Class, _ = ExplainCode(p.Table, fe.Code)
		}
		if fs.History, err = historyOf(ctx, l, fa, p.Table); err != nil {
			return Explanation{}, err
		}
		fs.SentAs, _, _ = sentAsOf(fe, fs.History)
		if fe.State == ledger.Queued {
			if err := followupWait(ctx, l, rdb, r.ID, fa, p.Recipient, p.Now, &fs); err != nil {
				return Explanation{}, err
			}
		}
		x.Followups = append(x.Followups, fs)
	}
	if x.Tags, err = l.RecipientTags(ctx, r.ID, p.Recipient); err != nil {
		return Explanation{}, err
	}
	if ok {
		x.State, x.Row, x.Attempts, x.Code, x.MessageID = string(e.State), e.Row, e.Attempts, e.Code, e.MessageID
		if e.Code != "" && (e.State == ledger.Failed || e.State == ledger.Queued || e.State == ledger.Unknown) {
			x.Class, x.Why = ExplainCode(p.Table, e.Code)
		}
		x.SentAs, x.FallbackWhy, x.RefusedCode = sentAsOf(e, x.History)
	}
	if p.Replies != nil {
		rs, err := p.Replies(ctx, r.ID, p.Recipient)
		if err != nil {
			return Explanation{}, err
		}
		for _, rp := range rs {
			rp.Text, rp.ID = logx.MaskDigits(rp.Text), logx.MaskDigits(rp.ID)
			x.Replies = append(x.Replies, rp)
		}
	}
	x.Timeline = Timeline(r.Created, x)
	return x, nil
}

// Timeline orders a recipient's story (x's history, state, replies and follow-ups; started:
// when the run started) in time. An event without a time takes the place of the one before
// it in its own thread: the send's first outcome follows the run's start, a delivery state
// follows its send's last outcome, a follow-up's first undated event follows the first reply
// that matched its rule (else the first reply: a follow-up answers a reply). Times are
// compared to the second (the history's precision): events in the same second keep the order
// run, send, replies, follow-ups.
func Timeline(started time.Time, x Explanation) []TimelineEvent {
	type keyed struct {
		key time.Time
		ev  TimelineEvent
	}
	var all []keyed
	// thread appends events, each undated one keyed like the one before it (from).
	thread := func(from time.Time, evs []TimelineEvent) {
		for _, ev := range evs {
			if !ev.At.IsZero() {
				from = ev.At
			}
			all = append(all, keyed{from, ev})
		}
	}
	thread(started, []TimelineEvent{{At: started, Kind: EventRun}})
	if x.InLedger {
		thread(started, sendThread(oneSend{kind: EventSend, hist: x.History, state: x.State, attempts: x.Attempts, code: x.Code,
			class: x.Class, messageID: x.MessageID}))
	}
	firstReply := started
	for i, rp := range x.Replies {
		if i == 0 {
			firstReply = rp.At
		}
		all = append(all, keyed{rp.At, TimelineEvent{At: rp.At, Kind: EventReply, Reply: &x.Replies[i]}})
	}
	for _, f := range x.Followups {
		from := firstReply
		if i := slices.IndexFunc(x.Replies, func(r Reply) bool { return r.Rule == f.Rule }); i >= 0 {
			from = x.Replies[i].At
		}
		thread(from, sendThread(oneSend{kind: EventFollowup, rule: f.Rule, hist: f.History, state: f.State, attempts: f.Attempts,
			code: f.Code, class: f.Class, messageID: f.MessageID}))
	}
	// The history keeps whole seconds, the run's start and the replies milliseconds: events
	// are compared to the second, so a send in the run's first second follows its start, and
	// events of the same second keep the order above.
	sort.SliceStable(all, func(i, j int) bool { return all[i].key.Unix() < all[j].key.Unix() })
	out := make([]TimelineEvent, len(all))
	for i, k := range all {
		out[i] = k.ev
	}
	return out
}

// oneSend is what a timeline reads of one send: its kind (EventSend or EventFollowup), its
// rule (a follow-up's), its history, and its entry's state, attempts, code (with its class)
// and message id.
type oneSend struct {
	kind, rule  string
	hist        []HistoryLine
	state       string
	attempts    int
	code, class string
	messageID   string
}

// sendThread returns the events of one send (the recipient's, or a follow-up's): its history,
// else its one outcome without a time, then the delivery state it reached. A failed entry
// that records a message id was accepted and then failed in delivery (a send that fails
// records none): its failure is a delivery state, after the accept.
func sendThread(s oneSend) []TimelineEvent {
	kind, rule, hist, state, attempts, code := s.kind, s.rule, s.hist, s.state, s.attempts, s.code
	var evs []TimelineEvent
	for _, h := range hist {
		evs = append(evs, TimelineEvent{At: h.At, Kind: kind, Rule: rule, Outcome: h.Outcome, Attempt: h.Attempt, Code: h.Code, Class: h.Class})
	}
	deliveryFailed := state == string(ledger.Failed) && s.messageID != ""
	delivery := state == string(ledger.Sent) || state == string(ledger.Delivered) || state == string(ledger.Read) || deliveryFailed
	if len(hist) == 0 && state != "" && state != string(ledger.Planned) && state != string(ledger.Queued) {
		ev := TimelineEvent{Kind: kind, Rule: rule, Outcome: state, Attempt: attempts, Code: code}
		if delivery {
			// The entry's code is how the accepted message went (session, fallback...), or a
			// delivery failure's, which belongs to the delivery state below.
			ev.Outcome = string(ledger.Accepted)
			if deliveryFailed {
				ev.Code = ""
			}
		}
		evs = append(evs, ev)
	}
	if delivery {
		ev := TimelineEvent{Kind: EventStatus, Outcome: state}
		if kind == EventFollowup {
			ev = TimelineEvent{Kind: kind, Rule: rule, Outcome: state, Status: true}
		}
		if deliveryFailed {
			ev.Code, ev.Class = code, s.class
		}
		evs = append(evs, ev)
	}
	return evs
}

// Why a session campaign's fallback template went (Explanation.FallbackWhy).
const (
	// FallbackWindowClosed: Herald's record said the window was closed when the send was due.
	FallbackWindowClosed = "window_closed"
	// FallbackWindowRefused: Connectly refused the session message as outside the window.
	FallbackWindowRefused = ledger.EventWindowRefused
)

// sentAsOf reads what Connectly accepted for an entry (ledger.SentSession, SentFallback,
// SentInWindow) and, for a fallback, why it went: the code its accept recorded, which the
// entry keeps as it moves on to sent, delivered or read; for an entry whose delivery failed
// after the accept, its history's last accept (ledger's delivery.lua writes it there). A
// fallback whose history says window_refused after its last attempt began went because
// Connectly refused the session message; any other, because the window read closed.
func sentAsOf(e ledger.Entry, hist []HistoryLine) (sentAs, why, refused string) {
	accepted := -1
	for i, h := range hist {
		if h.Outcome == string(ledger.Accepted) {
			accepted = i
		}
	}
	switch e.State {
	case ledger.Accepted, ledger.Sent, ledger.Delivered, ledger.Read:
		sentAs = e.Code
	case ledger.Failed:
		if e.MessageID != "" && accepted >= 0 {
			sentAs = hist[accepted].Code
		}
	}
	switch sentAs {
	case ledger.SentSession, ledger.SentInWindow:
		return sentAs, "", ""
	case ledger.SentFallback:
	default:
		return "", "", ""
	}
	// The refusal of the accepted attempt comes right before its accept.
	if accepted > 0 && hist[accepted-1].Outcome == ledger.EventWindowRefused && hist[accepted-1].Attempt == hist[accepted].Attempt {
		return sentAs, FallbackWindowRefused, hist[accepted-1].Code
	}
	return sentAs, FallbackWindowClosed, ""
}

// SentAsLine says what Connectly accepted, for people: "the fallback template (refused by
// Connectly as outside the window: CODE)"; "" when SentAs is empty.
func (x Explanation) SentAsLine() string {
	switch x.SentAs {
	case ledger.SentSession:
		return "the session message, inside the customer service window"
	case ledger.SentInWindow:
		return "the template, inside the customer service window"
	case ledger.SentFallback:
		if x.FallbackWhy == FallbackWindowRefused {
			return "the fallback template (the session message was refused by Connectly as outside the window: " + x.RefusedCode + ")"
		}
		return "the fallback template (the window was closed at send time, by Herald's record)"
	}
	return ""
}

// resendWithdrawn is the history outcome of a resend withdrawn before it was sent; its code
// is the reason (a skip's reason, or Herald's own code).
const resendWithdrawn = "resend_withdrawn"

// historyOf reads the history of the entry at a, each code with its class.
func historyOf(ctx context.Context, l *ledger.Ledger, a ledger.Address, table *connectly.Table) ([]HistoryLine, error) {
	hist, err := l.History(ctx, a)
	if err != nil {
		return nil, err
	}
	out := []HistoryLine{}
	for _, ev := range hist {
		hl := HistoryLine{Event: ev}
		if ev.Code != "" && classified(ev) {
			hl.Class, _ = ExplainCode(table, ev.Code)
		}
		out = append(out, hl)
	}
	return out, nil
}

// classified reports whether a history event's code is one to class: an answer of
// Connectly's or a code of Herald's that says why a send did not go (a failure, a refusal, a
// retry, a throttle, a hold, a claim given back, an unknown and its resend). An accept's code
// says how the message went (session, fallback, in_window), and a skip's is its reason
// (suppressed, window_closed...): neither is a failure, and neither has a class (looked up in
// the provider's table, any of them would read as permanent). Nor has a withdrawn resend's
// reason (cancelled, expired...), unless Herald's own code says why (RESEND_DELETED), nor a
// withdrawn retry's (ledger.EventRetryWithdrawn: cancelled, deleted, a skip's reason). A
// retry after a maybe-sent answer (retry_maybe_sent) carries Connectly's answer, classed as
// any retry's.
func classified(ev ledger.Event) bool {
	switch ev.Outcome {
	case string(ledger.Accepted), string(ledger.Skipped):
		return false
	case resendWithdrawn, ledger.EventRetryWithdrawn:
		_, _, own := ledger.CodeMeaning(ev.Code)
		return own
	}
	return true
}

// ExplainCode returns the class and meaning of a recorded code under table ("" and "" when
// table is nil). A code Herald records itself (a pacing wait, a claim given back) has its own
// class and meaning (ledger.CodeMeaning); any other is Connectly's, classified by table.
func ExplainCode(table *connectly.Table, code string) (class, why string) {
	if table == nil {
		return "", ""
	}
	if class, why, ok := ledger.CodeMeaning(code); ok {
		return class, why
	}
	if r, ok := table.Lookup(code); ok {
		return r.Class.String(), r.Why
	}
	return table.ClassOf(code).String(), "no documented meaning"
}

// PrintExplanation renders a recipient's story as `recipient explain` does, its window as
// of now.
func PrintExplanation(w io.Writer, x Explanation, now time.Time) {
	if !x.InLedger {
		fmt.Fprintf(w, "%s is not a recipient of run %s (not in its audience, or skipped before the ledger: invalid or duplicate row)\n", x.Recipient, x.Run)
	} else {
		fmt.Fprintf(w, "Run        %s\nRecipient  %s (audience row %d)\nState      %s\nAttempts   %d\n", x.Run, x.Recipient, x.Row, x.State, x.Attempts)
		if line := x.SentAsLine(); line != "" {
			fmt.Fprintf(w, "Sent as    %s\n", logx.Escape(line))
		}
		if x.Code != "" && x.Code != x.SentAs {
			// Codes come from Connectly's answers: escaped like anything printed from outside.
			fmt.Fprintf(w, "Last code  %s", logx.Escape(x.Code))
			if x.Class != "" {
				fmt.Fprintf(w, " (%s: %s)", x.Class, x.Why)
			}
			fmt.Fprintln(w)
		}
		if x.MessageID != "" {
			fmt.Fprintf(w, "Message    %s\n", x.MessageID)
		}
		printHistory(w, x.History)
		if why := x.UnknownWhy(); why != "" {
			fmt.Fprintf(w, "Unknown    %s\n", logx.Escape(why))
		}
		for _, f := range x.Followups {
			fmt.Fprintf(w, "Follow-up  %s\n", logx.Escape(f.Line(now)))
			printHistory(w, f.History)
		}
		if len(x.Tags) > 0 {
			fmt.Fprintf(w, "Tags       %s\n", strings.Join(x.Tags, ", "))
		}
	}
	if s := x.Suppression; s != nil {
		// "Suppressed for marketing (131050) since 2026-01-02T03:04:05Z"
		fmt.Fprintf(w, "Suppressed %s\n", s.Entry())
	} else {
		fmt.Fprintf(w, "Suppressed %v\n", x.Suppressed)
	}
	fmt.Fprintf(w, "Window     %s\n", x.Window.Line(now)+x.Window.to())
	printWindows(w, x.Window, now)
}

// UnknownWhy says why Herald cannot tell whether an unknown recipient got the message, from the
// last event of its history; "" for a recipient in any other state.
func (x Explanation) UnknownWhy() string {
	if x.State != string(ledger.Unknown) {
		return ""
	}
	const settle = "; a delivery webhook for it still settles the recipient"
	last := ledger.Event{}
	if len(x.History) > 0 {
		last = x.History[len(x.History)-1].Event
	}
	switch last.Outcome {
	case ledger.EventRetryRefused:
		return "an earlier attempt may have delivered the message, and Connectly refused a later one (" + last.Code +
			") for a reason that may have come after it" + settle
	case ledger.EventRetriesExhausted:
		return "an earlier attempt may have delivered the message; the later ones were not taken (last: " + last.Code + ")" + settle
	case ledger.EventRetryWithdrawn, resendWithdrawn:
		return "an earlier attempt may have delivered the message; it was not sent again (" + last.Code + ")" + settle
	}
	code := x.Code
	if x.Why != "" {
		code += ": " + x.Why
	}
	return "the message may have gone out (" + code + ")" + settle
}

// printHistory prints one line an outcome, indented under its entry.
func printHistory(w io.Writer, hist []HistoryLine) {
	for _, h := range hist {
		fmt.Fprintf(w, "  %s ", h.At.Format(time.RFC3339))
		if h.Attempt > 0 { // a skip (window_closed, suppressed...) made no attempt
			fmt.Fprintf(w, "attempt %d: ", h.Attempt)
		}
		fmt.Fprint(w, h.Outcome)
		if h.Code != "" {
			fmt.Fprintf(w, " %s", h.Code)
		}
		if h.Class != "" {
			fmt.Fprintf(w, " (%s)", h.Class)
		}
		fmt.Fprintln(w)
	}
}
