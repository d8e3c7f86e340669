package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// An unknown recipient released for its one resend, whose run (or, for a follow-up, the run
// it follows) is cancelled before the resend is sent, stays unknown with the code of its
// first attempt, as the cancelled run's other unknown recipients do: its first message may
// have gone. Whatever reaches it first (the cancel's sweep, the resend task's claim, the
// follow-up gate, the resend sweep) withdraws the resend, the resend task sends nothing, and
// the run's counters and `recipient explain` say unknown.
func TestCancelWithdrawsAReleasedResend(t *testing.T) {
	eachTier(t, withdrawStories, func(s story) string { return s.name }, func(t *testing.T, rdb *redis.Client, s story) {
		s.run(t, setupResendWith(t, rdb))
	})
}

// story is a test story of a resend bundle.
type story struct {
	name string
	run  func(t *testing.T, b *resendBundle)
}

// eachTier runs each of stories as a subtest of each Redis tier: on miniredis, in parallel,
// and on the real Redis of HERALD_TEST_REDIS (skipped without it), one by one on the worker's
// database, flushed before and after.
func eachTier[S any](t *testing.T, stories []S, name func(S) string, run func(t *testing.T, rdb *redis.Client, s S)) {
	for _, tier := range redisTiers {
		t.Run(tier, func(t *testing.T) {
			for _, s := range stories {
				t.Run(name(s), func(t *testing.T) {
					var rdb *redis.Client
					if tier == "RealRedis" {
						rdb = testredis.Open(t, testredis.OffsetWorker)
					} else {
						t.Parallel()
						_, rdb = testredis.Mini(t)
					}
					run(t, rdb, s)
				})
			}
		})
	}
}

var withdrawStories = []story{
	{"TheCancelSweepsItBeforeItsTask", func(t *testing.T, b *resendBundle) {
		const runID = "spring-sale/cancel-swept"
		lost, task := releasedResend(t, b, runID)
		if _, n, err := b.ledger.Cancel(context.Background(), runID, "operator"); err != nil || n != 0 {
			t.Fatalf("Cancel = %d skipped, %v; want none skipped", n, err)
		}
		wantEntry(t, b.testBundle, lost, ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: "NO_RESPONSE"})
		if err := b.runTask(t, task); err != nil {
			t.Fatalf("resend task: %v", err)
		}
		wantWithdrawn(t, b, lost, runID)
		wantResendWithdrawnExplained(t, b, lost)
	}},
	{"ItsTaskComesBeforeTheSweep", func(t *testing.T, b *resendBundle) {
		const runID = "spring-sale/cancel-unswept"
		lost, task := releasedResend(t, b, runID)
		cancelUnswept(t, b, runID)
		if err := b.runTask(t, task); err != nil {
			t.Fatalf("resend task: %v", err)
		}
		wantWithdrawn(t, b, lost, runID)
	}},
	{"ItsTaskComesBeforeTheSweepWhileTheSenderPaces", func(t *testing.T, b *resendBundle) {
		// A paced sender's task learns of the cancel in its gate (claimEnded), before a slot.
		const runID = "spring-sale/cancel-paced"
		lost, task := releasedResend(t, b, runID)
		cancelUnswept(t, b, runID)
		b.worker.pacing(lost.Sender).Store(true)
		if err := b.runTask(t, task); err != nil {
			t.Fatalf("resend task: %v", err)
		}
		wantWithdrawn(t, b, lost, runID)
	}},
	{"TheCancelComesBetweenTheReleaseAndItsTask", func(t *testing.T, b *resendBundle) {
		// The sweep released the resend but could not write its task; the cancel then
		// withdraws it, and the next sweep drops the member, which completes the run.
		const runID = "spring-sale/cancel-no-task"
		ps := seedRunWith(t, b.testBundle, ledger.Run{ID: runID, Delivery: ledger.AtMostOnce, ResendAfter: quietPeriod}, "+1555", 2)
		lost := sendLosing(t, b, ps)
		b.releasedWithoutTask(t, lost)
		if _, _, err := b.ledger.Cancel(context.Background(), runID, "operator"); err != nil {
			t.Fatal(err)
		}
		if r := runOf(t, b.testBundle, runID); !r.Finished.IsZero() {
			t.Fatal("the run finished while its member waits in the resend set")
		}
		b.clock.Advance(time.Minute) // the lease ends
		if n := b.sweep(t, b.worker); n != 0 || len(b.pending(t)) != 0 {
			t.Fatalf("swept %d, %d tasks; want nothing resent", n, len(b.pending(t)))
		}
		wantWithdrawn(t, b, lost, runID)
	}},
	{"AFollowupWhoseRunIsCancelled", func(t *testing.T, b *resendBundle) {
		const parent = "spring-sale/cancel-followed"
		f, task := releasedFollowupResend(t, b, parent, false)
		if _, _, err := b.ledger.Cancel(context.Background(), parent, "operator"); err != nil {
			t.Fatal(err)
		}
		if err := b.runTask(t, task); err != nil {
			t.Fatalf("resend task: %v", err)
		}
		wantWithdrawn(t, b, f, f.Run)
	}},
	{"AFollowupReleasedWithoutItsTaskWhenItsRunIsCancelled", func(t *testing.T, b *resendBundle) {
		// The follow-up's resend was released but its task never written; the run it follows
		// is then cancelled: the next sweep, which forgoes the follow-ups of a cancelled run,
		// withdraws it.
		const parent = "spring-sale/cancel-followed-no-task"
		f, _ := releasedFollowupResend(t, b, parent, true)
		if _, _, err := b.ledger.Cancel(context.Background(), parent, "operator"); err != nil {
			t.Fatal(err)
		}
		b.clock.Advance(time.Minute) // the lease ends
		if n := b.sweep(t, b.worker); n != 0 || len(b.pending(t)) != 0 {
			t.Fatalf("swept %d, %d tasks; want nothing resent", n, len(b.pending(t)))
		}
		wantWithdrawn(t, b, f, f.Run)
	}},
}

// sendLosing sends ps, the first one's answer lost: it is unknown (NO_RESPONSE), waiting for
// its resend, and the others are accepted. It returns the first.
func sendLosing(t *testing.T, b *resendBundle, ps []campaigns.SendPayload) campaigns.SendPayload {
	t.Helper()
	b.sender.SendFunc = loseFirstAnswer(ps[0].To)
	for _, p := range ps {
		if err := handle(t, b.testBundle, p); err != nil {
			t.Fatalf("HandleSend(%s): %v", p.To, err)
		}
	}
	wantEntry(t, b.testBundle, ps[0], ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: "NO_RESPONSE"})
	return ps[0]
}

// releasedResend seeds a run of two recipients that resends unknown ones, loses the first
// one's answer and sweeps after the quiet period: that recipient is queued for its resend,
// whose task is returned with it.
func releasedResend(t *testing.T, b *resendBundle, runID string) (campaigns.SendPayload, *asynq.TaskInfo) {
	t.Helper()
	ps := seedRunWith(t, b.testBundle, ledger.Run{ID: runID, Delivery: ledger.AtMostOnce, ResendAfter: quietPeriod}, "+1555", 2)
	lost := sendLosing(t, b, ps)
	return lost, b.sweptResend(t, lost)
}

// sweptResend moves the clock past the quiet period and sweeps: p is queued for its resend,
// and its one resend task is returned.
func (b *resendBundle) sweptResend(t *testing.T, p campaigns.SendPayload) *asynq.TaskInfo {
	t.Helper()
	b.clock.Advance(quietPeriod)
	if n := b.sweep(t, b.worker); n != 1 {
		t.Fatalf("swept %d, want the one resend", n)
	}
	tasks := b.pending(t)
	if len(tasks) != 1 {
		t.Fatalf("%d tasks after the sweep, want the one resend", len(tasks))
	}
	wantEntry(t, b.testBundle, p, ledger.Entry{State: ledger.Queued, Attempts: 1, Code: "NO_RESPONSE"})
	return tasks[0]
}

// releasedFollowupResend seeds a run (parent) of two recipients, the first accepted (the
// other keeps the run running, so it can be cancelled), whose first recipient's follow-up
// (rule yes) resends unknown recipients; the follow-up's answer is lost and, after the quiet
// period, its resend is released. With noTask the resend task is never written (the sweep's
// enqueue fails); otherwise it is returned.
func releasedFollowupResend(t *testing.T, b *resendBundle, parent string, noTask bool) (campaigns.SendPayload, *asynq.TaskInfo) {
	t.Helper()
	ctx := context.Background()
	p := seedRunWith(t, b.testBundle, ledger.Run{ID: parent, Delivery: ledger.AtMostOnce, ResendAfter: quietPeriod}, "+1555", 2)[0]
	if err := handle(t, b.testBundle, p); err != nil {
		t.Fatal(err)
	}
	r := runOf(t, b.testBundle, parent)
	pr := ledger.ParentRun{ID: r.ID, Campaign: r.Campaign, Template: r.Template, Language: r.Language, Sender: r.Sender,
		Delivery: r.Delivery, Buckets: r.Buckets, ResendAfter: quietPeriod}
	res, err := b.ledger.CreateFollowup(ctx, ledger.Followup{Parent: pr, Rule: "yes", Recipient: p.To, Row: p.Row,
		Payload: []byte("{}"), Queue: r.Queue})
	if err != nil || res.Verdict != ledger.FollowupCreated {
		t.Fatalf("CreateFollowup: %+v %v", res, err)
	}
	if err := b.ledger.ListFollowupResends(ctx, res.Address.Run); err != nil {
		t.Fatal(err)
	}
	f := p
	f.Run, f.Bucket, f.Template = res.Address.Run, res.Address.Bucket, "spring_thanks"
	sendLosing(t, b, []campaigns.SendPayload{f})
	if !noTask {
		return f, b.sweptResend(t, f)
	}
	b.releasedWithoutTask(t, f)
	return f, nil
}

// releasedWithoutTask moves the clock past the quiet period and sweeps with a failing
// enqueue: p is queued for its resend, leased, and no task exists.
func (b *resendBundle) releasedWithoutTask(t *testing.T, p campaigns.SendPayload) {
	t.Helper()
	real := b.worker.tasks
	b.worker.tasks = &failingWriter{err: errors.New("connection reset")}
	b.clock.Advance(quietPeriod)
	if n := b.sweep(t, b.worker); n != 0 {
		t.Fatalf("swept %d with a failing enqueue", n)
	}
	b.worker.tasks = real
	wantEntry(t, b.testBundle, p, ledger.Entry{State: ledger.Queued, Attempts: 1, Code: "NO_RESPONSE"})
}

// cancelUnswept cancels runID without the sweep of its entries, as when a task comes up
// before the cancel's sweep reached its entry.
func cancelUnswept(t *testing.T, b *resendBundle, runID string) {
	t.Helper()
	if err := b.rdb.HSet(context.Background(), rkeys.Run(runID), "status", string(ledger.RunCancelled)).Err(); err != nil {
		t.Fatal(err)
	}
}

// wantWithdrawn checks that p, in run runID, is unknown with its first attempt's code after
// its resend was withdrawn: one request made, a history of unknown, resend and
// resend_withdrawn, counted unknown and not resent, the run's counters agreeing with its
// ledger, the run (not a follow-up run, which never finishes) finished, and a later sweep
// sending nothing.
func wantWithdrawn(t *testing.T, b *resendBundle, p campaigns.SendPayload, runID string) {
	t.Helper()
	ctx := context.Background()
	wantEntry(t, b.testBundle, p, ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: "NO_RESPONSE"})
	requests := 1
	if _, _, ok := ledger.FollowupOf(runID); ok {
		requests = 2 // the send it follows, and its own
	}
	if n := b.sender.CallsTo(p.To); n != requests {
		t.Fatalf("%d requests to %s, want %d: the resend was sent", n, p.To, requests)
	}
	if h := strings.Join(historyOf(t, b, p), " "); h != "unknown resend resend_withdrawn" {
		t.Fatalf("history %q, want unknown resend resend_withdrawn", h)
	}
	c := countersOf(t, b.testBundle, runID)
	if c.States[ledger.Unknown] != 1 || c.States[ledger.Queued] != 0 || c.States[ledger.Skipped] != 0 || c.ResentUnknown != 0 || c.ResendWaiting != 0 {
		t.Fatalf("counters: states %v, resent_unknown %d, waiting %d; want one unknown, none resent", c.States, c.ResentUnknown, c.ResendWaiting)
	}
	if c.Codes["skipped:cancelled"] != 0 || c.Codes["unknown:NO_RESPONSE"] != 1 {
		t.Fatalf("codes %v, want unknown:NO_RESPONSE once and no skipped:cancelled", c.Codes)
	}
	if v, err := b.ledger.Verify(ctx, runID); err != nil || len(v.Mismatches) > 0 {
		t.Fatalf("Verify: %+v, %v", v.Mismatches, err)
	}
	if _, _, ok := ledger.FollowupOf(runID); !ok {
		if r := runOf(t, b.testBundle, runID); r.Status != ledger.RunCancelled || r.Finished.IsZero() {
			t.Fatalf("run %s, finished %v; want cancelled and finished", r.Status, r.Finished)
		}
	}
	b.clock.Advance(24 * time.Hour)
	if n := b.sweep(t, b.worker); n != 0 || len(b.pending(t)) != 0 {
		t.Fatalf("a later sweep resent %d", n)
	}
}

// wantResendWithdrawnExplained checks what `recipient explain` says of p after its resend was
// withdrawn.
func wantResendWithdrawnExplained(t *testing.T, b *resendBundle, p campaigns.SendPayload) {
	t.Helper()
	wantExplained(t, b, p, "State      unknown\n", "Last code  NO_RESPONSE", "attempt 1: resend_withdrawn cancelled",
		"Unknown    an earlier attempt may have delivered the message; it was not sent again (cancelled)")
}

// A released resend that the worker does not send for a reason of its own (here its campaign's
// expiry passed before the resend came up) is withdrawn as a cancel withdraws it: the first
// message may have gone, so the recipient stays unknown with its code, never skipped(expired),
// and the run completes.
func TestExpiredResendIsWithdrawn(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	b := setupResendWith(t, rdb)
	const runID = "spring-sale/resend-expired"
	lost, _ := releasedResend(t, b, runID)
	m := withMetrics(b.testBundle)
	late := lost
	late.Expires = b.clock.Now().Add(-time.Minute).Unix()
	if err := handle(t, b.testBundle, late); err != nil {
		t.Fatalf("resend task: %v", err)
	}
	wantEntry(t, b.testBundle, lost, ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: "NO_RESPONSE"})
	if n := b.sender.CallsTo(lost.To); n != 1 {
		t.Fatalf("%d requests to %s, want 1", n, lost.To)
	}
	if h := strings.Join(historyOf(t, b, lost), " "); h != "unknown resend resend_withdrawn" {
		t.Fatalf("history %q, want unknown resend resend_withdrawn", h)
	}
	c := countersOf(t, b.testBundle, runID)
	if c.States[ledger.Unknown] != 1 || c.States[ledger.Skipped] != 0 || c.Codes["skipped:expired"] != 0 {
		t.Fatalf("counters: states %v, codes %v; want one unknown and nothing skipped", c.States, c.Codes)
	}
	// Its unknown outcome was counted when its first attempt ended: the withdrawn resend adds
	// neither an unknown nor a skip.
	wantSends(t, m, metrics.OutcomeUnknown, "expired", 0)
	wantSends(t, m, metrics.OutcomeSkipped, "expired", 0)
	if r := runOf(t, b.testBundle, runID); r.Status != ledger.RunCompleted {
		t.Fatalf("run %s, want completed", r.Status)
	}
}
