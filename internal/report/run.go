package report

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/words"
)

// Run is a run's state as `run show --json`, `run ls --json` and `demo --json` print it.
type Run struct {
	Run      string `json:"run"`
	Campaign string `json:"campaign"`
	// Parent is the run a retry run retries; "" for any other run.
	Parent string `json:"parent,omitempty"`
	// Follows and Rule are, for a follow-up run ("RUN~RULE"), the run it follows and its
	// on_reply rule. A follow-up run is never expanded and never ends (each reply that matches
	// the rule may add an entry until the rule's on_reply.until): Recipients counts its entries.
	Follows string `json:"follows,omitempty"`
	Rule    string `json:"rule,omitempty"`
	// RetriedBy are the retry runs started from this run (run retry), oldest first.
	RetriedBy   []string `json:"retried_by,omitempty"`
	Status      string   `json:"status"`
	PauseReason string   `json:"pause_reason,omitempty"`
	// Waiting says what a running run's sends wait for (the daily tier), while it lasts.
	Waiting string `json:"waiting,omitempty"`
	// ArchivedTasks counts, while the run has not ended (run show only), its send tasks archived
	// in its queue whose recipients are still queued in the ledger: the run cannot end until
	// each of those tasks is retried or deleted. A task archived after a permanent failure,
	// whose recipient is failed, is not counted (ArchivedTasks).
	ArchivedTasks int64  `json:"archived_tasks,omitempty"`
	Queue         string `json:"-"`
	// SenderBackoff says the run's sender is slowed after a throttle (run show only).
	SenderBackoff string `json:"sender_backoff,omitempty"`
	Expanded      bool   `json:"expanded"`
	// ExpansionStopped says, for a run not expanded (run show only), that nothing is left to
	// read the rest of its audience: "no_task" (no expansion task of it left in any state
	// but completed, and no server running one) or "archived" (its expansion task waits in
	// the archive). The run cannot end until `herald run repair RUN --apply` starts its
	// expansion again (or retries the archived task). "" while its expansion goes on.
	ExpansionStopped string `json:"expansion_stopped,omitempty"`
	// Recipients is, despite its name (kept for --json), the run's audience rows: the rows
	// skipped before reaching the ledger (an invalid number, a duplicate) included, as in
	// Sum; campaign send's "8 rows, 6 recipients" is 8 here (run ls shows it as ROWS). A
	// follow-up run counts its entries.
	Recipients int              `json:"recipients"`
	States     map[string]int64 `json:"states"`
	Sum        int64            `json:"sum"`
	// Done counts recipients that need no more sending (the terminal states).
	Done int64 `json:"done"`
	// Accepted counts recipients Connectly accepted, whatever they reached since: accepted,
	// sent, delivered or read. Delivered counts those delivered or read.
	Accepted           int64            `json:"accepted"`
	Delivered          int64            `json:"delivered"`
	Codes              map[string]int64 `json:"codes"`
	Attempts           int64            `json:"attempts"`
	Retries            int64            `json:"retries"`
	AcceptedAfterRetry int64            `json:"accepted_after_retry"`
	Throttled          int64            `json:"throttled"`
	// InWindow counts template sends accepted while the recipient's customer service window
	// was open (Meta does not charge a utility template sent inside one).
	InWindow int64 `json:"in_window"`
	// Session is how a session campaign's recipients went; nil for a template campaign, and
	// for a session campaign with no recipient yet sent, skipped for its window or refused as
	// outside it (one whose every send failed otherwise reads as a template campaign).
	Session *SessionCounts `json:"session,omitempty"`
	// ResendAfter is the run's quiet period before an unknown recipient's one resend (the
	// campaign's unknown.resend_after); ResentUnknown counts the recipients resent so far,
	// ResendWaiting those still waiting for their quiet period to end.
	ResendAfter   string     `json:"resend_after,omitempty"`
	ResentUnknown int64      `json:"resent_unknown"`
	ResendWaiting int64      `json:"resend_waiting"`
	Created       time.Time  `json:"created"`
	Finished      *time.Time `json:"finished,omitempty"`
	// RatePerSecond is recipients sent to (accepted, failed or unknown: every finished row but
	// the skipped, which take no request) per second since the run started, 0 for a follow-up
	// run (its sends come as customers reply); ETASeconds estimates the rows left at that rate
	// (0 once the run has ended).
	RatePerSecond float64 `json:"rate_per_second"`
	ETASeconds    float64 `json:"eta_seconds"`
	// Verify is set by run show --verify.
	Verify *ledger.Verification `json:"verify,omitempty"`
	// Delivery is what the delivery webhooks said, once any was recorded.
	Delivery *ledger.DeliveryStats `json:"delivery,omitempty"`
	// Funnel is what the replies led to, for a campaign with on_reply rules (funnel.go).
	Funnel *Funnel `json:"funnel,omitempty"`
	// LateFallbacks are the fallback templates sent for session messages Connectly accepted
	// and then reported undelivered because the customer's window had closed (LateFallbacks);
	// nil when there were none. Its rule is the follow-up run that holds them.
	LateFallbacks *FunnelRule `json:"late_fallbacks,omitempty"`
	// FollowupsPaused are the run's paused follow-up runs (a run-stopping answer to a
	// follow-up pauses its rule's follow-ups, whatever the run's own status); `run resume`
	// of the run resumes them.
	FollowupsPaused []PausedFollowup `json:"followups_paused,omitempty"`
	// Followups is an operator's hold on the follow-ups of the completed run (`run pause` or
	// `run cancel` of it while its on_reply.until lasts); nil when none.
	Followups *FollowupsHold `json:"followups,omitempty"`
}

// FollowupsHold is an operator's hold on a completed run's follow-ups: State paused (held
// until `run resume`) or cancelled (dropped), and its reason.
type FollowupsHold struct {
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// PausedFollowup is one paused follow-up run of a run: its rule, and why it was paused.
type PausedFollowup struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

// pausedFollowups reads the paused follow-up runs of every run, by the run they follow.
func pausedFollowups(ctx context.Context, l *ledger.Ledger) (map[string][]PausedFollowup, error) {
	runs, err := l.PausedFollowups(ctx, "")
	if err != nil {
		return nil, err
	}
	out := map[string][]PausedFollowup{}
	for _, r := range runs {
		parent, rule, _ := ledger.FollowupOf(r.ID)
		out[parent] = append(out[parent], PausedFollowup{Rule: rule, Reason: r.PauseReason})
	}
	return out, nil
}

// SessionCounts are a session campaign run's outcomes by the window: recipients sent the
// session message (their window was open), sent the fallback template instead (Fallback, with
// a fallback_template: FallbackWindowClosed because Herald's record said the window was
// closed, FallbackRefused because Connectly refused the session message as outside it while
// Herald's record said open), skipped(window_closed) with no request (closed by Herald's
// record, without one), and refused by Connectly as outside the window, without one
// (WindowRefused: failed with Connectly's codes, in codes, or unknown when an earlier attempt
// may have sent the message, ledger.EventRetryRefused). Sent and
// Fallback count sends as Connectly accepted them, whatever they reached since.
// FallbackRefused and WindowRefused together are the refusals that tell Herald's record of the
// windows from Connectly's.
type SessionCounts struct {
	Sent                 int64 `json:"sent"`
	Fallback             int64 `json:"fallback"`
	FallbackWindowClosed int64 `json:"fallback_window_closed"`
	FallbackRefused      int64 `json:"fallback_refused"`
	WindowClosed         int64 `json:"window_closed"`
	WindowRefused        int64 `json:"window_refused"`
}

// sessionCounts reads c's session counts; nil when it has none.
func sessionCounts(c ledger.Counters) *SessionCounts {
	sc := SessionCounts{Sent: c.Accepted(ledger.SentSession), Fallback: c.Accepted(ledger.SentFallback),
		FallbackRefused: c.WindowRefusedFallback,
		WindowClosed:    c.Codes[string(ledger.Skipped)+":"+ledger.SkipWindowClosed], WindowRefused: c.WindowRefused}
	sc.FallbackWindowClosed = max(0, sc.Fallback-sc.FallbackRefused)
	if sc == (SessionCounts{}) {
		return nil
	}
	return &sc
}

// NewRun builds the report of run r from its counters c, as of now.
func NewRun(r ledger.Run, c ledger.Counters, now time.Time) Run {
	rep := Run{
		Run: r.ID, Campaign: r.Campaign, Parent: r.Parent, Status: string(r.Status), PauseReason: r.PauseReason,
		Expanded: r.Expanded, Recipients: r.Total, States: map[string]int64{}, Sum: c.Sum(),
		Codes: c.Codes, Attempts: c.Attempts, Retries: c.Retries,
		AcceptedAfterRetry: c.AcceptedAfterRetry, Throttled: c.Throttled, Created: r.Created,
		ResentUnknown: c.ResentUnknown, ResendWaiting: c.ResendWaiting,
		InWindow: c.Accepted(ledger.SentInWindow), Session: sessionCounts(c),
	}
	if r.ResendAfter > 0 {
		rep.ResendAfter = r.ResendAfter.String()
	}
	if r.Followups != ledger.FollowupsGo {
		rep.Followups = &FollowupsHold{State: string(r.Followups), Reason: r.FollowupsReason}
	}
	for _, m := range r.RetriedBy {
		rep.RetriedBy = append(rep.RetriedBy, m.Child)
	}
	follows, rule, followup := ledger.FollowupOf(r.ID)
	switch {
	case followup:
		// No audience: one entry per reply that matched the rule, each counted in its total.
		rep.Follows, rep.Rule, rep.Parent, rep.Recipients = follows, rule, "", r.Total
	case !r.Expanded:
		// Still reading its audience: the rows known when it was created (a retry run's
		// picked recipients), else what is planned so far.
		rep.Recipients = max(r.PlannedTo, r.Rows, r.Picked)
	}
	if r.Status == ledger.RunRunning {
		rep.Waiting = r.WaitingNow(now)
	}
	for s, n := range c.States {
		rep.States[string(s)] = n
	}
	if !r.Finished.IsZero() {
		f := r.Finished
		rep.Finished = &f
	}
	for st, n := range c.States {
		if st.Terminal() {
			rep.Done += n
		}
		switch st {
		case ledger.Accepted, ledger.Sent:
			rep.Accepted += n
		case ledger.Delivered, ledger.Read:
			rep.Accepted += n
			rep.Delivered += n
		}
	}
	end := now
	if rep.Finished != nil {
		end = *rep.Finished
	}
	// A skip takes no request: a cancelled run swept in a moment is no fast sender. A follow-up
	// run's pace is its customers'.
	if sentTo := rep.Done - c.States[ledger.Skipped]; !followup && sentTo > 0 {
		if secs := end.Sub(r.Created).Seconds(); secs > 0 {
			rep.RatePerSecond = float64(sentTo) / secs
		}
	}
	if rep.RatePerSecond > 0 {
		// A run whose sends wait (the daily tier, its send hours) has no estimate: its rate so
		// far says nothing of when the wait ends.
		if rep.Finished == nil && rep.Status == string(ledger.RunRunning) && rep.Waiting == "" {
			rep.ETASeconds = float64(int64(rep.Recipients)-rep.Done) / rep.RatePerSecond
		}
	}
	return rep
}

// perSecond writes a rate with the digits that say something: 246.9, 2.5, 0.048.
func perSecond(r float64) string {
	if r >= 1 {
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return strconv.FormatFloat(r, 'g', 2, 64)
}

// Ended reports whether the run has reached an end: completed or cancelled.
func (rep Run) Ended() bool {
	return rep.Status == string(ledger.RunCompleted) || rep.Status == string(ledger.RunCancelled)
}

// ReadRun reads run runID's report from the ledger, as of now. It returns an error wrapping
// ledger.ErrRunNotFound when there is no such run.
func ReadRun(ctx context.Context, l *ledger.Ledger, runID string, now time.Time) (Run, error) {
	_, rep, err := readRun(ctx, l, runID, now)
	return rep, err
}

// readRun reads run runID and its report from its counters, as of now.
func readRun(ctx context.Context, l *ledger.Ledger, runID string, now time.Time) (ledger.Run, Run, error) {
	r, err := l.GetRun(ctx, runID)
	if err != nil {
		return ledger.Run{}, Run{}, err
	}
	c, err := l.Counters(ctx, r.ID)
	if err != nil {
		return ledger.Run{}, Run{}, err
	}
	return r, NewRun(r, c, now), nil
}

// ShowParams say which run ShowRun reports on and what it reads besides the run's counters
// and delivery outcomes.
type ShowParams struct {
	// Run is the run's id.
	Run string
	// Now is the time the report is made at.
	Now time.Time
	// Limits, when set, is the configuration the run's sender's adaptive rate is read against
	// (Run.SenderBackoff).
	Limits *config.Config
	// RuleIDs, when set, returns the ids of the on_reply rules of a run's campaign, in order
	// (none when it has none): the run's funnel is read for them (Run.Funnel).
	RuleIDs RuleIDs
	// Verify recomputes the counters from the ledger (Run.Verify).
	Verify bool
	// SendAddress reads a send task's recipient from its payload, so that Run.ArchivedTasks
	// counts only the archived tasks whose recipients are still to be sent; nil counts every
	// archived task of the run (ArchivedTasks).
	SendAddress SendAddress
	// Reveal leaves phone numbers in the report as they are: the run's sender, and any number
	// in a button label or a pause reason. By default they are masked (Run.Mask).
	Reveal bool
}

// ShowRun reads the report `run show` and the demo print: the run from its counters, its
// delivery outcomes, and what p asks for besides. It returns an error wrapping
// ledger.ErrRunNotFound when there is no such run.
func ShowRun(ctx context.Context, l *ledger.Ledger, rdb redis.UniversalClient, p ShowParams) (Run, error) {
	r, rep, err := readRun(ctx, l, p.Run, p.Now)
	if err != nil {
		return Run{}, err
	}
	if p.Limits != nil {
		rep.SenderBackoff = SenderBackoff(ctx, rdb, *p.Limits, r.Sender, p.Now)
	}
	paused, err := pausedFollowups(ctx, l)
	if err != nil {
		return rep, err
	}
	rep.FollowupsPaused = paused[r.ID]
	if rep.ExpansionStopped, err = stoppedExpansion(ctx, rdb, r, p.Now); err != nil {
		return rep, err
	}
	if rep.ExpansionStopped != "" {
		// Nothing reads the rest of the audience: no time is left to estimate.
		rep.ETASeconds = 0
	}
	if !rep.Ended() && r.Queue != "" {
		rep.Queue = r.Queue
		if rep.ArchivedTasks, err = ArchivedTasks(ctx, rdb, l, r.Queue, r.ID, p.SendAddress); err != nil {
			return rep, err
		}
	}
	if rep.Delivery, err = Delivery(ctx, l, r.ID); err != nil {
		return rep, err
	}
	if p.RuleIDs != nil {
		if rep.Funnel, err = RunFunnel(ctx, l, r, p.RuleIDs); err != nil {
			return rep, err
		}
	}
	if _, _, followup := ledger.FollowupOf(r.ID); !followup {
		if rep.LateFallbacks, err = LateFallbacks(ctx, l, r.ID); err != nil {
			return rep, err
		}
	}
	if p.Verify {
		v, err := l.Verify(ctx, r.ID)
		if err != nil {
			return rep, err
		}
		rep.Verify = &v
	}
	if !p.Reveal {
		rep.Mask()
	}
	return rep, nil
}

// Mask masks the phone numbers in rep's texts to their last 4 digits (logx.MaskDigits), as
// run show prints them unless --reveal: the labels of the buttons customers tapped (which are
// what the customer's message said), the pause reasons (an operator's --reason, an error),
// and the sender named in the sender's backoff. Labels that differ only in a masked number
// are counted together.
func (rep *Run) Mask() {
	rep.PauseReason = logx.MaskDigits(rep.PauseReason)
	for i := range rep.FollowupsPaused {
		rep.FollowupsPaused[i].Reason = logx.MaskDigits(rep.FollowupsPaused[i].Reason)
	}
	if rep.Followups != nil {
		f := *rep.Followups
		f.Reason = logx.MaskDigits(f.Reason)
		rep.Followups = &f
	}
	rep.SenderBackoff = logx.MaskDigits(rep.SenderBackoff)
	if rep.Delivery != nil {
		d := *rep.Delivery
		d.ButtonReplies = maskKeys(d.ButtonReplies)
		rep.Delivery = &d
	}
	if rep.Funnel != nil {
		f := *rep.Funnel
		f.Taps = maskKeys(f.Taps)
		rep.Funnel = &f
	}
}

// maskKeys returns counts with the phone numbers of its keys masked, adding up the counts of
// keys that become one; nil for nil.
func maskKeys(counts map[string]int64) map[string]int64 {
	if counts == nil {
		return nil
	}
	out := make(map[string]int64, len(counts))
	for k, n := range counts {
		out[logx.MaskDigits(k)] += n
	}
	return out
}

// RecentRuns reports the latest limit runs, newest first, of campaign (all when ""), their
// phone numbers masked (Run.Mask), each with its paused follow-up runs and the hold an
// operator put on its follow-ups once it completed (read with the run's hash). A limit below 1 is an error: read as a range it would list
// every run (0) or all but the oldest (-1).
func RecentRuns(ctx context.Context, l *ledger.Ledger, campaign string, limit int, now time.Time) ([]Run, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list %d runs: want 1 or more", limit)
	}
	ids, err := l.RecentRuns(ctx, campaign, limit)
	if err != nil {
		return nil, err
	}
	paused, err := pausedFollowups(ctx, l)
	if err != nil {
		return nil, err
	}
	reps := make([]Run, 0, len(ids))
	for _, id := range ids {
		rep, err := ReadRun(ctx, l, id, now)
		if err != nil {
			return nil, err
		}
		rep.FollowupsPaused = paused[id]
		rep.Mask()
		reps = append(reps, rep)
	}
	return reps, nil
}

// PrintRuns renders runs as the table of `run ls`.
func PrintRuns(w io.Writer, reps []Run) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// ROWS counts the audience rows (Recipients), rows skipped before the ledger (an invalid
	// number, a duplicate) included, as DONE does: campaign send's "8 rows, 6 recipients" is
	// ROWS 8. ACCEPTED counts recipients accepted or further on (sent, delivered, read).
	fmt.Fprintln(tw, "RUN\tCAMPAIGN\tSTATUS\tROWS\tDONE\tACCEPTED\tDELIVERED\tFAILED\tCREATED")
	for _, rep := range reps {
		status := rep.Status
		switch {
		case rep.Followups != nil:
			// An operator's hold on the follow-ups of the completed run: paused or cancelled.
			status += ", follow-ups " + rep.Followups.State
		case len(rep.FollowupsPaused) > 0:
			status += ", follow-ups paused"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", rep.Run, rep.Campaign, status, rep.Recipients,
			rep.Done, rep.Accepted, rep.Delivered, rep.States["failed"], rep.Created.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// Delivery reads a run's delivery outcomes; nil when no webhook has been recorded for it.
func Delivery(ctx context.Context, l *ledger.Ledger, runID string) (*ledger.DeliveryStats, error) {
	d, err := l.DeliveryStats(ctx, runID)
	if err != nil {
		return nil, err
	}
	if d.Empty() {
		return nil, nil
	}
	return &d, nil
}

// PrintRun renders a run for people: status, per-state counts with their sum checked
// against the audience, and outcome codes.
func PrintRun(w io.Writer, rep Run) {
	fmt.Fprintf(w, "Run       %s\nCampaign  %s\n", rep.Run, rep.Campaign)
	switch {
	case rep.Follows != "":
		fmt.Fprintf(w, "Follows   %s (on_reply rule %s)\n", rep.Follows, rep.Rule)
	case rep.Parent != "":
		fmt.Fprintf(w, "Retries   %s\n", rep.Parent)
	}
	if len(rep.RetriedBy) > 0 {
		fmt.Fprintf(w, "Retried   by %s\n", strings.Join(rep.RetriedBy, ", "))
	}
	for _, l := range statusLines(rep) {
		if l.label == "" {
			fmt.Fprintln(w, l.text)
		} else {
			fmt.Fprintf(w, "%-10s%s\n", l.label, l.text)
		}
	}
	if rep.Finished != nil {
		fmt.Fprintf(w, "Took      %s\n", rep.Finished.Sub(rep.Created).Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "STATE\tCOUNT\t")
	for _, s := range ledger.States {
		fmt.Fprintf(tw, "%s\t%d\t\n", s, rep.States[string(s)])
	}
	fmt.Fprintf(tw, "total\t%d\t\n", rep.Sum)
	tw.Flush()
	switch {
	case rep.Follows != "" && rep.Sum == int64(rep.Recipients):
		fmt.Fprintf(w, "follow-ups: %s (one per reply that matched rule %s), all accounted for; a follow-up run never ends\n",
			entries(rep.Recipients), rep.Rule)
	case rep.Follows != "":
		fmt.Fprintf(w, "follow-ups: %s, but the states add up to %d\n", entries(rep.Recipients), rep.Sum)
	case !rep.Expanded && rep.ExpansionStopped == "archived":
		fmt.Fprintf(w, "audience: expansion stopped (%s so far): its expansion task is archived (herald task ls %s --state archived); herald run repair %s retries it\n",
			countRows(rep.Recipients), rkeys.ExpandQueue, rep.Run)
	case !rep.Expanded && rep.ExpansionStopped != "":
		fmt.Fprintf(w, "audience: expansion stopped (%s so far): no expansion task left to read the rest; herald run repair %s starts it again\n",
			countRows(rep.Recipients), rep.Run)
	case !rep.Expanded:
		fmt.Fprintf(w, "audience: still expanding (%s so far)\n", countRows(rep.Recipients))
	case rep.Sum == int64(rep.Recipients):
		fmt.Fprintf(w, "audience: %s, all accounted for\n", countRows(rep.Recipients))
	default:
		fmt.Fprintf(w, "audience: %s, but the states add up to %d\n", countRows(rep.Recipients), rep.Sum)
	}
	if rep.RatePerSecond > 0 {
		fmt.Fprintf(w, "rate %s recipients/s", perSecond(rep.RatePerSecond))
		if rep.ETASeconds > 0 {
			fmt.Fprintf(w, ", about %s left", (time.Duration(rep.ETASeconds * float64(time.Second))).Round(time.Second))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "attempts %d, retries %d, accepted after a retry %d, throttled (no attempt used) %d\n",
		rep.Attempts, rep.Retries, rep.AcceptedAfterRetry, rep.Throttled)
	if sc := rep.Session; sc != nil {
		fmt.Fprintf(w, "session message sent (window open) %d, fallback template sent %d (window closed %d, session message refused by Connectly %d), skipped(window_closed) %d",
			sc.Sent, sc.Fallback, sc.FallbackWindowClosed, sc.FallbackRefused, sc.WindowClosed)
		if sc.WindowRefused > 0 {
			fmt.Fprintf(w, ", refused as outside the window by Connectly (no fallback) %d", sc.WindowRefused)
		}
		fmt.Fprintln(w)
	}
	PrintLateFallbacks(w, rep.LateFallbacks)
	fmt.Fprintf(w, "templates sent into an open customer service window %d (free for utility templates)\n", rep.InWindow)
	if rep.ResendAfter != "" || rep.ResentUnknown > 0 {
		fmt.Fprintf(w, "unknown recipients resent once after %s with no delivery event %d, waiting for the quiet period %d\n",
			cmp.Or(rep.ResendAfter, "the quiet period"), rep.ResentUnknown, rep.ResendWaiting)
	}
	if v := rep.Verify; v != nil {
		PrintVerify(w, *v, rep.Sum)
	}
	if len(rep.Codes) > 0 {
		fmt.Fprintln(w)
		printCounts(w, "OUTCOME:CODE\tCOUNT", slices.Sorted(maps.Keys(rep.Codes)), rep.Codes)
	}
	if rep.Delivery != nil {
		PrintDelivery(w, *rep.Delivery)
	}
}

// statusLine is one line of a run's status block: a label ("Status", "Archived", "Sender";
// "" for a line that is a sentence of its own) and its text.
type statusLine struct{ label, text string }

// statusLines is what PrintRun says of a run's status under its header, and WatchLine after
// its progress: the status, with its pause reason and what its sends wait for; its follow-ups
// paused or cancelled; its archived send tasks; its sender's backoff. Reasons, button labels
// and the sender are shown as ShowRun left them (masked unless --reveal), their control
// characters escaped: they hold an operator's or a customer's text.
func statusLines(rep Run) []statusLine {
	status := rep.Status
	if rep.PauseReason != "" && rep.Status == string(ledger.RunPaused) {
		status += fmt.Sprintf(" (%s)", logx.Escape(rep.PauseReason))
	}
	if rep.Waiting != "" {
		status += fmt.Sprintf(", waiting for the %s", rep.Waiting)
	}
	out := []statusLine{{"Status", status}}
	switch {
	case rep.Followups == nil:
	case rep.Followups.State == string(ledger.FollowupsPausedHold):
		out = append(out, statusLine{"", fmt.Sprintf("Follow-ups paused (%s), the run completed: herald run resume %s lets them go, herald run cancel %s drops them",
			logx.Escape(rep.Followups.Reason), rep.Run, rep.Run)})
	default:
		out = append(out, statusLine{"", fmt.Sprintf("Follow-ups cancelled (%s): replies get none, the run completed", logx.Escape(rep.Followups.Reason))})
	}
	for _, f := range rep.FollowupsPaused {
		out = append(out, statusLine{"", fmt.Sprintf("Follow-ups of rule %s paused (%s): herald run resume %s resumes them, herald run cancel %s drops them",
			f.Rule, logx.Escape(f.Reason), rep.Run, ledger.FollowupRun(rep.Run, f.Rule))})
	}
	if rep.ArchivedTasks > 0 {
		out = append(out, statusLine{"Archived", fmt.Sprintf("%s still queued: the run cannot end until each is retried or deleted (herald task ls %s --state archived)",
			words.Count(int(rep.ArchivedTasks), "send task whose recipient is", "send tasks whose recipients are"), rep.Queue)})
	}
	if rep.SenderBackoff != "" {
		out = append(out, statusLine{"Sender", logx.Escape(rep.SenderBackoff)})
	}
	return out
}

// WatchLine is one refresh of `run show --watch` when its output is no terminal (a log, a
// pipe): the progress line (ProgressLine), then the status lines PrintRun shows a terminal,
// on the same line, each after " | " ("| status running, waiting for the send hours: sends
// resume at ...", "| sender ..."), so each refresh stays one line that says what the run
// waits for.
func WatchLine(rep Run, elapsed time.Duration) string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(ProgressLine(rep, elapsed), " "))
	for _, l := range statusLines(rep) {
		b.WriteString(" | ")
		if l.label != "" {
			b.WriteString(strings.ToLower(l.label) + " ")
		}
		b.WriteString(l.text)
	}
	return b.String()
}

// entries is "1 entry" or "N entries".
func entries(n int) string { return words.Count(n, "entry", "entries") }

// countRows is "1 row" or "N rows".
func countRows(n int) string { return words.Count(n, "row", "rows") }

// PrintVerify renders the recount of a run's ledger against its counters (ShowParams.Verify).
// rows is what the counters add up to (Run.Sum): the ledger's entries, one per recipient, and
// the rows skipped before reaching it (an invalid number, a duplicate), which only the
// counters count; when there are such rows the line says how the two make rows.
func PrintVerify(w io.Writer, v ledger.Verification, rows int64) {
	if v.Moving {
		fmt.Fprintf(w, "verify: the run changed while it was read, %d times; nothing compared (verify again once it has ended)\n", ledger.VerifyReads)
		return
	}
	if len(v.Mismatches) == 0 {
		if outside := rows - v.Entries; outside > 0 {
			fmt.Fprintf(w, "verify: %s with the counters, which also count %s skipped before the ledger (invalid or duplicate): %s in all\n",
				words.Count(int(v.Entries), "ledger entry (the recipient) agrees", "ledger entries (the recipients) agree"),
				words.Count(int(outside), "row", "rows"), words.Count(int(rows), "row", "rows"))
		} else {
			fmt.Fprintf(w, "verify: %s with the counters\n", words.Count(int(v.Entries), "ledger entry agrees", "ledger entries agree"))
		}
	}
	for _, m := range v.Mismatches {
		fmt.Fprintf(w, "verify: MISMATCH %s: counter %d, ledger %d\n", m.What, m.Counter, m.Ledger)
	}
}

// printCounts renders a two-column table of counts under header, in the order of keys. A key
// is printed with its control characters escaped (logx.Escape): a button label is what a
// customer's message said, and a tab or a newline in it would break the table.
func printCounts(w io.Writer, header string, keys []string, counts map[string]int64) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%d\n", logx.Escape(k), counts[k])
	}
	tw.Flush()
}

// ProgressLine renders a one-line progress bar of a run: recipients done of the audience,
// accepted (or later: sent, delivered, read), failed, still to send (queued: not sent yet, or
// waiting to be sent again after a retry; sending: a request under way), the retries made so
// far, and the time watched.
func ProgressLine(rep Run, elapsed time.Duration) string {
	total := rep.Recipients
	done := int64(0)
	for s, n := range rep.States {
		if ledger.State(s).Terminal() {
			done += n
		}
	}
	const width = 30
	filled := 0
	if total > 0 {
		filled = min(width, int(done*width/int64(total)))
	}
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	return fmt.Sprintf("[%s] %d/%d  accepted %d  failed %d  queued %d  sending %d  retries %d  %s ",
		bar, done, total, rep.Accepted, rep.States[string(ledger.Failed)], rep.States[string(ledger.Queued)],
		rep.States[string(ledger.Submitting)], rep.Retries, elapsed.Round(100*time.Millisecond))
}

// PrintDelivery renders a run's delivery outcomes.
func PrintDelivery(w io.Writer, d ledger.DeliveryStats) {
	fmt.Fprintln(w)
	fmt.Fprintf(w, "delivery (from webhooks): %d accepted, %d sent, %d delivered, %d read, %d failed in delivery, %d awaiting an event\n",
		d.Accepted, d.Sent, d.Delivered, d.Read, d.DeliveryFailed, d.Awaiting)
	fmt.Fprintf(w, "delivery rate %.1f%% (delivered of accepted), read rate %.1f%% (read of delivered)\n",
		100*d.DeliveryRate, 100*d.ReadRate)
	if t := d.TimeToDeliver; t.Samples > 0 {
		fmt.Fprintf(w, "time to deliver (%s): p50 %s, p90 %s, p99 %s\n", words.Count(int(t.Samples), "message", "messages"), roundDur(t.P50), roundDur(t.P90), roundDur(t.P99))
	}
	if d.Settled > 0 {
		fmt.Fprintf(w, "unknown recipients settled by webhooks: %d\n", d.Settled)
	}
	if d.SendFailed > 0 {
		fmt.Fprintf(w, "failed when sent (not counted above): %d\n", d.SendFailed)
	}
	if len(d.FailedByCode) > 0 {
		printCounts(w, "DELIVERY FAILED:CODE\tCOUNT", ledger.SortedKeys(d.FailedByCode), d.FailedByCode)
	}
	if d.Replies > 0 {
		fmt.Fprintf(w, "replies %d, opt-outs by reply %d\n", d.Replies, d.OptOutsReceived)
		if len(d.ButtonReplies) > 0 {
			printCounts(w, "BUTTON\tREPLIES", ledger.SortedKeys(d.ButtonReplies), d.ButtonReplies)
		}
	}
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}
