package ledger

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// scriptEnv is what one script case works with: a ledger and a run of its own, seeded with
// three recipients whose tasks exist (queued), the first of them in es[0].
type scriptEnv struct {
	b   *testBundle
	run string
	es  []PlanEntry
}

func (e *scriptEnv) addr(i int) Address {
	return Address{Run: e.run, Bucket: e.es[i].Bucket, Recipient: e.es[i].Recipient}
}

// scriptCase is one case of the ledger's scripts: what it does to a freshly seeded run, and
// the error that says how the outcome differs from the wanted one (nil when it matches).
type scriptCase struct {
	name     string
	delivery Delivery
	// resend creates the run with a resend_after of 1 ms (unknown recipients are resent).
	resend bool
	play   func(ctx context.Context, e *scriptEnv) error
}

// want returns an error naming what when got differs from want.
func want[T comparable](what string, want, got T) error {
	if want != got {
		return fmt.Errorf("%s = %v, want %v", what, got, want)
	}
	return nil
}

// first returns the first non-nil error.
func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *scriptEnv) claim(ctx context.Context, i int) (Claim, error) {
	return e.b.l.Claim(ctx, e.addr(i), AtMostOnce)
}

// accept claims recipient i and settles it accepted with message id mid.
func (e *scriptEnv) accept(ctx context.Context, i int, mid string) error {
	c, err := e.claim(ctx, i)
	if err != nil {
		return err
	}
	if c.Verdict != VerdictSend {
		return fmt.Errorf("claim of %d: %s, want send", i, c.Verdict)
	}
	r, err := e.b.l.Finish(ctx, e.addr(i), Outcome{State: Accepted, MessageID: mid, Attempt: c.Attempts})
	if err != nil {
		return err
	}
	return want("finish applied", true, r.Applied)
}

func (e *scriptEnv) entry(ctx context.Context, i int) (Entry, error) {
	en, ok, err := e.b.l.Entry(ctx, e.addr(i))
	if err == nil && !ok {
		err = fmt.Errorf("recipient %d has no entry", i)
	}
	return en, err
}

// scriptCases are the ledger's scripts, case by case: claim, finish, skip, delivery events,
// the resend of unknown recipients, pause / resume / cancel, reply counts and parked events.
var scriptCases = []scriptCase{
	{name: "ClaimSends", play: func(ctx context.Context, e *scriptEnv) error {
		c, err := e.claim(ctx, 0)
		return first(err, want("verdict", VerdictSend, c.Verdict), want("state", Submitting, c.State), want("attempts", 1, c.Attempts))
	}},
	{name: "ClaimFoundAtMostOnceIsUnknown", play: func(ctx context.Context, e *scriptEnv) error {
		if _, err := e.claim(ctx, 0); err != nil {
			return err
		}
		c, err := e.claim(ctx, 0)
		return first(err, want("verdict", VerdictUnknown, c.Verdict), want("state", Unknown, c.State), want("detail", CodeClaimFound, c.Detail))
	}},
	{name: "ClaimFoundAtLeastOnceSendsAgain", delivery: AtLeastOnce, play: func(ctx context.Context, e *scriptEnv) error {
		for range 2 {
			c, err := e.b.l.Claim(ctx, e.addr(0), AtLeastOnce)
			if err = first(err, want("verdict", VerdictSend, c.Verdict)); err != nil {
				return err
			}
		}
		c, err := e.b.l.Counters(ctx, e.run)
		return first(err, want("resent", int64(1), c.Resent), want("attempts", int64(2), c.Attempts))
	}},
	{name: "ClaimOfAPausedRunHolds", play: func(ctx context.Context, e *scriptEnv) error {
		if _, err := e.b.l.Pause(ctx, e.run, "operator"); err != nil {
			return err
		}
		c, err := e.claim(ctx, 0)
		return first(err, want("verdict", VerdictPaused, c.Verdict), want("detail", "operator", c.Detail))
	}},
	{name: "ClaimOfACancelledRunSkips", play: func(ctx context.Context, e *scriptEnv) error {
		if _, _, err := e.b.l.Cancel(ctx, e.run, "operator"); err != nil {
			return err
		}
		c, err := e.claim(ctx, 0)
		en, err2 := e.entry(ctx, 0)
		return first(err, err2, want("verdict", VerdictDone, c.Verdict), want("state", Skipped, en.State), want("code", "cancelled", en.Code))
	}},
	{name: "ClaimOfNoEntryOrNoRun", play: func(ctx context.Context, e *scriptEnv) error {
		c1, err1 := e.b.l.Claim(ctx, Address{Run: e.run, Recipient: "+19999999999"}, AtMostOnce)
		c2, err2 := e.b.l.Claim(ctx, Address{Run: e.run + "-none", Recipient: e.es[0].Recipient}, AtMostOnce)
		return first(err1, err2, want("verdict without entry", VerdictNoEntry, c1.Verdict), want("verdict without run", VerdictNoRun, c2.Verdict))
	}},
	{name: "FinishAcceptsOnce", play: func(ctx context.Context, e *scriptEnv) error {
		if err := e.accept(ctx, 0, "01JABCDEFGHJKMNPQRSTVWXYZ0"); err != nil {
			return err
		}
		r, err := e.b.l.Finish(ctx, e.addr(0), Outcome{State: Failed, Code: "X"})
		en, err2 := e.entry(ctx, 0)
		return first(err, err2, want("second finish applied", false, r.Applied), want("state", Accepted, en.State),
			want("message id", "01JABCDEFGHJKMNPQRSTVWXYZ0", en.MessageID))
	}},
	{name: "FinishRetryReleasesTheClaim", play: func(ctx context.Context, e *scriptEnv) error {
		c, err := e.claim(ctx, 0)
		if err != nil {
			return err
		}
		r, err := e.b.l.Finish(ctx, e.addr(0), Outcome{State: Queued, Mode: ReleaseRetry, Code: "HTTP_503", Attempt: c.Attempts})
		en, err2 := e.entry(ctx, 0)
		cs, err3 := e.b.l.Counters(ctx, e.run)
		return first(err, err2, err3, want("applied", true, r.Applied), want("state", Queued, en.State), want("retries", int64(1), cs.Retries))
	}},
	{name: "FinishOfAStaleAttemptIsIgnored", play: func(ctx context.Context, e *scriptEnv) error {
		c, err := e.claim(ctx, 0)
		if err != nil {
			return err
		}
		r, err := e.b.l.Finish(ctx, e.addr(0), Outcome{State: Accepted, MessageID: "m", Attempt: c.Attempts + 1})
		return first(err, want("applied", false, r.Applied))
	}},
	{name: "TheLastOutcomeCompletesTheRun", play: func(ctx context.Context, e *scriptEnv) error {
		if _, err := e.b.l.FinishExpansion(ctx, e.run, len(e.es)); err != nil {
			return err
		}
		for i := range e.es[:len(e.es)-1] {
			if err := e.accept(ctx, i, fmt.Sprintf("m%d", i)); err != nil {
				return err
			}
		}
		last := len(e.es) - 1
		c, err := e.claim(ctx, last)
		if err != nil {
			return err
		}
		r, err := e.b.l.Finish(ctx, e.addr(last), Outcome{State: Failed, Code: "131026", Attempt: c.Attempts})
		run, err2 := e.b.l.GetRun(ctx, e.run)
		return first(err, err2, want("completed", true, r.RunCompleted), want("status", RunCompleted, run.Status))
	}},
	{name: "SkipLeavesASendInFlight", play: func(ctx context.Context, e *scriptEnv) error {
		ok0, err0 := e.b.l.Skip(ctx, e.addr(0), "deleted")
		if _, err := e.claim(ctx, 1); err != nil {
			return err
		}
		ok1, err1 := e.b.l.Skip(ctx, e.addr(1), "deleted")
		return first(err0, err1, want("queued skipped", true, ok0), want("submitting skipped", false, ok1))
	}},
	{name: "DeliveryMovesForwardOnly", play: func(ctx context.Context, e *scriptEnv) error {
		if err := e.accept(ctx, 0, "01JABCDEFGHJKMNPQRSTVWXYZ0"); err != nil {
			return err
		}
		ev := DeliveryEvent{Address: e.addr(0), State: Read, MessageID: "01JABCDEFGHJKMNPQRSTVWXYZ0", TimeToDeliver: time.Second}
		v1, prior, err1 := e.b.l.ApplyDelivery(ctx, ev)
		ev.State = Delivered
		v2, _, err2 := e.b.l.ApplyDelivery(ctx, ev)
		d, err3 := e.b.l.DeliveryStats(ctx, e.run)
		return first(err1, err2, err3, want("read", DeliveryApplied, v1), want("prior", Accepted, prior), want("late delivered", DeliveryStale, v2),
			want("read count", int64(1), d.Read), want("time-to-deliver samples", int64(1), d.TimeToDeliver.Samples))
	}},
	{name: "DeliveryBeforeTheSendIsEarly", play: func(ctx context.Context, e *scriptEnv) error {
		v, prior, err := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: e.addr(0), State: Delivered})
		return first(err, want("verdict", DeliveryEarly, v), want("prior", Queued, prior))
	}},
	{name: "DeliveryOfAnotherMessageOrNoEntry", play: func(ctx context.Context, e *scriptEnv) error {
		if err := e.accept(ctx, 0, "m-new"); err != nil {
			return err
		}
		v1, _, err1 := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: e.addr(0), State: Sent, MessageID: "m-old", Strict: true})
		v2, _, err2 := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: Address{Run: e.run, Recipient: "+19999999999"}, State: Sent})
		return first(err1, err2, want("other message", DeliveryOtherMessage, v1), want("no entry", DeliveryNoEntry, v2))
	}},
	{name: "DeliveryFailureIsCountedByCodeAndClass", play: func(ctx context.Context, e *scriptEnv) error {
		if err := e.accept(ctx, 0, "m"); err != nil {
			return err
		}
		v, _, err := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: e.addr(0), State: Failed, Code: "131026", Class: "permanent", MessageID: "m"})
		d, err2 := e.b.l.DeliveryStats(ctx, e.run)
		return first(err, err2, want("verdict", DeliveryApplied, v), want("by code", int64(1), d.FailedByCode["131026"]),
			want("by class", int64(1), d.FailedByClass["permanent"]))
	}},
	{name: "UnknownIsResentOnceAfterItsQuietPeriod", resend: true, play: func(ctx context.Context, e *scriptEnv) error {
		if _, err := e.claim(ctx, 0); err != nil {
			return err
		}
		c, err := e.b.l.Claim(ctx, e.addr(0), AtMostOnce)
		if err = first(err, want("second claim", VerdictFound, c.Verdict)); err != nil {
			return err
		}
		if _, err := e.b.l.Finish(ctx, e.addr(0), Outcome{State: Unknown, Code: CodeClaimFound, Attempt: c.Attempts, Payload: []byte("task")}); err != nil {
			return err
		}
		e.b.l.now = func() time.Time { return testNow.Add(time.Second) }
		members, gone, err := e.b.l.LeaseUnknown(ctx, e.run, 10, time.Minute)
		if err = first(err, want("gone", false, gone), want("leased", 1, len(members))); err != nil {
			return err
		}
		v, payload, err := e.b.l.ReleaseForResend(ctx, e.run, members[0])
		if err = first(err, want("release", ResendEnqueue, v), want("payload", "task", string(payload))); err != nil {
			return err
		}
		if err := e.b.l.ResendEnqueued(ctx, e.run, members[0]); err != nil {
			return err
		}
		v2, _, err := e.b.l.ReleaseForResend(ctx, e.run, members[0])
		en, err2 := e.entry(ctx, 0)
		return first(err, err2, want("second release", ResendGone, v2), want("state", Queued, en.State))
	}},
	{name: "PauseResumeCancel", play: func(ctx context.Context, e *scriptEnv) error {
		p1, err1 := e.b.l.Pause(ctx, e.run, "burst")
		p2, err2 := e.b.l.Pause(ctx, e.run, "burst")
		r1, err3 := e.b.l.Resume(ctx, e.run)
		c1, n, err4 := e.b.l.Cancel(ctx, e.run, "operator")
		return first(err1, err2, err3, err4, want("first pause", true, p1), want("second pause", false, p2), want("resume", true, r1),
			want("cancel", true, c1), want("skipped by cancel", len(e.es), n))
	}},
	{name: "AReplyWithAnIDCountsOnce", play: func(ctx context.Context, e *scriptEnv) error {
		r := Reply{Run: e.run, ID: "m:01JREPLY", Button: "Yes"}
		c1, err1 := e.b.l.CountReply(ctx, r)
		c2, err2 := e.b.l.CountReply(ctx, r)
		d, err3 := e.b.l.DeliveryStats(ctx, e.run)
		return first(err1, err2, err3, want("first counted", true, c1), want("repeat counted", false, c2),
			want("replies", int64(1), d.Replies), want("taps", int64(1), d.ButtonReplies["Yes"]))
	}},
	{name: "TheReplyIDIsForgottenAfterItsMemory", play: func(ctx context.Context, e *scriptEnv) error {
		r := Reply{Run: e.run, ID: "m:01JREPLY", Memory: time.Minute}
		if _, err := e.b.l.CountReply(ctx, r); err != nil {
			return err
		}
		ttl, err := e.b.rdb.PTTL(ctx, rkeys.InboundSeen(e.run, "m:01JREPLY")).Result()
		if err != nil {
			return err
		}
		if ttl <= 0 || ttl > time.Minute {
			return fmt.Errorf("the reply id lives %v, want at most its memory of 1m", ttl)
		}
		return nil
	}},
	{name: "ParkedEventIsAppliedOnceItsSendIsRecorded", play: func(ctx context.Context, e *scriptEnv) error {
		ev := DeliveryEvent{Address: e.addr(0), State: Delivered, MessageID: "m", TimeToDeliver: 1500 * time.Microsecond}
		if err := first(e.b.l.Park(ctx, ev), e.b.l.Park(ctx, ev)); err != nil {
			return err
		}
		var got []ParkedOutcome
		report := func(o ParkedOutcome) { got = append(got, o) }
		done, left, err := e.b.l.RetryParked(ctx, time.Hour, report)
		if err = first(err, want("dropped before the send", 0, done), want("kept", 1, left)); err != nil {
			return err
		}
		if err := e.accept(ctx, 0, "m"); err != nil {
			return err
		}
		done, left, err = e.b.l.RetryParked(ctx, time.Hour, report)
		if err = first(err, want("dropped", 1, done), want("kept", 0, left), want("reports", 1, len(got))); err != nil {
			return err
		}
		en, err := e.entry(ctx, 0)
		// The time to deliver was rounded up to whole milliseconds when parked.
		return first(err, want("verdict", ParkedApplied, got[0].Verdict), want("state", Delivered, en.State),
			want("event", ev.Address, got[0].Event.Address), want("time to deliver", 2*time.Millisecond, got[0].Event.TimeToDeliver))
	}},
	{name: "ParkedEventExpires", play: func(ctx context.Context, e *scriptEnv) error {
		if err := e.b.l.Park(ctx, DeliveryEvent{Address: e.addr(0), State: Sent}); err != nil {
			return err
		}
		e.b.l.now = func() time.Time { return testNow.Add(time.Hour) }
		var got []ParkedOutcome
		done, left, err := e.b.l.RetryParked(ctx, time.Hour, func(o ParkedOutcome) { got = append(got, o) })
		n, err2 := e.b.l.ParkedCount(ctx)
		if err = first(err, err2, want("dropped", 1, done), want("kept", 0, left), want("parked", int64(0), n), want("reports", 1, len(got))); err != nil {
			return err
		}
		return first(want("verdict", ParkedExpired, got[0].Verdict), want("prior", Queued, got[0].Prior), want("age", time.Hour, got[0].Age))
	}},
}

// caseSeq makes run ids unique across backends and repeated runs.
var caseSeq atomic.Int64

// playScriptCases plays every case on rdb, one after another (the parked set is shared by
// all runs, so parked cases must not overlap), each on a run of its own.
func playScriptCases(t *testing.T, rdb *redis.Client, cleanup func(runID string)) {
	ctx := context.Background()
	for _, tc := range scriptCases {
		t.Run(tc.name, func(t *testing.T) {
			b := &testBundle{rdb: rdb, l: New(rdb, func() time.Time { return testNow })}
			runID := fmt.Sprintf("sc-%d-%d", time.Now().UnixNano(), caseSeq.Add(1))
			if cleanup != nil {
				t.Cleanup(func() { cleanup(runID) })
			}
			d := tc.delivery
			if d == "" {
				d = AtMostOnce
			}
			r := Run{ID: runID, Campaign: "script-cases", Delivery: d, Buckets: 2}
			if tc.resend {
				r.ResendAfter = time.Millisecond
			}
			if err := b.l.CreateRun(ctx, r); err != nil {
				t.Fatal(err)
			}
			rcpts := []string{"+15550000001", "bsuid:US.13491208655302741918", "+15550000003"}
			es := planEntries(rcpts, 2)
			if _, err := b.l.Plan(ctx, Batch{Run: runID, From: 0, To: len(es), Entries: es}); err != nil {
				t.Fatal(err)
			}
			if err := b.l.MarkQueued(ctx, runID, 0, len(es), es); err != nil {
				t.Fatal(err)
			}
			if err := tc.play(ctx, &scriptEnv{b: b, run: runID, es: es}); err != nil {
				t.Fatal(err)
			}
			if v, err := b.l.Verify(ctx, runID); err != nil || len(v.Mismatches) > 0 {
				t.Fatalf("after the case the counters disagree with the ledger: %+v, %v", v.Mismatches, err)
			}
		})
	}
}

// TestScriptCases plays the table of script cases on miniredis always, and on real Redis
// (whose Lua, not miniredis's, runs the scripts) when HERALD_TEST_REDIS is set.
func TestScriptCases(t *testing.T) {
	t.Run("Miniredis", func(t *testing.T) {
		playScriptCases(t, setup(t).rdb, nil)
	})
	t.Run("RealRedis", func(t *testing.T) {
		rdb := redis.NewClient(testredis.Options(t, testredis.OffsetLedger))
		t.Cleanup(func() { rdb.Close() })
		ctx := context.Background()
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatalf("%s: %v", testredis.Env, err)
		}
		// The package's database is shared with its other tests: delete only this test's keys.
		playScriptCases(t, rdb, func(runID string) {
			keys, _ := rdb.Keys(ctx, rkeys.Run(runID)+"*").Result()
			if len(keys) > 0 {
				rdb.Del(ctx, keys...)
			}
			rdb.ZRem(ctx, rkeys.Runs(), runID)
			rdb.ZRem(ctx, rkeys.CampaignRuns("script-cases"), runID)
			rdb.SRem(ctx, rkeys.ResendRuns(), runID)
			parked, _ := rdb.ZRange(ctx, rkeys.WebhookParked(), 0, -1).Result()
			for _, m := range parked {
				if strings.Contains(m, `"r":"`+runID+`"`) {
					rdb.ZRem(ctx, rkeys.WebhookParked(), m)
				}
			}
			if n, _ := rdb.ZCard(ctx, rkeys.CampaignRuns("script-cases")).Result(); n == 0 {
				rdb.ZRem(ctx, rkeys.Campaigns(), "script-cases")
			}
		})
	})
}
