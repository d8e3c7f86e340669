package serve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/report"
)

// PlanOutput is `campaign plan --json`: the plan, with the follow-ups of its on_reply rules
// rendered for a sample reply.
type PlanOutput struct {
	campaigns.PlanOutput
	Followups []conversation.FollowupPlan `json:"followups,omitempty"`
	// Problems are the campaign file's problems, each with its place: those campaign
	// validate reports (ValidateCampaign, which send refuses the file for), then a share of
	// invalid rows above audience.max_invalid_share (at audience.file, as validate --rows
	// reports it). Notes say what the check could not check.
	Problems []campaigns.FieldError `json:"problems,omitempty"`
	Notes    []string               `json:"notes,omitempty"`
	// checked is the file's validation, whose problems Problem reports first.
	checked campaigns.Validation
}

// Problem says why sending the campaign as planned would go wrong, nil when nothing would:
// first the problems campaign validate reports (a *ProblemsError listing every one: send
// refuses the file for them), then campaigns.PlanOutput.Problem's.
func (o PlanOutput) Problem() error {
	if err := Refusal(o.checked); err != nil {
		return err
	}
	return o.PlanOutput.Problem()
}

// PlanParams say which campaign file PlanCampaign plans, and what it checks.
type PlanParams struct {
	// Path is the campaign file, read under Config's file rules (FileRules).
	Path   string
	Config config.Config
	// Samples is how many exact request bodies to render (negative: none, the follow-ups'
	// neither: their requests then have no body). Reveal shows the numbers in full:
	// the sender's, and those in the samples and the follow-ups' requests; by default they are
	// masked to their last 4 digits.
	Samples int
	Reveal  bool
	// CheckTemplates asks Connectly for the template's translations (ConnectlyClient) and
	// checks each against what the campaign sends.
	CheckTemplates bool
	// Connect opens Redis, to read the suppression list and to preview the frequency cap and
	// the daily tier when one of them applies; when it fails (or is nil), the plan says what
	// was not checked. PlanCampaign calls it at most once and closes the client it returns.
	Connect func(ctx context.Context) (redis.UniversalClient, error)
	// Progress, when set, is told the rows read and about how many the audience file has;
	// ProgressDone, when set, once it has been read, whether or not that failed.
	Progress     func(rows, about int)
	ProgressDone func()
	// Now is the time the plan is made at, as if the run were created then: the limits are
	// previewed, the send hours read and expire_after counted at it (zero: time.Now() as the
	// plan starts).
	Now time.Time
}

// PlanCampaign makes `campaign plan`'s dry run of the campaign file at p.Path: what it would
// send (campaigns.PlanCampaign), skipping the recipients on the suppression list as the
// expansion would, what the frequency cap and daily tier would do to it sent now, its
// templates checked when asked, and the follow-ups of its on_reply rules. The output's
// Problem says whether sending it as planned would go wrong. The file is checked first as
// campaign send checks it (CheckCampaign): when its problems leave no plan to make, the error
// is a *ProblemsError listing every one.
func PlanCampaign(ctx context.Context, p PlanParams) (PlanOutput, error) {
	c := p.Config
	// The sender the config does not list is the plan's own warning (campaigns.PlanCampaign).
	checked := ValidateCampaign(ctx, ValidateParams{Path: p.Path, Config: c})
	def, err := campaigns.Load(p.Path)
	if err != nil {
		return PlanOutput{}, cmp.Or(Refusal(checked), err)
	}
	def.Files = FileRules(c)
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	// One connection, opened when the plan first reads Redis, serves the suppression list and
	// the limits.
	var rdb redis.UniversalClient
	connect := sync.OnceValue(func() error {
		if p.Connect == nil {
			return errors.New("no Redis to read")
		}
		var err error
		rdb, err = p.Connect(ctx)
		return err
	})
	defer func() {
		if rdb != nil {
			rdb.Close()
		}
	}()
	cp := campaigns.PlanCampaignParams{Def: def, Config: c, Samples: p.Samples, Reveal: p.Reveal, ProgressDone: p.ProgressDone, Now: now,
		Limits: func() *report.LimitCheck { return limitCheck(ctx, c, def, now, connect, &rdb) },
		Suppressions: func(ctx context.Context, recipients []string) ([]ledger.Suppression, error) {
			if err := connect(); err != nil {
				return nil, err
			}
			return ledger.New(rdb, nil).Suppressions(ctx, recipients)
		}}
	if p.Progress != nil {
		// The file's line count is a fast upper bound on its rows: enough for a bar.
		about, _ := campaigns.CountLines(def) // an error is the plan's too
		cp.Progress = func(rows int) { p.Progress(rows, about) }
	}
	if p.CheckTemplates {
		cp.Templates = func(ctx context.Context) ([]connectly.TemplateInfo, error) {
			client, err := ConnectlyClient(c, 0)
			if err != nil {
				return nil, err
			}
			list, err := client.ListTemplates(ctx)
			if err != nil {
				return nil, fmt.Errorf("list templates: %w", err)
			}
			return list, nil
		}
	}
	plan, err := campaigns.PlanCampaign(ctx, cp)
	if err != nil {
		return PlanOutput{}, planRefusal(checked, err)
	}
	out := PlanOutput{PlanOutput: plan, Followups: conversation.PlanFollowups(def, plan.Sender, c.Connectly.Wire(), p.Reveal),
		Problems: checked.Problems, Notes: checked.Notes, checked: checked}
	if err := plan.CheckInvalidShare(def.Audience.MaxInvalidShare); err != nil {
		out.Problems = append(out.Problems, campaigns.FieldError{File: def.Path, Line: def.AudienceAt.Line,
			Column: def.AudienceAt.Column, Field: "audience.file", Msg: err.Error()})
	}
	if p.Samples < 0 {
		// No request bodies asked for: the follow-ups' requests keep their paths only.
		for _, f := range out.Followups {
			for i := range f.Requests {
				f.Requests[i].Body = nil
			}
		}
	}
	if !p.Reveal {
		out.Sender = logx.MaskDigits(out.Sender)
	}
	if out.Session != nil {
		s := *out.Session
		s.Path = conversation.PlanPath(connectly.SessionPath) // {businessId} as the text shows it
		out.Session = &s
	}
	return out, nil
}

// planRefusal is why a plan of a file checked as checked could not be made (err): the file's
// problems, each with its place, and err unless it is about the audience the problems already
// name (its header or columns, which the plan read again).
func planRefusal(checked campaigns.Validation, err error) error {
	refusal := Refusal(checked)
	if refusal == nil {
		return err
	}
	if errors.As(err, new(*campaigns.AudienceError)) {
		for _, pr := range checked.Problems {
			if strings.HasPrefix(pr.Field, "audience.") {
				return refusal
			}
		}
	}
	return errors.Join(refusal, err)
}

// limitCheck starts the preview of what the frequency cap and the daily tier would do to def
// sent at now: nil when neither applies, a check that only carries a note when Redis cannot
// be reached (connect, which sets *rdb, fails).
func limitCheck(ctx context.Context, c config.Config, def *campaigns.Definition, now time.Time,
	connect func() error, rdb *redis.UniversalClient) *report.LimitCheck {
	cat := def.SendCategory() // a session campaign without a fallback is sent as utility
	// The plan fails on a sender it cannot tell before it asks for this check.
	sender, _ := c.SenderFor(def.Sender)
	p := report.PlanLimitsFor(c, sender, cat, now)
	if !p.Applies() {
		return nil
	}
	if err := connect(); err != nil {
		p.NotChecked = "frequency cap and daily tier not checked: " + err.Error()
		return report.NewLimitCheck(ctx, nil, p)
	}
	return report.NewLimitCheck(ctx, *rdb, p)
}
