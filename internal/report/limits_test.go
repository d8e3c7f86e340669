package report_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/report"
)

// TestBusinessRateZeroIsTheDefault: `connectly.business_rate: 0` means the default, which the
// worker enforces (limits.Config.WithDefaults): `limits show` shows that limit and a plan is
// paced under it, as for a config that leaves the key out.
func TestBusinessRateZeroIsTheDefault(t *testing.T) {
	f := filepath.Join(t.TempDir(), "herald.yaml")
	yaml := "connectly:\n  business_id: B1\n  business_rate: 0\nsenders:\n  - number: \"+14155550100\"\n    rate: 500\n"
	if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(f, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	rep, err := report.ReadLimits(context.Background(), c, ledger.New(rdb, time.Now), rdb, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := report.PrintLimits(&out, rep); err != nil {
		t.Fatal(err)
	}
	if rep.BusinessRate != limits.DefaultBusinessRate || !strings.Contains(out.String(), "of 200/s") {
		t.Errorf("business rate %v, printed\n%s\nwant the default %v/s the worker enforces", rep.BusinessRate, out.String(),
			limits.DefaultBusinessRate)
	}
	if got := report.PlanRate(c, "+14155550100", 0); got != limits.DefaultBusinessRate {
		t.Errorf("plan rate %v for a 500/s sender, want the business's default limit %v", got, limits.DefaultBusinessRate)
	}
}
