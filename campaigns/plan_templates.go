package campaigns

import (
	"context"
	"maps"
	"slices"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/report"
)

// FollowupTemplateCheck is the pre-flight check of one on_reply rule's template
// (`campaign plan --check-templates`): the translation the follow-up is sent in.
type FollowupTemplateCheck struct {
	Rule     string `json:"rule"`
	Template string `json:"template"`
	report.TemplateCheck
}

// templateChecks is what checkTemplates found: the campaign's template's translations, each
// on_reply rule's template, and the warnings of both (connectly.CompareTemplate).
type templateChecks struct {
	campaign  []report.TemplateCheck
	followups []FollowupTemplateCheck
	warnings  []string
}

// checkTemplates checks, against the business's templates (listed once), every translation
// of the campaign's template it may send, with the campaign's parameters, and each on_reply
// rule's template in its language, with the rule's parameters.
func checkTemplates(ctx context.Context, list report.ListTemplates, def *Definition) (templateChecks, error) {
	var (
		out    templateChecks
		all    []connectly.TemplateInfo
		listed bool
	)
	once := func(ctx context.Context) ([]connectly.TemplateInfo, error) {
		if !listed {
			var err error
			if all, err = list(ctx); err != nil {
				return nil, err
			}
			listed = true
		}
		return all, nil
	}
	// warn adds the warnings of the listed translations of name in lang.
	warn := func(what, name, lang string, params []string) {
		for _, t := range all {
			if t.Name == name && t.Language == lang {
				_, ws := connectly.CompareTemplate(t, params)
				for _, w := range ws {
					out.warnings = append(out.warnings, what+name+" ("+lang+"): "+w)
				}
			}
		}
	}
	params := namesGiven(def.Parameters)
	languages := append([]string{def.Template.Language}, def.Template.Languages...)
	var err error
	if out.campaign, err = report.CheckTemplates(ctx, once, def.Template.Name, languages, params); err != nil {
		return out, err
	}
	if def.Template.Name != "" {
		for _, lang := range languages {
			warn("template ", def.Template.Name, lang, params)
		}
	}
	for i := range def.OnReply.Rules {
		r := &def.OnReply.Rules[i]
		if r.Template == nil || r.Template.Name == "" {
			continue
		}
		lang := r.Template.Language
		if lang == "" {
			lang = def.Template.Language
		}
		rparams := namesGiven(r.Parameters)
		checks, err := report.CheckTemplates(ctx, once, r.Template.Name, []string{lang}, rparams)
		if err != nil {
			return out, err
		}
		for _, ch := range checks {
			out.followups = append(out.followups, FollowupTemplateCheck{Rule: r.ID(), Template: r.Template.Name, TemplateCheck: ch})
		}
		warn("on_reply rule "+r.ID()+": template ", r.Template.Name, lang, rparams)
	}
	return out, nil
}

// namesGiven lists the template parameters p gives, sorted, for a check against a template's
// variables: the named ones, and the raw entries that carry one of those names (a raw entry
// named body_2 fills {{2}}, docs/campaigns.md); other raw entries carry their own shape and
// are not matched.
func namesGiven(p Parameters) []string {
	names := slices.Collect(maps.Keys(p.Values))
	for _, rp := range p.Raw {
		if paramOrder(rp.Name) >= 0 {
			names = append(names, rp.Name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
