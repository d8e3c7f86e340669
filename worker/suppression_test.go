package worker

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// inboundOptOut is the reason the webhook receiver suppresses a customer who wrote STOP
// (webhooks.ReasonInboundOptOut).
const inboundOptOut = "INBOUND_OPT_OUT"

// withMetrics gives b's worker metrics of its own and returns them.
func withMetrics(b *testBundle) *metrics.Metrics {
	m := metrics.New()
	b.worker.metrics = m
	return m
}

// wantSuppressedSkip fails unless p's entry is skipped(suppressed) with no attempt counted,
// the recipient got requests (no more than before the skip), the skip was counted once as
// expansion's are, and the run's counters agree with its ledger.
func wantSuppressedSkip(t *testing.T, b *testBundle, m *metrics.Metrics, p campaigns.SendPayload, requests int) {
	t.Helper()
	wantEntry(t, b, p, ledger.Entry{State: ledger.Skipped, Code: ledger.SkipSuppressed})
	if n := b.sender.CallsTo(p.To); n != requests {
		t.Errorf("%d requests to the suppressed recipient, want %d", n, requests)
	}
	if n := testutil.ToFloat64(m.Sends.WithLabelValues(p.Campaign, metrics.SenderLabels{}.Of(p.Sender), metrics.OutcomeSkipped, ledger.SkipSuppressed)); n != 1 {
		t.Errorf("herald_sends_total{skipped,suppressed} = %v, want 1", n)
	}
	c := countersOf(t, b, p.Run)
	if c.Codes["skipped:"+ledger.SkipSuppressed] != 1 {
		t.Errorf("counters: skipped:suppressed %d, want 1", c.Codes["skipped:"+ledger.SkipSuppressed])
	}
	v, err := b.ledger.Verify(context.Background(), p.Run)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Mismatches) != 0 {
		t.Errorf("counters disagree with the ledger: %+v", v.Mismatches)
	}
}

// TestDelayedFollowupAfterOptOut: a customer taps "Not now" on a marketing template (an
// on_reply rule with a delay, so its follow-up task waits), then writes STOP, which puts them
// on the suppression list. When the follow-up's task comes due it makes no request: its entry
// is skipped(suppressed), by either claim path.
func TestDelayedFollowupAfterOptOut(t *testing.T) {
	for _, path := range claimPaths {
		t.Run(path.name, func(t *testing.T) {
			b := setup(t, testConfig())
			m := withMetrics(b)
			ctx := context.Background()
			p := seedRun(t, b, "run-stop", ledger.AtMostOnce, 1)[0]
			p.Category = "marketing"
			if err := handle(t, b, p); err != nil {
				t.Fatal(err)
			}
			// The tap creates the follow-up (its task is due 48 h later).
			fp := followupOf(t, b, p, "later", "spring_reminder")
			// STOP, as the webhook receiver records it.
			if err := b.ledger.Suppress(ctx, p.To, inboundOptOut); err != nil {
				t.Fatal(err)
			}
			b.worker.pacing(fp.Sender).Store(path.paced)
			if err := handle(t, b, fp); err != nil {
				t.Fatalf("follow-up: %v", err)
			}
			wantSuppressedSkip(t, b, m, fp, 1)
			// A redelivery of the task finds the entry done.
			if err := handle(t, b, fp); err != nil {
				t.Fatalf("follow-up again: %v", err)
			}
			if n := b.sender.CallsTo(p.To); n != 1 {
				t.Fatalf("%d requests to the recipient, want only the campaign's 1", n)
			}
		})
	}
}

// TestOptOutConfirmationGoes: the follow-up of an on_reply rule with suppress: true confirms
// the opt-out the reply asked for; the rule suppressed the person first, and the send-time
// check lets its confirmation (SendPayload.ConfirmsOptOut) through, on both claim paths, and
// only it.
func TestOptOutConfirmationGoes(t *testing.T) {
	for _, path := range claimPaths {
		t.Run(path.name, func(t *testing.T) {
			b := setup(t, testConfig())
			ctx := context.Background()
			p := seedRun(t, b, "run-unsubscribe", ledger.AtMostOnce, 1)[0]
			if err := handle(t, b, p); err != nil {
				t.Fatal(err)
			}
			fp := followupOf(t, b, p, "unsubscribe", "unsubscribed")
			fp.ConfirmsOptOut = true
			// The rule's suppression, written when the tap was joined.
			if err := b.ledger.Suppress(ctx, p.To, "ON_REPLY"); err != nil {
				t.Fatal(err)
			}
			b.worker.pacing(fp.Sender).Store(path.paced)
			if err := handle(t, b, fp); err != nil {
				t.Fatalf("confirmation: %v", err)
			}
			if e := entryOf(t, b, fp); e.State != ledger.Accepted {
				t.Fatalf("confirmation entry %+v, want accepted", e)
			}
			if n := b.sender.CallsTo(p.To); n != 2 {
				t.Fatalf("%d requests to the recipient, want the campaign's and the confirmation", n)
			}
		})
	}
}

// TestHeldTaskResumedAfterOptOut: a task held while its run is paused comes back, once the run
// is resumed, after its recipient opted out: it makes no request, its entry is
// skipped(suppressed), the run completes, and the booking it made gives back what it held for
// the recipient (the pair slot, the room in the daily tier).
func TestHeldTaskResumedAfterOptOut(t *testing.T) {
	for _, path := range claimPaths {
		t.Run(path.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Limits.BusinessID = "biz-held"
			cfg.Limits.PairInterval = 6 * time.Second
			cfg.Limits.DailyTier = 1000
			b := setup(t, cfg)
			m := withMetrics(b)
			ctx := context.Background()
			p := seedRun(t, b, "run-held-stop", ledger.AtMostOnce, 1)[0]
			if _, err := b.ledger.Pause(ctx, p.Run, "operator"); err != nil {
				t.Fatal(err)
			}
			b.worker.pacing(p.Sender).Store(path.paced)
			wantAs[*HeldError](t, handle(t, b, p))
			if err := b.ledger.Suppress(ctx, p.To, inboundOptOut); err != nil {
				t.Fatal(err)
			}
			if _, err := b.ledger.Resume(ctx, p.Run); err != nil {
				t.Fatal(err)
			}
			b.worker.pacing(p.Sender).Store(path.paced)
			if err := handle(t, b, p); err != nil {
				t.Fatalf("resumed: %v", err)
			}
			wantSuppressedSkip(t, b, m, p, 0)
			wantGivenBack(t, b, p)
			if s := runOf(t, b, p.Run).Status; s != ledger.RunCompleted {
				t.Errorf("run %s, want completed: its one recipient is settled", s)
			}
		})
	}
}

// suppressionReads is a Redis hook that fails the suppression reads of the next failing
// pipelines (as a node that did not answer would) and notes whether each read shared its
// pipeline with a claim.
type suppressionReads struct {
	failing atomic.Int64
	// reads counts suppression reads; alone those not in the pipeline of a claim; shared
	// is the length of the last read's pipeline (2: the claim and the read; more: the
	// reservation too).
	reads, alone, shared atomic.Int64
}

func (h *suppressionReads) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *suppressionReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if isSuppressionRead(cmd) {
			h.reads.Add(1)
			h.alone.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *suppressionReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		i := slices.IndexFunc(cmds, isSuppressionRead)
		if i < 0 {
			return next(ctx, cmds)
		}
		h.reads.Add(1)
		h.shared.Store(int64(len(cmds)))
		if !slices.ContainsFunc(cmds, isClaim) {
			h.alone.Add(1)
		}
		err := next(ctx, cmds)
		if n := h.failing.Load(); n > 0 && h.failing.CompareAndSwap(n, n-1) {
			cmds[i].SetErr(errors.New("i/o timeout"))
		}
		return err
	}
}

func isSuppressionRead(cmd redis.Cmder) bool {
	args := cmd.Args()
	return len(args) > 1 && (cmd.Name() == "hexists" || cmd.Name() == "hget" || cmd.Name() == "hmget") && args[1] == rkeys.Suppressed()
}

// isClaim reports whether cmd runs the claim script (its policy argument).
func isClaim(cmd redis.Cmder) bool {
	return strings.HasPrefix(cmd.Name(), "eval") && (slices.Contains(cmd.Args(), any("amo")) || slices.Contains(cmd.Args(), any("alo")))
}

// TestSuppressionReadErrorTriesAgain: the suppression list is read in the claim's own round
// trip, by either claim path. When that read fails, the send does not go unchecked: no
// request, the claim is given back by its token (queued, no attempt counted, under its own
// code) and the task tries again later without spending its retries; the retry sends.
func TestSuppressionReadErrorTriesAgain(t *testing.T) {
	for _, path := range claimPaths {
		t.Run(path.name, func(t *testing.T) {
			b := setupWith(t, testConfig(), &redis.Options{}, func(ctx context.Context, _ time.Duration) error { return ctx.Err() })
			h := &suppressionReads{}
			h.failing.Store(1)
			b.rdb.AddHook(h)
			p := seedRun(t, b, "run-supp-error", ledger.AtMostOnce, 1)[0]
			b.worker.pacing(p.Sender).Store(path.paced)
			err := handle(t, b, p)
			if h.reads.Load() == 0 {
				t.Fatal("the send read no suppression list")
			}
			if h.alone.Load() != 0 {
				t.Fatalf("%d suppression reads outside the claim's pipeline: a round trip more per send", h.alone.Load())
			}
			if n := h.shared.Load(); (n == 2) != path.paced {
				t.Fatalf("the read shared a pipeline of %d commands: the wrong claim path", n)
			}
			te := wantAs[*ThrottledError](t, err)
			if isFailure(te) {
				t.Fatal("a failed suppression read counted as the recipient's failure")
			}
			if n := b.sender.CallsTo(p.To); n != 0 {
				t.Fatalf("%d requests with the suppression list unread, want none", n)
			}
			wantEntry(t, b, p, ledger.Entry{State: ledger.Queued, Code: CodeSuppressionUnread})
			if c := countersOf(t, b, p.Run); c.Attempts != 0 || c.Throttled != 0 {
				t.Fatalf("attempts %d, throttled %d after the give-back; want 0 and 0", c.Attempts, c.Throttled)
			}
			// asynq's retry of the task.
			b.worker.pacing(p.Sender).Store(path.paced)
			if err := handle(t, b, p); err != nil {
				t.Fatalf("retry: %v", err)
			}
			wantEntry(t, b, p, ledger.Entry{State: ledger.Accepted, Attempts: 1, MessageID: "msg-" + p.To})
		})
	}
}

// TestRefusedFallbackAfterOptOut: the fallback template after Connectly refused a session
// message as outside the window is a second request, made later (it books its own slot): a
// customer who opted out meanwhile does not get it. The entry is skipped(suppressed).
func TestRefusedFallbackAfterOptOut(t *testing.T) {
	b, c, p := refusalBundle(t, testConfig())
	m := withMetrics(b)
	c.SessionFunc = func(connectly.SessionMessage) (connectly.SendResult, error) {
		if err := b.ledger.Suppress(context.Background(), p.To, inboundOptOut); err != nil {
			t.Error(err)
		}
		return connectly.SendResult{}, windowClosedAnswer
	}
	if err := handle(t, b, p); err != nil {
		t.Fatalf("handle: %v", err)
	}
	if c.Sessions() != 1 {
		t.Fatalf("%d session requests, want the refused one", c.Sessions())
	}
	e := entryOf(t, b, p)
	if e.State != ledger.Skipped || e.Code != ledger.SkipSuppressed {
		t.Fatalf("entry %+v, want skipped(%s)", e, ledger.SkipSuppressed)
	}
	if n := b.sender.CallsTo(p.To); n != 0 {
		t.Fatalf("%d fallback requests to a customer who opted out, want none", n)
	}
	if n := testutil.ToFloat64(m.Sends.WithLabelValues(p.Campaign, metrics.SenderLabels{}.Of(p.Sender), metrics.OutcomeSkipped, ledger.SkipSuppressed)); n != 1 {
		t.Errorf("herald_sends_total{skipped,suppressed} = %v, want 1", n)
	}
}

// TestResendAfterOptOut: an unknown recipient (the answer was lost) who opted out before the
// quiet period ended is not sent once more: the resend task makes no request. The first message
// may have reached them, so the entry is not skipped ("never sent") but unknown again with the
// code it had, its resend withdrawn for the suppression; nothing new is counted in the metrics,
// and the counters agree with the ledger.
func TestResendAfterOptOut(t *testing.T) {
	b := setupResend(t)
	m := withMetrics(b.testBundle)
	const runID = "spring-sale/resend-stop"
	p := seedRunWith(t, b.testBundle, ledger.Run{ID: runID, Delivery: ledger.AtMostOnce, ResendAfter: quietPeriod}, "+1555", 1)[0]
	b.sender.SendFunc = loseFirstAnswer(p.To)
	if err := handle(t, b.testBundle, p); err != nil {
		t.Fatal(err)
	}
	wantEntry(t, b.testBundle, p, ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: "NO_RESPONSE"})
	if err := b.ledger.Suppress(context.Background(), p.To, inboundOptOut); err != nil {
		t.Fatal(err)
	}
	if err := b.runTask(t, b.sweptResend(t, p)); err != nil {
		t.Fatalf("resend task: %v", err)
	}
	if n := b.sender.CallsTo(p.To); n != 1 {
		t.Fatalf("%d requests, want only the first (its answer lost)", n)
	}
	wantEntry(t, b.testBundle, p, ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: "NO_RESPONSE"})
	wantStory(t, b, p, "unknown NO_RESPONSE", "resend NO_RESPONSE", "resend_withdrawn "+ledger.SkipSuppressed)
	if n := testutil.ToFloat64(m.Sends.WithLabelValues(p.Campaign, metrics.SenderLabels{}.Of(p.Sender), metrics.OutcomeSkipped, ledger.SkipSuppressed)); n != 0 {
		t.Errorf("herald_sends_total{skipped,suppressed} = %v, want 0", n)
	}
	if c := countersOf(t, b.testBundle, runID); c.ResentUnknown != 0 || c.States[ledger.Unknown] != 1 || c.Codes["unknown:NO_RESPONSE"] != 1 {
		t.Errorf("counters: resent_unknown %d, states %v, codes %v; want the resend withdrawn, one unknown(NO_RESPONSE) counted once",
			c.ResentUnknown, c.States, c.Codes)
	}
	v, err := b.ledger.Verify(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Mismatches) != 0 {
		t.Errorf("counters disagree with the ledger: %+v", v.Mismatches)
	}
}

// TestResendRefusedAsOptedOut: an unknown recipient (the answer was lost) opts out after the
// first message, and the one resend is refused as opted out: they may hold that first message,
// so they are unknown again with its code, never failed, and the number is suppressed.
func TestResendRefusedAsOptedOut(t *testing.T) {
	b := setupResend(t)
	const runID = "spring-sale/resend-refused"
	p := seedRunWith(t, b.testBundle, ledger.Run{ID: runID, Delivery: ledger.AtMostOnce, ResendAfter: quietPeriod}, "+1555", 1)[0]
	answerInTurn(b, &connectly.TransportError{Written: true, Err: io.ErrUnexpectedEOF}, apiError(400, optedOut))
	if err := handle(t, b.testBundle, p); err != nil {
		t.Fatal(err)
	}
	if err := b.runTask(t, b.sweptResend(t, p)); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("resend task: %v, want it ended", err)
	}
	if n := b.sender.CallsTo(p.To); n != 2 {
		t.Fatalf("%d requests, want the first and the resend", n)
	}
	wantEntry(t, b.testBundle, p, ledger.Entry{State: ledger.Unknown, Attempts: 2, Code: "NO_RESPONSE"})
	wantStory(t, b, p, "unknown NO_RESPONSE", "resend NO_RESPONSE", ledger.EventRetryRefused+" "+optedOut)
	if !suppressedOf(t, b.testBundle, p.To) {
		t.Error("opted out and not suppressed")
	}
	if c := countersOf(t, b.testBundle, runID); c.ResentUnknown != 1 || c.States[ledger.Unknown] != 1 || c.States[ledger.Failed] != 0 {
		t.Errorf("counters: resent_unknown %d, states %v; want one resent, unknown", c.ResentUnknown, c.States)
	}
	if v, err := b.ledger.Verify(context.Background(), runID); err != nil || len(v.Mismatches) != 0 {
		t.Errorf("Verify: %+v, %v", v.Mismatches, err)
	}
}
