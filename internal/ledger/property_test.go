package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// TestCountersProperty drives one run through a long random mix of expansion batches, claims,
// outcomes, pauses and redeliveries, and after every step checks the ledger's bookkeeping
// against a recount of the entries themselves:
//   - the per-state counters add up to the rows expanded so far (never lost, never twice);
//   - each state's counter equals the number of entries in that state (plus, for skipped,
//     the rows that never reached the ledger);
//   - the attempts counter equals the sum of the entries' attempts;
//   - the run is completed exactly when it is expanded and every row is terminal.
func TestCountersProperty(t *testing.T) {
	t.Parallel()

	for _, seed := range []int64{1, 2, 3, 20260101} {
		t.Run(fmt.Sprintf("Seed%d", seed), func(t *testing.T) {
			t.Parallel()
			runCountersProperty(t, seed)
		})
	}
}

func runCountersProperty(t *testing.T, seed int64) {
	const (
		runID      = "prop"
		pool       = 200 // distinct recipients
		rows       = 240 // audience rows: duplicates and invalid rows included
		steps      = 1000
		pInvalid   = 0.08
		maxBatch   = 25
		finalSteps = 200
	)
	ctx := context.Background()
	rng := rand.New(rand.NewSource(seed))
	b := setup(t)

	buckets := BucketsFor(pool)
	if err := b.l.CreateRun(ctx, Run{ID: runID, Campaign: "c", Buckets: buckets}); err != nil {
		t.Fatal(err)
	}

	// The audience: each row is a recipient drawn from the pool (so some repeat) or invalid.
	type row struct {
		recipient string // "" for an invalid row
	}
	audience := make([]row, rows)
	people := recipients(pool)
	for i := range audience {
		if rng.Float64() < pInvalid {
			continue
		}
		audience[i].recipient = people[rng.Intn(pool)]
	}

	// The model: only what the ledger cannot recount from its entries.
	var (
		plannedTo   int
		offLedger   int64 // duplicate and invalid rows: counted skipped, no entry of their own
		duplicates  int64
		seen        = map[string]bool{}
		known       []PlanEntry // every recipient with an entry, in plan order
		batches     [][2]int    // planned batches not yet marked queued
		queuedTo    int
		expanded    bool
		lastBatch   [2]int
		lastBatchEs []PlanEntry
	)

	planBatch := func() {
		from := plannedTo
		to := min(rows, from+1+rng.Intn(maxBatch))
		skipped := map[string]int{}
		var entries []PlanEntry
		var want []bool
		for r := from + 1; r <= to; r++ {
			rc := audience[r-1].recipient
			if rc == "" {
				skipped["invalid"]++
				continue
			}
			pe := PlanEntry{Recipient: rc, Bucket: BucketOf(rc, buckets), Row: r}
			entries = append(entries, pe)
			want = append(want, !seen[rc])
			if seen[rc] {
				duplicates++
			} else {
				seen[rc] = true
				known = append(known, pe)
			}
		}
		got, err := b.l.PlanQueued(ctx, Batch{Run: runID, From: from, To: to, Skipped: skipped, Entries: entries})
		if err != nil {
			t.Fatalf("PlanQueued(%d, %d): %v", from, to, err)
		}
		// slices.Equal: a batch of invalid rows only plans no entry (nil want, empty got).
		if !slices.Equal(want, got) {
			t.Fatalf("planned flags: want %v, got %v", want, got)
		}
		for _, n := range skipped {
			offLedger += int64(n)
		}
		offLedger += int64(len(entries)) - int64(countTrue(want))
		plannedTo = to
		batches = append(batches, [2]int{from, to})
		lastBatch, lastBatchEs = [2]int{from, to}, entries
	}

	markQueued := func() {
		bt := batches[0]
		batches = batches[1:]
		if err := b.l.MarkQueuedAt(ctx, runID, bt[0], bt[1], int64(bt[1])*64); err != nil {
			t.Fatalf("MarkQueuedAt(%d, %d): %v", bt[0], bt[1], err)
		}
		queuedTo = bt[1]
	}

	delivery := func() Delivery {
		if rng.Intn(2) == 0 {
			return AtMostOnce
		}
		return AtLeastOnce
	}

	randomOutcome := func() Outcome {
		switch rng.Intn(9) {
		case 0, 1, 2:
			return Outcome{State: Accepted, MessageID: fmt.Sprintf("m-%d", rng.Intn(1e6))}
		case 3:
			return Outcome{State: Failed, Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"}
		case 4:
			return Outcome{State: Unknown, Code: "NO_RESPONSE"}
		case 5:
			return Outcome{State: Queued, Code: "HTTP_503", Mode: ReleaseRetry}
		case 6:
			return Outcome{State: Queued, Code: "HTTP_429", Mode: ReleaseThrottle}
		case 7:
			return Outcome{State: Queued, Code: "LATE_AFTER_CLAIM", Mode: ReleaseRequeue}
		default:
			return Outcome{State: Queued, Code: "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND", Mode: ReleaseHold}
		}
	}

	check := func(step int, op string) {
		t.Helper()
		c := getCounters(t, b, runID)
		if c.Sum() != int64(plannedTo) {
			t.Fatalf("step %d (%s): counters sum to %d, %d rows expanded\n%+v", step, op, c.Sum(), plannedTo, c.States)
		}
		entries := allEntries(t, b, runID, buckets)
		if len(entries) != len(known) {
			t.Fatalf("step %d (%s): %d entries, want %d", step, op, len(entries), len(known))
		}
		recount := states(nil)
		var attempts int64
		terminal := offLedger
		for _, e := range entries {
			recount[e.State]++
			attempts += int64(e.Attempts)
			if e.State.Terminal() {
				terminal++
			}
		}
		recount[Skipped] += offLedger
		wantEqual(t, fmt.Sprintf("step %d (%s): state counts vs recount", step, op), recount, c.States)
		if c.Attempts != attempts {
			t.Fatalf("step %d (%s): attempts counter %d, entries hold %d", step, op, c.Attempts, attempts)
		}
		if c.Codes["skipped:duplicate"] != duplicates {
			t.Fatalf("step %d (%s): %d duplicates counted, want %d", step, op, c.Codes["skipped:duplicate"], duplicates)
		}
		run := getRun(t, b, runID)
		if run.PlannedTo != plannedTo || run.QueuedTo != queuedTo {
			t.Fatalf("step %d (%s): cursors %d/%d, want %d/%d", step, op, run.PlannedTo, run.QueuedTo, plannedTo, queuedTo)
		}
		wantCompleted := expanded && terminal == int64(rows)
		if (run.Status == RunCompleted) != wantCompleted {
			t.Fatalf("step %d (%s): status %q with expanded=%v and %d of %d rows terminal", step, op, run.Status, expanded, terminal, rows)
		}
	}

	for step := range steps {
		var op string
		switch k := rng.Intn(100); {
		case k < 15 && plannedTo < rows:
			op = "plan"
			planBatch()
		case k < 25 && len(batches) > 0:
			op = "queued"
			markQueued()
		case k < 27 && lastBatch[1] > 0:
			op = "replay"
			_, err := b.l.PlanQueued(ctx, Batch{Run: runID, From: lastBatch[0], To: lastBatch[1], Entries: lastBatchEs})
			if !errors.Is(err, ErrStaleBatch) {
				t.Fatalf("replayed PlanQueued = %v, want ErrStaleBatch", err)
			}
		case k < 29:
			op = "pause"
			if _, err := b.l.Pause(ctx, runID, "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND: no template"); err != nil {
				t.Fatal(err)
			}
		case k < 33:
			op = "resume"
			// An operator's resume, when the run is paused.
			if getRun(t, b, runID).Status == RunPaused {
				if err := b.rdb.HSet(ctx, rkeys.Run(runID), "status", string(RunRunning)).Err(); err != nil {
					t.Fatal(err)
				}
			}
		case k < 70 && len(known) > 0:
			op = "claim"
			pe := known[rng.Intn(len(known))]
			claim(t, b, runID, pe, delivery())
		case len(known) > 0:
			op = "finish"
			pe := known[rng.Intn(len(known))]
			finish(t, b, runID, pe, randomOutcome())
		default:
			op = "noop"
		}
		if !expanded && plannedTo == rows && len(batches) == 0 && rng.Intn(4) == 0 {
			op += "+expanded"
			if _, err := b.l.FinishExpansion(ctx, runID, rows); err != nil {
				t.Fatal(err)
			}
			expanded = true
		}
		check(step, op)
	}

	mid := getCounters(t, b, runID)
	t.Logf("after the random steps: states %v, attempts %d, retries %d, throttled %d, resent %d",
		mid.States, mid.Attempts, mid.Retries, mid.Throttled, mid.Resent)

	// Drain: expand what is left, resume, and settle every recipient.
	for plannedTo < rows {
		planBatch()
		check(-1, "plan")
	}
	for len(batches) > 0 {
		markQueued()
		check(-1, "queued")
	}
	if !expanded {
		if _, err := b.l.FinishExpansion(ctx, runID, rows); err != nil {
			t.Fatal(err)
		}
		expanded = true
		check(-1, "expanded")
	}
	if getRun(t, b, runID).Status == RunPaused {
		if err := b.rdb.HSet(ctx, rkeys.Run(runID), "status", string(RunRunning)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < finalSteps && getRun(t, b, runID).Status != RunCompleted; i++ {
		for _, pe := range known {
			if getEntry(t, b, runID, pe).State.Terminal() {
				continue
			}
			if c := claim(t, b, runID, pe, AtLeastOnce); c.Verdict == VerdictSend {
				finish(t, b, runID, pe, Outcome{State: Accepted, MessageID: "m-final"})
			}
			check(-1, "drain")
		}
	}
	run := getRun(t, b, runID)
	if run.Status != RunCompleted {
		t.Fatalf("run not completed after draining: %+v", run)
	}
	if c := getCounters(t, b, runID); c.Sum() != rows {
		t.Fatalf("finished run counts %d rows, want %d", c.Sum(), rows)
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
