package ledger

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

func TestCreateRun(t *testing.T) {
	t.Parallel()

	ctx := context.Background()

	t.Run("StoresRunningRun", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		in := Run{
			ID: "spring-sale/20260101T0900Z", Campaign: "spring-sale", Delivery: AtLeastOnce,
			Template: "spring_sale", Language: "en_US", Sender: "+15550001111", Queue: "herald:marketing",
			Audience: "audience.csv", Buckets: 3,
		}
		if err := b.l.CreateRun(ctx, in); err != nil {
			t.Fatal(err)
		}
		want := in
		want.Status = RunRunning
		want.Created = testNow
		wantEqual(t, "run", want, getRun(t, b, in.ID))

		ids, err := b.l.RecentRuns(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "recent runs", []string{in.ID}, ids)
		ids, err = b.l.RecentRuns(ctx, "spring-sale", 10)
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "recent runs of the campaign", []string{in.ID}, ids)
	})

	t.Run("SecondCreateWrapsErrRunExists", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := Run{ID: "r1", Campaign: "c", Buckets: 1}
		if err := b.l.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := b.l.Pause(ctx, "r1", "operator"); err != nil {
			t.Fatal(err)
		}
		err := b.l.CreateRun(ctx, Run{ID: "r1", Campaign: "other", Buckets: 9})
		wantErrIs(t, err, ErrRunExists)
		// The first run is untouched.
		got := getRun(t, b, "r1")
		if got.Status != RunPaused || got.Campaign != "c" || got.Buckets != 1 {
			t.Fatalf("run changed by a failed create: %+v", got)
		}
	})

	t.Run("RequiresIDAndBuckets", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, r := range []Run{{Buckets: 1}, {ID: "r1"}} {
			if err := b.l.CreateRun(ctx, r); err == nil {
				t.Fatalf("CreateRun(%+v) = nil, want an error", r)
			}
		}
	})

	t.Run("GetRunWrapsErrRunNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.l.GetRun(ctx, "nope")
		wantErrIs(t, err, ErrRunNotFound)
	})

	t.Run("RedisErrorIsWrapped", func(t *testing.T) {
		t.Parallel()
		// A Redis that refuses the dial (not a closed miniredis, whose freed port another test
		// process's server may take before the dial), and a client that gives up at once.
		rdb := redis.NewClient(&redis.Options{Dialer: testredis.Refuse, MaxRetries: -1, DialerRetries: 1})
		t.Cleanup(func() { rdb.Close() })
		err := New(rdb, nil).CreateRun(ctx, Run{ID: "r1", Buckets: 1})
		var opErr *net.OpError
		if !errors.As(err, &opErr) {
			t.Fatalf("CreateRun on a closed Redis = %v, want one wrapping *net.OpError", err)
		}
	})
}

func TestPlanQueued(t *testing.T) {
	t.Parallel()

	ctx := context.Background()
	const runID = "r1"

	setupRun := func(t *testing.T) *testBundle {
		t.Helper()
		b := setup(t)
		if err := b.l.CreateRun(ctx, Run{ID: runID, Campaign: "c", Buckets: 2}); err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("PlansNewEntries", func(t *testing.T) {
		t.Parallel()
		b := setupRun(t)
		entries := planEntries(recipients(3), 2)
		got, err := b.l.PlanQueued(ctx, Batch{Run: runID, From: 0, To: 3, Entries: entries})
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "planned flags", []bool{true, true, true}, got)
		for _, pe := range entries {
			wantEqual(t, "entry", Entry{State: Queued, Row: pe.Row}, getEntry(t, b, runID, pe))
		}
		c := getCounters(t, b, runID)
		wantEqual(t, "states", states(map[State]int64{Queued: 3}), c.States)
		if r := getRun(t, b, runID); r.PlannedTo != 3 || r.QueuedTo != 0 {
			t.Fatalf("cursors planned_to=%d queued_to=%d, want 3 and 0", r.PlannedTo, r.QueuedTo)
		}
	})

	t.Run("DuplicateRecipientIsSkipped", func(t *testing.T) {
		t.Parallel()
		b := setupRun(t)
		rc := recipients(2)
		entries := planEntries(rc, 2)
		// Row 3 is the first recipient again: same bucket, a later row.
		dup := PlanEntry{Recipient: rc[0], Bucket: entries[0].Bucket, Row: 3}
		got, err := b.l.PlanQueued(ctx, Batch{Run: runID, From: 0, To: 3, Entries: append(entries, dup)})
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "planned flags", []bool{true, true, false}, got)
		// The entry keeps the first row.
		wantEqual(t, "entry", Entry{State: Queued, Row: 1}, getEntry(t, b, runID, dup))
		c := getCounters(t, b, runID)
		wantEqual(t, "states", states(map[State]int64{Queued: 2, Skipped: 1}), c.States)
		wantEqual(t, "codes", map[string]int64{"skipped:duplicate": 1}, c.Codes)

		// A duplicate in a later batch is caught too.
		dup2 := PlanEntry{Recipient: rc[1], Bucket: entries[1].Bucket, Row: 4}
		got, err = b.l.PlanQueued(ctx, Batch{Run: runID, From: 3, To: 4, Entries: []PlanEntry{dup2}})
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "planned flags", []bool{false}, got)
		c = getCounters(t, b, runID)
		wantEqual(t, "codes", map[string]int64{"skipped:duplicate": 2}, c.Codes)
		if c.Sum() != 4 {
			t.Fatalf("Sum = %d, want 4 rows", c.Sum())
		}
	})

	t.Run("SkippedRowsAreCountedByReason", func(t *testing.T) {
		t.Parallel()
		b := setupRun(t)
		entries := planEntries(recipients(2), 2)
		skipped := map[string]int{"invalid": 3, "suppressed": 1}
		if _, err := b.l.PlanQueued(ctx, Batch{Run: runID, From: 0, To: 6, Skipped: skipped, Entries: entries}); err != nil {
			t.Fatal(err)
		}
		c := getCounters(t, b, runID)
		wantEqual(t, "states", states(map[State]int64{Queued: 2, Skipped: 4}), c.States)
		wantEqual(t, "codes", map[string]int64{"skipped:invalid": 3, "skipped:suppressed": 1}, c.Codes)
		if c.Sum() != 6 {
			t.Fatalf("Sum = %d, want 6 rows", c.Sum())
		}
	})

	// A batch sent again by the expansion that planned it (its reply lost) is reported
	// applied; by another expansion, or without a token, it is stale, and so is one behind the
	// cursor or ahead of it. None changes anything.
	t.Run("ReplayedBatchIsAppliedAndChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setupRun(t)
		entries := planEntries(recipients(4), 2)
		skipped := map[string]int{"invalid": 1}
		batch := Batch{Run: runID, From: 0, To: 5, Skipped: skipped, Entries: entries, Token: "step1"}
		if _, err := b.l.PlanQueued(ctx, batch); err != nil {
			t.Fatal(err)
		}
		beforeC, beforeE, beforeR := getCounters(t, b, runID), allEntries(t, b, runID, 2), getRun(t, b, runID)

		_, err := b.l.PlanQueued(ctx, batch)
		wantErrIs(t, err, ErrBatchApplied)
		batch.Token = "step2"
		_, err = b.l.PlanQueued(ctx, batch)
		wantErrIs(t, err, ErrStaleBatch)
		batch.Token = ""
		_, err = b.l.PlanQueued(ctx, batch)
		wantErrIs(t, err, ErrStaleBatch)
		// A batch behind the cursor, or one that skips ahead of it, is stale.
		_, err = b.l.PlanQueued(ctx, Batch{Run: runID, From: 0, To: 3, Entries: entries[:2]})
		wantErrIs(t, err, ErrStaleBatch)
		_, err = b.l.PlanQueued(ctx, Batch{Run: runID, From: 7, To: 9, Entries: nil})
		wantErrIs(t, err, ErrStaleBatch)

		wantEqual(t, "counters", beforeC, getCounters(t, b, runID))
		wantEqual(t, "entries", beforeE, allEntries(t, b, runID, 2))
		wantEqual(t, "run", beforeR, getRun(t, b, runID))
	})

	t.Run("EmptyBatchMovesTheCursor", func(t *testing.T) {
		t.Parallel()
		b := setupRun(t)
		got, err := b.l.PlanQueued(ctx, Batch{Run: runID, From: 0, To: 2, Skipped: map[string]int{"invalid": 2}, Entries: nil})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Fatalf("flags = %v, want none", got)
		}
		if r := getRun(t, b, runID); r.PlannedTo != 2 {
			t.Fatalf("planned_to = %d, want 2", r.PlannedTo)
		}
	})
}

func TestMarkQueuedAt(t *testing.T) {
	t.Parallel()

	ctx := context.Background()
	const runID = "r1"

	t.Run("MovesTheQueuedCursor", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		entries := seedRun(t, b, runID, AtMostOnce, recipients(3), false)
		if err := b.l.MarkQueuedAt(ctx, runID, 0, 3, 0); err != nil {
			t.Fatal(err)
		}
		for _, pe := range entries {
			wantEqual(t, "entry", Entry{State: Queued, Row: pe.Row}, getEntry(t, b, runID, pe))
		}
		wantEqual(t, "states", states(map[State]int64{Queued: 3}), getCounters(t, b, runID).States)
		if r := getRun(t, b, runID); r.QueuedTo != 3 {
			t.Fatalf("queued_to = %d, want 3", r.QueuedTo)
		}
	})

	t.Run("LeavesClaimedEntryAlone", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		entries := seedRun(t, b, runID, AtMostOnce, recipients(2), false)
		// A worker picked the task up before expansion recorded it as queued.
		if c := claim(t, b, runID, entries[0], AtMostOnce); c.Verdict != VerdictSend {
			t.Fatalf("verdict %s, want send", c.Verdict)
		}
		if err := b.l.MarkQueuedAt(ctx, runID, 0, 2, 0); err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "claimed entry", Entry{State: Submitting, Row: 1, Attempts: 1}, getEntry(t, b, runID, entries[0]))
		wantEqual(t, "other entry", Entry{State: Queued, Row: 2}, getEntry(t, b, runID, entries[1]))
		wantEqual(t, "states", states(map[State]int64{Submitting: 1, Queued: 1}), getCounters(t, b, runID).States)
	})

	// A batch marked again (the script's reply lost and the script sent again, or another
	// expansion of the run marking the same batch) is done: no error, nothing changes. A
	// batch that neither starts nor ends at the cursor is stale.
	t.Run("ReplayedBatchIsDone", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		seedRun(t, b, runID, AtMostOnce, recipients(2), true)
		before, beforeR := getCounters(t, b, runID), getRun(t, b, runID)
		if err := b.l.MarkQueuedAt(ctx, runID, 0, 2, 0); err != nil {
			t.Fatalf("replayed MarkQueuedAt = %v, want nil", err)
		}
		wantErrIs(t, b.l.MarkQueuedAt(ctx, runID, 0, 1, 0), ErrStaleBatch)
		wantEqual(t, "counters", before, getCounters(t, b, runID))
		wantEqual(t, "run", beforeR, getRun(t, b, runID))
	})

	t.Run("RecordsTheOffsetWithTheCursor", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		seedRun(t, b, runID, AtMostOnce, recipients(2), false)
		if err := b.l.MarkQueuedAt(ctx, runID, 0, 2, 4096); err != nil {
			t.Fatal(err)
		}
		row, off, ok, err := b.l.CursorOffset(ctx, runID)
		if err != nil || !ok || row != 2 || off != 4096 {
			t.Fatalf("CursorOffset = %d, %d, %v, %v; want 2, 4096, true", row, off, ok, err)
		}
		// A batch marked again, or a stale one, records nothing.
		if err := b.l.MarkQueuedAt(ctx, runID, 0, 2, 9999); err != nil {
			t.Fatal(err)
		}
		wantErrIs(t, b.l.MarkQueuedAt(ctx, runID, 0, 1, 9999), ErrStaleBatch)
		if row, off, _, _ := b.l.CursorOffset(ctx, runID); row != 2 || off != 4096 {
			t.Fatalf("after a replayed and a stale batch CursorOffset = %d, %d; want 2, 4096", row, off)
		}
	})
}

func TestViewBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	const runID = "r1"
	rcpts := recipients(3)
	if v, err := b.l.ViewBatch(ctx, runID, rcpts); err != nil || v.Status != "" || v.Pending != 0 {
		t.Fatalf("no run: ViewBatch = %+v, %v; want empty status", v, err)
	}
	seedRun(t, b, runID, AtMostOnce, rcpts, false)
	if err := b.l.Suppress(ctx, rcpts[1], "STOP"); err != nil {
		t.Fatal(err)
	}
	if err := b.l.Suppress(ctx, rcpts[2], "131050"); err != nil {
		t.Fatal(err)
	}
	v, err := b.l.ViewBatch(ctx, runID, rcpts)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "view", BatchView{Status: RunRunning, Pending: 3, Suppressed: []Suppression{{},
		{Scope: ScopeAll, Reason: "STOP", At: testNow.UTC()}, {Scope: ScopeMarketing, Reason: "131050", At: testNow.UTC()}}}, v)
}

func TestClaim(t *testing.T) {
	t.Parallel()

	ctx := context.Background()
	const runID = "r1"

	t.Run("SendClaimsQueuedEntry", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		entries := seedRun(t, b, runID, AtMostOnce, recipients(2), true)
		got := claim(t, b, runID, entries[0], AtMostOnce)
		wantEqual(t, "claim", Claim{Verdict: VerdictSend, State: Submitting, Attempts: 1}, got)
		wantEqual(t, "entry", Entry{State: Submitting, Row: 1, Attempts: 1}, getEntry(t, b, runID, entries[0]))
		c := getCounters(t, b, runID)
		wantEqual(t, "states", states(map[State]int64{Submitting: 1, Queued: 1}), c.States)
		if c.Attempts != 1 {
			t.Fatalf("attempts = %d, want 1", c.Attempts)
		}
	})

	t.Run("SendClaimsPlannedEntry", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		entries := seedRun(t, b, runID, AtMostOnce, recipients(1), false)
		// Planned by an earlier version of Herald, its task written before the upgrade.
		seedLegacyPlanned(t, b, runID, entries[0])
		got := claim(t, b, runID, entries[0], AtMostOnce)
		wantEqual(t, "claim", Claim{Verdict: VerdictSend, State: Submitting, Attempts: 1}, got)
		wantEqual(t, "states", states(map[State]int64{Submitting: 1}), getCounters(t, b, runID).States)
	})

	t.Run("DoneForFinishedEntries", func(t *testing.T) {
		t.Parallel()

		for _, tc := range []struct {
			name    string
			outcome Outcome
			want    Claim
		}{
			{"Accepted", Outcome{State: Accepted, MessageID: "m1"}, Claim{Verdict: VerdictDone, State: Accepted, Attempts: 1}},
			{"Failed", Outcome{State: Failed, Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"},
				Claim{Verdict: VerdictDone, State: Failed, Attempts: 1, Detail: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"}},
			{"Unknown", Outcome{State: Unknown, Code: "NO_RESPONSE"}, Claim{Verdict: VerdictDone, State: Unknown, Attempts: 1, Detail: "NO_RESPONSE"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				entries := seedRun(t, b, runID, AtMostOnce, recipients(2), true)
				claim(t, b, runID, entries[0], AtMostOnce)
				finish(t, b, runID, entries[0], tc.outcome)
				before := getCounters(t, b, runID)
				for _, d := range []Delivery{AtMostOnce, AtLeastOnce} {
					wantEqual(t, "claim", tc.want, claim(t, b, runID, entries[0], d))
				}
				wantEqual(t, "counters", before, getCounters(t, b, runID))
			})
		}
	})

	t.Run("PausedRunHoldsWithReason", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		entries := seedRun(t, b, runID, AtMostOnce, recipients(2), true)
		paused, err := b.l.Pause(ctx, runID, "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND: no template")
		if err != nil || !paused {
			t.Fatalf("Pause = %v, %v; want true, nil", paused, err)
		}
		got := claim(t, b, runID, entries[0], AtMostOnce)
		wantEqual(t, "claim", Claim{Verdict: VerdictPaused, State: Queued, Detail: "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND: no template"}, got)
		wantEqual(t, "entry", Entry{State: Queued, Row: 1}, getEntry(t, b, runID, entries[0]))
		c := getCounters(t, b, runID)
		wantEqual(t, "states", states(map[State]int64{Queued: 2}), c.States)
		if r := getRun(t, b, runID); r.Status != RunPaused || r.PauseReason != "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND: no template" {
			t.Fatalf("run status %q reason %q", r.Status, r.PauseReason)
		}
	})

	t.Run("CancelledRunSkipsEntry", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		entries := seedRun(t, b, runID, AtMostOnce, recipients(2), true)
		if err := b.rdb.HSet(ctx, rkeys.Run(runID), "status", string(RunCancelled)).Err(); err != nil {
			t.Fatal(err)
		}
		got := claim(t, b, runID, entries[0], AtMostOnce)
		wantEqual(t, "claim", Claim{Verdict: VerdictCancelled, State: Skipped, Detail: "cancelled"}, got)
		wantEqual(t, "entry", Entry{State: Skipped, Row: 1, Code: "cancelled"}, getEntry(t, b, runID, entries[0]))
		c := getCounters(t, b, runID)
		wantEqual(t, "states", states(map[State]int64{Queued: 1, Skipped: 1}), c.States)
		wantEqual(t, "codes", map[string]int64{"skipped:cancelled": 1}, c.Codes)
		// A second look finds the entry done.
		if got := claim(t, b, runID, entries[0], AtMostOnce); got.Verdict != VerdictDone {
			t.Fatalf("verdict %s, want done", got.Verdict)
		}
	})

	t.Run("ClaimFoundAtMostOnceIsUnknown", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		entries := seedRun(t, b, runID, AtMostOnce, recipients(2), true)
		claim(t, b, runID, entries[0], AtMostOnce)
		got := claim(t, b, runID, entries[0], AtMostOnce)
		wantEqual(t, "claim", Claim{Verdict: VerdictUnknown, State: Unknown, Attempts: 1, Detail: "CLAIM_FOUND"}, got)
		wantEqual(t, "entry", Entry{State: Unknown, Row: 1, Attempts: 1, Code: "CLAIM_FOUND"}, getEntry(t, b, runID, entries[0]))
		c := getCounters(t, b, runID)
		wantEqual(t, "states", states(map[State]int64{Queued: 1, Unknown: 1}), c.States)
		wantEqual(t, "codes", map[string]int64{"unknown:CLAIM_FOUND": 1}, c.Codes)
		if c.Attempts != 1 || c.Resent != 0 {
			t.Fatalf("attempts %d resent %d, want 1 and 0", c.Attempts, c.Resent)
		}
	})

	t.Run("ClaimFoundAtLeastOnceSendsAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		entries := seedRun(t, b, runID, AtLeastOnce, recipients(2), true)
		claim(t, b, runID, entries[0], AtLeastOnce)
		got := claim(t, b, runID, entries[0], AtLeastOnce)
		wantEqual(t, "claim", Claim{Verdict: VerdictSend, State: Submitting, Attempts: 2}, got)
		wantEqual(t, "entry", Entry{State: Submitting, Row: 1, Attempts: 2}, getEntry(t, b, runID, entries[0]))
		c := getCounters(t, b, runID)
		wantEqual(t, "states", states(map[State]int64{Queued: 1, Submitting: 1}), c.States)
		if c.Attempts != 2 || c.Resent != 1 {
			t.Fatalf("attempts %d resent %d, want 2 and 1", c.Attempts, c.Resent)
		}
	})

	t.Run("NoEntry", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		seedRun(t, b, runID, AtMostOnce, recipients(1), true)
		got := claim(t, b, runID, PlanEntry{Recipient: "+15559999999"}, AtMostOnce)
		if got.Verdict != VerdictNoEntry {
			t.Fatalf("verdict %s, want noentry", got.Verdict)
		}
	})

	t.Run("NoRun", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		got := claim(t, b, "missing", PlanEntry{Recipient: "+15550000000"}, AtMostOnce)
		if got.Verdict != VerdictNoRun {
			t.Fatalf("verdict %s, want norun", got.Verdict)
		}
	})
}

func TestFinish(t *testing.T) {
	t.Parallel()

	ctx := context.Background()
	const runID = "r1"

	// setupClaimed returns a run of two queued recipients whose first one is claimed.
	setupClaimed := func(t *testing.T) (*testBundle, []PlanEntry) {
		t.Helper()
		b := setup(t)
		entries := seedRun(t, b, runID, AtMostOnce, recipients(2), true)
		if c := claim(t, b, runID, entries[0], AtMostOnce); c.Verdict != VerdictSend {
			t.Fatalf("verdict %s, want send", c.Verdict)
		}
		return b, entries
	}

	t.Run("AcceptedWithMessageID", func(t *testing.T) {
		t.Parallel()
		b, entries := setupClaimed(t)
		got := finish(t, b, runID, entries[0], Outcome{State: Accepted, MessageID: "msg-1"})
		wantEqual(t, "result", FinishResult{Applied: true}, got)
		wantEqual(t, "entry", Entry{State: Accepted, Row: 1, Attempts: 1, MessageID: "msg-1"}, getEntry(t, b, runID, entries[0]))
		c := getCounters(t, b, runID)
		wantEqual(t, "states", states(map[State]int64{Accepted: 1, Queued: 1}), c.States)
		wantEqual(t, "codes", map[string]int64{}, c.Codes)
		if c.Attempts != 1 || c.AcceptedAfterRetry != 0 {
			t.Fatalf("attempts %d accepted after retry %d, want 1 and 0", c.Attempts, c.AcceptedAfterRetry)
		}
	})

	t.Run("FailedCountsCode", func(t *testing.T) {
		t.Parallel()
		b, entries := setupClaimed(t)
		got := finish(t, b, runID, entries[0], Outcome{State: Failed, Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"})
		wantEqual(t, "result", FinishResult{Applied: true}, got)
		wantEqual(t, "entry", Entry{State: Failed, Row: 1, Attempts: 1, Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"}, getEntry(t, b, runID, entries[0]))
		c := getCounters(t, b, runID)
		wantEqual(t, "states", states(map[State]int64{Failed: 1, Queued: 1}), c.States)
		wantEqual(t, "codes", map[string]int64{"failed:ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID": 1}, c.Codes)
	})

	t.Run("ReleaseRetryKeepsAttempt", func(t *testing.T) {
		t.Parallel()
		b, entries := setupClaimed(t)
		got := finish(t, b, runID, entries[0], Outcome{State: Queued, Code: "HTTP_503", Mode: ReleaseRetry})
		wantEqual(t, "result", FinishResult{Applied: true}, got)
		wantEqual(t, "entry", Entry{State: Queued, Row: 1, Attempts: 1, Code: "HTTP_503"}, getEntry(t, b, runID, entries[0]))
		c := getCounters(t, b, runID)
		wantEqual(t, "states", states(map[State]int64{Queued: 2}), c.States)
		wantEqual(t, "codes", map[string]int64{"retried:HTTP_503": 1}, c.Codes)
		if c.Attempts != 1 || c.Retries != 1 || c.Throttled != 0 {
			t.Fatalf("attempts %d retries %d throttled %d, want 1, 1, 0", c.Attempts, c.Retries, c.Throttled)
		}

		// The retry is the second attempt, and its success counts as accepted after retry.
		if c := claim(t, b, runID, entries[0], AtMostOnce); c.Verdict != VerdictSend || c.Attempts != 2 || c.Detail != "HTTP_503" {
			t.Fatalf("claim after retry = %+v, want send, attempt 2, detail HTTP_503", c)
		}
		finish(t, b, runID, entries[0], Outcome{State: Accepted, MessageID: "msg-2"})
		c = getCounters(t, b, runID)
		if c.Attempts != 2 || c.AcceptedAfterRetry != 1 {
			t.Fatalf("attempts %d accepted after retry %d, want 2 and 1", c.Attempts, c.AcceptedAfterRetry)
		}
	})

	t.Run("ReleaseThrottleGivesAttemptBack", func(t *testing.T) {
		t.Parallel()
		b, entries := setupClaimed(t)
		got := finish(t, b, runID, entries[0], Outcome{State: Queued, Code: "HTTP_429", Mode: ReleaseThrottle})
		wantEqual(t, "result", FinishResult{Applied: true}, got)
		wantEqual(t, "entry", Entry{State: Queued, Row: 1, Code: "HTTP_429"}, getEntry(t, b, runID, entries[0]))
		c := getCounters(t, b, runID)
		wantEqual(t, "states", states(map[State]int64{Queued: 2}), c.States)
		wantEqual(t, "codes", map[string]int64{}, c.Codes)
		if c.Attempts != 0 || c.Throttled != 1 || c.Retries != 0 {
			t.Fatalf("attempts %d throttled %d retries %d, want 0, 1, 0", c.Attempts, c.Throttled, c.Retries)
		}
	})

	t.Run("ReleaseHoldGivesAttemptBack", func(t *testing.T) {
		t.Parallel()
		b, entries := setupClaimed(t)
		finish(t, b, runID, entries[0], Outcome{State: Queued, Code: "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND", Mode: ReleaseHold})
		wantEqual(t, "entry", Entry{State: Queued, Row: 1, Code: "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND"}, getEntry(t, b, runID, entries[0]))
		c := getCounters(t, b, runID)
		if c.Attempts != 0 || c.Throttled != 0 || c.Retries != 0 {
			t.Fatalf("attempts %d throttled %d retries %d, want all 0", c.Attempts, c.Throttled, c.Retries)
		}
	})

	t.Run("ReleaseRequeueGivesAttemptBackAndCountsNothing", func(t *testing.T) {
		t.Parallel()
		b, entries := setupClaimed(t)
		got := finish(t, b, runID, entries[0], Outcome{State: Queued, Code: "LATE_AFTER_CLAIM", Mode: ReleaseRequeue})
		wantEqual(t, "result", FinishResult{Applied: true}, got)
		wantEqual(t, "entry", Entry{State: Queued, Row: 1, Code: "LATE_AFTER_CLAIM"}, getEntry(t, b, runID, entries[0]))
		c := getCounters(t, b, runID)
		if c.Attempts != 0 || c.Throttled != 0 || c.Retries != 0 {
			t.Fatalf("attempts %d throttled %d retries %d, want all 0", c.Attempts, c.Throttled, c.Retries)
		}
	})

	t.Run("NotSubmittingIsNotApplied", func(t *testing.T) {
		t.Parallel()
		b, entries := setupClaimed(t)
		finish(t, b, runID, entries[0], Outcome{State: Accepted, MessageID: "msg-1"})
		beforeC, beforeE := getCounters(t, b, runID), allEntries(t, b, runID, 1)

		for _, tc := range []struct {
			name string
			pe   PlanEntry
			o    Outcome
		}{
			{"AcceptedAgain", entries[0], Outcome{State: Accepted, MessageID: "msg-other"}},
			{"FailedAfterAccepted", entries[0], Outcome{State: Failed, Code: "HTTP_500"}},
			{"QueuedEntry", entries[1], Outcome{State: Accepted, MessageID: "msg-3"}},
			{"ReleaseQueuedEntry", entries[1], Outcome{State: Queued, Code: "HTTP_503", Mode: ReleaseRetry}},
			{"MissingEntry", PlanEntry{Recipient: "+15559999999"}, Outcome{State: Accepted, MessageID: "msg-4"}},
		} {
			got := finish(t, b, runID, tc.pe, tc.o)
			wantEqual(t, tc.name+" result", FinishResult{}, got)
		}
		wantEqual(t, "counters", beforeC, getCounters(t, b, runID))
		wantEqual(t, "entries", beforeE, allEntries(t, b, runID, 1))
	})

	t.Run("InvalidOutcomes", func(t *testing.T) {
		t.Parallel()
		b, entries := setupClaimed(t)
		beforeC, beforeE := getCounters(t, b, runID), allEntries(t, b, runID, 1)

		for _, tc := range []struct {
			name    string
			o       Outcome
			wantErr string
		}{
			{"NoState", Outcome{}, "invalid outcome"},
			{"UnknownState", Outcome{State: "gone"}, "invalid outcome"},
			{"QueuedWithoutMode", Outcome{State: Queued, Code: "HTTP_503"}, "invalid outcome"},
			{"ModeWithoutQueued", Outcome{State: Accepted, MessageID: "m", Mode: ReleaseRetry}, "invalid outcome"},
			{"UnknownMode", Outcome{State: Queued, Mode: "later"}, "invalid outcome"},
			{"Planned", Outcome{State: Planned}, "invalid outcome"},
			{"Submitting", Outcome{State: Submitting}, "invalid outcome"},
			{"Delivered", Outcome{State: Delivered, MessageID: "m"}, "invalid outcome"},
			{"PipeInCode", Outcome{State: Failed, Code: "A|B"}, "'|'"},
			{"PipeInMessageID", Outcome{State: Accepted, MessageID: "m|1"}, "'|'"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := b.l.Finish(ctx, Address{Run: runID, Bucket: entries[0].Bucket, Recipient: entries[0].Recipient}, tc.o)
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Finish(%+v) = %v, want an error containing %q", tc.o, err, tc.wantErr)
				}
			})
		}
		wantEqual(t, "counters", beforeC, getCounters(t, b, runID))
		wantEqual(t, "entries", beforeE, allEntries(t, b, runID, 1))
	})
}

func TestPause(t *testing.T) {
	t.Parallel()

	ctx := context.Background()

	t.Run("OnlyRunningRunsPause", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		seedRun(t, b, "r1", AtMostOnce, recipients(1), true)
		for i, want := range []bool{true, false} {
			got, err := b.l.Pause(ctx, "r1", "reason "+string(rune('A'+i)))
			if err != nil || got != want {
				t.Fatalf("Pause #%d = %v, %v; want %v, nil", i+1, got, err, want)
			}
		}
		// The first reason stays.
		if r := getRun(t, b, "r1"); r.PauseReason != "reason A" {
			t.Fatalf("reason %q, want %q", r.PauseReason, "reason A")
		}
	})

	t.Run("MissingRunWrapsErrRunNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.l.Pause(ctx, "missing", "x")
		wantErrIs(t, err, ErrRunNotFound)
	})
}

func TestCompletion(t *testing.T) {
	t.Parallel()

	ctx := context.Background()
	const runID = "r1"

	finishExpansion := func(t *testing.T, b *testBundle, total int) bool {
		t.Helper()
		done, err := b.l.FinishExpansion(ctx, runID, total)
		if err != nil {
			t.Fatal(err)
		}
		return done
	}
	wantStatus := func(t *testing.T, b *testBundle, want RunStatus) {
		t.Helper()
		r := getRun(t, b, runID)
		if r.Status != want {
			t.Fatalf("status %q, want %q", r.Status, want)
		}
		if want == RunCompleted && !r.Finished.Equal(testNow) {
			t.Fatalf("finished %v, want %v", r.Finished, testNow)
		}
		if want == RunRunning && !r.Finished.IsZero() {
			t.Fatalf("finished %v on a running run", r.Finished)
		}
	}

	t.Run("CompletesWhenLastRowTerminal", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		entries := seedRun(t, b, runID, AtMostOnce, recipients(3), true)
		if finishExpansion(t, b, 3) {
			t.Fatal("completed with every row queued")
		}
		r := getRun(t, b, runID)
		if !r.Expanded || r.Total != 3 {
			t.Fatalf("expanded %v total %d, want true and 3", r.Expanded, r.Total)
		}

		outcomes := []Outcome{
			{State: Accepted, MessageID: "m1"},
			{State: Failed, Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"},
			{State: Accepted, MessageID: "m3"},
		}
		for i, pe := range entries {
			claim(t, b, runID, pe, AtMostOnce)
			wantStatus(t, b, RunRunning)
			got := finish(t, b, runID, pe, outcomes[i])
			last := i == len(entries)-1
			wantEqual(t, "result", FinishResult{Applied: true, RunCompleted: last}, got)
			if !last {
				wantStatus(t, b, RunRunning)
			}
		}
		wantStatus(t, b, RunCompleted)
	})

	t.Run("ReleaseDoesNotComplete", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		entries := seedRun(t, b, runID, AtMostOnce, recipients(1), true)
		finishExpansion(t, b, 1)
		claim(t, b, runID, entries[0], AtMostOnce)
		got := finish(t, b, runID, entries[0], Outcome{State: Queued, Code: "HTTP_503", Mode: ReleaseRetry})
		wantEqual(t, "result", FinishResult{Applied: true}, got)
		wantStatus(t, b, RunRunning)
	})

	t.Run("NotBeforeExpansionFinished", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		entries := seedRun(t, b, runID, AtMostOnce, recipients(2), true)
		for _, pe := range entries {
			claim(t, b, runID, pe, AtMostOnce)
			if got := finish(t, b, runID, pe, Outcome{State: Accepted, MessageID: "m"}); got.RunCompleted {
				t.Fatal("completed before expansion finished")
			}
		}
		wantStatus(t, b, RunRunning)

		// The expansion finishing after every row is terminal completes the run.
		if !finishExpansion(t, b, 2) {
			t.Fatal("FinishExpansion did not complete a run whose rows are all terminal")
		}
		wantStatus(t, b, RunCompleted)
	})

	t.Run("MoreRowsToComeDoesNotComplete", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		entries := seedRun(t, b, runID, AtMostOnce, recipients(2), true)
		for _, pe := range entries {
			claim(t, b, runID, pe, AtMostOnce)
			finish(t, b, runID, pe, Outcome{State: Accepted, MessageID: "m"})
		}
		// The audience had a third row still on its way to the ledger.
		if finishExpansion(t, b, 3) {
			t.Fatal("completed with a row missing")
		}
		wantStatus(t, b, RunRunning)
	})

	t.Run("AllRowsSkipped", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if err := b.l.CreateRun(ctx, Run{ID: runID, Campaign: "c", Buckets: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.l.PlanQueued(ctx, Batch{Run: runID, From: 0, To: 4, Skipped: map[string]int{"invalid": 3, "suppressed": 1}, Entries: nil}); err != nil {
			t.Fatal(err)
		}
		if !finishExpansion(t, b, 4) {
			t.Fatal("FinishExpansion did not complete a run whose rows were all skipped")
		}
		wantStatus(t, b, RunCompleted)
		c := getCounters(t, b, runID)
		wantEqual(t, "states", states(map[State]int64{Skipped: 4}), c.States)
	})

	t.Run("UnknownClaimCompletes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		entries := seedRun(t, b, runID, AtMostOnce, recipients(1), true)
		finishExpansion(t, b, 1)
		claim(t, b, runID, entries[0], AtMostOnce)
		// The worker died mid-send; the redelivered task finds the claim.
		if c := claim(t, b, runID, entries[0], AtMostOnce); c.Verdict != VerdictUnknown {
			t.Fatalf("verdict %s, want unknown", c.Verdict)
		}
		wantStatus(t, b, RunCompleted)
	})

	t.Run("PausedRunCompletes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		entries := seedRun(t, b, runID, AtMostOnce, recipients(1), true)
		finishExpansion(t, b, 1)
		claim(t, b, runID, entries[0], AtMostOnce)
		if _, err := b.l.Pause(ctx, runID, "operator"); err != nil {
			t.Fatal(err)
		}
		if got := finish(t, b, runID, entries[0], Outcome{State: Accepted, MessageID: "m"}); !got.RunCompleted {
			t.Fatal("last send of a paused run did not complete it")
		}
		wantStatus(t, b, RunCompleted)
	})

	t.Run("CancelledRunStaysCancelled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		entries := seedRun(t, b, runID, AtMostOnce, recipients(2), true)
		finishExpansion(t, b, 2)
		if err := b.rdb.HSet(ctx, rkeys.Run(runID), "status", string(RunCancelled)).Err(); err != nil {
			t.Fatal(err)
		}
		for _, pe := range entries {
			if c := claim(t, b, runID, pe, AtMostOnce); c.Verdict != VerdictCancelled {
				t.Fatalf("verdict %s, want cancelled", c.Verdict)
			}
		}
		r := getRun(t, b, runID)
		if r.Status != RunCancelled || !r.Finished.Equal(testNow) {
			t.Fatalf("status %q finished %v, want cancelled at %v", r.Status, r.Finished, testNow)
		}
	})
}
