package ledger

import (
	"context"
	"testing"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// TestEntries reads entries of several runs at once: a compact run's phone (digits field) and
// BSUID, a run from before digit fields (its "+" field), an address with no entry.
func TestEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	rcpts := []string{"+5511987654321", "bsuid:US.13491208655302741918"}
	compact := seedRun(t, b, "new", AtMostOnce, rcpts, true)
	if err := b.l.CreateRun(ctx, Run{ID: "old", Campaign: "c", Delivery: AtMostOnce, Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	if err := b.rdb.HDel(ctx, rkeys.Run("old"), "format").Err(); err != nil {
		t.Fatal(err)
	}
	l := New(b.rdb, b.l.now) // nothing remembered about "old"
	old := planEntries(rcpts[:1], 1)
	if _, err := l.PlanQueued(ctx, Batch{Run: "old", From: 0, To: 1, Entries: old}); err != nil {
		t.Fatal(err)
	}
	b2 := &testBundle{mr: b.mr, rdb: b.rdb, l: l}
	accept := func(run string, pe PlanEntry, mid string) {
		claim(t, b2, run, pe, AtMostOnce)
		finish(t, b2, run, pe, Outcome{State: Accepted, MessageID: mid, Attempt: 1})
	}
	accept("new", compact[0], hardULIDs[2])
	accept("old", old[0], "wamid.old")

	addrs := []Address{
		{Run: "new", Recipient: rcpts[0], Bucket: compact[0].Bucket},
		{Run: "new", Recipient: rcpts[1], Bucket: compact[1].Bucket},
		{Run: "old", Recipient: rcpts[0], Bucket: 0},
		{Run: "new", Recipient: "+14155550100", Bucket: 0},
		{Run: "gone", Recipient: rcpts[0], Bucket: 0},
	}
	got, err := New(b.rdb, b.l.now).Entries(ctx, addrs)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "entries", []Entry{
		{State: Accepted, Row: 1, Attempts: 1, MessageID: hardULIDs[2]},
		{State: Queued, Row: 2},
		{State: Accepted, Row: 1, Attempts: 1, MessageID: "wamid.old"},
		{},
		{},
	}, got)
	if got, err := b.l.Entries(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("Entries(none) = %v, %v", got, err)
	}
}
