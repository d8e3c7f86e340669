package campaigns_test

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
)

// sunday is a Sunday noon, UTC; the Wednesday after it is 2026-12-09.
var sunday = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// planFile writes a campaign of three recipients with extra YAML and loads it.
func planFile(t *testing.T, extra string) *campaigns.Definition {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone\n+14155552671\n+14155552672\n+14155552673\n")
	path := writeFile(t, dir, "t.yaml", "id: spring\naudience: {file: a.csv}\ntemplate: {name: hello, language: en}\n"+extra)
	d, err := campaigns.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPlanCampaignSendHours: the plan applies the send hours and the expiry as the expansion
// does. Recipients whose window opens only after expire_after are skipped(expired); those
// whose window is closed wait for its opening, and the estimate starts there.
func TestPlanCampaignSendHours(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.Senders = []config.Sender{{Number: "+14155550100", Rate: 2}}
	window := "send_window: {days: [wed], from: \"14:00\", to: \"18:00\", timezone: UTC}\n"

	t.Run("ExpiredBeforeTheWindowOpens", func(t *testing.T) {
		t.Parallel()
		out, err := campaigns.PlanCampaign(context.Background(), campaigns.PlanCampaignParams{
			Def: planFile(t, window+"expire_after: 1h\n"), Config: c, Now: sunday})
		if err != nil {
			t.Fatal(err)
		}
		if out.Recipients != 0 || out.Skipped["expired"] != 3 || out.SendHoursWaiting != 0 || out.FirstOpening != nil || out.EstimatedSeconds != 0 {
			t.Fatalf("plan: recipients %d skipped %v waiting %d first %v estimate %g; want 3 expired and nothing else",
				out.Recipients, out.Skipped, out.SendHoursWaiting, out.FirstOpening, out.EstimatedSeconds)
		}
	})

	t.Run("WaitsForTheOpening", func(t *testing.T) {
		t.Parallel()
		out, err := campaigns.PlanCampaign(context.Background(), campaigns.PlanCampaignParams{
			Def: planFile(t, window+"expire_after: 96h\n"), Config: c, Now: sunday})
		if err != nil {
			t.Fatal(err)
		}
		open := time.Date(2026, 12, 9, 14, 0, 0, 0, time.UTC)
		if out.Recipients != 3 || len(out.Skipped) != 0 || out.SendHoursWaiting != 3 || out.FirstOpening == nil || !out.FirstOpening.Equal(open) {
			t.Fatalf("plan: recipients %d skipped %v waiting %d first %v; want 3 waiting for %s",
				out.Recipients, out.Skipped, out.SendHoursWaiting, out.FirstOpening, open)
		}
		if want := open.Sub(sunday).Seconds() + 1.5; out.EstimatedSeconds != want {
			t.Fatalf("estimate %g s, want %g (the opening, then 3 at 2/s)", out.EstimatedSeconds, want)
		}
	})

	t.Run("OpenNow", func(t *testing.T) {
		t.Parallel()
		out, err := campaigns.PlanCampaign(context.Background(), campaigns.PlanCampaignParams{
			Def: planFile(t, window), Config: c, Now: time.Date(2026, 12, 9, 15, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Recipients != 3 || out.SendHoursWaiting != 0 || out.FirstOpening != nil || out.EstimatedSeconds != 1.5 {
			t.Fatalf("plan in the window: %+v", out)
		}
	})
}

// TestPlanCampaignSuppressed: the plan counts skipped(suppressed) the recipients the
// expansion would (every message; marketing only for a marketing template), reads the list in
// batches, and says when it could not read it.
func TestPlanCampaignSuppressed(t *testing.T) {
	t.Parallel()
	c := config.Default()
	list := map[string]ledger.Suppression{
		"+14155552671": {Scope: ledger.ScopeAll, Reason: "STOP"},
		"+14155552672": {Scope: ledger.ScopeMarketing, Reason: "131050"},
	}
	calls := 0
	read := func(_ context.Context, to []string) ([]ledger.Suppression, error) {
		calls++
		out := make([]ledger.Suppression, len(to))
		for i, r := range to {
			out[i] = list[r]
		}
		return out, nil
	}
	for _, tc := range []struct {
		name, category string
		want           int
	}{
		{"MarketingTemplate", "marketing", 2},
		{"UtilityTemplate", "utility", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := planFile(t, "")
			d.Template.Category = tc.category
			calls = 0
			out, err := campaigns.PlanCampaign(context.Background(), campaigns.PlanCampaignParams{Def: d, Config: c, Now: sunday, Suppressions: read})
			if err != nil {
				t.Fatal(err)
			}
			if out.Skipped[ledger.SkipSuppressed] != tc.want || out.Recipients != 3-tc.want || out.SuppressionNote != "" || calls != 1 {
				t.Fatalf("plan: skipped %v recipients %d note %q reads %d; want %d suppressed in one read",
					out.Skipped, out.Recipients, out.SuppressionNote, calls, tc.want)
			}
			if want := float64(3-tc.want) / 80; math.Abs(out.EstimatedSeconds-want) > 1e-9 {
				t.Fatalf("estimate %g, want %g", out.EstimatedSeconds, want)
			}
		})
	}

	t.Run("NotReachable", func(t *testing.T) {
		out, err := campaigns.PlanCampaign(context.Background(), campaigns.PlanCampaignParams{Def: planFile(t, ""), Config: c, Now: sunday,
			Suppressions: func(context.Context, []string) ([]ledger.Suppression, error) {
				return nil, errors.New("connection refused")
			}})
		if err != nil {
			t.Fatal(err)
		}
		if out.Recipients != 3 || out.SuppressionNote != "suppression list not checked: connection refused" {
			t.Fatalf("plan without the list: recipients %d note %q", out.Recipients, out.SuppressionNote)
		}
	})
}

// TestPlanCampaignSuppressedInBatches: a large audience's list is read 1,000 recipients at a
// time, not once per row.
func TestPlanCampaignSuppressedInBatches(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("phone\n")
	for i := range 2500 {
		b.WriteString("+1415555" + strings.Repeat("0", 4-len(itoa(i))) + itoa(i) + "\n")
	}
	writeFile(t, dir, "a.csv", b.String())
	d, err := campaigns.Load(writeFile(t, dir, "t.yaml", "id: spring\naudience: {file: a.csv}\ntemplate: {name: hello, language: en}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	out, err := campaigns.PlanCampaign(context.Background(), campaigns.PlanCampaignParams{Def: d, Config: config.Default(), Now: sunday,
		Suppressions: func(_ context.Context, to []string) ([]ledger.Suppression, error) {
			sizes = append(sizes, len(to))
			out := make([]ledger.Suppression, len(to))
			out[0] = ledger.Suppression{Scope: ledger.ScopeAll}
			if len(sizes) == 2 {
				return nil, errors.New("connection reset")
			}
			return out, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 2 || sizes[0] != 1000 || sizes[1] != 1000 {
		t.Fatalf("reads of %v recipients, want two of 1000 (the second fails, the third is not asked)", sizes)
	}
	if out.Recipients != 2499 || out.Skipped[ledger.SkipSuppressed] != 1 ||
		out.SuppressionNote != "suppression list checked for the first 1000 recipients only: connection reset" {
		t.Fatalf("recipients %d skipped %v note %q", out.Recipients, out.Skipped, out.SuppressionNote)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestEstimateSeconds: sends start now, or at their window's opening after the sends before
// it; the frequency cap's skips come out of the first.
func TestEstimateSeconds(t *testing.T) {
	t.Parallel()
	now := sunday
	h1, h2 := now.Add(time.Hour), now.Add(2*time.Hour)
	for _, tc := range []struct {
		name  string
		goNow int
		waits map[time.Time]int
		want  float64
	}{
		{"NowOnly", 10, nil, 5},
		{"OpeningAfterTheNowSends", 10, map[time.Time]int{h1: 4}, 3600 + 2},
		{"NowSendsRunPastTheOpening", 10000, map[time.Time]int{h1: 4}, 5000 + 2},
		{"TwoOpenings", 0, map[time.Time]int{h2: 2, h1: 4}, 7200 + 1},
		{"CappedFromTheFirstOpening", -4, map[time.Time]int{h1: 4, h2: 2}, 7200 + 1},
		{"Nobody", 0, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := campaigns.EstimateSeconds(now, 2, tc.goNow, tc.waits); got != tc.want {
				t.Fatalf("EstimateSeconds = %g, want %g", got, tc.want)
			}
		})
	}
}

// The recipients counted per language are those the plan would send: a suppressed recipient
// is counted as skipped, not under its language.
func TestPlanCampaignLanguagesLeaveOutTheSkipped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone,lang\n+14155550001,en\n+14155550002,es\n+14155550003,es\n")
	d, err := campaigns.Load(writeFile(t, dir, "t.yaml",
		"id: spring\naudience: {file: a.csv, language: lang}\ntemplate: {name: hello, language: en, languages: [es]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := campaigns.PlanCampaign(context.Background(), campaigns.PlanCampaignParams{Def: d, Config: config.Default(), Now: sunday,
		Suppressions: func(_ context.Context, to []string) ([]ledger.Suppression, error) {
			out := make([]ledger.Suppression, len(to))
			for i, n := range to {
				if n == "+14155550003" {
					out[i] = ledger.Suppression{Scope: ledger.ScopeAll}
				}
			}
			return out, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Recipients != 2 || out.Skipped[ledger.SkipSuppressed] != 1 || out.Languages["en"] != 1 || out.Languages["es"] != 1 {
		t.Fatalf("recipients %d, skipped %v, languages %v; want 2, one suppressed, en 1 and es 1", out.Recipients, out.Skipped, out.Languages)
	}
}
