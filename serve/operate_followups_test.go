package serve_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/serve"
)

// onReplyRules is an on_reply block with one rule, yes.
const onReplyRules = "on_reply:\n  rules:\n    - {name: yes, button: \"Yes\", message: {text: \"Here is the link\"}}\n"

// Pause and cancel of a completed run whose on_reply.until has not passed pause and cancel its
// follow-ups, the run left completed, and keep themselves in the audit log; resume lifts the
// pause and names what it resumed, a follow-up run paused by hand included.
func TestFollowupsOfACompletedRunPauseResumeCancel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	c := config.Default()
	id := completedRun(t, c, rdb)
	l := ledger.New(rdb, nil)
	rec := audit.Record{Redis: rdb, Actor: "ana", Reason: "wrong link"}
	res, err := serve.PauseRun(ctx, c, rdb, id, rec)
	if err != nil || !res.Changed || !res.Followups || res.Status != ledger.RunCompleted {
		t.Fatalf("PauseRun = %+v, %v; want the follow-ups paused, the run completed", res, err)
	}
	if fs, err := l.FollowupsState(ctx, id); err != nil || fs.Hold != ledger.FollowupsPausedHold || fs.Reason != "paused by ana: wrong link" {
		t.Fatalf("follow-ups state %+v, %v", fs, err)
	}
	fid := followupRunOf(t, l, id, "yes")
	if ok, err := l.Pause(ctx, fid, "paused by bo: typo"); !ok || err != nil {
		t.Fatalf("pause the follow-up run: %v %v", ok, err)
	}
	res, err = serve.ResumeRun(ctx, c, rdb, id, rec)
	wantDetail := "resumed follow-ups (paused by ana: wrong link), follow-ups of rule yes (paused by bo: typo)"
	if err != nil || !res.Changed || res.Detail != wantDetail || len(res.Resumed) != 1 || res.Resumed[0].Rule != "yes" {
		t.Fatalf("ResumeRun = %+v, %v; want %q", res, err, wantDetail)
	}
	res, err = serve.CancelRun(ctx, c, rdb, id, rec)
	if err != nil || !res.Changed || !res.Followups || res.Status != ledger.RunCompleted {
		t.Fatalf("CancelRun = %+v, %v; want the follow-ups cancelled, the run completed", res, err)
	}
	if fs, err := l.FollowupsState(ctx, id); err != nil || !fs.Cancelled() {
		t.Fatalf("follow-ups state %+v, %v; want cancelled", fs, err)
	}
	wantLog(t, rdb,
		"ana run cancel "+id+": follow-ups cancelled; the run stays completed",
		"ana run resume "+id+": "+wantDetail,
		"ana run pause "+id+": follow-ups paused; the run stays completed")
}

// A completed run whose on_reply.until has passed, or whose campaign has no on_reply, is
// refused as before: nothing of it can come any more.
func TestFollowupsOfACompletedRunPastUntilAreRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	c := config.Default()
	late := send(t, c, rdb, 1, onReplyRules).RunID
	plain := send(t, c, rdb, 1).RunID
	created := time.Now().Add(-8 * 24 * time.Hour).UnixMilli()
	for _, id := range []string{late, plain} {
		if err := rdb.HSet(ctx, rkeys.Run(id), "status", string(ledger.RunCompleted), "created", created).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.HSet(ctx, rkeys.Run(plain), "created", time.Now().UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{late, plain} {
		for name, change := range map[string]serve.ChangeRun{"pause": serve.PauseRun, "cancel": serve.CancelRun} {
			res, err := change(ctx, c, rdb, id, audit.Record{Redis: rdb, Actor: "ana"})
			if err != nil || res.Changed || res.Status != ledger.RunCompleted {
				t.Errorf("%s %s = %+v, %v; want refused, completed", name, id, res, err)
			}
		}
	}
}

// A delayed follow-up created before on_reply.until may be due long after it: while one is
// still to be sent, pause and cancel of the completed run reach it; once none is, they are
// refused again.
func TestFollowupsStillDueAfterUntilCanBeCancelled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	c := config.Default()
	id := oldCompletedRun(t, c, rdb, 8*24*time.Hour, ledger.Queued)
	rec := audit.Record{Redis: rdb, Actor: "ana"}
	res, err := serve.PauseRun(ctx, c, rdb, id, rec)
	if err != nil || !res.Changed || !res.Followups {
		t.Fatalf("PauseRun with a follow-up still due = %+v, %v; want its follow-ups paused", res, err)
	}
	if res, err = serve.CancelRun(ctx, c, rdb, id, rec); err != nil || !res.Changed || !res.Followups {
		t.Fatalf("CancelRun with a follow-up still due = %+v, %v; want its follow-ups cancelled", res, err)
	}
	other := oldCompletedRun(t, c, rdb, 8*24*time.Hour, ledger.Accepted)
	if res, err := serve.CancelRun(ctx, c, rdb, other, rec); err != nil || res.Changed {
		t.Errorf("CancelRun with every follow-up sent, past until = %+v, %v; want refused", res, err)
	}
}

// A follow-up run paused after its run's follow-ups were cancelled (a stop-the-run answer to
// a follow-up already past the gate) is cancelled by a second cancel, and a resume then
// resumes nothing: cancelled follow-ups stay cancelled.
func TestCancelledFollowupsStayCancelled(t *testing.T) {
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	c := config.Default()
	id := completedRun(t, c, rdb)
	l := ledger.New(rdb, nil)
	rec := audit.Record{Redis: rdb, Actor: "ana"}
	if res, err := serve.CancelRun(ctx, c, rdb, id, rec); err != nil || !res.Changed {
		t.Fatalf("cancel: %+v %v", res, err)
	}
	fid := followupRunOf(t, l, id, "yes")
	if ok, err := l.Pause(ctx, fid, "132015: paused template"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if res, err := serve.ResumeRun(ctx, c, rdb, id, rec); err != nil || res.Changed {
		t.Errorf("resume of a run whose follow-ups are cancelled: %+v %v, want nothing resumed", res, err)
	}
	if _, err := serve.CancelRun(ctx, c, rdb, id, rec); err != nil {
		t.Fatal(err)
	}
	if pf, err := l.PausedFollowups(ctx, id); err != nil || len(pf) != 0 {
		t.Errorf("after a second cancel, paused follow-up runs %+v (%v), want none", pf, err)
	}
	if r, err := l.GetRun(ctx, fid); err != nil || r.Status != ledger.RunCancelled {
		t.Errorf("follow-up run %s: %+v %v, want cancelled", fid, r.Status, err)
	}
}

// Resuming a running run that resumes only a paused follow-up run is no change to the
// follow-ups of a completed run: Followups stays false.
func TestResumeOfARunningRunIsNotAFollowupsChange(t *testing.T) {
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	c := config.Default()
	id := send(t, c, rdb, 2, onReplyRules).RunID
	l := ledger.New(rdb, nil)
	fid := followupRunOf(t, l, id, "yes")
	if ok, err := l.Pause(ctx, fid, "paused by bo: typo"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	res, err := serve.ResumeRun(ctx, c, rdb, id, audit.Record{Redis: rdb, Actor: "ana"})
	if err != nil || !res.Changed || res.Followups || len(res.Resumed) != 1 {
		t.Errorf("resume of a %s run: %+v %v, want changed, the follow-up run of rule yes resumed, Followups false", res.Status, res, err)
	}
}

// completedRun sends a two-recipient campaign with on_reply rules and marks its run
// completed, as it is once its recipients are settled; it returns the run's id.
func completedRun(t *testing.T, c config.Config, rdb *redis.Client) string {
	t.Helper()
	id := send(t, c, rdb, 2, onReplyRules).RunID
	if err := rdb.HSet(context.Background(), rkeys.Run(id), "status", string(ledger.RunCompleted)).Err(); err != nil {
		t.Fatal(err)
	}
	return id
}

// oldCompletedRun is a run of onReplyRules created age ago, completed, listed in the run list
// at its creation, whose follow-up run of rule yes has one entry in state st.
func oldCompletedRun(t *testing.T, c config.Config, rdb *redis.Client, age time.Duration, st ledger.State) string {
	t.Helper()
	ctx := context.Background()
	id := send(t, c, rdb, 1, onReplyRules).RunID
	created := time.Now().Add(-age).UnixMilli()
	if err := rdb.HSet(ctx, rkeys.Run(id), "status", string(ledger.RunCompleted), "created", created).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZAddXX(ctx, rkeys.Runs(), redis.Z{Score: float64(created), Member: id}).Err(); err != nil {
		t.Fatal(err)
	}
	fid := followupRunOf(t, ledger.New(rdb, nil), id, "yes")
	if err := rdb.HSet(ctx, rkeys.Counts(fid), string(st), 1).Err(); err != nil {
		t.Fatal(err)
	}
	return id
}

// followupRunOf creates the follow-up run of rule of run id, as a first matching reply does.
func followupRunOf(t *testing.T, l *ledger.Ledger, id, rule string) string {
	t.Helper()
	fid := ledger.FollowupRun(id, rule)
	if err := l.CreateRun(context.Background(), ledger.Run{ID: fid, Campaign: "spring-sale", Delivery: ledger.AtMostOnce, Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	return fid
}
