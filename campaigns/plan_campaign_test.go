package campaigns_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/report"
)

// TestPlanCampaign: the sender comes from the config when the campaign names none, samples
// are masked unless revealed, the rate and estimate follow the config, the templates are
// checked only when a list is given, and Problem says what would go wrong.
func TestPlanCampaign(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone,name\n+14155552671,ana\n+14155552672,bo\n12,bad\n")
	path := writeFile(t, dir, "t.yaml", "id: spring\naudience: {file: a.csv, max_invalid_share: 0.5}\n"+
		"template: {name: hello, language: en}\nparameters: {body_1: \"{{ .name }}\"}\n")
	load := func(t *testing.T) *campaigns.Definition {
		t.Helper()
		d, err := campaigns.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	c := config.Default()
	c.Senders = []config.Sender{{Number: "+14155550100", Rate: 20}}

	out, err := campaigns.PlanCampaign(context.Background(), campaigns.PlanCampaignParams{Def: load(t), Config: c, Samples: 5})
	if err != nil {
		t.Fatal(err)
	}
	if out.Sender != "+14155550100" || out.Rows != 3 || out.Recipients != 2 || out.RatePerSecond != 20 || out.EstimatedSeconds != 0.1 ||
		out.Templates != nil || out.Limits != nil || out.TierPeriod != c.Limits.TierPeriod.D() {
		t.Fatalf("plan %+v", out)
	}
	if len(out.Samples) != 2 || strings.Contains(string(out.Samples[0]), "4155552671") || !strings.Contains(string(out.Samples[0]), "********2671") {
		t.Fatalf("samples not masked: %s", out.Samples)
	}
	if err := out.Problem(); err != nil {
		t.Fatalf("Problem() = %v for a third of the rows invalid, half allowed", err)
	}

	// Revealed, with the templates checked against a list that lacks the campaign's.
	listed := false
	out, err = campaigns.PlanCampaign(context.Background(), campaigns.PlanCampaignParams{Def: load(t), Config: c, Samples: 1, Reveal: true,
		Templates: func(context.Context) ([]connectly.TemplateInfo, error) { listed = true; return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if !listed || len(out.Samples) != 1 || !strings.Contains(string(out.Samples[0]), `"+14155552671"`) {
		t.Fatalf("revealed plan: listed %v samples %s", listed, out.Samples)
	}
	if err := out.Problem(); err == nil || err.Error() != "1 template problem: sends would fail or pause the run" {
		t.Fatalf("Problem() = %v, want the missing template", err)
	}

	// A stricter campaign would refuse to start.
	strict := load(t)
	strict.Audience.MaxInvalidShare = 0.1
	out, err = campaigns.PlanCampaign(context.Background(), campaigns.PlanCampaignParams{Def: strict, Config: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Problem(); err == nil || !strings.Contains(err.Error(), "more than audience.max_invalid_share") {
		t.Fatalf("Problem() = %v, want the invalid share", err)
	}

	// Several senders and none named: no plan, and neither limits nor the list are asked.
	c.Senders = append(c.Senders, config.Sender{Number: "+14155550101"})
	_, err = campaigns.PlanCampaign(context.Background(), campaigns.PlanCampaignParams{Def: load(t), Config: c,
		Limits: func() *report.LimitCheck { t.Error("limits checked without a sender"); return nil },
		Templates: func(context.Context) ([]connectly.TemplateInfo, error) {
			t.Error("templates listed without a sender")
			return nil, nil
		}})
	var se *config.SenderRequiredError
	if !errors.As(err, &se) || err.Error() != path+": sender: required, the config lists 2 senders" {
		t.Fatalf("err = %v, want the sender required of %s", err, path)
	}
}
