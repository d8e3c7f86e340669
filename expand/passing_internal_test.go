package expand

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
)

// TestPassingCauses: which errors of an expansion task count against its retries, and how
// long each waits before it is tried again.
func TestPassingCauses(t *testing.T) {
	t.Parallel()
	// A real error of Redis gone, through the ledger: a dial refused (testredis.Refuse, not a
	// closed miniredis, whose freed port another test process's server may take).
	rdb := redis.NewClient(&redis.Options{Dialer: testredis.Refuse, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	_, redisGone := ledger.New(rdb, nil).GetRun(context.Background(), "r")
	if redisGone == nil {
		t.Fatal("GetRun on a closed Redis succeeded")
	}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	for _, tc := range []struct {
		name             string
		err              error
		passing, failure bool
	}{
		{"RedisGone", fmt.Errorf("run r: %w", redisGone), true, false},
		{"ConnectionReset", fmt.Errorf("ledger: read run r: %w", reset), true, false},
		{"ConnectionLost", fmt.Errorf("ledger: plan batch: %w", io.EOF), true, false},
		{"PoolTimeout", fmt.Errorf("ledger: plan batch: %w", redis.ErrPoolTimeout), true, false},
		{"TaskTimedOut", context.DeadlineExceeded, true, false},
		{"AudienceStorage", &fs.PathError{Op: "read", Path: "audience.csv", Err: syscall.EIO}, true, false},
		{"AudienceRemoved", &fs.PathError{Op: "open", Path: "audience.csv", Err: syscall.ENOENT}, false, true},
		{"AudienceChanged", fmt.Errorf("%w (audience.csv: 0 bytes, was 10)", ErrAudienceChanged), false, true},
		{"SkipRetry", fmt.Errorf("run r: %w: %w", reset, asynq.SkipRetry), false, true},
		{"Other", errors.New("ledger: plan batch of run r: 3 results for 4 entries"), false, true},
		{"Shutdown", fmt.Errorf("run r: %w", context.Canceled), false, false},
		{"RunStarting", fmt.Errorf("run r: %w", errRunStarting), false, false},
	} {
		if got := passing(tc.err); got != tc.passing {
			t.Errorf("%s: passing = %v, want %v (%v)", tc.name, got, tc.passing, tc.err)
		}
		if got := expandIsFailure(tc.err); got != tc.failure {
			t.Errorf("%s: counts as a failure = %v, want %v (%v)", tc.name, got, tc.failure, tc.err)
		}
		d := expandRetryDelay(3, tc.err, nil)
		switch {
		case tc.passing && (d < PassingRetry || d > PassingRetry*3/2+time.Millisecond):
			t.Errorf("%s: tried again %s later, want %s to %s", tc.name, d, PassingRetry, PassingRetry*3/2)
		case !tc.passing && d > 8*time.Second+time.Millisecond:
			t.Errorf("%s: tried again %s later, want the backoff's 8 s at most", tc.name, d)
		}
	}
}
