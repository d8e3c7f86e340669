package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
)

// planSunday is a Sunday, noon UTC: spring-promo's send hours (mon-sat, 10:00-19:00 in each
// recipient's zone) are closed everywhere.
var planSunday = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// springCampaign writes a copy of the spring promo's audience and a campaign over it whose
// YAML ends with extra, and returns the campaign file.
func springCampaign(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	csv, err := os.ReadFile(filepath.Join("..", "..", "configs", "campaigns", "spring-promo.csv"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "promo.yaml")
	for name, b := range map[string]string{
		filepath.Join(dir, "spring-promo.csv"): string(csv),
		file: "id: promo\nsender: \"+14155550100\"\ntemplate: {name: spring_promo, language: en_US, category: marketing}\n" +
			"parameters: {body_1: \"{{ .first_name | default \\\"there\\\" }}\"}\naudience: {file: spring-promo.csv, default_region: US}\n" + extra,
	} {
		if err := os.WriteFile(name, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return file
}

// planJSON runs campaign plan --json at now and decodes it.
func planJSON(t *testing.T, now time.Time, env map[string]string, args ...string) planOutput {
	t.Helper()
	code, out, errOut := heraldAt(t, now, env, append([]string{"campaign", "plan", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("plan exited %d: %s\n%s", code, errOut, out)
	}
	var p planOutput
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return p
}

// campaign plan applies send_window and expire_after as campaign send does: recipients whose
// window opens only after the run expires are skipped(expired), those whose window is closed
// wait for it, and the estimate starts at the openings.
func TestCampaignPlanSendHours(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	wednesday := "send_window: {days: [wed], from: \"14:00\", to: \"18:00\", timezone: UTC}\n"

	p := planJSON(t, planSunday, env, springCampaign(t, wednesday+"expire_after: 1h\n"))
	if p.Skipped["expired"] != 4 || p.Recipients != 0 || p.EstimatedSeconds != 0 {
		t.Fatalf("plan of a run that expires before its window opens: skipped %v recipients %d estimate %g; want 4 expired",
			p.Skipped, p.Recipients, p.EstimatedSeconds)
	}

	file := springCampaign(t, wednesday+"expire_after: 96h\n")
	p = planJSON(t, planSunday, env, file)
	open := time.Date(2026, 12, 9, 14, 0, 0, 0, time.UTC)
	if p.Recipients != 4 || len(p.Skipped) != 0 || p.SendHoursWaiting != 4 || p.FirstOpening == nil || !p.FirstOpening.Equal(open) ||
		p.EstimatedSeconds < open.Sub(planSunday).Seconds() {
		t.Fatalf("plan: recipients %d skipped %v waiting %d first %v estimate %g; want 4 waiting for %s",
			p.Recipients, p.Skipped, p.SendHoursWaiting, p.FirstOpening, p.EstimatedSeconds, open)
	}
	code, out, _ := heraldAt(t, planSunday, env, "campaign", "plan", file)
	if code != 0 || !strings.Contains(out, "Send hours     4 wait for the send hours: first at 2026-12-09 14:00 UTC\n") ||
		!strings.Contains(out, "Estimated time 74h0m0s (from now: sends wait for the send hours to open") {
		t.Fatalf("plan text (exit %d):\n%s", code, out)
	}

	// The shipped spring promo on a Sunday: its sends wait for Monday's openings.
	code, out, _ = heraldAt(t, planSunday, env, "campaign", "plan", filepath.Join("..", "..", "configs", "campaigns", "spring-promo.yaml"))
	if code != 0 || strings.Contains(out, "under a second") || !strings.Contains(out, "4 wait for the send hours: first at 2026-12-07 13:00 UTC") {
		t.Fatalf("spring promo planned on a Sunday (exit %d):\n%s", code, out)
	}
}

// campaign plan counts skipped(suppressed) the recipients campaign send would skip so: those
// suppressed for every message, and for marketing on a marketing template. Without Redis it
// says the list was not checked.
func TestCampaignPlanCountsSuppressed(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	l := ledger.New(rdb, nil)
	ctx := context.Background()
	for to, reason := range map[string]string{"+14155552671": "STOP", "+14155552673": "131050", "+19998887777": "STOP"} {
		if err := l.Suppress(ctx, to, reason); err != nil {
			t.Fatal(err)
		}
	}
	file := springCampaign(t, "")
	p := planJSON(t, planSunday, env, file)
	if p.Skipped[ledger.SkipSuppressed] != 2 || p.Recipients != 2 || p.SuppressionNote != "" {
		t.Fatalf("plan: skipped %v recipients %d note %q; want 2 suppressed of 4", p.Skipped, p.Recipients, p.SuppressionNote)
	}
	code, out, _ := heraldAt(t, planSunday, env, "campaign", "plan", file)
	if code != 0 || !strings.Contains(out, "Recipients     2\n") || !strings.Contains(out, "Skipped        2 suppressed\n") {
		t.Fatalf("plan text (exit %d):\n%s", code, out)
	}

	// Redis out of reach: the recipients are counted, and the plan says the list was not read.
	down := map[string]string{"HERALD_REDIS_URL": "redis://127.0.0.1:1/0"}
	code, out, _ = heraldAt(t, planSunday, down, "campaign", "plan", file)
	if code != 0 || !strings.Contains(out, "Recipients     4\n") || !strings.Contains(out, "Suppression    not checked: ") {
		t.Fatalf("plan without Redis (exit %d):\n%s", code, out)
	}
}

// --sample 0 shows no request body: neither the campaign's nor its follow-ups'.
func TestCampaignPlanSampleZero(t *testing.T) {
	t.Parallel()
	file := filepath.Join("..", "..", "configs", "campaigns", "spring-promo-replies.yaml")
	code, out, errOut := herald(t, nil, "campaign", "plan", "--sample", "0", file)
	if code != 0 || strings.Contains(out, "POST") || strings.Contains(out, `"text"`) ||
		!strings.Contains(out, "Follow-up interested: 1 request(s), bodies not shown (--sample 0)") {
		t.Fatalf("plan --sample 0 (exit %d): %s\n%s", code, errOut, out)
	}
	code, out, _ = herald(t, nil, "campaign", "plan", "--sample", "1", file)
	if code != 0 || strings.Count(out, "Request 1: POST") != 1 || !strings.Contains(out, "Follow-up interested request 1: POST") {
		t.Fatalf("plan --sample 1 (exit %d):\n%s", code, out)
	}
	p := planJSON(t, planSunday, nil, "--sample", "0", file)
	if len(p.Samples) != 0 || len(p.Followups) == 0 {
		t.Fatalf("plan --json --sample 0: %d samples, %d follow-ups", len(p.Samples), len(p.Followups))
	}
	for _, f := range p.Followups {
		for _, r := range f.Requests {
			if r.Body != nil && string(r.Body) != "null" {
				t.Fatalf("follow-up %s shows a body with --sample 0: %s", f.Rule, r.Body)
			}
		}
	}
}

// A run whose sends all wait for their send hours says so in run show, with no time left,
// from the moment campaign send scheduled them: no worker has touched them yet.
func TestRunShowWaitsForTheSendHours(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	day := time.Now().UTC().AddDate(0, 0, 2) // the window is closed today and tomorrow
	opening := time.Date(day.Year(), day.Month(), day.Day(), 10, 0, 0, 0, time.UTC)
	file := springCampaign(t, "send_window: {days: ["+strings.ToLower(day.Weekday().String()[:3])+"], from: \"10:00\", to: \"11:00\", timezone: UTC}\n")
	code, out, errOut := herald(t, env, "campaign", "send", "--json", file)
	if code != 0 {
		t.Fatalf("campaign send exited %d: %s\n%s", code, errOut, out)
	}
	var started struct {
		Run string `json:"run"`
	}
	if err := json.Unmarshal([]byte(out), &started); err != nil {
		t.Fatal(err, out)
	}
	code, out, errOut = herald(t, env, "run", "show", started.Run)
	if code != 0 || !strings.Contains(out, "running, waiting for the send hours: sends resume at "+opening.Format(time.RFC3339)+"\n") ||
		strings.Contains(out, " left") {
		t.Fatalf("run show (exit %d): %s\n%s", code, errOut, out)
	}
	// From the opening on, the note is stale: the sends have resumed.
	code, out, _ = heraldAt(t, opening, env, "run", "show", started.Run)
	if code != 0 || strings.Contains(out, "waiting for") {
		t.Fatalf("run show at the opening (exit %d):\n%s", code, out)
	}
}

// A campaign whose sender the config's senders do not list is sent from at the default rate,
// as the worker paces any sender it has no rate for: validate notes it, plan warns first thing
// (the sender field's place, and --json's warnings), and send warns and starts the run.
func TestCampaignSenderNotInConfig(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	cfg := writeConfig(t, "senders:\n  - number: \"+14155550100\"\n    rate: 20\n")
	listed := springCampaign(t, "")
	unlisted := filepath.Join(filepath.Dir(listed), "other.yaml")
	src, err := os.ReadFile(listed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unlisted, []byte(strings.Replace(string(src), "+14155550100", "+14155550199", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	warning := unlisted + ":2:9: sender: not one of the config's senders (1 listed): its sends go at the default rate of 80 msg/s"

	code, out, _ := heraldAt(t, planSunday, env, "--config", cfg, "campaign", "plan", unlisted)
	if code != 0 || !strings.HasPrefix(out, "WARNING        "+warning) || !strings.Contains(out, "at 80 msg/s") {
		t.Fatalf("plan (exit %d):\n%s", code, out)
	}
	if p := planJSON(t, planSunday, env, "--config", cfg, unlisted); len(p.Warnings) != 1 || !strings.HasPrefix(p.Warnings[0], warning) {
		t.Fatalf("plan --json warnings %q", p.Warnings)
	}
	code, out, _ = herald(t, env, "--config", cfg, "campaign", "validate", unlisted)
	if code != 0 || !strings.Contains(out, "note: "+warning) {
		t.Fatalf("validate (exit %d):\n%s", code, out)
	}
	code, out, errOut := herald(t, env, "--config", cfg, "campaign", "send", unlisted)
	if code != 0 || !strings.Contains(errOut, "warning: "+warning) || !strings.Contains(out, "started") {
		t.Fatalf("send (exit %d): %s\n%s", code, errOut, out)
	}

	// A listed sender: no warning anywhere.
	code, out, _ = heraldAt(t, planSunday, env, "--config", cfg, "campaign", "plan", listed)
	if code != 0 || strings.Contains(out, "WARNING") || !strings.Contains(out, "at 20 msg/s") {
		t.Fatalf("plan of a listed sender (exit %d):\n%s", code, out)
	}
	code, out, _ = herald(t, env, "--config", cfg, "campaign", "validate", listed)
	if code != 0 || strings.Contains(out, "sender") {
		t.Fatalf("validate of a listed sender (exit %d):\n%s", code, out)
	}
}
