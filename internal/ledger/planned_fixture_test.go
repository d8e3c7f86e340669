package ledger

import "context"

// Plan and MarkQueued write entries in the planned state and move them to queued in a second
// step, as Herald's expansion did before it planned straight as queued (PlanQueued). The
// scripts still accept planned entries (runs written by earlier versions), so the tests keep
// seeding them this way; the cursors and their ErrStaleBatch fence are the same as
// PlanQueued's and MarkQueuedAt's.
func (l *Ledger) Plan(ctx context.Context, b Batch) ([]bool, error) {
	return l.plan(ctx, Planned, b)
}

// MarkQueued is MarkQueuedAt that records no file offset and moves entries still planned to
// queued.
func (l *Ledger) MarkQueued(ctx context.Context, runID string, from, to int, entries []PlanEntry) error {
	return l.markQueued(ctx, Batch{Run: runID, From: from, To: to, Entries: entries}, "")
}
