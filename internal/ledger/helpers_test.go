package ledger

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// testNow is the ledger clock in tests, so timestamps written by the scripts are exact.
var testNow = time.UnixMilli(1_767_225_600_000) // 2026-01-01T00:00:00Z

// testBundle is what most ledger tests work with: a fresh miniredis and a ledger on it.
type testBundle struct {
	mr  *miniredis.Miniredis
	rdb *redis.Client
	l   *Ledger
}

func setup(tb testing.TB) *testBundle {
	tb.Helper()
	mr := miniredis.RunT(tb)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	tb.Cleanup(func() { rdb.Close() })
	return &testBundle{mr: mr, rdb: rdb, l: New(rdb, func() time.Time { return testNow })}
}

// recipients returns n distinct E.164 numbers.
func recipients(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("+1555%07d", i)
	}
	return out
}

// planEntries lays recipients out as audience rows 1..n of a run with the given bucket count.
func planEntries(rcpts []string, buckets int) []PlanEntry {
	out := make([]PlanEntry, len(rcpts))
	for i, r := range rcpts {
		out[i] = PlanEntry{Recipient: r, Bucket: BucketOf(r, buckets), Row: i + 1}
	}
	return out
}

// seedRun creates a run and plans rcpts in one batch covering rows (0, len(rcpts)], as
// queued entries. With queued set the batch's tasks are also recorded (queued_to moves), as
// expansion does once they exist.
func seedRun(tb testing.TB, b *testBundle, runID string, d Delivery, rcpts []string, queued bool) []PlanEntry {
	tb.Helper()
	ctx := context.Background()
	buckets := BucketsFor(len(rcpts))
	if err := b.l.CreateRun(ctx, Run{ID: runID, Campaign: "spring-sale", Delivery: d, Template: "spring_sale", Language: "en", Buckets: buckets}); err != nil {
		tb.Fatalf("CreateRun: %v", err)
	}
	entries := planEntries(rcpts, buckets)
	if _, err := b.l.PlanQueued(ctx, Batch{Run: runID, From: 0, To: len(rcpts), Entries: entries}); err != nil {
		tb.Fatalf("PlanQueued: %v", err)
	}
	if queued {
		if err := b.l.MarkQueuedAt(ctx, runID, 0, len(rcpts), 0); err != nil {
			tb.Fatalf("MarkQueuedAt: %v", err)
		}
	}
	return entries
}

// seedLegacyPlanned rewrites queued entries of a run as planned ('p'), the state earlier
// versions of Herald planned entries in before their tasks existed, with the counters moved
// to match: what an upgrade may find in Redis.
func seedLegacyPlanned(tb testing.TB, b *testBundle, runID string, entries ...PlanEntry) {
	tb.Helper()
	for _, pe := range entries {
		if err := legacyPlanned(context.Background(), b, runID, pe); err != nil {
			tb.Fatal(err)
		}
	}
}

// legacyPlanned rewrites one queued entry as planned (see seedLegacyPlanned).
func legacyPlanned(ctx context.Context, b *testBundle, runID string, pe PlanEntry) error {
	key := rkeys.LedgerBucket(runID, pe.Bucket)
	field, err := b.l.field(ctx, runID, pe.Recipient)
	if err != nil {
		return err
	}
	v, err := b.rdb.HGet(ctx, key, field).Result()
	if err != nil || !strings.HasPrefix(v, "q|") {
		return fmt.Errorf("entry of %s is %q (%v), want a queued one", pe.Recipient, v, err)
	}
	_, err = b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, field, "p"+v[1:])
		p.HIncrBy(ctx, rkeys.Counts(runID), "queued", -1)
		p.HIncrBy(ctx, rkeys.Counts(runID), "planned", 1)
		return nil
	})
	return err
}

func getEntry(tb testing.TB, b *testBundle, runID string, pe PlanEntry) Entry {
	tb.Helper()
	e, ok, err := b.l.Entry(context.Background(), Address{Run: runID, Bucket: pe.Bucket, Recipient: pe.Recipient})
	if err != nil {
		tb.Fatalf("Entry(%s): %v", pe.Recipient, err)
	}
	if !ok {
		tb.Fatalf("Entry(%s): not in the ledger", pe.Recipient)
	}
	return e
}

func getCounters(tb testing.TB, b *testBundle, runID string) Counters {
	tb.Helper()
	c, err := b.l.Counters(context.Background(), runID)
	if err != nil {
		tb.Fatalf("Counters: %v", err)
	}
	return c
}

func getRun(tb testing.TB, b *testBundle, runID string) Run {
	tb.Helper()
	r, err := b.l.GetRun(context.Background(), runID)
	if err != nil {
		tb.Fatalf("GetRun: %v", err)
	}
	return r
}

func claim(tb testing.TB, b *testBundle, runID string, pe PlanEntry, d Delivery) Claim {
	tb.Helper()
	c, err := b.l.Claim(context.Background(), Address{Run: runID, Bucket: pe.Bucket, Recipient: pe.Recipient}, d)
	if err != nil {
		tb.Fatalf("Claim(%s): %v", pe.Recipient, err)
	}
	return c
}

func finish(tb testing.TB, b *testBundle, runID string, pe PlanEntry, o Outcome) FinishResult {
	tb.Helper()
	r, err := b.l.Finish(context.Background(), Address{Run: runID, Bucket: pe.Bucket, Recipient: pe.Recipient}, o)
	if err != nil {
		tb.Fatalf("Finish(%s, %+v): %v", pe.Recipient, o, err)
	}
	return r
}

// states builds the full per-state map Counters reports, from the non-zero counts given.
func states(nonZero map[State]int64) map[State]int64 {
	out := make(map[State]int64, len(States))
	for _, s := range States {
		out[s] = nonZero[s]
	}
	return out
}

func wantEqual[T any](tb testing.TB, what string, want, got T) {
	tb.Helper()
	if !reflect.DeepEqual(want, got) {
		tb.Fatalf("%s mismatch (-want +got):\n- %+v\n+ %+v", what, want, got)
	}
}

func wantErrIs(tb testing.TB, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("error = %v, want one wrapping %v", err, target)
	}
}

// allEntries reads every ledger bucket of a run.
func allEntries(tb testing.TB, b *testBundle, runID string, buckets int) map[string]Entry {
	tb.Helper()
	out := map[string]Entry{}
	for i := range buckets {
		m, err := b.rdb.HGetAll(context.Background(), rkeys.LedgerBucket(runID, i)).Result()
		if err != nil {
			tb.Fatalf("HGETALL bucket %d: %v", i, err)
		}
		for f, v := range m {
			rcpt := recipientOf(f)
			e, err := decodeEntry(v)
			if err != nil {
				tb.Fatalf("bucket %d, %s: %v", i, rcpt, err)
			}
			if got := BucketOf(rcpt, buckets); got != i {
				tb.Fatalf("%s stored in bucket %d, BucketOf says %d", rcpt, i, got)
			}
			out[rcpt] = e
		}
	}
	return out
}
