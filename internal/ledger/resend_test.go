package ledger

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// resendClock is a ledger clock the resend tests move by hand.
type resendClock struct{ ms atomic.Int64 }

func newResendClock() *resendClock {
	c := &resendClock{}
	c.ms.Store(testNow.UnixMilli())
	return c
}

func (c *resendClock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *resendClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

const (
	quiet = 30 * time.Minute
	lease = time.Minute
)

// resendStory is one story about the resend of unknown recipients, told against a Redis
// (miniredis, or a real one with HERALD_TEST_REDIS) through a ledger whose clock it moves.
type resendStory struct {
	name string
	run  func(t *testing.T, rs *resendBundle)
}

type resendBundle struct {
	rdb   redis.UniversalClient
	l     *Ledger
	clock *resendClock
	runID string
}

// seed creates a fully expanded run of n queued recipients with the given quiet period (0:
// the run does not resend).
func (rs *resendBundle) seed(t *testing.T, after time.Duration, n int) []PlanEntry {
	t.Helper()
	ctx := context.Background()
	rcpts := recipients(n)
	buckets := BucketsFor(n)
	err := rs.l.CreateRun(ctx, Run{ID: rs.runID, Campaign: "spring-sale", Delivery: AtMostOnce, Template: "spring_sale",
		Language: "en", Buckets: buckets, ResendAfter: after})
	if err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	entries := planEntries(rcpts, buckets)
	if _, err := rs.l.PlanQueued(ctx, Batch{Run: rs.runID, From: 0, To: n, Entries: entries}); err != nil {
		t.Fatalf("PlanQueued: %v", err)
	}
	if err := rs.l.MarkQueuedAt(ctx, rs.runID, 0, n, 0); err != nil {
		t.Fatalf("MarkQueuedAt: %v", err)
	}
	if _, err := rs.l.FinishExpansion(ctx, rs.runID, n); err != nil {
		t.Fatalf("FinishExpansion: %v", err)
	}
	return entries
}

func payloadOf(pe PlanEntry) []byte {
	return []byte(`{"to":"` + pe.Recipient + `","tpl":"spring_sale"}`)
}

// lostAnswer claims pe and settles the attempt unknown, as a worker does when the answer to a
// request it wrote never came.
func (rs *resendBundle) lostAnswer(t *testing.T, pe PlanEntry) {
	t.Helper()
	ctx := context.Background()
	c, err := rs.l.Claim(ctx, Address{Run: rs.runID, Bucket: pe.Bucket, Recipient: pe.Recipient}, AtMostOnce)
	if err != nil || c.Verdict != VerdictSend {
		t.Fatalf("Claim(%s) = %+v, %v; want send", pe.Recipient, c, err)
	}
	r, err := rs.l.Finish(ctx, Address{Run: rs.runID, Bucket: pe.Bucket, Recipient: pe.Recipient},
		Outcome{State: Unknown, Code: "NO_RESPONSE", Attempt: c.Attempts, Payload: payloadOf(pe)})
	if err != nil || !r.Applied {
		t.Fatalf("Finish(%s, unknown) = %+v, %v", pe.Recipient, r, err)
	}
}

// accept claims pe and settles it accepted.
func (rs *resendBundle) accept(t *testing.T, pe PlanEntry) {
	t.Helper()
	ctx := context.Background()
	c, err := rs.l.Claim(ctx, Address{Run: rs.runID, Bucket: pe.Bucket, Recipient: pe.Recipient}, AtMostOnce)
	if err != nil || c.Verdict != VerdictSend {
		t.Fatalf("Claim(%s) = %+v, %v; want send", pe.Recipient, c, err)
	}
	if _, err := rs.l.Finish(ctx, Address{Run: rs.runID, Bucket: pe.Bucket, Recipient: pe.Recipient}, Outcome{State: Accepted, MessageID: "m-" + pe.Recipient, Attempt: c.Attempts}); err != nil {
		t.Fatal(err)
	}
}

func (rs *resendBundle) lease(t *testing.T) ([]string, bool) {
	t.Helper()
	m, gone, err := rs.l.LeaseUnknown(context.Background(), rs.runID, 100, lease)
	if err != nil {
		t.Fatalf("LeaseUnknown: %v", err)
	}
	return m, gone
}

func (rs *resendBundle) release(t *testing.T, member string) (ResendVerdict, []byte) {
	t.Helper()
	v, p, err := rs.l.ReleaseForResend(context.Background(), rs.runID, member)
	if err != nil {
		t.Fatalf("ReleaseForResend(%s): %v", member, err)
	}
	return v, p
}

func (rs *resendBundle) waiting(t *testing.T) int64 {
	t.Helper()
	n, err := rs.rdb.ZCard(context.Background(), rkeys.Unknown(rs.runID)).Result()
	if err != nil {
		t.Fatal(err)
	}
	c, err := rs.l.Counters(context.Background(), rs.runID)
	if err != nil {
		t.Fatal(err)
	}
	if c.ResendWaiting != n {
		t.Fatalf("resend_waiting counter %d, but the resend set holds %d", c.ResendWaiting, n)
	}
	return n
}

func (rs *resendBundle) entry(t *testing.T, pe PlanEntry) Entry {
	t.Helper()
	e, ok, err := rs.l.Entry(context.Background(), Address{Run: rs.runID, Bucket: pe.Bucket, Recipient: pe.Recipient})
	if err != nil || !ok {
		t.Fatalf("Entry(%s) = %v, %v", pe.Recipient, ok, err)
	}
	return e
}

func (rs *resendBundle) status(t *testing.T) RunStatus {
	t.Helper()
	r, err := rs.l.GetRun(context.Background(), rs.runID)
	if err != nil {
		t.Fatal(err)
	}
	return r.Status
}

func (rs *resendBundle) inIndex(t *testing.T) bool {
	t.Helper()
	ok, err := rs.rdb.SIsMember(context.Background(), rkeys.ResendRuns(), rs.runID).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

var resendStories = []resendStory{
	{"LostAnswerIsResentOnceAfterTheQuietPeriod", func(t *testing.T, rs *resendBundle) {
		ctx := context.Background()
		es := rs.seed(t, quiet, 2)
		if !rs.inIndex(t) {
			t.Fatal("a run with resend_after is not in the resend index")
		}
		rs.accept(t, es[1])
		rs.lostAnswer(t, es[0])
		if n := rs.waiting(t); n != 1 {
			t.Fatalf("%d waiting for a resend, want 1", n)
		}
		if s := rs.status(t); s != RunRunning {
			t.Fatalf("run %s while a recipient waits for its resend, want running", s)
		}
		rs.clock.Advance(quiet - time.Second)
		if m, _ := rs.lease(t); len(m) != 0 {
			t.Fatalf("leased %v before the quiet period ended", m)
		}
		rs.clock.Advance(time.Second)
		m, gone := rs.lease(t)
		if gone || len(m) != 1 {
			t.Fatalf("lease after the quiet period = %v (gone %v), want one member", m, gone)
		}
		if again, _ := rs.lease(t); len(again) != 0 {
			t.Fatalf("a leased member was leased again: %v", again)
		}
		v, payload := rs.release(t, m[0])
		if v != ResendEnqueue || string(payload) != string(payloadOf(es[0])) {
			t.Fatalf("release = %s %q, want enqueue with the task payload", v, payload)
		}
		if e := rs.entry(t, es[0]); e.State != Queued || e.Attempts != 1 {
			t.Fatalf("entry after release %+v, want queued after one attempt", e)
		}
		// The sweeper died before it confirmed the task: the same member is handed out again,
		// without counting a second resend.
		if v, _ := rs.release(t, m[0]); v != ResendEnqueue {
			t.Fatalf("second release = %s, want enqueue again (same task id)", v)
		}
		c, _ := rs.l.Counters(ctx, rs.runID)
		if c.ResentUnknown != 1 || c.States[Queued] != 1 || c.States[Unknown] != 0 {
			t.Fatalf("counters after release: resent_unknown %d, states %v", c.ResentUnknown, c.States)
		}
		if err := rs.l.ResendEnqueued(ctx, rs.runID, m[0]); err != nil {
			t.Fatal(err)
		}
		if n := rs.waiting(t); n != 0 {
			t.Fatalf("%d waiting after the resend was enqueued", n)
		}
		// The resend's answer is lost too: it stays unknown, never resent again.
		rs.lostAnswer(t, es[0])
		if n := rs.waiting(t); n != 0 {
			t.Fatalf("a resent recipient waits for another resend (%d)", n)
		}
		if s := rs.status(t); s != RunCompleted {
			t.Fatalf("run %s, want completed", s)
		}
		hist, err := rs.l.History(ctx, Address{Run: rs.runID, Bucket: es[0].Bucket, Recipient: es[0].Recipient})
		if err != nil {
			t.Fatal(err)
		}
		var outcomes []string
		for _, h := range hist {
			outcomes = append(outcomes, fmt.Sprintf("%s:%d:%s", h.Outcome, h.Attempt, h.Code))
		}
		wantEqual(t, "history", []string{"unknown:1:NO_RESPONSE", "resend:1:NO_RESPONSE", "unknown:2:NO_RESPONSE"}, outcomes)
		rs.clock.Advance(2 * quiet)
		if m, gone := rs.lease(t); !gone || len(m) != 0 {
			t.Fatalf("lease of a finished run = %v (gone %v), want gone", m, gone)
		}
		if rs.inIndex(t) {
			t.Fatal("a finished run with nothing to resend stays in the resend index")
		}
	}},
	{"DeliveryEventSettlesItFirst", func(t *testing.T, rs *resendBundle) {
		ctx := context.Background()
		es := rs.seed(t, quiet, 1)
		rs.lostAnswer(t, es[0])
		v, _, err := rs.l.ApplyDelivery(ctx, DeliveryEvent{Address: Address{Run: rs.runID, Bucket: es[0].Bucket, Recipient: es[0].Recipient},
			State: Delivered, MessageID: "01JABCDEFGHJKMNPQRSTVWXYZ0"})
		if err != nil || v != DeliveryApplied {
			t.Fatalf("ApplyDelivery = %s, %v", v, err)
		}
		if n := rs.waiting(t); n != 0 {
			t.Fatalf("%d still waiting after the delivery event", n)
		}
		if s := rs.status(t); s != RunCompleted {
			t.Fatalf("run %s after its last unknown was settled, want completed", s)
		}
		rs.clock.Advance(quiet)
		if m, _ := rs.lease(t); len(m) != 0 {
			t.Fatalf("leased %v after a delivery event settled it", m)
		}
		if e := rs.entry(t, es[0]); e.State != Delivered {
			t.Fatalf("entry %+v, want delivered", e)
		}
	}},
	{"EventAfterTheLeaseStopsTheRelease", func(t *testing.T, rs *resendBundle) {
		ctx := context.Background()
		es := rs.seed(t, quiet, 1)
		rs.lostAnswer(t, es[0])
		rs.clock.Advance(quiet)
		m, _ := rs.lease(t)
		if len(m) != 1 {
			t.Fatalf("leased %v", m)
		}
		// The event comes between the lease and the release.
		ev := DeliveryEvent{Address: Address{Run: rs.runID, Bucket: es[0].Bucket, Recipient: es[0].Recipient}, State: Read}
		if v, _, err := rs.l.ApplyDelivery(ctx, ev); err != nil || v != DeliveryApplied {
			t.Fatalf("ApplyDelivery = %v, %v", v, err)
		}
		if v, p := rs.release(t, m[0]); v != ResendGone || p != nil {
			t.Fatalf("release after the event = %s %q, want gone", v, p)
		}
		if e := rs.entry(t, es[0]); e.State != Read {
			t.Fatalf("entry %+v, want read", e)
		}
		c, _ := rs.l.Counters(ctx, rs.runID)
		if c.ResentUnknown != 0 {
			t.Fatalf("resent_unknown %d, want 0", c.ResentUnknown)
		}
	}},
	{"SettledWhileLeasedIsDropped", func(t *testing.T, rs *resendBundle) {
		ctx := context.Background()
		es := rs.seed(t, quiet, 1)
		rs.lostAnswer(t, es[0])
		rs.clock.Advance(quiet)
		m, _ := rs.lease(t)
		// Something settled the entry without taking it out of the set (e.g. an entry rewritten
		// by hand): the release checks the entry itself.
		raw := "d||1||m"
		if err := rs.rdb.HSet(ctx, rkeys.LedgerBucket(rs.runID, es[0].Bucket), "15550000000", raw).Err(); err != nil {
			t.Fatal(err)
		}
		if v, _ := rs.release(t, m[0]); v != ResendSettled {
			t.Fatalf("release = %s, want settled", v)
		}
		if n := rs.waiting(t); n != 0 {
			t.Fatalf("%d waiting after the drop", n)
		}
	}},
	{"LeaseRunsOutAndTheMemberComesBack", func(t *testing.T, rs *resendBundle) {
		es := rs.seed(t, quiet, 1)
		rs.lostAnswer(t, es[0])
		rs.clock.Advance(quiet)
		m1, _ := rs.lease(t)
		// The sweeper that leased it died: nothing comes back before the lease ends...
		rs.clock.Advance(lease - time.Millisecond)
		if m, _ := rs.lease(t); len(m) != 0 {
			t.Fatalf("leased %v during another sweeper's lease", m)
		}
		rs.clock.Advance(time.Millisecond)
		m2, _ := rs.lease(t)
		wantEqual(t, "members after the lease", m1, m2)
		if v, _ := rs.release(t, m2[0]); v != ResendEnqueue {
			t.Fatalf("release = %s, want enqueue", v)
		}
	}},
	{"NoPolicyNoTracking", func(t *testing.T, rs *resendBundle) {
		es := rs.seed(t, 0, 1)
		rs.lostAnswer(t, es[0])
		if n := rs.waiting(t); n != 0 {
			t.Fatalf("a run without resend_after tracks %d unknown recipients", n)
		}
		if rs.inIndex(t) {
			t.Fatal("a run without resend_after is in the resend index")
		}
		if s := rs.status(t); s != RunCompleted {
			t.Fatalf("run %s, want completed", s)
		}
	}},
	{"ClaimFoundLeavesTheEntryToFinish", func(t *testing.T, rs *resendBundle) {
		ctx := context.Background()
		es := rs.seed(t, quiet, 1)
		pe := es[0]
		if c, err := rs.l.Claim(ctx, Address{Run: rs.runID, Bucket: pe.Bucket, Recipient: pe.Recipient}, AtMostOnce); err != nil || c.Verdict != VerdictSend {
			t.Fatalf("first claim = %+v, %v", c, err)
		}
		// The worker died mid-request; the redelivered task finds the claim.
		c, err := rs.l.Claim(ctx, Address{Run: rs.runID, Bucket: pe.Bucket, Recipient: pe.Recipient}, AtMostOnce)
		if err != nil || c.Verdict != VerdictFound || c.Attempts != 1 {
			t.Fatalf("claim over an earlier claim = %+v, %v; want found after 1 attempt", c, err)
		}
		if e := rs.entry(t, pe); e.State != Submitting {
			t.Fatalf("entry %+v after found, want still submitting", e)
		}
		r, err := rs.l.Finish(ctx, Address{Run: rs.runID, Bucket: pe.Bucket, Recipient: pe.Recipient},
			Outcome{State: Unknown, Code: CodeClaimFound, Attempt: c.Attempts, Payload: payloadOf(pe)})
		if err != nil || !r.Applied {
			t.Fatalf("Finish = %+v, %v", r, err)
		}
		if n := rs.waiting(t); n != 1 {
			t.Fatalf("%d waiting, want 1", n)
		}
		cs, _ := rs.l.Counters(ctx, rs.runID)
		if cs.Codes["unknown:"+CodeClaimFound] != 1 || cs.States[Unknown] != 1 {
			t.Fatalf("counters %v %v", cs.States, cs.Codes)
		}
	}},
	{"CancelDropsTheWaiting", func(t *testing.T, rs *resendBundle) {
		ctx := context.Background()
		es := rs.seed(t, quiet, 1)
		rs.lostAnswer(t, es[0])
		if _, _, err := rs.l.Cancel(ctx, rs.runID, "test"); err != nil {
			t.Fatal(err)
		}
		m, _ := rs.lease(t) // before the quiet period: a cancelled run's members all come
		if len(m) != 1 {
			t.Fatalf("leased %v from a cancelled run, want its one member", m)
		}
		if v, _ := rs.release(t, m[0]); v != ResendCancelled {
			t.Fatalf("release = %s, want cancelled", v)
		}
		if e := rs.entry(t, es[0]); e.State != Unknown {
			t.Fatalf("entry %+v, want still unknown", e)
		}
		r, _ := rs.l.GetRun(ctx, rs.runID)
		if r.Finished.IsZero() || rs.waiting(t) != 0 {
			t.Fatalf("cancelled run not finished (%v) or still waiting", r.Finished)
		}
	}},
	{"ConcurrentSweepersReleaseOnce", func(t *testing.T, rs *resendBundle) {
		ctx := context.Background()
		es := rs.seed(t, quiet, 20)
		for _, pe := range es {
			rs.lostAnswer(t, pe)
		}
		rs.clock.Advance(quiet)
		var mu sync.Mutex
		released := map[string]int{}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 3 {
					m, _, err := rs.l.LeaseUnknown(ctx, rs.runID, 7, lease)
					if err != nil {
						t.Error(err)
						return
					}
					for _, member := range m {
						v, _, err := rs.l.ReleaseForResend(ctx, rs.runID, member)
						if err != nil {
							t.Error(err)
							return
						}
						if v == ResendEnqueue {
							mu.Lock()
							released[member]++
							mu.Unlock()
						}
					}
				}
			})
		}
		wg.Wait()
		if len(released) != len(es) {
			t.Fatalf("%d of %d members released", len(released), len(es))
		}
		for m, n := range released {
			if n != 1 {
				t.Errorf("member %s released %d times", m, n)
			}
		}
		c, _ := rs.l.Counters(ctx, rs.runID)
		if c.ResentUnknown != int64(len(es)) {
			t.Fatalf("resent_unknown %d, want %d", c.ResentUnknown, len(es))
		}
	}},
}

// lateAcceptStories: a worker whose claim another attempt found (the entry unknown,
// CLAIM_FOUND) gets Connectly's accept after all.
var lateAcceptStories = []resendStory{
	{"LateAcceptSettlesTheUnknownEntry", func(t *testing.T, rs *resendBundle) {
		ctx := context.Background()
		pe := rs.seed(t, time.Hour, 1)[0]
		a := Address{Run: rs.runID, Bucket: pe.Bucket, Recipient: pe.Recipient}
		slow, err := rs.l.ClaimWith(ctx, a, AtMostOnce, "slowworker01")
		if err != nil || slow.Verdict != VerdictSend {
			t.Fatalf("first claim %+v, %v", slow, err)
		}
		found, err := rs.l.ClaimWith(ctx, a, AtMostOnce, "otherworker2")
		if err != nil || found.Verdict != VerdictFound {
			t.Fatalf("second claim %+v, %v; want found", found, err)
		}
		if r, err := rs.l.Finish(ctx, a, Outcome{State: Unknown, Code: CodeClaimFound, Attempt: found.Attempts, Payload: payloadOf(pe)}); err != nil || !r.Applied {
			t.Fatalf("unknown: %+v, %v", r, err)
		}
		if n := rs.waiting(t); n != 1 {
			t.Fatalf("%d waiting for a resend, want 1", n)
		}
		// Another attempt's accept, or one with no attempt, changes nothing.
		for _, o := range []Outcome{{State: Accepted, MessageID: "m-other", Attempt: slow.Attempts + 1}, {State: Accepted, MessageID: "m-none"}} {
			if r, err := rs.l.Finish(ctx, a, o); err != nil || r.Applied {
				t.Fatalf("accept %+v: %+v, %v; want nothing applied", o, r, err)
			}
		}
		r, err := rs.l.Finish(ctx, a, Outcome{State: Accepted, MessageID: "m-late", Attempt: slow.Attempts, Token: "slowworker01"})
		if err != nil || !r.Applied || !r.RunCompleted {
			t.Fatalf("late accept: %+v, %v; want applied, completing the run", r, err)
		}
		if e := rs.entry(t, pe); e.State != Accepted || e.MessageID != "m-late" || e.Attempts != slow.Attempts {
			t.Fatalf("entry %+v, want accepted with the late message id", e)
		}
		if n := rs.waiting(t); n != 0 {
			t.Fatalf("%d waiting for a resend after the accept, want 0", n)
		}
		c, err := rs.l.Counters(ctx, rs.runID)
		if err != nil {
			t.Fatal(err)
		}
		if c.States[Accepted] != 1 || c.States[Unknown] != 0 || c.Codes["settled:accepted"] != 1 {
			t.Fatalf("counters %+v, want one accepted, settled from unknown", c)
		}
		if members, _ := rs.lease(t); len(members) != 0 {
			t.Fatalf("leased %v, want no resend", members)
		}
	}},
	{"LateAcceptLeavesAnUnknownFromALostAnswer", func(t *testing.T, rs *resendBundle) {
		ctx := context.Background()
		pe := rs.seed(t, time.Hour, 1)[0]
		rs.lostAnswer(t, pe)
		a := Address{Run: rs.runID, Bucket: pe.Bucket, Recipient: pe.Recipient}
		if r, err := rs.l.Finish(ctx, a, Outcome{State: Accepted, MessageID: "m-late", Attempt: 1}); err != nil || r.Applied {
			t.Fatalf("accept after the worker's own unknown: %+v, %v; want nothing applied", r, err)
		}
		if e := rs.entry(t, pe); e.State != Unknown {
			t.Fatalf("entry %+v, want unknown", e)
		}
	}},
}

// TestResendUnknown tells every resend story on miniredis.
func TestResendUnknown(t *testing.T) {
	t.Parallel()
	for _, s := range slices.Concat(resendStories, lateAcceptStories, resendSettleStories) {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			clock := newResendClock()
			s.run(t, &resendBundle{rdb: b.rdb, l: New(b.rdb, clock.Now), clock: clock, runID: "resend/" + s.name})
		})
	}
}

// TestResendUnknownRealRedis tells the same stories on a real Redis, whose Lua runs the
// scripts.
func TestResendUnknownRealRedis(t *testing.T) {
	t.Parallel()
	for _, s := range slices.Concat(resendStories, lateAcceptStories, resendSettleStories) {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			runID := fmt.Sprintf("test-resend-%s-%d", s.name, time.Now().UnixNano())
			b := realRedis(t, runID)
			t.Cleanup(func() { b.rdb.SRem(context.Background(), rkeys.ResendRuns(), runID) })
			clock := newResendClock()
			s.run(t, &resendBundle{rdb: b.rdb, l: New(b.rdb, clock.Now), clock: clock, runID: runID})
		})
	}
}
