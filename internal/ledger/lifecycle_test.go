package ledger

import (
	"context"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/rkeys"
)

func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("PauseThenResumeContinues", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		es := seedRun(t, b, "r1", AtMostOnce, recipients(3), true)
		if ok, err := b.l.Pause(ctx, "r1", "operator: checking copy"); err != nil || !ok {
			t.Fatalf("Pause = %v, %v", ok, err)
		}
		if c := claim(t, b, "r1", es[0], AtMostOnce); c.Verdict != VerdictPaused || c.Detail != "operator: checking copy" {
			t.Fatalf("claim while paused = %+v", c)
		}
		if ok, err := b.l.Resume(ctx, "r1"); err != nil || !ok {
			t.Fatalf("Resume = %v, %v", ok, err)
		}
		if ok, _ := b.l.Resume(ctx, "r1"); ok {
			t.Fatal("second Resume reported a change")
		}
		r := getRun(t, b, "r1")
		if r.Status != RunRunning || r.PauseReason != "" {
			t.Fatalf("after resume: %+v", r)
		}
		if c := claim(t, b, "r1", es[0], AtMostOnce); c.Verdict != VerdictSend {
			t.Fatalf("claim after resume = %+v", c)
		}
		if _, err := b.l.Resume(ctx, "nope"); !strings.Contains(err.Error(), "not found") {
			t.Fatalf("Resume of a missing run = %v", err)
		}
	})

	t.Run("CancelSkipsEverythingNotInFlightAndCompletes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		es := seedRun(t, b, "r2", AtMostOnce, recipients(150), true)
		if _, err := b.l.FinishExpansion(ctx, "r2", 150); err != nil {
			t.Fatal(err)
		}
		claim(t, b, "r2", es[0], AtMostOnce) // in flight
		claim(t, b, "r2", es[1], AtMostOnce)
		finish(t, b, "r2", es[1], Outcome{State: Accepted, MessageID: "m1"})
		ok, n, err := b.l.Cancel(ctx, "r2", "wrong audience")
		if err != nil || !ok || n != 148 {
			t.Fatalf("Cancel = %v, %d, %v; want true, 148", ok, n, err)
		}
		if r := getRun(t, b, "r2"); r.Status != RunCancelled || !r.Finished.IsZero() {
			t.Fatalf("run while a send is in flight: %+v", r)
		}
		// The send in flight finishes normally and completes the cancelled run.
		if res := finish(t, b, "r2", es[0], Outcome{State: Accepted, MessageID: "m0"}); !res.RunCompleted {
			t.Fatalf("last outcome did not complete the run: %+v", res)
		}
		c := getCounters(t, b, "r2")
		wantEqual(t, "states", states(map[State]int64{Accepted: 2, Skipped: 148}), c.States)
		wantEqual(t, "codes", int64(148), c.Codes["skipped:cancelled"])
		if r := getRun(t, b, "r2"); r.Status != RunCancelled || r.Finished.IsZero() {
			t.Fatalf("cancelled run not finished: %+v", r)
		}
		if ok, _, _ := b.l.Cancel(ctx, "r2", "again"); ok {
			t.Fatal("second Cancel reported a change")
		}
	})

	t.Run("VerifyAgreesThenFindsATamperedCounter", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rcpts := recipients(40)
		runID := "r3"
		if err := b.l.CreateRun(ctx, Run{ID: runID, Campaign: "c", Buckets: 2}); err != nil {
			t.Fatal(err)
		}
		es := planEntries(append(rcpts, rcpts[0]), 2) // one duplicate row
		es[10].Skip = "suppressed"
		if _, err := b.l.PlanQueued(ctx, Batch{Run: runID, From: 0, To: 43, Skipped: map[string]int{"invalid_phone": 2}, Entries: es}); err != nil {
			t.Fatal(err)
		}
		claim(t, b, runID, es[0], AtMostOnce)
		finish(t, b, runID, es[0], Outcome{State: Failed, Code: "X", Permanent: true})
		v, err := b.l.Verify(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Entries != 40 || len(v.Mismatches) != 0 {
			t.Fatalf("Verify = %+v, want 40 entries and no mismatch", v)
		}
		b.rdb.HIncrBy(ctx, rkeys.Counts(runID), "queued", 1)
		b.rdb.HIncrBy(ctx, rkeys.Codes(runID), "skipped:suppressed", 1)
		v, err = b.l.Verify(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Mismatches) != 2 {
			t.Fatalf("Verify after tampering = %+v, want 2 mismatches", v.Mismatches)
		}
	})

	t.Run("SuppressionListAndSkippedPlan", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if err := b.l.Suppress(ctx, "+15550000002", "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"); err != nil {
			t.Fatal(err)
		}
		got, err := b.l.Suppressed(ctx, []string{"+15550000001", "+15550000002"})
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "suppressed", []bool{false, true}, got)
		if err := b.l.CreateRun(ctx, Run{ID: "r4", Campaign: "c", Buckets: 1}); err != nil {
			t.Fatal(err)
		}
		es := []PlanEntry{{Recipient: "+15550000001", Row: 1}, {Recipient: "+15550000002", Row: 2, Skip: "suppressed"}}
		fresh, err := b.l.PlanQueued(ctx, Batch{Run: "r4", From: 0, To: 2, Entries: es})
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "fresh", []bool{true, false}, fresh)
		wantEqual(t, "entry", Entry{State: Skipped, Row: 2, Code: "suppressed"}, getEntry(t, b, "r4", es[1]))
		if c := getCounters(t, b, "r4"); c.Codes["skipped:suppressed"] != 1 || c.States[Skipped] != 1 {
			t.Fatalf("counters %+v", c)
		}
	})

	t.Run("BurstOfOnePermanentCodePausesTheRun", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.l.SetBurst(10, 0.2) // more than 2 of the last 10
		es := seedRun(t, b, "r5", AtMostOnce, recipients(20), true)
		outcomes := []Outcome{
			{State: Accepted, MessageID: "m"}, {State: Accepted, MessageID: "m"}, {State: Accepted, MessageID: "m"},
			{State: Failed, Code: "BAD", Permanent: true}, {State: Accepted, MessageID: "m"},
			{State: Failed, Code: "OTHER", Permanent: true}, {State: Failed, Code: "BAD", Permanent: true},
			{State: Accepted, MessageID: "m"}, {State: Accepted, MessageID: "m"},
			{State: Unknown, Code: "NO_RESPONSE"},
			{State: Failed, Code: "BAD", Permanent: true}, // 3 of the last 10: over 2
		}
		var last FinishResult
		for i, o := range outcomes {
			claim(t, b, "r5", es[i], AtMostOnce)
			last = finish(t, b, "r5", es[i], o)
			if i < len(outcomes)-1 && last.PausedFor != "" {
				t.Fatalf("outcome %d paused the run early: %q", i, last.PausedFor)
			}
		}
		if !strings.HasPrefix(last.PausedFor, "BAD: 3 of the last 10") {
			t.Fatalf("PausedFor = %q", last.PausedFor)
		}
		if r := getRun(t, b, "r5"); r.Status != RunPaused || r.PauseReason != last.PausedFor {
			t.Fatalf("run %+v", r)
		}
	})

	t.Run("BurstNeedsAFullSample", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.l.SetBurst(10, 0.2)
		es := seedRun(t, b, "r6", AtMostOnce, recipients(5), true)
		for i := 0; i < 5; i++ {
			claim(t, b, "r6", es[i], AtMostOnce)
			if r := finish(t, b, "r6", es[i], Outcome{State: Failed, Code: "BAD", Permanent: true}); r.PausedFor != "" {
				t.Fatalf("paused after %d outcomes: %q", i+1, r.PausedFor)
			}
		}
	})
}

func TestDeliveryIsMonotonic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	es := seedRun(t, b, "r7", AtMostOnce, recipients(4), true)
	for i := 0; i < 3; i++ {
		claim(t, b, "r7", es[i], AtMostOnce)
	}
	finish(t, b, "r7", es[0], Outcome{State: Accepted, MessageID: "m0"})
	finish(t, b, "r7", es[1], Outcome{State: Accepted, MessageID: "m1"})
	finish(t, b, "r7", es[2], Outcome{State: Unknown, Code: "NO_RESPONSE"})

	steps := []struct {
		name    string
		i       int
		to      State
		code    string
		verdict DeliveryVerdict
		want    State
	}{
		{"ReadBeforeDelivered", 0, Read, "", DeliveryApplied, Read},
		{"LateDeliveredIgnored", 0, Delivered, "", DeliveryStale, Read},
		{"LateSentIgnored", 0, Sent, "", DeliveryStale, Read},
		{"FailedAfterReadIgnored", 0, Failed, "X", DeliveryStale, Read},
		{"Sent", 1, Sent, "", DeliveryApplied, Sent},
		{"DuplicateSentIgnored", 1, Sent, "", DeliveryStale, Sent},
		{"DeliveryFailedBeforeDelivered", 1, Failed, "ERROR_CODE_UNSPECIFIED", DeliveryApplied, Failed},
		{"DeliveredReplacesTheFailure", 1, Delivered, "", DeliveryApplied, Delivered},
		{"UnknownSettledByDelivered", 2, Delivered, "", DeliveryApplied, Delivered},
		{"QueuedEntryNotMoved", 3, Delivered, "", DeliveryEarly, Queued},
	}
	for _, s := range steps {
		ev := DeliveryEvent{Address: Address{Run: "r7", Bucket: es[s.i].Bucket, Recipient: es[s.i].Recipient}, State: s.to, Code: s.code}
		got, _, err := b.l.ApplyDelivery(ctx, ev)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got != s.verdict || getEntry(t, b, "r7", es[s.i]).State != s.want {
			t.Fatalf("%s: verdict %s state %s, want %s %s", s.name, got, getEntry(t, b, "r7", es[s.i]).State, s.verdict, s.want)
		}
	}
	c := getCounters(t, b, "r7")
	wantEqual(t, "states", states(map[State]int64{Read: 1, Delivered: 2, Queued: 1}), c.States)
	wantEqual(t, "codes", map[string]int64{"unknown:NO_RESPONSE": 1, "settled:delivered": 1}, c.Codes)
	if e := getEntry(t, b, "r7", es[0]); e.MessageID != "m0" {
		t.Fatalf("message id lost: %+v", e)
	}
	if _, _, err := b.l.ApplyDelivery(ctx, DeliveryEvent{Address: Address{Run: "r7", Recipient: "x"}, State: Accepted}); err == nil {
		t.Fatal("a delivery event to accepted was accepted")
	}
}

func TestClaimOwnership(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("StaleClaimSettlesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		es := seedRun(t, b, "r8", AtLeastOnce, recipients(1), true)
		if c := claim(t, b, "r8", es[0], AtLeastOnce); c.Attempts != 1 {
			t.Fatalf("first claim %+v", c)
		}
		// The first worker's lease lapsed; another attempt claims again and sends.
		if c := claim(t, b, "r8", es[0], AtLeastOnce); c.Verdict != VerdictSend || c.Attempts != 2 {
			t.Fatalf("second claim %+v", c)
		}
		// The first worker comes back with a transient failure: it must not undo the second claim.
		if r := finish(t, b, "r8", es[0], Outcome{State: Queued, Code: "HTTP_503", Mode: ReleaseRetry, Attempt: 1}); r.Applied {
			t.Fatal("a stale claim's outcome was applied")
		}
		if r := finish(t, b, "r8", es[0], Outcome{State: Accepted, MessageID: "m2", Attempt: 2}); !r.Applied {
			t.Fatal("the live claim's outcome was not applied")
		}
		wantEqual(t, "entry", Entry{State: Accepted, Row: 1, Attempts: 2, MessageID: "m2"}, getEntry(t, b, "r8", es[0]))
	})

	t.Run("CancelledRunTurnsAFoundClaimUnknown", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		es := seedRun(t, b, "r9", AtMostOnce, recipients(2), true)
		claim(t, b, "r9", es[0], AtMostOnce) // the worker dies after sending
		if _, _, err := b.l.Cancel(ctx, "r9", "stop"); err != nil {
			t.Fatal(err)
		}
		if c := claim(t, b, "r9", es[0], AtMostOnce); c.Verdict != VerdictUnknown || c.State != Unknown {
			t.Fatalf("redelivered task of a cancelled run: %+v, want unknown", c)
		}
		c := getCounters(t, b, "r9")
		wantEqual(t, "states", states(map[State]int64{Unknown: 1, Skipped: 1}), c.States)
	})

	t.Run("SkipRejectsSeparator", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		es := seedRun(t, b, "r10", AtMostOnce, recipients(1), true)
		if _, err := b.l.Skip(ctx, Address{Run: "r10", Bucket: es[0].Bucket, Recipient: es[0].Recipient}, "a|b"); err == nil {
			t.Fatal("a reason with '|' was accepted")
		}
	})
}
