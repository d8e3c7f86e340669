package ledger

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/testredis"
)

// downHook fails every command, as a Redis that went away does.
type downHook struct{}

func (downHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (downHook) ProcessHook(redis.ProcessHook) redis.ProcessHook {
	return func(_ context.Context, cmd redis.Cmder) error {
		err := errors.New("connection refused")
		cmd.SetErr(err)
		return err
	}
}

func (downHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// The resend's errors name the member (bucket and recipient) masked: the worker logs them
// when Redis fails, and a log never holds a customer's full number.
func TestResendErrorsMaskTheRecipient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	rdb.AddHook(downHook{}) // every command fails
	l := New(rdb, newResendClock().Now)
	const digits = "14155552671"
	member := resendMember(3, digits)
	_, _, releaseErr := l.ReleaseForResend(ctx, "spring-sale/r1", member)
	doneErr := l.ResendEnqueued(ctx, "spring-sale/r1", member)
	_, _, malformedErr := l.ReleaseForResend(ctx, "spring-sale/r1", "x:+"+digits)
	for name, err := range map[string]error{"ReleaseForResend": releaseErr, "ResendEnqueued": doneErr, "malformed member": malformedErr} {
		if err == nil {
			t.Errorf("%s passed with Redis down", name)
			continue
		}
		if strings.Contains(err.Error(), "4155552") || !strings.Contains(err.Error(), "2671") {
			t.Errorf("%s: %v: want the recipient masked to its last 4 digits", name, err)
		}
	}
	if !strings.Contains(releaseErr.Error(), "spring-sale/r1") || !strings.Contains(releaseErr.Error(), "3:") {
		t.Errorf("ReleaseForResend: %v: want the run and the bucket named", releaseErr)
	}
}
