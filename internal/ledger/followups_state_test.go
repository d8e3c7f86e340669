package ledger

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// An operator's hold on the follow-ups of a completed run (followups.lua): a running run is
// left to pause.lua and cancel.lua; a completed one's follow-ups pause once, resume once,
// cancel from either, and its status and counts stay as they are. The run's resume lifts the
// pause and names the follow-up runs it resumed.

func init() {
	scriptCases = append(scriptCases,
		scriptCase{name: "FollowupsOfACompletedRunPauseResumeCancel", scripts: []string{"followupsCmd", "followupCmd", "pauseCmd", "resumeCmd", "expandedCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
			l := e.b.l
			ok0, st0, err0 := l.PauseFollowups(ctx, e.run, "early")
			if _, err := l.FinishExpansion(ctx, e.run, len(e.es)); err != nil {
				return err
			}
			for i := range e.es {
				if err := e.accept(ctx, i, "m"+e.es[i].Recipient); err != nil {
					return err
				}
			}
			before, err := l.Counters(ctx, e.run)
			if err != nil {
				return err
			}
			p1, st1, err1 := l.PauseFollowups(ctx, e.run, "paused by ana: wrong link")
			p2, _, err2 := l.PauseFollowups(ctx, e.run, "again")
			fs, err3 := l.FollowupsState(ctx, e.run)
			held, why := fs.Held()
			// GetRun reads the hold with the run (run ls lists it without a round trip more).
			paused, err15 := l.GetRun(ctx, e.run)
			// A follow-up run paused by hand is resumed with the run, and named.
			res, err4 := l.CreateFollowup(ctx, e.followup(0, "{}"))
			pf, err5 := l.Pause(ctx, res.Run, "paused by bo: typo")
			r, err6 := l.ResumeDetail(ctx, e.run)
			fs2, err7 := l.FollowupsState(ctx, e.run)
			c1, _, err8 := l.CancelFollowups(ctx, e.run, "cancelled by ana")
			c2, _, err9 := l.CancelFollowups(ctx, e.run, "again")
			rs, _, err10 := l.ResumeFollowups(ctx, e.run)
			fs3, err11 := l.FollowupsState(ctx, e.run)
			run, err12 := l.GetRun(ctx, e.run)
			after, err13 := l.Counters(ctx, e.run)
			_, _, err14 := l.PauseFollowups(ctx, e.run+"-none", "x")
			rule := ""
			if len(r.Rules) == 1 {
				rule = r.Rules[0].Rule + " (" + r.Rules[0].Reason + ")"
			}
			return first(err0, err1, err2, err3, err4, err5, err6, err7, err8, err9, err10, err11, err12, err13, err15,
				want("pause of a running run's follow-ups", false, ok0), want("status", RunRunning, st0),
				want("pause", true, p1), want("status", RunCompleted, st1), want("second pause", false, p2),
				want("held", true, held), want("why", "follow-ups paused by ana: wrong link", why),
				want("run's hold", FollowupsPausedHold, paused.Followups), want("its reason", "paused by ana: wrong link", paused.FollowupsReason),
				want("follow-up run paused", true, pf), want("run resumed", false, r.Run), want("follow-ups resumed", true, r.Followups),
				want("their reason", "paused by ana: wrong link", r.FollowupsReason), want("follow-up runs resumed", "yes (paused by bo: typo)", rule),
				want("hold after resume", FollowupsGo, fs2.Hold),
				want("cancel", true, c1), want("second cancel", false, c2), want("resume of cancelled", false, rs),
				want("cancelled", true, fs3.Cancelled()), want("status", RunCompleted, run.Status),
				want("run's hold", FollowupsCancelledHold, run.Followups), want("its reason", "cancelled by ana", run.FollowupsReason),
				want("accepted", before.States[Accepted], after.States[Accepted]), want("no run", true, errors.Is(err14, ErrRunNotFound)))
		}},
	)
}

// completedRuns creates runs with no recipient, a second apart, and completes them.
func completedRuns(t *testing.T, b *testBundle, ids ...string) {
	t.Helper()
	ctx := context.Background()
	for i, id := range ids {
		if err := b.l.CreateRun(ctx, Run{ID: id, Campaign: "spring-sale", Buckets: 1, Created: testNow.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
		if done, err := b.l.FinishExpansion(ctx, id, 0); err != nil || !done {
			t.Fatalf("FinishExpansion(%s) = %v, %v; want completed", id, done, err)
		}
	}
}

// heldIDs lists the runs HeldFollowups returns.
func heldIDs(t *testing.T, l *Ledger, n int) []string {
	t.Helper()
	held, err := l.HeldFollowups(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(held))
	for i, h := range held {
		ids[i] = h.ID
	}
	return ids
}

// The index of held follow-ups follows every change of the hold: a pause lists the run, scored
// by when it was paused; ResumeFollowups, the run's resume (ResumeDetail) and CancelFollowups
// take it out; a pause of a run held but not listed (paused before the index) lists it.
func TestHeldFollowupsIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	completedRuns(t, b, "a", "b")
	score := func(run string) (float64, bool) {
		s, err := b.rdb.ZScore(ctx, rkeys.FollowupsHeld(), run).Result()
		return s, err == nil
	}
	pause := func(run string) {
		t.Helper()
		if ok, _, err := b.l.PauseFollowups(ctx, run, "paused by ana"); err != nil || !ok {
			t.Fatalf("PauseFollowups(%s) = %v, %v", run, ok, err)
		}
	}
	pause("a")
	if s, ok := score("a"); !ok || s != float64(testNow.UnixMilli()) {
		t.Fatalf("a listed %v with %v, want listed when paused (%d)", ok, s, testNow.UnixMilli())
	}
	held, err := b.l.HeldFollowups(ctx, 10)
	if err != nil || len(held) != 1 || held[0] != (HeldRun{ID: "a", Campaign: "spring-sale", Since: testNow}) {
		t.Fatalf("HeldFollowups = %+v, %v; want a", held, err)
	}
	if _, _, err := b.l.ResumeFollowups(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := score("a"); ok {
		t.Fatal("a still listed once its follow-ups were resumed")
	}
	pause("a")
	if res, err := b.l.ResumeDetail(ctx, "a"); err != nil || !res.Followups {
		t.Fatalf("ResumeDetail = %+v, %v", res, err)
	}
	if _, ok := score("a"); ok {
		t.Fatal("a still listed once the run's resume resumed its follow-ups")
	}
	pause("a")
	pause("b")
	if ok, _, err := b.l.CancelFollowups(ctx, "a", "cancelled by ana"); err != nil || !ok {
		t.Fatalf("CancelFollowups = %v, %v", ok, err)
	}
	if _, ok := score("a"); ok {
		t.Fatal("a still listed once its follow-ups were cancelled")
	}
	// b paused before the index existed: its next pause, no change, lists it.
	b.rdb.Del(ctx, rkeys.FollowupsHeld())
	if ok, _, err := b.l.PauseFollowups(ctx, "b", "again"); err != nil || ok {
		t.Fatalf("second PauseFollowups = %v, %v; want no change", ok, err)
	}
	wantEqual(t, "held", []string{"b"}, heldIDs(t, b.l, 10))
}

// HeldFollowups reports the runs held longest first, at most n, and drops a listed run found
// no longer held (its removal failed, or the run is gone).
func TestHeldFollowupsReadsTheIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	completedRuns(t, b, "old", "mid", "new", "resumed", "gone")
	pauseOneAMinute(t, b, "resumed", "gone", "new", "mid", "old")
	// As left by a resume whose removal failed, and by a run deleted since.
	b.rdb.HDel(ctx, rkeys.Run("resumed"), "followups")
	b.rdb.Del(ctx, rkeys.Run("gone"))
	wantEqual(t, "held, capped", []string{"new", "mid"}, heldIDs(t, b.l, 2))
	if n, _ := b.rdb.ZCard(ctx, rkeys.FollowupsHeld()).Result(); n != 3 {
		t.Fatalf("%d listed, want the 2 runs no longer held dropped", n)
	}
	wantEqual(t, "held", []string{"new", "mid", "old"}, heldIDs(t, b.l, 10))
}

// Runs whose follow-ups were paused before the index existed are listed by the backfill, page
// by page, however old; a walk that stopped goes on from its position, and a done walk is not
// walked again.
func TestBackfillHeldFollowups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, fmt.Sprintf("r%d", i))
	}
	completedRuns(t, b, ids...)
	for _, id := range []string{"r1", "r3", "r4"} {
		if ok, _, err := b.l.PauseFollowups(ctx, id, "paused by ana"); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	if _, _, err := b.l.CancelFollowups(ctx, "r4", "cancelled by ana"); err != nil {
		t.Fatal(err)
	}
	b.rdb.Del(ctx, rkeys.FollowupsHeld())
	if done, err := b.l.backfillHeldFollowups(ctx, 2); err != nil || !done {
		t.Fatalf("backfill = %v, %v; want done", done, err)
	}
	wantEqual(t, "listed", []string{"r1", "r3"}, heldIDs(t, b.l, 10))
	if pos, _ := b.mr.Get(rkeys.FollowupsHeldBackfill()); pos != "done" {
		t.Fatalf("position %q, want done", pos)
	}
	b.rdb.Del(ctx, rkeys.FollowupsHeld())
	if done, err := b.l.BackfillHeldFollowups(ctx); err != nil || !done {
		t.Fatalf("second backfill = %v, %v", done, err)
	}
	if n, _ := b.rdb.ZCard(ctx, rkeys.FollowupsHeld()).Result(); n != 0 {
		t.Fatalf("a finished backfill walked again: %d listed", n)
	}
	b.rdb.Set(ctx, rkeys.FollowupsHeldBackfill(), "2", 0)
	if done, err := b.l.backfillHeldFollowups(ctx, 2); err != nil || !done {
		t.Fatalf("resumed backfill = %v, %v", done, err)
	}
	wantEqual(t, "listed by the resumed walk", []string{"r3"}, heldIDs(t, b.l, 10))
}

// beforeCmd runs do just before each command name on key a client sends (the first only, with
// once).
type beforeCmd struct {
	name, key string
	once      bool
	do        func()
	done      bool
}

func (h *beforeCmd) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *beforeCmd) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if a := cmd.Args(); !(h.once && h.done) && len(a) > 1 && cmd.Name() == h.name && a[1] == h.key {
			h.done = true
			h.do()
		}
		return next(ctx, cmd)
	}
}

func (h *beforeCmd) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// pauseOneAMinute pauses the follow-ups of runs ids, a minute apart from testNow on.
func pauseOneAMinute(t *testing.T, b *testBundle, ids ...string) {
	t.Helper()
	for i, id := range ids {
		l := New(b.rdb, func() time.Time { return testNow.Add(time.Duration(i) * time.Minute) })
		if ok, _, err := l.PauseFollowups(context.Background(), id, "paused by ana"); err != nil || !ok {
			t.Fatalf("PauseFollowups(%s) = %v, %v", id, ok, err)
		}
	}
}

// A resume whose read found the follow-ups not held, racing a pause that lists the run before
// the resume's removal lands, leaves the run listed: the removal reads the hold again.
func TestHeldFollowupsResumeRacingAPause(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	completedRuns(t, b, "a")
	if ok, _, err := b.l.PauseFollowups(ctx, "a", "paused by ana"); err != nil || !ok {
		t.Fatalf("PauseFollowups = %v, %v", ok, err)
	}
	racer := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
	t.Cleanup(func() { racer.Close() })
	racer.AddHook(&beforeCmd{name: "zrem", key: rkeys.FollowupsHeld(), once: true, do: func() {
		if ok, _, err := b.l.PauseFollowups(ctx, "a", "paused by bo"); err != nil || !ok {
			t.Errorf("the racing PauseFollowups = %v, %v", ok, err)
		}
	}})
	if ok, _, err := New(racer, func() time.Time { return testNow }).ResumeFollowups(ctx, "a"); err != nil || !ok {
		t.Fatalf("ResumeFollowups = %v, %v", ok, err)
	}
	fs, err := b.l.FollowupsState(ctx, "a")
	if err != nil || fs.Hold != FollowupsPausedHold {
		t.Fatalf("follow-ups state %+v, %v; want paused by the later pause", fs, err)
	}
	wantEqual(t, "held", []string{"a"}, heldIDs(t, b.l, 10))
}

// A run listed ahead of the read position while HeldFollowups pages (a backfill of another
// process, a run listed again after a drop) does not make it return a run twice.
func TestHeldFollowupsNeverTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	completedRuns(t, b, "s", "a", "b", "c", "z")
	pauseOneAMinute(t, b, "s", "a", "b", "c")
	b.rdb.HDel(ctx, rkeys.Run("s"), "followups") // stale: the first page is short of held runs
	// z, paused before the index existed, is listed first in the index just before the
	// second page is read.
	if err := b.rdb.HSet(ctx, rkeys.Run("z"), "followups", string(FollowupsPausedHold), "followups_at", testNow.Add(-time.Hour).UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
	pages := 0
	reader := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
	t.Cleanup(func() { reader.Close() })
	reader.AddHook(&beforeCmd{name: "zrange", key: rkeys.FollowupsHeld(), do: func() {
		if pages++; pages == 2 {
			b.rdb.ZAdd(ctx, rkeys.FollowupsHeld(), redis.Z{Score: float64(testNow.Add(-time.Hour).UnixMilli()), Member: "z"})
		}
	}})
	held, err := New(reader, func() time.Time { return testNow }).HeldFollowups(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, h := range held {
		if seen[h.ID] {
			t.Fatalf("HeldFollowups = %+v: %s twice", held, h.ID)
		}
		seen[h.ID] = true
	}
	if len(held) != 2 {
		t.Fatalf("HeldFollowups = %+v, want 2 runs", held)
	}
}
