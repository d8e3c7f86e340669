package worker

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/report"
)

// A recipient of an at-least-once run whose send was answered by a 503 (which may follow a
// message that went out) is queued for its retry; if that retry is then not sent (the run is
// cancelled, the send expires, the recipient opts out), the recipient is unknown with the
// 503, never skipped, which would say they were never sent anything. A retry after an answer
// that says nothing went out (a 429, a 408) is still skipped.
func TestMaybeSentRetryIsNeverSkipped(t *testing.T) {
	eachTier(t, maybeSentStories, func(s story) string { return s.name }, func(t *testing.T, rdb *redis.Client, s story) {
		s.run(t, setupResendWith(t, rdb))
	})
}

var maybeSentStories = []story{
	{"TheRunIsCancelled", func(t *testing.T, b *resendBundle) {
		const runID = "spring-sale/maybe-sent-cancelled"
		m := withMetrics(b.testBundle)
		ps := seedRun(t, b.testBundle, runID, ledger.AtLeastOnce, 3)
		maybe, throttled, notTaken := ps[0], ps[1], ps[2]
		answerBy(b, map[string]error{maybe.To: apiError(503, ""), throttled.To: apiError(429, ""), notTaken.To: apiError(408, "")})
		firstAnswers(t, b, ps)
		if _, n, err := b.ledger.Cancel(context.Background(), runID, "operator"); err != nil || n != 2 {
			t.Fatalf("Cancel = %d skipped, %v; want 2 (the 429's and the 408's)", n, err)
		}
		wantMaybeSentUnknown(t, b, maybe, ledger.SkipCancelled)
		wantEntry(t, b.testBundle, throttled, ledger.Entry{State: ledger.Skipped, Attempts: 0, Code: ledger.SkipCancelled})
		wantEntry(t, b.testBundle, notTaken, ledger.Entry{State: ledger.Skipped, Attempts: 1, Code: ledger.SkipCancelled})
		c := countersOf(t, b.testBundle, runID)
		if c.States[ledger.Unknown] != 1 || c.States[ledger.Skipped] != 2 || c.Codes["unknown:HTTP_503"] != 1 || c.Codes["skipped:cancelled"] != 2 {
			t.Fatalf("counters: states %v, codes %v; want one unknown(HTTP_503) and two skipped(cancelled)", c.States, c.Codes)
		}
		if r := runOf(t, b.testBundle, runID); r.Status != ledger.RunCancelled || r.Finished.IsZero() {
			t.Fatalf("run %s, finished %v; want cancelled and finished", r.Status, r.Finished)
		}
		// The 503's retry counts as a retry, not as a throttle.
		sender := metrics.SenderLabels{}.Of(testSender)
		if n := testutil.ToFloat64(m.Sends.WithLabelValues(testCampaign, sender, metrics.OutcomeRetried, "transient")); n != 2 {
			t.Errorf("herald_sends_total{retried,transient} = %v, want 2 (the 503's and the 408's)", n)
		}
		if n := testutil.ToFloat64(m.Sends.WithLabelValues(testCampaign, sender, metrics.OutcomeThrottled, "throttle")); n != 1 {
			t.Errorf("herald_sends_total{throttled,throttle} = %v, want 1 (the 429's)", n)
		}
		// Its retry task comes after all: nothing is sent.
		if err := handle(t, b.testBundle, maybe); err != nil {
			t.Fatalf("retry task: %v", err)
		}
		wantMaybeSentUnknown(t, b, maybe, ledger.SkipCancelled)
		wantMaybeSentExplained(t, b, maybe, ledger.SkipCancelled)
	}},
	{"ItsRetryComesBeforeTheCancelsSweep", func(t *testing.T, b *resendBundle) {
		const runID = "spring-sale/maybe-sent-unswept"
		m, ps := withMetrics(b.testBundle), firstAnswersOf(t, b, runID, 429)
		maybe, throttled := ps[0], ps[1]
		cancelUnswept(t, b, runID)
		for _, p := range ps {
			if err := handle(t, b.testBundle, p); err != nil {
				t.Fatalf("retry task of %s: %v", p.To, err)
			}
		}
		wantMaybeSentUnknown(t, b, maybe, ledger.SkipCancelled)
		wantEntry(t, b.testBundle, throttled, ledger.Entry{State: ledger.Skipped, Attempts: 0, Code: ledger.SkipCancelled})
		// Counted as the ledger settled them: the 503's retry unknown, the 429's skipped.
		wantOneUnknownOneSkipped(t, m, ledger.SkipCancelled)
		if r := runOf(t, b.testBundle, runID); r.Finished.IsZero() {
			t.Fatal("the run did not finish with its last entry")
		}
	}},
	{"ItExpiresBeforeItsRetry", func(t *testing.T, b *resendBundle) {
		const runID = "spring-sale/maybe-sent-expired"
		m, ps := withMetrics(b.testBundle), firstAnswersOf(t, b, runID, 408)
		maybe, notTaken := ps[0], ps[1]
		for _, p := range ps {
			late := p
			late.Expires = b.clock.Now().Add(-time.Minute).Unix()
			if err := handle(t, b.testBundle, late); err != nil {
				t.Fatalf("retry task of %s: %v", p.To, err)
			}
		}
		wantMaybeSentUnknown(t, b, maybe, "expired")
		wantEntry(t, b.testBundle, notTaken, ledger.Entry{State: ledger.Skipped, Attempts: 1, Code: "expired"})
		// Counted as what the ledger says: one unknown, one skip.
		wantOneUnknownOneSkipped(t, m, "expired")
		if r := runOf(t, b.testBundle, runID); r.Status != ledger.RunCompleted {
			t.Fatalf("run %s, want completed", r.Status)
		}
	}},
	{"TheRecipientOptsOutBeforeItsRetry", func(t *testing.T, b *resendBundle) {
		// The retry's claim is made and the suppression list stops it: a skip at send time.
		const runID = "spring-sale/maybe-sent-opted-out"
		m, ps := withMetrics(b.testBundle), firstAnswersOf(t, b, runID, 408)
		maybe, notTaken := ps[0], ps[1]
		for _, p := range ps {
			if err := b.ledger.Suppress(context.Background(), p.To, inboundOptOut); err != nil {
				t.Fatal(err)
			}
			if err := handle(t, b.testBundle, p); err != nil {
				t.Fatalf("retry task of %s: %v", p.To, err)
			}
		}
		wantMaybeSentUnknown(t, b, maybe, ledger.SkipSuppressed)
		wantEntry(t, b.testBundle, notTaken, ledger.Entry{State: ledger.Skipped, Attempts: 1, Code: ledger.SkipSuppressed})
		wantOneUnknownOneSkipped(t, m, ledger.SkipSuppressed)
	}},
}

// wantOneUnknownOneSkipped checks that herald_sends_total counts one unknown and one skip
// for why: the maybe-sent recipient and the other, as the ledger settled them.
func wantOneUnknownOneSkipped(t *testing.T, m *metrics.Metrics, why string) {
	t.Helper()
	wantSends(t, m, metrics.OutcomeUnknown, why, 1)
	wantSends(t, m, metrics.OutcomeSkipped, why, 1)
}

// wantSends checks herald_sends_total for the test campaign and sender, outcome and class.
func wantSends(t *testing.T, m *metrics.Metrics, outcome, class string, want float64) {
	t.Helper()
	sender := metrics.SenderLabels{}.Of(testSender)
	if n := testutil.ToFloat64(m.Sends.WithLabelValues(testCampaign, sender, outcome, class)); n != want {
		t.Errorf("sends %s/%s = %v, want %v", outcome, class, n, want)
	}
}

// firstAnswersOf seeds an at-least-once run of two recipients and runs each one's first send
// task: the first answered 503 (it may have gone), the second with status (one that says
// nothing went). Both are left queued for their retry.
func firstAnswersOf(t *testing.T, b *resendBundle, runID string, status int) []campaigns.SendPayload {
	t.Helper()
	ps := seedRun(t, b.testBundle, runID, ledger.AtLeastOnce, 2)
	answerBy(b, map[string]error{ps[0].To: apiError(503, ""), ps[1].To: apiError(status, "")})
	firstAnswers(t, b, ps)
	return ps
}

// answerBy makes b's sender answer each number of answers with its error, and accept others.
func answerBy(b *resendBundle, answers map[string]error) {
	b.sender.SendFunc = func(_ context.Context, msg connectly.TemplateMessage) (connectly.SendResult, error) {
		if err := answers[msg.Number]; err != nil {
			return connectly.SendResult{}, err
		}
		return connectly.SendResult{ID: "msg-" + msg.Number}, nil
	}
}

// firstAnswers runs the first send task of each of ps, each answered with an error the task
// retries after (a throttle, or a transient failure).
func firstAnswers(t *testing.T, b *resendBundle, ps []campaigns.SendPayload) {
	t.Helper()
	for _, p := range ps {
		err := handle(t, b.testBundle, p)
		if err == nil || errors.Is(err, asynq.SkipRetry) {
			t.Fatalf("send to %s: %v, want an error the task retries after", p.To, err)
		}
	}
	e := entryOf(t, b.testBundle, ps[0])
	if e.State != ledger.Queued || e.Code != "HTTP_503" || e.Attempts != 1 {
		t.Fatalf("entry after the 503: %+v, want queued(HTTP_503) with its attempt counted", e)
	}
}

// wantMaybeSentUnknown checks that p, answered by a 503 and retried, is unknown with that code
// after its retry was withdrawn for why: its one request made, its history saying so, counted
// once under unknown:HTTP_503, not waiting for a resend, the run's counters agreeing with its
// ledger.
func wantMaybeSentUnknown(t *testing.T, b *resendBundle, p campaigns.SendPayload, why string) {
	t.Helper()
	ctx := context.Background()
	wantEntry(t, b.testBundle, p, ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: "HTTP_503"})
	if n := b.sender.CallsTo(p.To); n != 1 {
		t.Fatalf("%d requests to %s, want 1: the retry was sent", n, p.To)
	}
	hist, err := b.ledger.History(ctx, p.Address())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hist {
		got = append(got, h.Outcome+" "+h.Code)
	}
	if want := "retry_maybe_sent HTTP_503, " + ledger.EventRetryWithdrawn + " " + why; strings.Join(got, ", ") != want {
		t.Fatalf("history %q, want %q", strings.Join(got, ", "), want)
	}
	c := countersOf(t, b.testBundle, p.Run)
	if c.Codes["unknown:HTTP_503"] != 1 || c.States[ledger.Unknown] != 1 || c.ResendWaiting != 0 {
		t.Fatalf("states %v, codes %v, resend waiting %d; want one unknown, unknown:HTTP_503 once, none waiting", c.States, c.Codes, c.ResendWaiting)
	}
	if v, err := b.ledger.Verify(ctx, p.Run); err != nil || len(v.Mismatches) > 0 {
		t.Fatalf("Verify: %+v, %v", v.Mismatches, err)
	}
}

// wantMaybeSentExplained checks what `recipient explain` says of p after its retry was
// withdrawn for why: unknown, the 503 its last code, classed as Connectly's answer in the
// history, and why the retry was not sent, which is no failure and has no class.
func wantMaybeSentExplained(t *testing.T, b *resendBundle, p campaigns.SendPayload, why string) {
	t.Helper()
	wantExplained(t, b, p, "State      unknown\n", "Last code  HTTP_503 (transient", "attempt 1: retry_maybe_sent HTTP_503 (transient)\n",
		"attempt 1: retry_withdrawn "+why+"\n", "Unknown    an earlier attempt may have delivered the message; it was not sent again ("+why+")")
}

// wantExplained checks that `recipient explain` of p, as of b's clock, holds each of lines.
func wantExplained(t *testing.T, b *resendBundle, p campaigns.SendPayload, lines ...string) {
	t.Helper()
	x, err := report.Explain(context.Background(), b.ledger, b.rdb, report.ExplainParams{Run: p.Run, Recipient: p.To, Shown: p.To,
		Table: b.worker.table, Now: b.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	report.PrintExplanation(&out, x, b.clock.Now())
	for _, line := range lines {
		if !strings.Contains(out.String(), line) {
			t.Errorf("recipient explain says\n%s\nwant %q in it", out.String(), line)
		}
	}
	if testing.Verbose() {
		t.Logf("recipient explain:\n%s", out.String())
	}
}
