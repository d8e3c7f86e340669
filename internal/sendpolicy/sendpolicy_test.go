package sendpolicy_test

import (
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/sendpolicy"
)

// TestTaskTimeoutCoversAFallback: the longest run of a send handler is a session message
// refused for a closed window and then its fallback template: two waits for permits, two
// places kept and two requests under one claim. The task's deadline must be past all of it and
// the ledger's writes; before, it covered one send only, so a slow fallback could outlive the
// deadline, and asynq's retry could then find its claim while its request was in flight.
func TestTaskTimeoutCoversAFallback(t *testing.T) {
	for _, tc := range []struct{ request, wait, keep time.Duration }{
		{sendpolicy.DefaultRequestTimeout, time.Second, sendpolicy.DefaultKeepPlaceFor},
		{30 * time.Second, 5 * time.Second, 0},
		{10 * time.Second, time.Second, -1}, // keeping a place off
	} {
		oneSend := tc.request + tc.wait + max(tc.keep, 0)
		const ledger = 10 * time.Second // the ledger's writes, retried, at the least
		if got := sendpolicy.TaskTimeout(tc.request, tc.wait, tc.keep); got < 2*oneSend+ledger {
			t.Errorf("TaskTimeout(%v, %v, %v) = %v, shorter than a refused send and its fallback (%v) plus the ledger",
				tc.request, tc.wait, tc.keep, got, 2*oneSend)
		}
	}
}
