package ledger

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// A retry run sends again to recipients picked from its parent's ledger. The child keeps the
// recipients it picked (its pick set, written with the run: CreateRetryRun), so that every
// expansion step of it, in any process, sends to exactly those; the parent records its
// children (MarkRetry), so that a second retry of the parent can see what the first one sends.

//go:embed lua/retry_mark.lua
var retryMarkLua string

// retryMarkCmd records a retry run on its parent. Its KEYS, ARGV and reply are documented at
// the top of lua/retry_mark.lua.
var retryMarkCmd = redis.NewScript(retryMarkLua)

// RetryMark is a retry run recorded on its parent: the child's id, and when the retry that
// started it recorded it (just before creating the child).
type RetryMark struct {
	Child string
	At    time.Time
}

// parseRetryMarks reads a run's retried_by field: "child@unix-ms" words.
func parseRetryMarks(s string) []RetryMark {
	var out []RetryMark
	for _, w := range strings.Fields(s) {
		id, ms, _ := strings.Cut(w, "@")
		n, _ := strconv.ParseInt(ms, 10, 64)
		out = append(out, RetryMark{Child: id, At: time.UnixMilli(n)})
	}
	return out
}

// MarkRetry records on run parentID that child, about to be created, retries it, unless the
// parent records a retry other than those in checked (a retry started since the caller read
// the parent): then it records nothing and reports false, and the caller reads the parent and
// checks again. A parent that does not exist wraps ErrRunNotFound.
func (l *Ledger) MarkRetry(ctx context.Context, parentID string, checked []string, child string) (bool, error) {
	n, err := retryMarkCmd.Run(ctx, l.rdb, []string{rkeys.Run(parentID)}, strings.Join(checked, " "), child, l.nowMS()).Int()
	if err != nil {
		return false, fmt.Errorf("ledger: record retry of run %s: %w", parentID, err)
	}
	if n == -1 {
		return false, fmt.Errorf("ledger: record retry of run %s: %w", parentID, ErrRunNotFound)
	}
	return n == 1, nil
}

// PickSet returns the recipients of a retry run's pick set (empty for any other run).
func (l *Ledger) PickSet(ctx context.Context, runID string) (map[string]bool, error) {
	out := map[string]bool{}
	iter := l.rdb.SScan(ctx, rkeys.RunPicked(runID), 0, "", 1000).Iterator()
	for iter.Next(ctx) {
		out[iter.Val()] = true
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("ledger: read the recipients of retry run %s: %w", runID, err)
	}
	return out, nil
}

// PickOverlap counts the recipients that retry run runID's pick set shares with recipients,
// reading 1,000 at a time.
func (l *Ledger) PickOverlap(ctx context.Context, runID string, recipients []string) (int, error) {
	n := 0
	for i := 0; i < len(recipients); i += 1000 {
		in, err := l.rdb.SMIsMember(ctx, rkeys.RunPicked(runID), toAny(recipients[i:min(i+1000, len(recipients))])...).Result()
		if err != nil {
			return 0, fmt.Errorf("ledger: read the recipients of retry run %s: %w", runID, err)
		}
		for _, ok := range in {
			if ok {
				n++
			}
		}
	}
	return n, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
