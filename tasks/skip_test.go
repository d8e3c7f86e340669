package tasks_test

import (
	"context"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/tasks"
)

// TestSkipDeletedReturnsLedgerErrors deletes send tasks' recipients from the ledger's view:
// they become skipped(deleted); when Redis fails the error comes back instead of a count
// that silently left recipients waiting.
func TestSkipDeletedReturnsLedgerErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.start(t, 12)
	pending, err := b.inspector.ListPendingTasks(st.Run.Queue)
	if err != nil {
		t.Fatal(err)
	}
	other := &asynq.TaskInfo{ID: "x", Type: campaigns.TypeExpand, Payload: []byte(`{}`)}
	n, err := tasks.SkipDeleted(ctx, b.ledger, append(pending[:2:2], other))
	if err != nil || n != 2 {
		t.Fatalf("SkipDeleted = %d, %v; want 2", n, err)
	}
	if c := b.counters(t, st.RunID); c.Codes["skipped:deleted"] != 2 {
		t.Fatalf("codes %v", c.Codes)
	}
	// Not READONLY: go-redis retries that one with backoff, which only makes the test slow.
	b.mr.SetError("ERR injected ledger failure")
	defer b.mr.SetError("")
	n, err = tasks.SkipDeleted(ctx, b.ledger, pending[2:])
	if err == nil || n != 0 {
		t.Fatalf("SkipDeleted with Redis failing = %d, %v; want the error", n, err)
	}
}
