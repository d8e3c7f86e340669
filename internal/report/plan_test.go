package report_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/report"
)

// Every translation the campaign may send is checked: a missing one and one not approved
// are problems; a campaign without a template asks for no list.
func TestCheckTemplates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	asked := 0
	list := func(context.Context) ([]connectly.TemplateInfo, error) {
		asked++
		return []connectly.TemplateInfo{
			{Name: "promo", Language: "en", Status: "APPROVED"},
			{Name: "promo", Language: "es", Status: "PENDING"},
			{Name: "other", Language: "pt_BR", Status: "APPROVED"},
		}, nil
	}
	checks, err := report.CheckTemplates(ctx, list, "promo", []string{"en", "es", "pt_BR"}, []string{"body_1"})
	if err != nil || len(checks) != 3 {
		t.Fatalf("checks %+v, %v", checks, err)
	}
	if en := checks[0]; !en.Found || en.Status != "APPROVED" || len(en.Problems) != 0 {
		t.Errorf("en: %+v, want found, approved, no problem", en)
	}
	if es := checks[1]; !es.Found || !slices.Equal(es.Problems, []string{"status is PENDING, not APPROVED"}) {
		t.Errorf("es: %+v", es)
	}
	if pt := checks[2]; pt.Found || !slices.Equal(pt.Problems, []string{"no template promo in pt_BR"}) {
		t.Errorf("pt_BR: %+v", pt)
	}
	if n := report.TemplateProblems(checks); n != 2 {
		t.Errorf("%d problems, want 2", n)
	}
	if checks, err := report.CheckTemplates(ctx, list, "", []string{""}, nil); err != nil || checks != nil || asked != 1 {
		t.Errorf("no template: %+v, %v, list asked %d times; want nothing checked, list asked once in all", checks, err, asked)
	}
	boom := errors.New("boom")
	if _, err := report.CheckTemplates(ctx, func(context.Context) ([]connectly.TemplateInfo, error) { return nil, boom }, "promo", []string{"en"}, nil); !errors.Is(err, boom) {
		t.Errorf("a list that fails: %v", err)
	}
}

// A plan is paced by the lowest of the sender's rate, the business's limit and the
// campaign's own cap.
func TestPlanRate(t *testing.T) {
	t.Parallel()
	c := config.Default()
	sender := c.SenderRate("+14155550100")
	if got := report.PlanRate(c, "+14155550100", 0); got != min(sender, c.Connectly.BusinessRate) {
		t.Errorf("rate %v, want the sender's %v (business %v)", got, sender, c.Connectly.BusinessRate)
	}
	if got := report.PlanRate(c, "+14155550100", 0.5); got != 0.5 {
		t.Errorf("rate %v, want the campaign's 0.5", got)
	}
	c.Connectly.BusinessRate = 0.25
	if got := report.PlanRate(c, "+14155550100", 0.5); got != 0.25 {
		t.Errorf("rate %v, want the business's 0.25", got)
	}
}

// Recipients at their frequency cap move to the skips.
func TestApplyCaps(t *testing.T) {
	t.Parallel()
	skipped := map[string]int{"duplicate": 1}
	var none *report.PlanLimits
	if n := none.ApplyCaps(10, skipped); n != 10 || len(skipped) != 1 {
		t.Fatalf("no limits: %d recipients, skipped %v", n, skipped)
	}
	pl := &report.PlanLimits{Capped: 3}
	if n := pl.ApplyCaps(10, skipped); n != 7 || skipped["capped"] != 3 || skipped["duplicate"] != 1 {
		t.Fatalf("3 capped: %d recipients, skipped %v; want 7 and 3 capped", n, skipped)
	}
}
