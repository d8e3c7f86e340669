package report_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// enqueueStep enqueues expansion step seq of run as the expansion does (campaigns'
// functions), due after delay, and returns its id.
func enqueueStep(t *testing.T, rdb redis.UniversalClient, run string, seq int, delay time.Duration) string {
	t.Helper()
	task, err := campaigns.NewExpandTask(campaigns.ExpandPayload{Run: run, Campaign: "promo", Trigger: "send", Seq: seq}, delay, 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := asynq.NewClientFromRedisClient(rdb).Enqueue(task)
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

// shown is run show's text of run.
func shown(t *testing.T, ctx context.Context, l *ledger.Ledger, rdb redis.UniversalClient, run string, now time.Time) (report.Run, string) {
	t.Helper()
	rep, err := report.ShowRun(ctx, l, rdb, report.ShowParams{Run: run, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	report.PrintRun(&out, rep)
	return rep, out.String()
}

// A run not expanded is still expanding while a task of its expansion is left in the
// expansion queue, in any state but completed and archived, or a server may still run one
// (its lease has not run out); with none left, its expansion has stopped, and run show says so,
// names run repair and makes up no time left. An archived expansion task is named as such.
// Tasks of other runs do not count, even one whose run's id starts with this one's.
func TestExpansionOfFindsEveryState(t *testing.T) {
	t.Parallel()
	ctx, rdb, l, run, t0 := showSetup(t)
	now := time.Now()
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
	enqueueStep(t, rdb, run+"-2", 1, 0)
	enqueueStep(t, rdb, "other", 4, 0)

	e, err := report.ExpansionOf(ctx, rdb, run, now)
	if err != nil || !e.Stopped() || e.Why() != "no_task" || e.Next != 1 {
		t.Fatalf("no task of the run: %+v, %v; want stopped, no_task, next step 1", e, err)
	}
	rep, out := shown(t, ctx, l, rdb, run, t0.Add(10*time.Second))
	if rep.ExpansionStopped != "no_task" || rep.ETASeconds != 0 || rep.RatePerSecond == 0 ||
		!strings.Contains(out, "audience: expansion stopped (2 rows so far): no expansion task left to read the rest; herald run repair "+run+" starts it again\n") ||
		strings.Contains(out, "still expanding") || strings.Contains(out, " left\n") {
		t.Fatalf("run show of a run whose expansion stopped: %q, eta %v:\n%s", rep.ExpansionStopped, rep.ETASeconds, out)
	}

	id := enqueueStep(t, rdb, run, 3, time.Minute)
	if e, err := report.ExpansionOf(ctx, rdb, run, now); err != nil || e.Stopped() || strings.Join(e.Live, ",") != run+"/expand/3" || e.Next != 4 {
		t.Fatalf("a scheduled step: %+v, %v; want it live, next step 4", e, err)
	}
	if rep, out := shown(t, ctx, l, rdb, run, t0.Add(10*time.Second)); rep.ExpansionStopped != "" || rep.ETASeconds == 0 ||
		!strings.Contains(out, "audience: still expanding (2 rows so far)\n") {
		t.Fatalf("run show of a run still expanding: %q, eta %v:\n%s", rep.ExpansionStopped, rep.ETASeconds, out)
	}

	in := asynq.NewInspectorFromRedisClient(rdb)
	if err := in.ArchiveTask(campaigns.ExpandQueue, id); err != nil {
		t.Fatal(err)
	}
	if e, err := report.ExpansionOf(ctx, rdb, run, now); err != nil || !e.Stopped() || e.Why() != "archived" || strings.Join(e.Archived, ",") != id {
		t.Fatalf("an archived step: %+v, %v; want stopped, archived", e, err)
	}
	if rep, out := shown(t, ctx, l, rdb, run, t0.Add(10*time.Second)); rep.ExpansionStopped != "archived" ||
		!strings.Contains(out, "its expansion task is archived (herald task ls herald:expand --state archived); herald run repair "+run+" retries it\n") {
		t.Fatalf("run show of a run whose expansion task is archived: %q:\n%s", rep.ExpansionStopped, out)
	}
	if err := in.RunTask(campaigns.ExpandQueue, id); err != nil {
		t.Fatal(err)
	}
	if e, err := report.ExpansionOf(ctx, rdb, run, now); err != nil || strings.Join(e.Live, ",") != id {
		t.Fatalf("a pending step: %+v, %v; want it live", e, err)
	}
	if err := in.DeleteTask(campaigns.ExpandQueue, id); err != nil {
		t.Fatal(err)
	}
	// A step whose task is gone while a server runs it: its lease is ahead.
	gone := campaigns.ExpandTaskID(run, 7)
	if err := rdb.ZAdd(ctx, rkeys.AsynqLease(campaigns.ExpandQueue), redis.Z{Score: float64(now.Add(20 * time.Second).Unix()), Member: gone}).Err(); err != nil {
		t.Fatal(err)
	}
	if e, err := report.ExpansionOf(ctx, rdb, run, now); err != nil || e.Stopped() || !e.Running || e.Next != 8 {
		t.Fatalf("a step a server may run: %+v, %v; want running, next step 8", e, err)
	}
	if e, err := report.ExpansionOf(ctx, rdb, run, now.Add(time.Hour)); err != nil || !e.Stopped() || e.Why() != "no_task" {
		t.Fatalf("once its lease ran out: %+v, %v; want stopped", e, err)
	}
	// The first step's id is the run's own.
	enqueueStep(t, rdb, run, 0, 0)
	if e, err := report.ExpansionOf(ctx, rdb, run, now); err != nil || strings.Join(e.Live, ",") != run {
		t.Fatalf("the first step pending: %+v, %v; want it live", e, err)
	}
}
