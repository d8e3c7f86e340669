package report_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/servicewindow"
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
	p := report.PlanLimitsFor(c, "+14155550100", "marketing", now)
	want := report.PlanLimitsParams{Business: "biz", Sender: "+14155550100", WindowPolicy: c.WindowPolicy(),
		WindowMargin: servicewindow.DefaultMargin, Category: "marketing", CapMax: 2, CapPeriod: 7 * 24 * time.Hour,
		Tier: 1000, TierPeriod: 24 * time.Hour, Now: now}
	if !reflect.DeepEqual(p, want) || !p.Applies() {
		t.Fatalf("PlanLimitsFor = %+v, want %+v", p, want)
	}
	c.Limits.MessagingTier = 0
	if p := report.PlanLimitsFor(c, "", "utility", now); p.CapMax != 0 || p.Tier != 0 || p.Applies() {
		t.Fatalf("utility without a cap or tier: %+v applies", p)
	}
}

// TestPlanLimitsSkipsOpenWindows: a recipient whose customer service window is open takes no
// room in the daily tier (the reservation skips the tier for them), so the preview does not
// count them as new: with the tier full, a plan to someone who wrote an hour ago waits for
// nothing, and says the recipient was left out of the count.
func TestPlanLimitsSkipsOpenWindows(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	now := time.Now()
	const biz, wrote, other = "B1", "+15550000001", "+15550000009"
	// The tier of 1 is full; the recipient wrote to the business an hour ago.
	s := limits.NewSends(limits.New(rdb), limits.Config{BusinessID: biz, DailyTier: 1, PairInterval: -1})
	if bk, err := s.Reserve(ctx, limits.Intention{Run: "r0", Recipient: other}, now); err != nil || !bk.OK {
		t.Fatalf("fill the tier: %+v, %v", bk, err)
	}
	if _, err := servicewindow.New(rdb, nil).Touch(ctx, biz, []string{wrote}, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	lc := report.NewLimitCheck(ctx, rdb, report.PlanLimitsParams{Business: biz, Tier: 1, TierPeriod: 24 * time.Hour, Now: now})
	lc.Add(wrote, "")
	pl, err := lc.Result()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	report.PrintPlanLimits(&out, pl, 24*time.Hour)
	if pl.TierNew != 0 || pl.TierInWindow != 1 || pl.TierWaiting != 0 || !strings.Contains(out.String(), "1 in an open customer service window") {
		t.Errorf("preview %+v, printed %q; want no new recipient, none waiting, one in an open window", *pl, out.String())
	}
	// The reservation agrees: it goes, in the window, with the tier full.
	if bk, err := s.Reserve(ctx, limits.Intention{Run: "r1", Recipient: wrote}, now); err != nil || !bk.OK || !bk.InWindow {
		t.Errorf("reservation %+v, %v; want it granted in the window", bk.Reservation, err)
	}
}
