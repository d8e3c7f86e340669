package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// limitsEnv starts a miniredis and writes a config with a daily tier of 3 and a marketing
// frequency cap of one per day for business "biz".
func limitsEnv(t *testing.T) (*redis.Client, map[string]string, string) {
	t.Helper()
	m, env := miniEnv(t)
	cfg := filepath.Join(t.TempDir(), "herald.yaml")
	err := os.WriteFile(cfg, []byte(`connectly:
  business_id: biz
senders:
  - number: "+14155550100"
    rate: 40
limits:
  messaging_tier: 3
  frequency_caps:
    marketing:
      max: 1
      window: 24h
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return rdb, env, cfg
}

func TestLimitsShow(t *testing.T) {
	t.Parallel()
	rdb, env, cfg := limitsEnv(t)
	ctx := context.Background()
	now := time.Now()
	oldest := now.Add(-20 * time.Hour)
	for i, to := range []string{"+14155552671", "+14155552672", "+14155552673"} {
		rdb.ZAdd(ctx, rkeys.Tier("biz"), redis.Z{Score: float64(oldest.Add(time.Duration(i) * time.Hour).UnixMilli()), Member: to})
	}
	// A quarter of the sender's requests were throttled a second ago: its rate was lowered to
	// half (the controller holds it there a moment).
	sender := "+14155550100"
	rdb.HSet(ctx, rkeys.SenderBackoff("biz", sender), "f", "0.5", "at", now.Add(time.Minute).UnixMilli(),
		"dec", now.Add(-time.Second).UnixMilli(), "s", "0.25")
	prev := now.Unix() - 1
	rdb.Set(ctx, limits.UsageKey(rkeys.SenderLimit("biz", sender), prev), 40, 0)
	rdb.Set(ctx, rkeys.SenderThrottled("biz", sender, prev), 10, 0)
	// A running run waits for the tier.
	l := ledger.New(rdb, nil)
	if err := l.CreateRun(ctx, ledger.Run{ID: "r-tier", Campaign: "spring-promo", Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	if err := l.SetWaiting(ctx, "r-tier", "daily tier: 3 unique recipients in 24h0m0s used", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Fifty newer runs that have ended do not hide it.
	for i := range 50 {
		id := fmt.Sprintf("r-later-%02d", i)
		if err := l.CreateRun(ctx, ledger.Run{ID: id, Campaign: "spring-promo", Buckets: 1, Created: now.Add(time.Duration(i+1) * time.Second)}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := l.Cancel(ctx, id, "test"); err != nil {
			t.Fatal(err)
		}
	}

	code, out, errOut := heraldAt(t, now, env, "--config", cfg, "limits", "show", "--json")
	if code != 0 {
		t.Fatalf("limits show exited %d: %s", code, errOut)
	}
	var rep report.Limits
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.Tier.Limit != 3 || rep.Tier.Used != 3 || rep.Tier.Remaining == nil || *rep.Tier.Remaining != 0 {
		t.Fatalf("tier = %+v", rep.Tier)
	}
	if rep.Tier.NextFree == nil || rep.Tier.NextFree.Sub(oldest.Add(24*time.Hour)).Abs() > time.Millisecond {
		t.Fatalf("next free %v, want %v", rep.Tier.NextFree, oldest.Add(24*time.Hour))
	}
	if len(rep.Senders) != 1 || rep.Senders[0].Rate != 40 || rep.Senders[0].Effective != 20 || rep.Senders[0].FullRate == nil {
		t.Fatalf("senders = %+v", rep.Senders)
	}
	if s := rep.Senders[0]; s.Decision != "decrease" || s.DecidedAt == nil || s.ThrottledShare != 0.25 || s.Throttled != 10 ||
		s.Requests != 40 || s.Window != "3s" || s.DecreaseShare != 0.25 {
		t.Fatalf("adaptive state = %+v", s)
	}
	if len(rep.Caps) != 1 || rep.Caps[0].Category != "marketing" || rep.Caps[0].Max != 1 {
		t.Fatalf("caps = %+v", rep.Caps)
	}
	if len(rep.Waiting) != 1 || rep.Waiting[0].Run != "r-tier" {
		t.Fatalf("waiting = %+v", rep.Waiting)
	}

	code, out, _ = heraldAt(t, now, env, "--config", cfg, "limits", "show")
	for _, want := range []string{"daily tier 3 of 3 unique recipients used", "room again at", "20.0/s", "25.0% of 40 in 3s", "x0.50 decrease at", "on 25.0% throttled",
		"marketing: at most 1 per person per 24h0m0s", "run r-tier waiting: daily tier"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("limits show (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
	// run show says what the run waits for, and that its sender is slowed.
	rdb.HSet(ctx, rkeys.Run("r-tier"), "sender", "+14155550100")
	code, out, _ = heraldAt(t, now, env, "--config", cfg, "run", "show", "r-tier")
	if code != 0 || !strings.Contains(out, "waiting for the daily tier") || !strings.Contains(out, "slowed to 20.0/s of 40/s: 25.0% of its requests were throttled") {
		t.Fatalf("run show (exit %d):\n%s", code, out)
	}
}

func TestCampaignPlanCountsCapAndTier(t *testing.T) {
	t.Parallel()
	rdb, env, cfg := limitsEnv(t)
	ctx := context.Background()
	now := time.Now()
	// One person of the audience got a marketing message from another run an hour ago.
	capped := "+14155552673"
	rdb.HSet(ctx, rkeys.Cap("biz", "marketing", ledger.BucketOf(capped, rkeys.CapBuckets)), capped,
		limits.CapTag("other-run")+":"+itoa(now.Add(-time.Hour).UnixMilli()))
	// Two people fill the tier's room already: one of them is in the audience.
	rdb.ZAdd(ctx, rkeys.Tier("biz"), redis.Z{Score: float64(now.Add(-time.Hour).UnixMilli()), Member: "+14155552671"},
		redis.Z{Score: float64(now.Add(-time.Hour).UnixMilli()), Member: "+19998887777"})

	code, out, errOut := herald(t, env, "--config", cfg, "campaign", "plan", "--json", filepath.Join("..", "..", "configs", "campaigns", "spring-promo.yaml"))
	if code != 0 {
		t.Fatalf("plan exited %d: %s\n%s", code, errOut, out)
	}
	var p planOutput
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if p.Limits == nil || p.Limits.Capped != 1 || p.Skipped["capped"] != 1 {
		t.Fatalf("limits %+v skipped %v, want 1 capped", p.Limits, p.Skipped)
	}
	// Sendable after the cap: the audience's valid recipients minus the capped one; one of
	// them is already in the tier's window, and the tier has room for one more.
	if p.Limits.TierRemaining != 1 || p.Limits.TierNew != p.Recipients-1 || p.Limits.TierWaiting != p.Recipients-2 {
		t.Fatalf("tier check %+v for %d recipients", p.Limits, p.Recipients)
	}
	code, out, _ = herald(t, env, "--config", cfg, "campaign", "plan", filepath.Join("..", "..", "configs", "campaigns", "spring-promo.yaml"))
	if code != 0 || !strings.Contains(out, "1 recipient already at it would be skipped(capped)") || !strings.Contains(out, "would wait for the tier") {
		t.Fatalf("plan text (exit %d):\n%s", code, out)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// A session campaign without a fallback is sent as utility (expand), so plan's preview
// applies the utility cap, not the marketing cap its (absent) template would default to.
func TestCampaignPlanSessionWithoutFallbackIsUtility(t *testing.T) {
	t.Parallel()
	rdb, env, cfg := limitsEnv(t)
	ctx := context.Background()
	capped := "+14155552671" // ana, the audience's first row, at the marketing cap
	rdb.HSet(ctx, rkeys.Cap("biz", "marketing", ledger.BucketOf(capped, rkeys.CapBuckets)), capped,
		limits.CapTag("other-run")+":"+itoa(time.Now().Add(-time.Hour).UnixMilli()))
	src, err := os.ReadFile(filepath.Join("..", "..", "configs", "campaigns", "delivery-followup.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	i, j := strings.Index(s, "fallback_template:"), strings.Index(s, "audience:")
	if i < 0 || j < i {
		t.Fatal("the example campaign changed: no fallback_template before audience")
	}
	dir := t.TempDir()
	csv, err := os.ReadFile(filepath.Join("..", "..", "configs", "campaigns", "nightly-orders.csv"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "no-fallback.yaml")
	for name, b := range map[string]string{file: s[:i] + s[j:], filepath.Join(dir, "nightly-orders.csv"): string(csv)} {
		if err := os.WriteFile(name, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := herald(t, env, "--config", cfg, "campaign", "plan", "--json", file)
	if code != 0 {
		t.Fatalf("plan exited %d: %s\n%s", code, errOut, out)
	}
	var p planOutput
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if p.Skipped["capped"] != 0 || (p.Limits != nil && (p.Limits.Capped != 0 || strings.HasPrefix(p.Limits.Cap, "marketing"))) {
		t.Fatalf("session without fallback previewed under the marketing cap: limits %+v skipped %v", p.Limits, p.Skipped)
	}
}
