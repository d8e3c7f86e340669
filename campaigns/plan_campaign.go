package campaigns

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/report"
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
	// sender is known; its done function once the plan is made.
	Limits func() (check *report.LimitCheck, done func())
	// Templates, when set, lists the business's templates: every translation the campaign may
	// send is checked against them (report.CheckTemplates).
	Templates report.ListTemplates
}

// PlanOutput is what a campaign would do if it were sent now, as `campaign plan --json`
// prints it (with the on_reply rules' follow-ups, which the conversation package renders).
type PlanOutput struct {
	PlanReport
	Sender           string  `json:"sender"`
	InvalidShare     float64 `json:"invalid_share"`
	RatePerSecond    float64 `json:"rate_per_second"`
	EstimatedSeconds float64 `json:"estimated_seconds"`
	// Templates is set when the templates were checked.
	Templates []report.TemplateCheck `json:"templates,omitempty"`
	// Limits is what the frequency cap and the daily tier would do if the run started now.
	Limits *report.PlanLimits `json:"limits,omitempty"`
	// TierPeriod is the daily tier's window, for report.PrintPlanLimits.
	TierPeriod time.Duration `json:"-"`
	// maxInvalidShare is the campaign's audience.max_invalid_share.
	maxInvalidShare float64
}

// Problem says why sending the campaign as planned would go wrong, nil when nothing would:
// its templates have problems (sends would fail or pause the run), or more of its rows are
// invalid than it allows (a run would refuse to start).
func (o PlanOutput) Problem() error {
	if n := report.TemplateProblems(o.Templates); n > 0 {
		return fmt.Errorf("%d template problems: sends would fail or pause the run", n)
	}
	return o.CheckInvalidShare(o.maxInvalidShare)
}

// PlanCampaign is a dry run of p.Def under p.Config: its sender, what it would send and skip
// (Plan), the recipients the frequency cap would skip and what the daily tier would hold back,
// its templates checked when asked, its rate and how long it would take. Samples are masked
// unless p.Reveal. An error says the plan could not be made; what a plan finds wrong is the
// output's Problem.
func PlanCampaign(ctx context.Context, p PlanCampaignParams) (PlanOutput, error) {
	def, c := p.Def, p.Config
	sender, err := c.SenderFor(def.Sender)
	if err != nil {
		return PlanOutput{}, fmt.Errorf("%s: %w", def.Path, err)
	}
	o := PlanOptions{Samples: p.Samples, Wire: c.Connectly.Wire(), Progress: p.Progress}
	var lc *report.LimitCheck
	if p.Limits != nil {
		var done func()
		lc, done = p.Limits()
		defer done()
	}
	if lc != nil {
		o.Recipient = lc.Add
	}
	rep, err := Plan(def, sender, o)
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
	rep.Recipients = pl.ApplyCaps(rep.Recipients, rep.Skipped)
	var checks []report.TemplateCheck
	if p.Templates != nil {
		params := slices.Collect(maps.Keys(def.Parameters.Values))
		languages := append([]string{def.Template.Language}, def.Template.Languages...)
		if checks, err = report.CheckTemplates(ctx, p.Templates, def.Template.Name, languages, params); err != nil {
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
	return PlanOutput{PlanReport: rep, Sender: sender, InvalidShare: rep.InvalidShare(), RatePerSecond: rate,
		EstimatedSeconds: float64(rep.Recipients) / rate, Templates: checks, Limits: pl, TierPeriod: c.Limits.TierPeriod.D(),
		maxInvalidShare: def.Audience.MaxInvalidShare}, nil
}
