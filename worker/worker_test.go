package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/rkeys"
)

func TestHandleSend(t *testing.T) {
	t.Parallel()

	ctx := context.Background()
	const runID = "spring-sale/20260101T0900Z"

	t.Run("AcceptedIsRecorded", func(t *testing.T) {
		t.Parallel()
		b := setup(t, testConfig())
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 1)

		if err := handle(t, b, ps[0]); err != nil {
			t.Fatalf("HandleSend = %v, want nil", err)
		}
		wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Accepted, Attempts: 1, MessageID: "msg-" + ps[0].To})

		calls := b.sender.Calls()
		if len(calls) != 1 {
			t.Fatalf("%d requests, want 1", len(calls))
		}
		got := calls[0]
		want := connectly.TemplateMessage{
			Number: ps[0].To, TemplateName: "spring_sale", Language: "en", Parameters: ps[0].Params,
			Sender: testSender, CallbackData: got.CallbackData, CampaignName: testCampaign,
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("request (-want +got):\n- %+v\n+ %+v", want, got)
		}
		// The callback data leads a delivery webhook back to this ledger entry.
		var cb ledger.Address
		if err := json.Unmarshal(got.CallbackData, &cb); err != nil {
			t.Fatal(err)
		}
		if cb != (ledger.Address{Run: runID, Recipient: ps[0].To, Bucket: ps[0].Bucket}) {
			t.Fatalf("callback data %+v", cb)
		}
		// The only recipient is done, so the run is.
		if r := runOf(t, b, runID); r.Status != ledger.RunCompleted {
			t.Fatalf("run status %q, want completed", r.Status)
		}
	})

	t.Run("PermanentFailureSkipsRetry", func(t *testing.T) {
		t.Parallel()
		b := setup(t, testConfig())
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 2)
		b.sender.SendFunc = answer(apiError(400, "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"))

		err := handle(t, b, ps[0])
		if !errors.Is(err, asynq.SkipRetry) {
			t.Fatalf("HandleSend = %v, want one wrapping asynq.SkipRetry", err)
		}
		if !strings.HasPrefix(err.Error(), "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID:") {
			t.Fatalf("error %q does not start with the code (task show reads it there)", err)
		}
		// The provider's error stays in the task's last error, and reachable.
		if ae := wantAs[*connectly.Error](t, err); ae.StatusCode != 400 || !strings.Contains(err.Error(), "from the test") {
			t.Fatalf("error %q: provider's error lost (status %d)", err, ae.StatusCode)
		}
		wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Failed, Attempts: 1, Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"})
		c := countersOf(t, b, runID)
		if c.Codes["failed:ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"] != 1 || c.Retries != 0 {
			t.Fatalf("codes %v retries %d", c.Codes, c.Retries)
		}
	})

	t.Run("TransientFailureRetries", func(t *testing.T) {
		t.Parallel()
		b := setup(t, testConfig())
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 1)
		b.sender.SendFunc = answer(apiError(408, ""))

		err := handle(t, b, ps[0])
		if err == nil || errors.Is(err, asynq.SkipRetry) {
			t.Fatalf("HandleSend = %v, want a retryable error", err)
		}
		if !isFailure(err) {
			t.Fatalf("isFailure(%v) = false, want true", err)
		}
		// The provider's error stays reachable for the error handler.
		if ae := wantAs[*connectly.Error](t, err); ae.StatusCode != 408 {
			t.Fatalf("status %d, want 408", ae.StatusCode)
		}
		wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Queued, Attempts: 1, Code: "HTTP_408"})
		c := countersOf(t, b, runID)
		if c.Attempts != 1 || c.Retries != 1 || c.Codes["retried:HTTP_408"] != 1 {
			t.Fatalf("attempts %d retries %d codes %v", c.Attempts, c.Retries, c.Codes)
		}
	})

	t.Run("TransientFailureUntilAttemptsUsedUp", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig()
		cfg.MaxAttempts = 3
		b := setup(t, cfg)
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 1)
		b.sender.SendFunc = answer(apiError(408, ""))

		for attempt := 1; attempt <= 3; attempt++ {
			err := handle(t, b, ps[0])
			last := attempt == 3
			if errors.Is(err, asynq.SkipRetry) != last || err == nil {
				t.Fatalf("attempt %d: HandleSend = %v, want SkipRetry only on the last", attempt, err)
			}
			if ae := wantAs[*connectly.Error](t, err); ae.StatusCode != 408 {
				t.Fatalf("attempt %d: status %d, want the provider's 408", attempt, ae.StatusCode)
			}
		}
		wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Failed, Attempts: 3, Code: "HTTP_408"})
		c := countersOf(t, b, runID)
		if c.Attempts != 3 || c.Retries != 2 || c.Codes["failed:HTTP_408"] != 1 {
			t.Fatalf("attempts %d retries %d codes %v", c.Attempts, c.Retries, c.Codes)
		}
		if r := runOf(t, b, runID); r.Status != ledger.RunCompleted {
			t.Fatalf("run status %q, want completed", r.Status)
		}
		// asynq would not deliver it again; if it did, nothing is sent.
		if err := handle(t, b, ps[0]); err != nil {
			t.Fatalf("HandleSend after failure = %v", err)
		}
		if n := len(b.sender.Calls()); n != 3 {
			t.Fatalf("%d requests, want 3", n)
		}
	})

	t.Run("ThrottledGivesAttemptBack", func(t *testing.T) {
		t.Parallel()

		for _, tc := range []struct {
			name      string
			err       *connectly.Error
			wantAfter time.Duration
		}{
			{"HTTP429", apiError(429, ""), 3 * time.Second},
			{"HTTP429WithRetryAfter", &connectly.Error{StatusCode: 429, RetryAfterSeconds: 11}, 11 * time.Second},
			{"MetaThroughputCode", apiError(400, "130429"), 3 * time.Second},
			// The number is in maintenance (a throughput upgrade): nothing goes for about a
			// minute (reference 9.2), not the transient backoff's few seconds.
			{"MetaMaintenanceCode", apiError(400, "131057"), time.Minute},
			{"MetaMaintenanceCodeAt500", apiError(500, "131057"), time.Minute},
			// At a 429 too: the body's code says which throttle (reference 1).
			{"MetaMaintenanceCodeAt429", apiError(429, "131057"), time.Minute},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, testConfig())
				ps := seedRun(t, b, runID, ledger.AtMostOnce, 1)
				b.sender.SendFunc = answer(tc.err)

				err := handle(t, b, ps[0])
				te := wantAs[*ThrottledError](t, err)
				if te.RetryAfter != tc.wantAfter {
					t.Fatalf("RetryAfter %v, want %v", te.RetryAfter, tc.wantAfter)
				}
				if isFailure(err) {
					t.Fatal("a throttle counts as a failure")
				}
				wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Queued, Attempts: 0, Code: b.worker.table.Decide(tc.err).Key})
				c := countersOf(t, b, runID)
				if c.Attempts != 0 || c.Throttled != 1 || c.Retries != 0 {
					t.Fatalf("attempts %d throttled %d retries %d, want 0, 1, 0", c.Attempts, c.Throttled, c.Retries)
				}
			})
		}
	})

	// A 429's Retry-After holds what RetryAfterHolds names for its wait: no other send it
	// covers makes a request before the wait is over (each is refused by its limits, waiting
	// as long), and with "send" only the refused send waits.
	t.Run("RetryAfterHoldsOtherSends", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			scope    limits.HoldScope
			business float64
			held     bool
		}{
			{limits.HoldBusiness, 200, true},
			{limits.HoldBusiness, -1, true}, // no business limit: the sender's is held
			{limits.HoldSender, 200, true},
			{limits.HoldSend, 200, false},
		} {
			t.Run(fmt.Sprintf("%s/business_rate_%g", tc.scope, tc.business), func(t *testing.T) {
				t.Parallel()
				cfg := testConfig()
				cfg.RetryAfterHolds, cfg.Limits.BusinessRate, cfg.KeepPlaceFor = tc.scope, tc.business, -1
				b := setup(t, cfg)
				ps := seedRun(t, b, runID, ledger.AtMostOnce, 2)
				b.sender.SendFunc = answer(&connectly.Error{StatusCode: 429, RetryAfterSeconds: 11})
				if te := wantAs[*ThrottledError](t, handle(t, b, ps[0])); te.RetryAfter != 11*time.Second {
					t.Fatalf("refused send: RetryAfter %v, want 11s", te.RetryAfter)
				}
				b.sender.SendFunc = nil
				err := handle(t, b, ps[1])
				calls := len(b.sender.Calls())
				if !tc.held {
					if err != nil || calls != 2 {
						t.Fatalf("send scope: the next send = %v after %d requests; want it sent", err, calls)
					}
					return
				}
				te := wantAs[*ThrottledError](t, err)
				if te.Reason != "rate limit" || te.RetryAfter <= 9*time.Second || te.RetryAfter > 11*time.Second {
					t.Fatalf("the next send: %v; want it held by its limits for about 11s", te)
				}
				if calls != 1 {
					t.Fatalf("%d requests while held, want 1", calls)
				}
				wantEntry(t, b, ps[1], ledger.Entry{State: ledger.Queued, Code: "RATE_LIMIT"})
			})
		}
	})

	// A number in maintenance (131057) sends nothing for about a minute: the other sends the
	// hold covers wait with the refused one, instead of each meeting the same answer.
	t.Run("MaintenanceHoldsOtherSends", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig()
		cfg.RetryAfterHolds, cfg.KeepPlaceFor = limits.HoldSender, -1
		b := setup(t, cfg)
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 2)
		b.sender.SendFunc = answer(apiError(400, "131057"))
		if te := wantAs[*ThrottledError](t, handle(t, b, ps[0])); te.RetryAfter != time.Minute {
			t.Fatalf("refused send: RetryAfter %v, want 1m", te.RetryAfter)
		}
		b.sender.SendFunc = nil
		te := wantAs[*ThrottledError](t, handle(t, b, ps[1]))
		if te.RetryAfter <= 50*time.Second || len(b.sender.Calls()) != 1 {
			t.Fatalf("the next send: %v after %d requests; want it held about a minute with no request", te, len(b.sender.Calls()))
		}
	})

	// Meta's pair limit (131056) backs off for that person only, 4^X s for the X-th refusal in
	// a row (reference 9.1), never less than the throttle delay; at a 429 as at a 400 (the
	// body's code first, reference 1).
	for _, status := range []int{400, 429} {
		t.Run(fmt.Sprintf("PairLimitBacksOffPerPersonAt%d", status), func(t *testing.T) {
			t.Parallel()
			b := setup(t, testConfig())
			ps := seedRun(t, b, runID, ledger.AtMostOnce, 2)
			b.sender.SendFunc = answer(apiError(status, "131056"))
			for i, want := range []time.Duration{3 * time.Second, 4 * time.Second, 16 * time.Second, 64 * time.Second} {
				te := wantAs[*ThrottledError](t, handle(t, b, ps[0]))
				if te.RetryAfter != want {
					t.Fatalf("refusal %d: RetryAfter %v, want %v", i+1, te.RetryAfter, want)
				}
			}
			// Another person starts from the beginning.
			if te := wantAs[*ThrottledError](t, handle(t, b, ps[1])); te.RetryAfter != 3*time.Second {
				t.Fatalf("another person: RetryAfter %v, want 3s", te.RetryAfter)
			}
			wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Queued, Attempts: 0, Code: "131056"})
			if n, _ := b.rdb.Exists(context.Background(), rkeys.SenderBackoff("", testSender)).Result(); n != 0 {
				t.Fatal("a pair-limit refusal (one person) slowed the sender")
			}
		})
	}

	t.Run("StopRunCodePausesRun", func(t *testing.T) {
		t.Parallel()
		b := setup(t, testConfig())
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 3)
		b.sender.SendFunc = answer(apiError(400, "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND"))

		err := handle(t, b, ps[0])
		he := wantAs[*HeldError](t, err)
		if he.RetryAfter != 7*time.Second || !strings.Contains(he.Reason, "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND") {
			t.Fatalf("held error %+v", he)
		}
		if isFailure(err) {
			t.Fatal("a hold counts as a failure")
		}
		r := runOf(t, b, runID)
		if r.Status != ledger.RunPaused || !strings.Contains(r.PauseReason, "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND") {
			t.Fatalf("run status %q reason %q, want paused with the code", r.Status, r.PauseReason)
		}
		// The recipient is not charged for the run's problem.
		wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Queued, Code: "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND"})

		// The rest of the run is held without a request.
		err = handle(t, b, ps[1])
		he = wantAs[*HeldError](t, err)
		if !strings.Contains(he.Reason, "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND") {
			t.Fatalf("held error %+v, want the pause reason", he)
		}
		if n := len(b.sender.Calls()); n != 1 {
			t.Fatalf("%d requests, want only the first", n)
		}
		wantEntry(t, b, ps[1], ledger.Entry{State: ledger.Queued})
		if c := countersOf(t, b, runID); c.Attempts != 0 {
			t.Fatalf("attempts %d, want 0", c.Attempts)
		}
	})

	// A template is not governed by the window: a DEADLINE_EXCEEDED type with no specific
	// code, at a 504, may be the timeout it names after the message went out. At most once it
	// is unknown, never failed (a `run retry` of failures would send it twice).
	t.Run("TemplateDeadlineExceededIsMaybeSent", func(t *testing.T) {
		t.Parallel()
		b := setup(t, testConfig())
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 1)
		b.sender.SendFunc = answer(&connectly.Error{StatusCode: 504,
			ErrorBody: connectly.ErrorBody{Type: "ERROR_TYPE_DEADLINE_EXCEEDED", Code: "ERROR_CODE_UNSPECIFIED"}})
		if err := handle(t, b, ps[0]); err != nil {
			t.Fatalf("HandleSend = %v, want nil", err)
		}
		wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: "ERROR_CODE_UNSPECIFIED"})
	})

	t.Run("NoAnswerAfterWrite", func(t *testing.T) {
		t.Parallel()
		noAnswer := &connectly.TransportError{Written: true, Err: io.ErrUnexpectedEOF}

		t.Run("AtMostOnceIsUnknown", func(t *testing.T) {
			t.Parallel()
			b := setup(t, testConfig())
			ps := seedRun(t, b, runID, ledger.AtMostOnce, 1)
			b.sender.SendFunc = answer(noAnswer)

			if err := handle(t, b, ps[0]); err != nil {
				t.Fatalf("HandleSend = %v, want nil", err)
			}
			wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: "NO_RESPONSE"})
			if c := countersOf(t, b, runID); c.Codes["unknown:NO_RESPONSE"] != 1 {
				t.Fatalf("codes %v", c.Codes)
			}
		})

		t.Run("AtLeastOnceRetries", func(t *testing.T) {
			t.Parallel()
			b := setup(t, testConfig())
			ps := seedRun(t, b, runID, ledger.AtLeastOnce, 1)
			b.sender.SendFunc = answer(noAnswer)

			err := handle(t, b, ps[0])
			if err == nil || errors.Is(err, asynq.SkipRetry) || !isFailure(err) {
				t.Fatalf("HandleSend = %v, want a retryable failure", err)
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v lost its cause", err)
			}
			wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Queued, Attempts: 1, Code: "NO_RESPONSE"})
			if c := countersOf(t, b, runID); c.Retries != 1 {
				t.Fatalf("retries %d, want 1", c.Retries)
			}
		})

		t.Run("NotWrittenRetriesEvenAtMostOnce", func(t *testing.T) {
			t.Parallel()
			b := setup(t, testConfig())
			ps := seedRun(t, b, runID, ledger.AtMostOnce, 1)
			b.sender.SendFunc = answer(&connectly.TransportError{Written: false, Err: io.EOF})

			if err := handle(t, b, ps[0]); err == nil || errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("HandleSend = %v, want a retryable error", err)
			}
			wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Queued, Attempts: 1, Code: "NOT_SENT"})
		})
	})

	t.Run("RedeliveredTaskSendsNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, testConfig())
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 1)

		for i := range 3 {
			if err := handle(t, b, ps[0]); err != nil {
				t.Fatalf("delivery %d: HandleSend = %v", i+1, err)
			}
		}
		if n := b.sender.CallsTo(ps[0].To); n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
		wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Accepted, Attempts: 1, MessageID: "msg-" + ps[0].To})
	})

	t.Run("RedeliveryAfterCrashMidSend", func(t *testing.T) {
		t.Parallel()

		for _, tc := range []struct {
			name      string
			delivery  ledger.Delivery
			wantCalls int
			want      ledger.Entry
		}{
			{"AtMostOnceMarksUnknown", ledger.AtMostOnce, 0, ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: "CLAIM_FOUND"}},
			{"AtLeastOnceSendsAgain", ledger.AtLeastOnce, 1, ledger.Entry{State: ledger.Accepted, Attempts: 2, MessageID: "msg-+15550000000"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, testConfig())
				ps := seedRun(t, b, runID, tc.delivery, 1)
				// An earlier worker claimed the entry and died before recording the outcome.
				if c, err := b.ledger.Claim(ctx, ledger.Address{Run: runID, Bucket: ps[0].Bucket, Recipient: ps[0].To}, tc.delivery); err != nil || c.Verdict != ledger.VerdictSend {
					t.Fatalf("Claim = %+v, %v", c, err)
				}
				if err := handle(t, b, ps[0]); err != nil {
					t.Fatalf("HandleSend = %v, want nil", err)
				}
				if n := len(b.sender.Calls()); n != tc.wantCalls {
					t.Fatalf("%d requests, want %d", n, tc.wantCalls)
				}
				wantEntry(t, b, ps[0], tc.want)
			})
		}
	})

	t.Run("CancelledRunSkipsRecipient", func(t *testing.T) {
		t.Parallel()
		b := setup(t, testConfig())
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 2)
		if err := b.rdb.HSet(ctx, rkeys.Run(runID), "status", string(ledger.RunCancelled)).Err(); err != nil {
			t.Fatal(err)
		}
		if err := handle(t, b, ps[0]); err != nil {
			t.Fatalf("HandleSend = %v, want nil", err)
		}
		if n := len(b.sender.Calls()); n != 0 {
			t.Fatalf("%d requests, want 0", n)
		}
		wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Skipped, Code: "cancelled"})
	})

	t.Run("TaskWithoutLedgerEntryIsDropped", func(t *testing.T) {
		t.Parallel()
		b := setup(t, testConfig())
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 1)

		stranger := ps[0]
		stranger.To = "+15559999999"
		orphan := ps[0]
		orphan.Run = "deleted-run"
		for _, p := range []campaigns.SendPayload{stranger, orphan} {
			if err := handle(t, b, p); err != nil {
				t.Fatalf("HandleSend(%s in %s) = %v, want nil", p.To, p.Run, err)
			}
		}
		if n := len(b.sender.Calls()); n != 0 {
			t.Fatalf("%d requests, want 0", n)
		}
	})

	t.Run("BadPayloadSkipsRetry", func(t *testing.T) {
		t.Parallel()
		b := setup(t, testConfig())

		for _, tc := range []struct {
			name    string
			payload string
		}{
			{"NotJSON", "{not json"},
			{"MissingRun", `{"to":"+15550000000","tpl":"spring_sale"}`},
			{"MissingRecipient", `{"run":"r1","tpl":"spring_sale"}`},
			{"MissingTemplate", `{"run":"r1","to":"+15550000000"}`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := b.worker.HandleSend(ctx, asynq.NewTask(campaigns.TypeSend, []byte(tc.payload)))
				if !errors.Is(err, asynq.SkipRetry) {
					t.Fatalf("HandleSend = %v, want one wrapping asynq.SkipRetry", err)
				}
			})
		}
		if n := len(b.sender.Calls()); n != 0 {
			t.Fatalf("%d requests, want 0", n)
		}
	})

	t.Run("PacingThrottleGivesTheClaimBack", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig()
		cfg.Limits.SenderRates = map[string]float64{testSender: 1}
		cfg.Limits.MaxWait = 10 * time.Millisecond
		b := setup(t, cfg)
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 2)

		if err := handle(t, b, ps[0]); err != nil {
			t.Fatalf("first send = %v, want nil", err)
		}
		err := handle(t, b, ps[1])
		te := wantAs[*ThrottledError](t, err)
		// One message a second: the next permit is most of a second away.
		if te.RetryAfter < 500*time.Millisecond || te.RetryAfter > time.Second {
			t.Fatalf("RetryAfter %v, want just under 1s", te.RetryAfter)
		}
		if isFailure(err) {
			t.Fatal("pacing counts as a failure")
		}
		if n := len(b.sender.Calls()); n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
		// Pacing shares a round trip with the claim; a refused permit gives the claim back
		// with its attempt, and counts as a throttle.
		wantEntry(t, b, ps[1], ledger.Entry{State: ledger.Queued, Row: 2, Code: "RATE_LIMIT"})
		if c := countersOf(t, b, runID); c.Attempts != 1 || c.Throttled != 1 {
			t.Fatalf("attempts %d throttled %d, want 1 and 1", c.Attempts, c.Throttled)
		}
	})

	t.Run("PairLimitSpacesMessagesToOnePersonAcrossRuns", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig()
		cfg.Limits.PairInterval = 6 * time.Second
		cfg.Limits.MaxWait = 10 * time.Millisecond
		b := setup(t, cfg)
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 1)
		other := seedRun(t, b, "run-other", ledger.AtMostOnce, 1) // same recipient, another campaign run
		if err := handle(t, b, ps[0]); err != nil {
			t.Fatalf("first message: %v", err)
		}
		te := wantAs[*ThrottledError](t, handle(t, b, other[0]))
		// The pair slot is booked with its margin (limits.Config.PairMargin).
		if te.RetryAfter < 5*time.Second || te.RetryAfter > 6*time.Second+limits.DefaultPairMargin {
			t.Fatalf("RetryAfter %v, want about 6s and its margin", te.RetryAfter)
		}
		if n := len(b.sender.Calls()); n != 1 {
			t.Fatalf("%d requests within the pair interval, want 1", n)
		}
	})

	t.Run("OtherSenderIsNotPaced", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig()
		cfg.Limits.SenderRates = map[string]float64{testSender: 1}
		cfg.Limits.MaxWait = 10 * time.Millisecond
		b := setup(t, cfg)
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 2)

		if err := handle(t, b, ps[0]); err != nil {
			t.Fatal(err)
		}
		other := ps[1]
		other.Sender = "+15550002222"
		if err := handle(t, b, other); err != nil {
			t.Fatalf("send from another number = %v, want nil", err)
		}
	})

	t.Run("CancelledContextIsNotAFailure", func(t *testing.T) {
		t.Parallel()
		b := setup(t, testConfig())
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 1)
		cctx, cancel := context.WithCancel(ctx)
		cancel()

		err := b.worker.HandleSend(cctx, sendTask(t, ps[0]))
		if !errors.Is(err, context.Canceled) || isFailure(err) {
			t.Fatalf("HandleSend on a cancelled context = %v, want context.Canceled, not a failure", err)
		}
		if n := len(b.sender.Calls()); n != 0 {
			t.Fatalf("%d requests, want 0", n)
		}
		wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Queued})
	})

	t.Run("RequestOutlivesShutdown", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig()
		cfg.RequestTimeout = 4 * time.Second
		b := setup(t, cfg)
		ps := seedRun(t, b, runID, ledger.AtMostOnce, 1)
		hctx, cancel := context.WithCancel(ctx)
		defer cancel()
		b.sender.SendFunc = func(sctx context.Context, msg connectly.TemplateMessage) (connectly.SendResult, error) {
			// Shutdown begins while the request is in flight.
			cancel()
			if err := sctx.Err(); err != nil {
				return connectly.SendResult{}, err
			}
			if d, ok := sctx.Deadline(); !ok || time.Until(d) > 4*time.Second {
				t.Errorf("request deadline %v (set %v), want at most RequestTimeout away", d, ok)
			}
			return connectly.SendResult{ID: "msg-late"}, nil
		}
		if err := b.worker.HandleSend(hctx, sendTask(t, ps[0])); err != nil {
			t.Fatalf("HandleSend = %v, want nil", err)
		}
		wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Accepted, Attempts: 1, MessageID: "msg-late"})
	})
}

func TestHeldTaskGivesPermitsBack(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Limits.DefaultSenderRate = 1 // one permit a second
	cfg.Limits.MaxWait = 10 * time.Millisecond
	cfg.Limits.PairInterval = 6 * time.Second
	b := setup(t, cfg)
	const heldRun = "held-run"
	ps := seedRun(t, b, heldRun, ledger.AtMostOnce, 2)
	if _, err := b.ledger.Pause(context.Background(), heldRun, "operator"); err != nil {
		t.Fatal(err)
	}
	// Held twice: without refunds the second would find the sender's permit used up.
	for i := 0; i < 2; i++ {
		wantAs[*HeldError](t, handle(t, b, ps[0]))
	}
	if _, err := b.ledger.Resume(context.Background(), heldRun); err != nil {
		t.Fatal(err)
	}
	// The permit and the person's pair slot are free: the send goes out at once.
	if err := handle(t, b, ps[0]); err != nil {
		t.Fatalf("send after resume: %v", err)
	}
	if n := len(b.sender.Calls()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}
