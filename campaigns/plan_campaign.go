package campaigns

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/words"
)

// PlanCampaignParams is what PlanCampaign needs: the campaign, the config it would be sent
// under, and how much to show.
type PlanCampaignParams struct {
	Def    *Definition
	Config config.Config
	// Samples is how many exact request bodies to render (PlanOptions.Samples).
	Samples int
	// Reveal shows phone numbers in full in the samples; by default they are masked to their
	// last 4 digits (report.MaskRequests).
	Reveal bool
	// Progress, when set, is called as the audience is read (PlanOptions.Progress), and
	// ProgressDone, when set, once it has been read, whether or not that failed.
	Progress     func(rows int)
	ProgressDone func()
	// Limits, when set, starts the preview of what the frequency cap and the daily tier would
	// do to the campaign sent now: a nil check when neither applies. It is called once the
	// sender is known.
	Limits func() *report.LimitCheck
	// Templates, when set, lists the business's templates: every translation the campaign may
	// send is checked against them (report.CheckTemplates).
	Templates report.ListTemplates
	// Suppressions, when set, reads the suppression list's entries of a batch of recipients
	// (ledger.Ledger.Suppressions): the recipients it would plan skipped(suppressed) are
	// counted so (MarketingForSuppression). An error says the list was not (fully) read, which the
	// plan's SuppressionNote then says; nil leaves the list unread, without a note.
	Suppressions func(ctx context.Context, recipients []string) ([]ledger.Suppression, error)
	// Now is the time the plan is made at, as if the run were created then: expire_after
	// counts from it and the send hours are read at it (zero: time.Now()).
	Now time.Time
}

// PlanOutput is what a campaign would do if it were sent now, as `campaign plan --json`
// prints it (with the on_reply rules' follow-ups, which the conversation package renders).
type PlanOutput struct {
	PlanReport
	Sender           string  `json:"sender"`
	InvalidShare     float64 `json:"invalid_share"`
	RatePerSecond    float64 `json:"rate_per_second"`
	EstimatedSeconds float64 `json:"estimated_seconds"`
	// Templates is set when the templates were checked; FollowupTemplates then holds the
	// check of each on_reply rule's template.
	Templates         []report.TemplateCheck  `json:"templates,omitempty"`
	FollowupTemplates []FollowupTemplateCheck `json:"followup_templates,omitempty"`
	// Limits is what the frequency cap and the daily tier would do if the run started now.
	Limits *report.PlanLimits `json:"limits,omitempty"`
	// TierPeriod is the daily tier's window, for report.PrintPlanLimits.
	TierPeriod time.Duration `json:"-"`
	// SendHoursWaiting counts the recipients whose send hours are closed at the plan's time:
	// their sends wait for their window to open, the first at FirstOpening.
	SendHoursWaiting int        `json:"send_hours_waiting"`
	FirstOpening     *time.Time `json:"send_hours_first_open,omitempty"`
	// SuppressionNote says why the suppression list was not (fully) read: the recipients
	// counted may then include people it would skip.
	SuppressionNote string `json:"suppression_note,omitempty"`
	// Warnings are what an operator should know before sending, that would not stop it (a
	// sender the config does not list, a template's media header given no value).
	Warnings []string `json:"warnings,omitempty"`
	// maxInvalidShare is the campaign's audience.max_invalid_share.
	maxInvalidShare float64
}

// Problem says why sending the campaign as planned would go wrong, nil when nothing would:
// its templates have problems (sends would fail or pause the run), an on_reply rule's
// follow-up would not render for some recipients (they would get none when they reply), or
// more of its rows are invalid than it allows (a run would refuse to start).
func (o PlanOutput) Problem() error {
	n := report.TemplateProblems(o.Templates)
	for _, f := range o.FollowupTemplates {
		n += len(f.Problems)
	}
	if n > 0 {
		return fmt.Errorf("%s: sends would fail or pause the run", words.Count(n, "template problem", "template problems"))
	}
	if err := o.FollowupProblem(); err != nil {
		return err
	}
	return o.CheckInvalidShare(o.maxInvalidShare)
}

// PlanCampaign is a dry run of p.Def under p.Config: its sender, what it would send and skip
// (Plan, then what the expansion would skip: the recipients on the suppression list and those
// whose send hours open only after expire_after), those whose send hours are closed now, the
// recipients the frequency cap would skip and what the daily tier would hold back, its
// templates checked when asked, its rate and how long it would take (EstimateSeconds). Samples
// are masked unless p.Reveal. An error says the plan could not be made; what a plan finds
// wrong is the output's Problem.
func PlanCampaign(ctx context.Context, p PlanCampaignParams) (PlanOutput, error) {
	def, c := p.Def, p.Config
	sender, err := c.SenderFor(def.Sender)
	if err != nil {
		return PlanOutput{}, fmt.Errorf("%s: %w", def.Path, err)
	}
	now := cmp.Or(p.Now, time.Now())
	timing, err := NewTiming(def, now, nil)
	if err != nil {
		return PlanOutput{}, fmt.Errorf("%s: %w", def.Path, err)
	}
	o := PlanOptions{Samples: p.Samples, Wire: c.Connectly.Wire(), Progress: p.Progress, CheckFollowups: true}
	var lc *report.LimitCheck
	if p.Limits != nil {
		lc = p.Limits()
	}
	sc := &sendCheck{ctx: ctx, timing: timing, now: now, marketing: MarketingForSuppression(def.SendKind(), def.SendCategory()),
		read: p.Suppressions, limits: lc, skipped: map[string]int{}, waits: map[time.Time]int{}, goneLang: map[string]int{}}
	o.Recipient = sc.add
	rep, err := Plan(def, sender, o)
	if err == nil {
		sc.flush()
	}
	if p.ProgressDone != nil {
		p.ProgressDone()
	}
	if err != nil {
		return PlanOutput{}, err
	}
	pl, err := lc.Result()
	if err != nil {
		return PlanOutput{}, err
	}
	for reason, n := range sc.skipped {
		rep.Skipped[reason] += n
		rep.Recipients -= n
	}
	// A follow-up fails only for a recipient who is sent the campaign and replies.
	rep.FollowupProblems = WithoutRows(rep.FollowupProblems, sc.gone, rep.Recipients)
	rep.Recipients = pl.ApplyCaps(rep.Recipients, rep.Skipped)
	// Languages count the recipients it would send: without those skipped here or capped.
	for _, gone := range []map[string]int{sc.goneLang, pl.CappedByLanguage()} {
		for lang, n := range gone {
			if rep.Languages[lang] -= n; rep.Languages[lang] <= 0 {
				delete(rep.Languages, lang)
			}
		}
	}
	var checks templateChecks
	if p.Templates != nil {
		if checks, err = checkTemplates(ctx, p.Templates, def); err != nil {
			return PlanOutput{}, err
		}
	}
	if !p.Reveal {
		rep.Samples = report.MaskRequests(rep.Samples)
		if rep.Session != nil {
			rep.Session.FallbackSamples = report.MaskRequests(rep.Session.FallbackSamples)
		}
	}
	rate := report.PlanRate(c, sender, def.Rate)
	out := PlanOutput{PlanReport: rep, Sender: sender, InvalidShare: rep.InvalidShare(), RatePerSecond: rate,
		Templates: checks.campaign, FollowupTemplates: checks.followups, Limits: pl, TierPeriod: c.Limits.TierPeriod.D(), SendHoursWaiting: sc.waiting(),
		SuppressionNote: sc.note, maxInvalidShare: def.Audience.MaxInvalidShare}
	capped := 0
	if pl != nil {
		capped = pl.Capped
	}
	out.EstimatedSeconds = EstimateSeconds(now, rate, sc.goNow-capped, sc.waits)
	if w := UnlistedSender(def, c.Senders); w != "" {
		out.Warnings = append(out.Warnings, w)
	}
	out.Warnings = append(out.Warnings, checks.warnings...)
	if first, ok := sc.firstOpening(); ok {
		out.FirstOpening = &first
	}
	return out, nil
}

// EstimateSeconds is how long the sends of a run created at now would take at rate
// messages/s: goNow recipients from now, and waits[t] recipients from the opening t of their
// send hours, each opening's sends after those before it. It is an approximation: it assumes a
// window stays open until its recipients are sent (one that closes first holds the rest until
// its next opening, which it does not count), and counts no retry and no wait for the daily
// tier. A negative goNow is taken out of the first openings' recipients (those the frequency
// cap skips, when the plan does not know whose send hours they are in).
func EstimateSeconds(now time.Time, rate float64, goNow int, waits map[time.Time]int) float64 {
	if rate <= 0 {
		return 0
	}
	owed := max(0, -goNow) // recipients to take out of the openings
	end := float64(max(0, goNow)) / rate
	for _, at := range slices.SortedFunc(maps.Keys(waits), time.Time.Compare) {
		n := waits[at]
		take := min(owed, n)
		owed, n = owed-take, n-take
		if n == 0 {
			continue
		}
		end = max(end, at.Sub(now).Seconds()) + float64(n)/rate
	}
	return end
}

// sendCheck follows a plan's recipients (PlanOptions.Recipient) as the expansion would plan
// them: those on the suppression list skipped(suppressed), read in batches of 1,000, those
// whose send hours open only after the run expires skipped(expired) (Timing), and the rest
// sent now or waiting for their send hours to open; these go on to the limits check.
type sendCheck struct {
	ctx    context.Context
	timing *Timing
	now    time.Time
	// marketing says an entry of marketing blocks the campaign's sends (MarketingForSuppression).
	marketing bool
	read      func(context.Context, []string) ([]ledger.Suppression, error)
	limits    *report.LimitCheck
	batch     []planned
	// batches counts the batches read from the suppression list; note says why one was not.
	batches int
	note    string
	// What the recipients would do: be skipped (by reason: suppressed, expired), be sent
	// now, or be sent at the opening of their send hours (waits, by opening).
	skipped map[string]int
	goNow   int
	waits   map[time.Time]int
	// gone are the numbers of the rows skipped here, ascending (rows come in file order), and
	// goneLang counts them by template language.
	gone     []int32
	goneLang map[string]int
}

// planned is a recipient of a plan with when it would be sent (zero: now) or why not.
type planned struct {
	to   string
	lang string
	row  int32
	at   time.Time
	skip string
}

func (sc *sendCheck) add(row Row) {
	var p SendPayload
	at, skip := sc.timing.Apply(&p, row, sc.now)
	sc.batch = append(sc.batch, planned{to: row.Recipient, lang: row.Language, row: int32(row.N), at: at, skip: skip})
	if len(sc.batch) == 1000 {
		sc.flush()
	}
}

func (sc *sendCheck) flush() {
	if len(sc.batch) == 0 {
		return
	}
	defer func() { sc.batch = sc.batch[:0] }()
	var entries []ledger.Suppression
	if sc.read != nil && sc.note == "" {
		to := make([]string, len(sc.batch))
		for i, p := range sc.batch {
			to[i] = p.to
		}
		var err error
		if entries, err = sc.read(sc.ctx, to); err != nil {
			sc.note = "suppression list not checked: " + err.Error()
			if sc.batches > 0 {
				sc.note = fmt.Sprintf("suppression list checked for the first %d recipients only: %v", sc.batches*1000, err)
			}
			entries = nil
		}
		sc.batches++
	}
	for i, p := range sc.batch {
		switch {
		case entries != nil && entries[i].Blocks(sc.marketing):
			sc.skipped[ledger.SkipSuppressed]++
			sc.gone = append(sc.gone, p.row)
			sc.goneLang[p.lang]++
			continue
		case p.skip != "":
			sc.skipped[p.skip]++
			sc.gone = append(sc.gone, p.row)
			sc.goneLang[p.lang]++
			continue
		case p.at.IsZero():
			sc.goNow++
		default:
			sc.waits[p.at]++
		}
		sc.limits.Add(p.to, p.lang)
	}
}

// waiting counts the recipients waiting for their send hours to open.
func (sc *sendCheck) waiting() int {
	n := 0
	for _, k := range sc.waits {
		n += k
	}
	return n
}

// firstOpening is the first opening of send hours a recipient waits for.
func (sc *sendCheck) firstOpening() (time.Time, bool) {
	if len(sc.waits) == 0 {
		return time.Time{}, false
	}
	return slices.MinFunc(slices.Collect(maps.Keys(sc.waits)), time.Time.Compare), true
}
