package report

import (
	"context"
	"fmt"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
)

// TemplateCheck is one translation's pre-flight result (`campaign plan --check-templates`).
type TemplateCheck struct {
	Language string   `json:"language"`
	Found    bool     `json:"found"`
	Status   string   `json:"status,omitempty"`
	Problems []string `json:"problems"`
}

// ListTemplates lists the business's templates (connectly.Client.ListTemplates).
type ListTemplates func(context.Context) ([]connectly.TemplateInfo, error)

// CheckTemplates checks every translation a campaign may send of template name (its
// languages, the first the campaign's own) against the business's templates, which list is
// asked for: it exists, is approved, and takes the parameters the campaign gives. A campaign
// without a template (name "": a session campaign without a fallback) has nothing to check,
// and list is not asked.
func CheckTemplates(ctx context.Context, list ListTemplates, name string, languages, params []string) ([]TemplateCheck, error) {
	if name == "" {
		return nil, nil
	}
	all, err := list(ctx)
	if err != nil {
		return nil, err
	}
	var out []TemplateCheck
	for _, lang := range languages {
		ch := TemplateCheck{Language: lang, Problems: []string{}}
		for _, t := range all {
			if t.Name == name && t.Language == lang {
				ch.Found, ch.Status = true, t.Status
				ch.Problems = append(ch.Problems, connectly.CheckTemplate(t, params)...)
			}
		}
		if !ch.Found {
			ch.Problems = append(ch.Problems, fmt.Sprintf("no template %s in %s", name, lang))
		}
		out = append(out, ch)
	}
	return out, nil
}

// TemplateProblems counts the problems of checks.
func TemplateProblems(checks []TemplateCheck) int {
	n := 0
	for _, ch := range checks {
		n += len(ch.Problems)
	}
	return n
}

// PlanRate is the rate a campaign's run is paced at, in messages/s: its sender's configured
// rate, lowered to the business's request limit as the worker enforces it (its default when
// the config leaves it 0) and to the campaign's own rate cap (when set).
func PlanRate(c config.Config, sender string, campaignRate float64) float64 {
	lc := enforced(c)
	rate := lc.SenderRate(sender)
	if lc.BusinessRate > 0 && lc.BusinessRate < rate {
		rate = lc.BusinessRate
	}
	if campaignRate > 0 && campaignRate < rate {
		rate = campaignRate // the campaign's own cap
	}
	return rate
}

// ApplyCaps moves the recipients pl found at their frequency cap out of a plan's recipients
// into its skips, under the reason "capped"; it returns the recipients left. A nil pl
// changes nothing.
func (pl *PlanLimits) ApplyCaps(recipients int, skipped map[string]int) int {
	if pl == nil || pl.Capped == 0 {
		return recipients
	}
	skipped["capped"] += pl.Capped
	return recipients - pl.Capped
}

// CappedByLanguage counts the capped recipients by the label they were checked with, their
// template language (nil on a nil PlanLimits).
func (pl *PlanLimits) CappedByLanguage() map[string]int {
	if pl == nil {
		return nil
	}
	return pl.CappedBy
}
