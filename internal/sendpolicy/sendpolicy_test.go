package sendpolicy_test

import (
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/connectly"
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

// TestDefaultAdaptiveCodesAreAnswersKeys: each default adaptive code must be the key that a
// throttling answer to a send is decided under, or the sender's rate never follows it. The
// default once listed Meta's "4", which no answer gives: a top-level 4 is gRPC's
// DEADLINE_EXCEEDED.
func TestDefaultAdaptiveCodesAreAnswersKeys(t *testing.T) {
	table, err := connectly.NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	answers := map[string]*connectly.Error{
		"HTTP_429":                {StatusCode: 429, ErrorBody: connectly.ErrorBody{Code: "ERROR_CODE_UNSPECIFIED"}},
		"130429":                  {StatusCode: 400, ErrorBody: connectly.ErrorBody{Code: "130429"}},
		"80007":                   {StatusCode: 400, ErrorBody: connectly.ErrorBody{Code: "80007"}},
		"GRPC_RESOURCE_EXHAUSTED": {StatusCode: 503, ErrorBody: connectly.ErrorBody{Code: "8"}},
	}
	for _, code := range sendpolicy.DefaultAdaptiveCodes() {
		answer, ok := answers[code]
		if !ok {
			t.Errorf("default adaptive code %q: no answer to a send is known to be keyed so", code)
			continue
		}
		d := table.Decide(answer)
		if d.Key != code || d.Class != connectly.ClassThrottle {
			t.Errorf("answer %+v: key %q class %v, want key %q, a throttle", answer, d.Key, d.Class, code)
		}
	}
	if d := table.Decide(&connectly.Error{StatusCode: 504, ErrorBody: connectly.ErrorBody{Code: "4"}}); d.Key == "4" {
		t.Errorf("a 504 with code 4 is keyed %q: gRPC's DEADLINE_EXCEEDED read as Meta's code", d.Key)
	}
}
