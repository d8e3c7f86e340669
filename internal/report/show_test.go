package report_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// showSetup is a ledger on miniredis whose clock stands at t0, after ShowRun found no run
// run, which then exists.
func showSetup(t *testing.T) (ctx context.Context, rdb redis.UniversalClient, l *ledger.Ledger, run string, t0 time.Time) {
	t.Helper()
	_, rdb = testredis.Mini(t)
	ctx = context.Background()
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l = ledger.New(rdb, func() time.Time { return t0 })
	run = "promo-20260301T120000Z"
	if _, err := report.ShowRun(ctx, l, rdb, report.ShowParams{Run: run, Now: t0}); !errors.Is(err, ledger.ErrRunNotFound) {
		t.Fatalf("a run that does not exist: %v, want ErrRunNotFound", err)
	}
	if err := l.CreateRun(ctx, ledger.Run{ID: run, Campaign: "promo", Sender: "+14155550100", Delivery: ledger.AtMostOnce, Buckets: 1, Created: t0}); err != nil {
		t.Fatal(err)
	}
	return ctx, rdb, l, run, t0
}

// ShowRun reads a run's counters and delivery outcomes, and its funnel and verification only
// when asked.
func TestShowRun(t *testing.T) {
	t.Parallel()
	ctx, rdb, l, run, t0 := showSetup(t)
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: run, From: 0, To: 2, Entries: []ledger.PlanEntry{{Recipient: "+15550000001", Row: 1}, {Recipient: "+15550000002", Row: 2}}}); err != nil {
		t.Fatal(err)
	}
	a := ledger.AddressIn(run, "+15550000001", 1)
	if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: "m1", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.CountReply(ctx, ledger.Reply{Run: run, ID: "+15550000001", Button: "Yes"}); err != nil {
		t.Fatal(err)
	}

	plain, err := report.ShowRun(ctx, l, rdb, report.ShowParams{Run: run, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Sum != 2 || plain.States[string(ledger.Accepted)] != 1 || plain.Delivery == nil || plain.Delivery.Replies != 1 {
		t.Fatalf("report %+v, delivery %+v; want 2 rows, 1 accepted, 1 reply", plain, plain.Delivery)
	}
	if plain.Funnel != nil || plain.Verify != nil || plain.SenderBackoff != "" {
		t.Fatalf("report without rules, verify or limits: funnel %+v verify %+v backoff %q", plain.Funnel, plain.Verify, plain.SenderBackoff)
	}

	c := config.Default()
	var asked string
	full, err := report.ShowRun(ctx, l, rdb, report.ShowParams{Run: run, Now: t0, Limits: &c, Verify: true,
		RuleIDs: func(_ context.Context, r ledger.Run) []string { asked = r.ID; return []string{"interested"} }})
	if err != nil {
		t.Fatal(err)
	}
	if asked != run || full.Funnel == nil || full.Funnel.Replied != 1 || len(full.Funnel.Rules) != 1 || full.Funnel.Rules[0].Rule != "interested" {
		t.Fatalf("rules asked for %q, funnel %+v", asked, full.Funnel)
	}
	if full.Verify == nil || len(full.Verify.Mismatches) != 0 || full.Verify.Entries != 2 {
		t.Fatalf("verify %+v, want 2 entries and no mismatch", full.Verify)
	}
	if full.SenderBackoff != "" {
		t.Fatalf("a sender never throttled reports %q", full.SenderBackoff)
	}
}

// A paused follow-up run, which is not in the run list, shows with the run it follows: in
// run show (and its JSON), and as "follow-ups paused" in run ls.
func TestShowRunPausedFollowups(t *testing.T) {
	t.Parallel()
	ctx, rdb, l, run, t0 := showSetup(t)
	if _, err := l.CreateFollowup(ctx, ledger.Followup{Parent: ledger.ParentRun{ID: run, Campaign: "promo", Buckets: 1},
		Rule: "yes", Recipient: "+15550000001", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	fu := ledger.FollowupRun(run, "yes")
	if ok, err := l.Pause(ctx, fu, "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND: no approved template"); err != nil || !ok {
		t.Fatalf("pause %s: %v, %v", fu, ok, err)
	}
	rep, err := report.ShowRun(ctx, l, rdb, report.ShowParams{Run: run, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	want := []report.PausedFollowup{{Rule: "yes", Reason: "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND: no approved template"}}
	if !slices.Equal(rep.FollowupsPaused, want) {
		t.Fatalf("paused follow-ups %+v, want %+v", rep.FollowupsPaused, want)
	}
	var shown strings.Builder
	report.PrintRun(&shown, rep)
	if !strings.Contains(shown.String(), "Follow-ups of rule yes paused (ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND: no approved template): herald run resume "+run) {
		t.Errorf("run show:\n%s\nwant the paused follow-ups and how to resume them", shown.String())
	}
	reps, err := report.RecentRuns(ctx, l, "", 10, t0)
	if err != nil {
		t.Fatal(err)
	}
	var ls strings.Builder
	if err := report.PrintRuns(&ls, reps); err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || !strings.Contains(ls.String(), "follow-ups paused") {
		t.Errorf("run ls:\n%s\nwant the run with its follow-ups paused", ls.String())
	}
	// Resumed with its run, it is listed no more.
	if ok, err := l.Resume(ctx, run); err != nil || !ok {
		t.Fatalf("resume %s: %v, %v", run, ok, err)
	}
	if rep, err := report.ShowRun(ctx, l, rdb, report.ShowParams{Run: run, Now: t0}); err != nil || len(rep.FollowupsPaused) != 0 {
		t.Fatalf("after the resume: %+v (%v), want no paused follow-ups", rep.FollowupsPaused, err)
	}
}

// A follow-up run ("RUN~RULE") follows its run; it retries nothing and has no audience, as it
// is never expanded: run show says which run and rule it follows and counts its entries, in
// text and JSON, instead of reading as a retry still expanding with no recipient.
func TestShowFollowupRun(t *testing.T) {
	t.Parallel()
	ctx, rdb, l, run, t0 := showSetup(t)
	for _, to := range []string{"+15550000001", "+15550000002"} {
		if _, err := l.CreateFollowup(ctx, ledger.Followup{Parent: ledger.ParentRun{ID: run, Campaign: "promo", Buckets: 1},
			Rule: "yes", Recipient: to, Payload: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	fu := ledger.FollowupRun(run, "yes")
	a := ledger.FollowupAddress(run, "yes", "+15550000001", 1)
	if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: "m1", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	rep, err := report.ShowRun(ctx, l, rdb, report.ShowParams{Run: fu, Now: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Follows != run || rep.Rule != "yes" || rep.Parent != "" || rep.Recipients != 2 || rep.Sum != 2 || rep.ETASeconds != 0 {
		t.Errorf("report %+v; want it to follow %s by rule yes, with 2 entries, no parent and no estimate", rep, run)
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(js, &fields); err != nil {
		t.Fatal(err)
	}
	if fields["follows"] != run || fields["rule"] != "yes" || fields["recipients"] != 2.0 || fields["sum"] != 2.0 || fields["parent"] != nil {
		t.Errorf("JSON %s; want follows, rule, recipients 2 = sum, and no parent", js)
	}
	var shown strings.Builder
	report.PrintRun(&shown, rep)
	out := shown.String()
	if !strings.Contains(out, "Follows   "+run+" (on_reply rule yes)\n") ||
		!strings.Contains(out, "follow-ups: 2 entries (one per reply that matched rule yes), all accounted for") {
		t.Errorf("run show:\n%s\nwant the run and rule it follows, and its 2 entries", out)
	}
	for _, wrong := range []string{"Retries", "audience:", "still expanding"} {
		if strings.Contains(out, wrong) {
			t.Errorf("run show of a follow-up run says %q:\n%s", wrong, out)
		}
	}
}

// RecentRuns refuses a limit below 1: read as a range, 0 listed every run and -1 all but the
// oldest.
func TestRecentRunsRefusesALimitBelowOne(t *testing.T) {
	t.Parallel()
	ctx, _, l, _, t0 := showSetup(t)
	for _, n := range []int{0, -1} {
		if reps, err := report.RecentRuns(ctx, l, "", n, t0); err == nil || !strings.Contains(err.Error(), "want 1 or more") {
			t.Errorf("RecentRuns(%d) = %d runs, %v; want it refused", n, len(reps), err)
		}
	}
	if reps, err := report.RecentRuns(ctx, l, "", 1, t0); err != nil || len(reps) != 1 {
		t.Fatalf("RecentRuns(1) = %d runs, %v; want the run", len(reps), err)
	}
}
