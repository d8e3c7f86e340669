package report_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/report"
)

// PlanLimitsFor takes the category's frequency cap and the daily tier from the config; a
// category without a cap, under no tier, has no limit to preview.
func TestPlanLimitsFor(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 20, 9, 30, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "herald.yaml")
	yaml := "connectly: {business_id: biz}\nlimits:\n  messaging_tier: 1000\n  frequency_caps:\n    marketing: {max: 2, window: 168h}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	p := report.PlanLimitsFor(c, "marketing", now)
	want := report.PlanLimitsParams{Business: "biz", Category: "marketing", CapMax: 2, CapPeriod: 7 * 24 * time.Hour,
		Tier: 1000, TierPeriod: 24 * time.Hour, Now: now}
	if p != want || !p.Applies() {
		t.Fatalf("PlanLimitsFor = %+v, want %+v", p, want)
	}
	c.Limits.MessagingTier = 0
	if p := report.PlanLimitsFor(c, "utility", now); p.CapMax != 0 || p.Tier != 0 || p.Applies() {
		t.Fatalf("utility without a cap or tier: %+v applies", p)
	}
}
