package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/report"
)

func TestNewRun(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	r := ledger.Run{ID: "r1", Campaign: "c1", Status: ledger.RunRunning, Expanded: true, Total: 100, Created: created}
	c := ledger.Counters{States: map[ledger.State]int64{
		ledger.Queued: 40, ledger.Accepted: 20, ledger.Sent: 5, ledger.Delivered: 10, ledger.Read: 5, ledger.Failed: 15, ledger.Skipped: 5,
	}, Codes: map[string]int64{"failed:ERROR_X": 15}}
	rep := report.NewRun(r, c, created.Add(10*time.Second))

	if rep.Sum != 100 || rep.Accepted != 40 || rep.Delivered != 15 {
		t.Errorf("sum %d accepted %d delivered %d, want 100, 40 (accepted, sent, delivered, read), 15 (delivered, read)",
			rep.Sum, rep.Accepted, rep.Delivered)
	}
	if rep.Done != 60 {
		t.Errorf("done %d, want 60: every state but queued", rep.Done)
	}
	if rep.RatePerSecond != 5.5 || rep.ETASeconds != 40.0/5.5 {
		t.Errorf("rate %v/s, eta %vs; want 5.5/s (the 55 sent to, not the 5 skipped) and the 40 left at that rate", rep.RatePerSecond, rep.ETASeconds)
	}
	if rep.Ended() {
		t.Error("a running run reports it has ended")
	}

	r.Status, r.Finished = ledger.RunCompleted, created.Add(20*time.Second)
	done := report.NewRun(r, c, created.Add(time.Hour))
	if done.ETASeconds != 0 || done.RatePerSecond != 2.75 || !done.Ended() {
		t.Errorf("a completed run: rate %v eta %v ended %v; want the rate up to its end, no eta", done.RatePerSecond, done.ETASeconds, done.Ended())
	}
	// A run cancelled before it sent anything, swept at once, and a follow-up run (its sends
	// come as customers reply) have no rate to show.
	cancelled := ledger.Run{ID: "r2", Campaign: "c1", Status: ledger.RunCancelled, Expanded: true, Total: 1000, Created: created,
		Finished: created.Add(4 * time.Second)}
	swept := report.NewRun(cancelled, ledger.Counters{States: map[ledger.State]int64{ledger.Skipped: 1000}}, created.Add(time.Minute))
	var sweptOut bytes.Buffer
	report.PrintRun(&sweptOut, swept)
	if swept.RatePerSecond != 0 || strings.Contains(sweptOut.String(), "recipients/s") {
		t.Errorf("a cancelled run swept: rate %v, printed:\n%s", swept.RatePerSecond, sweptOut.String())
	}
	fu := ledger.Run{ID: "r1~price", Campaign: "c1", Status: ledger.RunRunning, Expanded: true, Created: created}
	if f := report.NewRun(fu, ledger.Counters{States: map[ledger.State]int64{ledger.Accepted: 3}}, created.Add(time.Hour)); f.RatePerSecond != 0 || f.ETASeconds != 0 {
		t.Errorf("a follow-up run: rate %v, eta %v; want neither", f.RatePerSecond, f.ETASeconds)
	}
	r.RetriedBy = []ledger.RetryMark{{Child: "r1-retry-1", At: created.Add(time.Hour)}}
	done = report.NewRun(r, c, created.Add(time.Hour))
	var out bytes.Buffer
	report.PrintRun(&out, done)
	for _, want := range []string{"Status    completed", "audience: 100 rows, all accounted for", "failed:ERROR_X", "Retried   by r1-retry-1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("run show lacks %q:\n%s", want, out.String())
		}
	}
}

// A run still reading its audience counts toward the rows known when it was created (a
// retry run's picked recipients), not the rows planned so far: its progress and time left
// are the whole run's.
func TestNewRunStillExpanding(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	c := ledger.Counters{States: map[ledger.State]int64{ledger.Queued: 4000, ledger.Accepted: 1000}}
	for name, r := range map[string]ledger.Run{
		"Audience": {ID: "r1", Status: ledger.RunRunning, PlannedTo: 5000, Rows: 1_000_000, Created: created},
		"Retry":    {ID: "r2", Status: ledger.RunRunning, PlannedTo: 5000, Picked: 1_000_000, Created: created},
	} {
		rep := report.NewRun(r, c, created.Add(10*time.Second))
		if rep.Recipients != 1_000_000 || rep.ETASeconds != 999_000.0/100 {
			t.Errorf("%s: recipients %d, eta %vs; want the million rows and the 999,000 left at 100/s", name, rep.Recipients, rep.ETASeconds)
		}
	}
	waiting := ledger.Run{ID: "r4", Status: ledger.RunRunning, Expanded: true, Total: 5000, Created: created,
		Waiting: "send hours: sends resume at 2026-03-02T09:00:00Z", WaitingUntil: created.Add(time.Hour)}
	if rep := report.NewRun(waiting, c, created.Add(10*time.Second)); rep.ETASeconds != 0 || rep.Waiting == "" {
		t.Errorf("a run whose sends wait: eta %vs, waiting %q; want no estimate and the wait", rep.ETASeconds, rep.Waiting)
	}
	old := report.NewRun(ledger.Run{ID: "r3", Status: ledger.RunRunning, PlannedTo: 5000, Created: created}, c, created.Add(10*time.Second))
	if old.Recipients != 5000 {
		t.Errorf("a run that keeps no row count: recipients %d, want the 5,000 planned", old.Recipients)
	}
}

func TestLimitCheck(t *testing.T) {
	t.Parallel()

	t.Run("NothingAppliesIsNil", func(t *testing.T) {
		t.Parallel()
		lc := report.NewLimitCheck(context.Background(), nil, report.PlanLimitsParams{Category: "marketing"})
		if lc != nil {
			t.Fatal("a check with no cap and no tier")
		}
		lc.Add("+14155550101", "") // a nil check takes recipients and finds nothing
		if pl, err := lc.Result(); pl != nil || err != nil {
			t.Fatalf("Result = %v, %v; want nil, nil", pl, err)
		}
	})

	t.Run("UncheckedCarriesItsNote", func(t *testing.T) {
		t.Parallel()
		lc := report.NewLimitCheck(context.Background(), nil, report.PlanLimitsParams{Category: "marketing", CapMax: 2,
			CapPeriod: time.Hour, NotChecked: "redis down"})
		lc.Add("+14155550101", "")
		pl, err := lc.Result()
		if err != nil || pl == nil || pl.Note != "redis down" || pl.Capped != 0 {
			t.Fatalf("Result = %+v, %v", pl, err)
		}
		var out bytes.Buffer
		report.PrintPlanLimits(&out, pl, 24*time.Hour)
		if out.String() != "Limits         redis down\n" {
			t.Fatalf("printed %q", out.String())
		}
	})

	t.Run("NewRecipientsWaitForTheTier", func(t *testing.T) {
		t.Parallel()
		rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
		t.Cleanup(func() { rdb.Close() })
		lc := report.NewLimitCheck(context.Background(), rdb, report.PlanLimitsParams{Business: "b", Category: "utility",
			Tier: 2, TierPeriod: 24 * time.Hour, Now: time.Now()})
		for _, to := range []string{"+14155550101", "+14155550102", "+14155550103"} {
			lc.Add(to, "")
		}
		pl, err := lc.Result()
		if err != nil {
			t.Fatal(err)
		}
		if pl.TierNew != 3 || pl.TierRemaining != 2 || pl.TierWaiting != 1 || pl.Cap != "" {
			t.Fatalf("preview %+v; want 3 new, 2 room, 1 waiting, no cap", *pl)
		}
	})
}

func TestExplainCodeWithoutTable(t *testing.T) {
	t.Parallel()
	if class, why := report.ExplainCode(nil, "ERROR_CODE_X"); class != "" || why != "" {
		t.Fatalf("ExplainCode(nil) = %q, %q", class, why)
	}
}

// Codes Herald records itself say what they mean, not "no documented meaning".
func TestExplainHeraldsOwnCodes(t *testing.T) {
	t.Parallel()
	table := defaultTable(t)
	for code, want := range map[string]string{
		ledger.CodeClaimFound: "unknown", ledger.CodeTaskDeleted: "unknown", ledger.CodeResendDeleted: "unknown",
		ledger.CodeRateLimit: "pacing", ledger.CodeDailyTier: "pacing", ledger.CodeLateForPair: "pacing", ledger.CodeLateAfterClaim: "pacing",
		ledger.CodeClaimUnanswered: "requeued", ledger.CodeSendUnrecorded: "requeued", ledger.CodeSuppressionUnread: "requeued",
		ledger.CodePaceError: "requeued", ledger.CodeShutdown: "requeued",
		// Failures Herald names itself: a request it could not build, a delivery failure
		// reported without a code.
		connectly.ErrorKey(errors.New("no request")): "permanent", ledger.CodeDeliveryFailed: "permanent",
	} {
		if class, why := report.ExplainCode(table, code); class != want || why == "" || strings.Contains(why, "no documented meaning") {
			t.Errorf("ExplainCode(%s) = %q, %q; want class %s and a meaning", code, class, why, want)
		}
	}
	if _, why := report.ExplainCode(table, "SOMETHING_ELSE"); why != "no documented meaning" {
		t.Errorf("ExplainCode(SOMETHING_ELSE) = %q", why)
	}
}

// A session campaign's run shows how its recipients went by the window, each count on its
// own; every run shows its template sends into an open window.
func TestNewRunSessionCounts(t *testing.T) {
	t.Parallel()
	r := ledger.Run{ID: "r2", Campaign: "follow-up", Status: ledger.RunCompleted, Expanded: true, Total: 10}
	c := ledger.Counters{States: map[ledger.State]int64{ledger.Accepted: 4, ledger.Delivered: 5, ledger.Skipped: 4},
		Codes:                 map[string]int64{"accepted:session": 4, "accepted:fallback": 5, "skipped:window_closed": 3, "skipped:duplicate": 1},
		WindowRefusedFallback: 3}
	rep := report.NewRun(r, c, time.Now())
	want := report.SessionCounts{Sent: 4, Fallback: 5, FallbackWindowClosed: 2, FallbackRefused: 3, WindowClosed: 3}
	if rep.Session == nil || *rep.Session != want {
		t.Fatalf("session counts %+v, want %+v", rep.Session, want)
	}
	var out bytes.Buffer
	report.PrintRun(&out, rep)
	for _, want := range []string{
		"session message sent (window open) 4, fallback template sent 5 (window closed 2, session message refused by Connectly 3), skipped(window_closed) 3",
		"templates sent into an open customer service window 0",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("run show lacks %q:\n%s", want, out.String())
		}
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"session":{"sent":4,"fallback":5,"fallback_window_closed":2,"fallback_refused":3,"window_closed":3,"window_refused":0}`) {
		t.Errorf("run show --json: %s\nwant the fallbacks split by why they went", js)
	}

	tpl := report.NewRun(r, ledger.Counters{States: map[ledger.State]int64{ledger.Accepted: 10},
		Codes: map[string]int64{"accepted:in_window": 6}}, time.Now())
	if tpl.Session != nil || tpl.InWindow != 6 {
		t.Fatalf("template run: session %+v in window %d, want none and 6", tpl.Session, tpl.InWindow)
	}
	out.Reset()
	report.PrintRun(&out, tpl)
	if s := out.String(); strings.Contains(s, "session message") || !strings.Contains(s, "open customer service window 6") {
		t.Errorf("template run show:\n%s", s)
	}
}

// TestLimitsPairInterval reads limits.pair_interval as limits show prints it: its duration, or
// off (the config keeps off as a negative duration, which must not print as one), and the
// spacing the worker books, the interval plus limits.DefaultPairMargin.
func TestLimitsPairInterval(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	for _, tc := range []struct {
		interval config.OffDuration
		want     string
		spacing  string
		line     string
	}{
		{config.OffDuration(6 * time.Second), "6s", "6.25s", "one message per 6.25s to the same person, per sender (limits.pair_interval 6s"},
		{config.OffDuration(-1), "off", "", "pair      off (limits.pair_interval)"},
	} {
		c := config.Default()
		c.Limits.PairInterval = tc.interval
		rep, err := report.ReadLimits(context.Background(), c, ledger.New(rdb, nil), rdb, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		if err := report.PrintLimits(&out, rep); err != nil {
			t.Fatal(err)
		}
		if rep.PairInterval != tc.want || rep.PairSpacing != tc.spacing || !strings.Contains(out.String(), tc.line) {
			t.Errorf("pair interval %v: %q spaced %q, printed\n%s", time.Duration(tc.interval), rep.PairInterval, rep.PairSpacing, out.String())
		}
	}
}

// defaultTable is Connectly's error table with no overrides.
func defaultTable(t *testing.T) *connectly.Table {
	t.Helper()
	table, err := connectly.NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// The capped recipients are counted by the label they were added with (the plan's template
// language), so a plan's count of recipients per language can leave them out.
func TestLimitCheckCountsCappedByLabel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	now := time.Now()
	const biz, ana, bea, cid = "b", "+14155550101", "+14155550102", "+14155550103"
	s := limits.NewSends(limits.New(rdb), limits.Config{BusinessID: biz, PairInterval: -1,
		FrequencyCaps: map[string]limits.FrequencyCap{"marketing": {Max: 1, Period: time.Hour}}})
	// Ana and Cid had their one marketing message of the hour.
	for _, to := range []string{ana, cid} {
		if bk, err := s.Reserve(ctx, limits.Intention{Run: "r0", Recipient: to, Category: "marketing"}, now); err != nil || !bk.OK {
			t.Fatalf("reserve for %s: %+v, %v", to, bk, err)
		}
	}
	lc := report.NewLimitCheck(ctx, rdb, report.PlanLimitsParams{Business: biz, Category: "marketing", CapMax: 1,
		CapPeriod: time.Hour, Now: now})
	lc.Add(ana, "es")
	lc.Add(bea, "es")
	lc.Add(cid, "en")
	pl, err := lc.Result()
	if err != nil {
		t.Fatal(err)
	}
	if pl.Capped != 2 || pl.CappedByLanguage()["es"] != 1 || pl.CappedByLanguage()["en"] != 1 {
		t.Fatalf("capped %d by label %v; want 2, one es and one en", pl.Capped, pl.CappedByLanguage())
	}
	if (*report.PlanLimits)(nil).CappedByLanguage() != nil {
		t.Fatal("a nil preview counts capped recipients")
	}
}
