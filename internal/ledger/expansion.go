package ledger

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// The expansion protocol: batches planned, their tasks recorded as written, the audience
// size recorded at the end, and what an expansion reads before each batch.

// Now is the ledger's clock.
func (l *Ledger) Now() time.Time { return l.now() }

// PlanEntry is one recipient of an expansion batch.
type PlanEntry struct {
	Recipient string
	Bucket    int
	Row       int
	// Skip, when set, plans the entry directly as skipped with this reason (e.g. suppressed).
	Skip string
}

// keyIndex collects the distinct bucket keys of a batch after the fixed keys.
type keyIndex struct {
	keys []string
	idx  map[int]int
}

func newKeyIndex(fixed ...string) *keyIndex {
	return &keyIndex{keys: fixed, idx: map[int]int{}}
}

// of returns the 1-based KEYS position of a bucket, adding it when new.
func (k *keyIndex) of(runID string, bucket int) int {
	if i, ok := k.idx[bucket]; ok {
		return i
	}
	k.keys = append(k.keys, rkeys.LedgerBucket(runID, bucket))
	k.idx[bucket] = len(k.keys)
	return len(k.keys)
}

// ErrStaleBatch is wrapped by PlanQueued and MarkQueuedAt when the run's cursor is neither
// where the batch starts nor where it ends: another expansion of the run has moved past the
// batch, or batches are out of order.
var ErrStaleBatch = errors.New("expansion batch does not start at the run's cursor")

// ErrBatchApplied is wrapped by PlanQueued when the run's planned_to cursor is already at the
// batch's end, moved there by the same expansion (Batch.Token): the script ran twice because
// its reply was lost and the client sent it again. The caller goes on as for a batch planned
// before an interruption: it enqueues the entries still queued, their task ids keeping each
// single. Moved there by another expansion, the batch is stale (ErrStaleBatch): that one
// writes its tasks.
var ErrBatchApplied = errors.New("expansion batch already planned")

// Batch is one expansion batch of a run: audience rows (From, To], the rows of it that never
// reach the ledger counted by reason (Skipped, e.g. "invalid"), and the entries it plans.
type Batch struct {
	Run      string
	From, To int
	Skipped  map[string]int
	Entries  []PlanEntry
	// Token names the expansion writing the batch (one per expansion step): a batch found
	// applied by the same token is one whose reply was lost (ErrBatchApplied). "" takes no
	// batch as applied.
	Token string
}

// PlanQueued writes one expansion batch, for an expansion that writes the batch's tasks right
// after: newly planned entries are written as queued at once, a recipient already in the
// ledger is counted skipped(duplicate), an entry with Skip set is written as skipped(Skip),
// and b.Skipped is counted by reason. It moves planned_to past the batch. It returns, per
// entry, whether it was newly planned and needs a task. Once the tasks exist, MarkQueuedAt
// moves queued_to: a crash between the two leaves planned_to ahead, and a resumed expansion
// writes the tasks of every entry of that batch still queued again (their TaskIDs keep each
// single).
func (l *Ledger) PlanQueued(ctx context.Context, b Batch) ([]bool, error) {
	runID, from, to, skippedRows, entries := b.Run, b.From, b.To, b.Skipped, b.Entries
	f, err := l.formatOf(ctx, runID)
	if err != nil {
		return nil, err
	}
	ki := newKeyIndex(rkeys.Run(runID), rkeys.Counts(runID), rkeys.Codes(runID))
	reasons := make([]string, 0, len(skippedRows))
	for r := range skippedRows {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	args := make([]any, 0, 4+2*len(reasons)+4*len(entries))
	args = append(args, from, to, b.Token, len(reasons))
	for _, r := range reasons {
		args = append(args, r, skippedRows[r])
	}
	for _, e := range entries {
		args = append(args, ki.of(runID, e.Bucket), f.field(e.Recipient), e.Row, e.Skip)
	}
	res, err := planCmd.Run(ctx, l.rdb, ki.keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("ledger: plan batch of run %s: %w", runID, err)
	}
	if len(res) == 1 && res[0] == -1 {
		return nil, fmt.Errorf("ledger: plan rows %d-%d of run %s: %w", from+1, to, runID, ErrStaleBatch)
	}
	if len(res) == 1 && res[0] == -2 {
		return nil, fmt.Errorf("ledger: plan rows %d-%d of run %s: %w", from+1, to, runID, ErrBatchApplied)
	}
	if len(res) != len(entries) {
		return nil, fmt.Errorf("ledger: plan batch of run %s: %d results for %d entries", runID, len(res), len(entries))
	}
	out := make([]bool, len(res))
	for i, v := range res {
		out[i] = v == 1
	}
	return out, nil
}

// MarkQueuedAt records that the send tasks of rows (from, to] exist: it moves queued_to past
// the batch and records, in the same step, the audience file offset just after row to, which
// a resumed expansion seeks to (see QueuedCursor). A cursor already at to is the batch done
// (the script ran twice, its first reply lost, or another expansion wrote the same batch):
// that is no error.
func (l *Ledger) MarkQueuedAt(ctx context.Context, runID string, from, to int, offset int64) error {
	return l.MarkQueuedRows(ctx, runID, from, to, offset, -1)
}

// MarkQueuedRows is MarkQueuedAt for an expansion that also records how many rows up to row to
// belong to the run (rows; -1: not recorded), which a run that keeps only some of its
// audience's rows (a retry) needs to resume by seeking (see QueuedCursor).
func (l *Ledger) MarkQueuedRows(ctx context.Context, runID string, from, to int, offset int64, rows int) error {
	n, err := queuedCmd.Run(ctx, l.rdb, []string{rkeys.Run(runID)}, from, to, offset, rows).Int64()
	if err != nil {
		return fmt.Errorf("ledger: mark queued in run %s: %w", runID, err)
	}
	if n == -1 {
		return fmt.Errorf("ledger: mark rows %d-%d of run %s queued: %w", from+1, to, runID, ErrStaleBatch)
	}
	return nil
}

// FinishExpansion records the audience size; it reports whether that completed the run
// (every row already terminal).
func (l *Ledger) FinishExpansion(ctx context.Context, runID string, total int) (bool, error) {
	n, err := expandedCmd.Run(ctx, l.rdb, []string{rkeys.Run(runID), rkeys.Counts(runID)}, total, l.nowMS()).Int64()
	if err != nil {
		return false, fmt.Errorf("ledger: finish expansion of run %s: %w", runID, err)
	}
	if n == 1 {
		l.unlist(ctx, runID)
	}
	return n == 1, nil
}

// CloseExpansion marks the expansion of a run that can read no more of its audience finished,
// at the rows it accounted for so far (the sum of its state counters, which becomes its
// Total), so that the run can complete. It reports whether that completed the run. Only a
// cancelled run is closed so: what was never read is not part of it.
func (l *Ledger) CloseExpansion(ctx context.Context, runID string) (bool, error) {
	n, err := expandedCmd.Run(ctx, l.rdb, []string{rkeys.Run(runID), rkeys.Counts(runID)}, "", l.nowMS()).Int64()
	if err != nil {
		return false, fmt.Errorf("ledger: close expansion of run %s: %w", runID, err)
	}
	if n == 1 {
		l.unlist(ctx, runID)
	}
	return n == 1, nil
}

// CursorOffset returns the last offset recorded by MarkQueuedAt and the row it follows;
// ok is false when none was recorded.
func (l *Ledger) CursorOffset(ctx context.Context, runID string) (row int, offset int64, ok bool, err error) {
	c, ok, err := l.QueuedCursor(ctx, runID)
	return c.Row, c.Offset, ok, err
}

// Cursor is where an expansion's queued cursor stands in the audience file: after row Row,
// at byte Offset, with Rows of the rows up to it belonging to the run (RowsKnown false when
// the expansion did not record them: then Rows is Row, right for a run of every row).
type Cursor struct {
	Row       int
	Offset    int64
	Rows      int
	RowsKnown bool
}

// QueuedCursor returns the cursor recorded by MarkQueuedAt or MarkQueuedRows; ok is false
// when none was recorded.
func (l *Ledger) QueuedCursor(ctx context.Context, runID string) (Cursor, bool, error) {
	v, err := l.rdb.HGet(ctx, rkeys.Run(runID), "queued_off").Result()
	if errors.Is(err, redis.Nil) {
		return Cursor{}, false, nil
	}
	if err != nil {
		return Cursor{}, false, fmt.Errorf("ledger: read cursor of run %s: %w", runID, err)
	}
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Cursor{}, false, nil
	}
	row, err1 := strconv.Atoi(parts[0])
	offset, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		return Cursor{}, false, nil
	}
	c := Cursor{Row: row, Offset: offset, Rows: row}
	if len(parts) == 3 {
		rows, err := strconv.Atoi(parts[2])
		if err != nil {
			return Cursor{}, false, nil
		}
		c.Rows, c.RowsKnown = rows, true
	}
	return c, true, nil
}

// Pending returns a run's backlog: its recipients whose task waits in the queue ahead of the
// workers or is being sent (queued and submitting entries, and planned ones, which only runs
// expanded by earlier versions of Herald hold). Expansion reads it before each batch and stops
// when the batch would take it above the run's limit.
func (l *Ledger) Pending(ctx context.Context, runID string) (int64, error) {
	vals, err := l.rdb.HMGet(ctx, rkeys.Counts(runID), pendingStates...).Result()
	if err != nil {
		return 0, fmt.Errorf("ledger: read pending of run %s: %w", runID, err)
	}
	return sumCounts(vals), nil
}

// pendingStates are the counters Pending adds up.
var pendingStates = []string{string(Planned), string(Queued), string(Submitting)}

// sumCounts adds up counter values read with HMGET (absent ones are 0).
func sumCounts(vals []any) int64 {
	var n int64
	for _, v := range vals {
		if s, ok := v.(string); ok {
			k, _ := strconv.ParseInt(s, 10, 64)
			n += k
		}
	}
	return n
}

// BatchView is what an expansion needs to know before it plans a batch.
type BatchView struct {
	// Status is the run's status ("" when the run does not exist).
	Status RunStatus
	// Pending is as Pending reports.
	Pending int64
	// Suppressed is, per recipient asked about, its entry on the suppression list (the zero
	// Suppression when it has none): what the person opted out of.
	Suppressed []Suppression
}

// ViewBatch reads, in one round trip, the run's status, its pending count and which of the
// recipients are on the suppression list, and for what.
func (l *Ledger) ViewBatch(ctx context.Context, runID string, recipients []string) (BatchView, error) {
	var (
		status *redis.StringCmd
		counts *redis.SliceCmd
		supp   *redis.SliceCmd
		v      BatchView
	)
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		status = p.HGet(ctx, rkeys.Run(runID), "status")
		counts = p.HMGet(ctx, rkeys.Counts(runID), pendingStates...)
		if len(recipients) > 0 {
			supp = p.HMGet(ctx, rkeys.Suppressed(), recipients...)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return v, fmt.Errorf("ledger: read run %s before a batch: %w", runID, err)
	}
	v.Status = RunStatus(status.Val())
	v.Pending = sumCounts(counts.Val())
	v.Suppressed = make([]Suppression, len(recipients))
	if supp != nil {
		for i, x := range supp.Val() {
			v.Suppressed[i] = suppressionOf(x)
		}
	}
	return v, nil
}
