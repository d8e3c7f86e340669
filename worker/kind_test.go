package worker

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/metrics"
)

// testKind is a message kind the worker does not know: it answers the handler's questions
// (Message, and WindowBound when bound) with values of its own, and counts its requests.
type testKind struct {
	name     string
	answer   error
	fallback *testKind
	bar      Bar
	requests *atomic.Int32
}

func (k *testKind) Send(context.Context, Client) (connectly.SendResult, error) {
	k.requests.Add(1)
	if k.answer != nil {
		return connectly.SendResult{}, k.answer
	}
	return connectly.SendResult{ID: k.name + "-id"}, nil
}

func (k *testKind) SentAs(inWindow bool) string {
	if inWindow {
		return k.name + ":in_window"
	}
	return k.name
}

func (k *testKind) Label() string { return k.name + "-label" }

// boundKind is a testKind that goes only inside the customer service window.
type boundKind struct{ *testKind }

func (k boundKind) Fallback() (Message, Bar) {
	if k.fallback == nil {
		return nil, Bar{}
	}
	return k.fallback, k.bar
}

// TestAFurtherKindNeedsNoHandlerChange: a kind the handler has never heard of goes through
// every branch the session message takes (the gate's window, its fallback or a bar on it, a
// refusal as outside the window and the fallback under the same claim), and a kind bound to
// no window records the window its reservation read, all by what the message answers.
func TestAFurtherKindNeedsNoHandlerChange(t *testing.T) {
	const business = "biz-kinds"
	barred := Bar{Code: "reminder_barred", Why: "the reminder's fallback cannot go there"}
	cases := []struct {
		name       string
		bound      bool
		open       bool  // Herald records the window open
		answer     error // the kind's own answer
		fallback   bool
		bar        Bar
		want       ledger.Entry
		label      string // the herald_sends_total class
		main, fall int32  // requests made
	}{
		{"open window", true, true, nil, true, Bar{}, ledger.Entry{State: ledger.Accepted, Code: "reminder", Attempts: 1},
			"reminder-label", 1, 0},
		{"closed, fallback", true, false, nil, true, Bar{}, ledger.Entry{State: ledger.Accepted, Code: "reminder-fb", Attempts: 1},
			"reminder-fb-label", 0, 1},
		{"closed, fallback barred", true, false, nil, true, barred, ledger.Entry{State: ledger.Skipped, Code: barred.Code},
			barred.Code, 0, 0},
		{"closed, no fallback", true, false, nil, false, Bar{}, ledger.Entry{State: ledger.Skipped, Code: CodeWindowClosed},
			CodeWindowClosed, 0, 0},
		{"refused, fallback", true, true, windowClosedAnswer, true, Bar{},
			ledger.Entry{State: ledger.Accepted, Code: "reminder-fb", Attempts: 1}, "reminder-fb-label", 1, 1},
		{"refused, fallback barred", true, true, windowClosedAnswer, true, barred,
			ledger.Entry{State: ledger.Failed, Code: barred.Code, Attempts: 1}, CodeWindowClosed, 1, 0},
		{"not bound, window open", false, true, nil, false, Bar{},
			ledger.Entry{State: ledger.Accepted, Code: "reminder:in_window", Attempts: 1}, "reminder-label", 1, 0},
		{"not bound, window closed", false, false, nil, false, Bar{},
			ledger.Entry{State: ledger.Accepted, Code: "reminder", Attempts: 1}, "reminder-label", 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, m := setupBusiness(t, business)
			var main, fall atomic.Int32
			k := &testKind{name: "reminder", answer: tc.answer, bar: tc.bar, requests: &main}
			if tc.fallback {
				k.fallback = &testKind{name: "reminder-fb", requests: &fall}
			}
			var msg Message = k
			if tc.bound {
				msg = boundKind{k}
			}
			b.worker.messageOf = func(*campaigns.SendPayload, string) (Message, error) { return msg, nil }
			p := seedRun(t, b, "run-kinds", ledger.AtMostOnce, 1)[0]
			if tc.open {
				openWindow(t, b, business, p.To)
			}
			handleToEntry(t, b, p, tc.want)
			if main.Load() != tc.main || fall.Load() != tc.fall {
				t.Errorf("%d requests of the kind and %d of its fallback, want %d and %d", main.Load(), fall.Load(), tc.main, tc.fall)
			}
			if len(b.sender.Calls()) != 0 {
				t.Errorf("%d template requests, want none: the kind makes its own", len(b.sender.Calls()))
			}
			outcome := map[ledger.State]string{ledger.Accepted: metrics.OutcomeAccepted, ledger.Skipped: metrics.OutcomeSkipped,
				ledger.Failed: metrics.OutcomeFailed}[tc.want.State]
			if n := testutil.ToFloat64(m.Sends.WithLabelValues(testCampaign, testSenderLabel, outcome, tc.label)); n != 1 {
				t.Errorf("herald_sends_total{%s,%s} = %v, want 1", outcome, tc.label, n)
			}
		})
	}
}
