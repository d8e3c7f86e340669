package worker

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
)

// booking is a reservation with its slot on this process's clock. The reservation says how
// long after Redis ran it the slot comes; that moment lies between asking and the answer, so
// wake (answered + wait) is the earliest the send may leave without going before its slot,
// and the slot itself may have been as much as the round trip (trip) before wake.
type booking struct {
	*limits.Booking
	wake time.Time
	trip time.Duration
	// waited: the send waited for its slot before it claimed.
	waited bool
	// due: the send came to its slot after its claim, within lateLimit of it (or out of
	// tries and within pairLateness, see pacedClaim): it may leave now, and onTime has
	// nothing left to do.
	due bool
	// lateSeen: late found this booking past its slot and counted it; it is counted once.
	lateSeen bool
}

// booked is b as asked for at asked and answered at answered.
func booked(b *limits.Booking, asked, answered time.Time) booking {
	if b == nil {
		b = &limits.Booking{}
	}
	return booking{Booking: b, wake: answered.Add(b.Wait), trip: answered.Sub(asked)}
}

// spent is how far a send that will not go got: a slot whose time came keeps its shared
// rate permits (limits.Waited), one booked just now gives everything back (limits.Unsent).
func (b booking) spent() limits.Spent {
	if b.waited {
		return limits.Waited
	}
	return limits.Unsent
}

// giveBack gives back what b holds as how says; a failure costs only capacity, so it is
// logged, not returned.
func (w *Worker) giveBack(ctx context.Context, b booking, how limits.Spent) {
	if err := b.GiveBack(ctx, how); err != nil {
		w.log.Warn().Err(err).Msg("could not give rate-limit permits back")
	}
}

// pacing is the switch of sender that says its limits make sends wait (see paceAndClaim).
func (w *Worker) pacing(sender string) *atomic.Bool {
	key := limits.SenderKey(sender)
	if v, ok := w.paced.Load(key); ok {
		return v.(*atomic.Bool)
	}
	v, _ := w.paced.LoadOrStore(key, new(atomic.Bool))
	return v.(*atomic.Bool)
}

// paceAndClaim reserves the send's limits and claims the recipient's ledger entry.
//
// The claim's round trip also reads whether the recipient is on the suppression list
// (claimIn), so the list is checked at send time at no cost in round trips.
//
// While its sender's limits let sends through without waiting, both go out in one pipeline:
// that saves a Redis round trip per send when throughput is bound by Redis, not by the
// limits. Once permits come with a wait, the send is rate-bound and the round trip costs
// nothing, so the permit is reserved and waited for first and the entry claimed after: a
// worker that dies while waiting then leaves no claim behind (a claim found later would make
// the recipient unknown under at-most-once although nothing was sent). The switch is per
// sender: one sender held to its rate does not cost another sender's sends a round trip.
func (w *Worker) paceAndClaim(ctx context.Context, j *job) (ledger.Claim, booking, error) {
	paced := w.pacing(j.p.Sender)
	if paced.Load() {
		return w.pacedClaim(ctx, j)
	}
	var bc *limits.BookingCmd
	var cr claimRead
	asked := w.mono()
	_, _ = w.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		bc = w.limits.ReserveIn(ctx, pipe, j.in, w.now())
		cr = w.claimIn(ctx, pipe, j)
		return nil
	})
	// Each result is read on its own: a failed reservation must not hide a claim that happened.
	c, code, cerr := w.claimed(ctx, j, cr)
	r, rerr := bc.Result(ctx)
	b := booked(r, asked, w.mono())
	if rerr == nil {
		paced.Store(!b.OK || b.Wait > 0)
	}
	if cerr != nil {
		w.unclaim(ctx, j.p, j.token, code)
		if rerr == nil {
			w.giveBack(ctx, b, limits.Unsent)
		}
		return c, b, cerr
	}
	return c, b, rerr
}

// book reserves req again now, for a fresh slot, on a copy of req: a booking that already
// holds req (a late one, whose room the fresh booking adopts) keeps the clock it was booked on.
func (w *Worker) book(ctx context.Context, req *limits.Request) (booking, error) {
	fresh := *req
	fresh.Now = w.now()
	asked := w.mono()
	r, err := w.limits.ReserveRequest(ctx, &fresh)
	return booked(r, asked, w.mono()), err
}

// pacedClaim is paceAndClaim while the limits make sends wait: reserve (keeping the place for
// up to KeepPlaceFor in all), wait for the slot, claim, and come to the slot. Waiting stops
// when the worker stops, so a shutdown never starts a send; what was reserved and not used is
// given back as limits.Waited says (the shared rate slots stay used).
//
// A send found late after its claim (the claim's round trip or the process stalled) gives the
// claim back and keeps its place for a fresh slot, as one found late before its claim does.
// Its fresh slot is usually further ahead than Limits.MaxWait (while sends keep their places
// the limit is booked about that far ahead, and a slow rate's next slot is further still), so
// onTime, which looks only that far, would have sent it back to the queue, its place lost.
//
// After lateTries slots a late send goes all the same, unless it could break the pair
// interval (tooLate): then it does not claim, or gives its booking back and returns the claim
// with errTooLate, and its caller gives the claim back (lateForPair).
func (w *Worker) pacedClaim(ctx context.Context, j *job) (ledger.Claim, booking, error) {
	p := j.p
	notClaimed := ledger.Claim{Verdict: ledger.VerdictNotClaimed}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(w.stopCtx, cancel)()
	deadline := w.now().Add(w.cfg.KeepPlaceFor)
	req := w.limits.Request(j.in, w.now())
	for try := 1; ; try++ {
		b, err := w.reserveKeepingPlace(wctx, req, deadline)
		if err != nil || !b.OK {
			return notClaimed, b, err
		}
		b.waited = true
		w.pacing(p.Sender).Store(b.Wait > 0)
		// The claim's round trip is made just before the slot, so the request can leave at
		// it (the rest is waited for after the claim).
		if err := w.sleep(wctx, b.wake.Add(-claimLead).Sub(w.mono())); err != nil {
			w.giveBack(ctx, b, limits.Waited)
			return notClaimed, b, err
		}
		// A send that wakes well after its slot (the process stalled: GC, a busy CPU) would
		// go out together with the sends of the slots after it and crowd one second; it lets
		// its slot go and takes a fresh one (its pair slot is given back, or its own booking
		// would refuse it). It is looked at again after the claim's round trip. Out of tries,
		// it claims and goes late, unless it is too late for its pair slot: then it claims
		// nothing, and the task tries again later.
		if w.late(&b) {
			if try < lateTries {
				w.giveBack(ctx, b, limits.Waited)
				continue
			}
			if w.tooLate(b) {
				w.giveBack(ctx, b, limits.Waited)
				return notClaimed, b, errTooLate
			}
		}
		c, code, err := w.claim(ctx, j)
		if err != nil {
			w.unclaim(ctx, j.p, j.token, code)
			w.giveBack(ctx, b, limits.Waited)
			return c, b, err
		}
		if c.Verdict != ledger.VerdictSend || j.suppressed {
			// Nothing to wait for: the caller settles it (a suppressed recipient is skipped).
			return c, b, nil
		}
		// Wait out the claim lead on the task's context, as onTime would. If it ends, the
		// send does not go: the booking goes back here and the error tells the caller to
		// give the claim back (a slot already come makes no wait, but the sleep still
		// reports the ended context). After lateTries tries the send goes even late, as
		// from onTime's last try, unless it is too late for its pair slot: then the error
		// tells the caller to give the claim back.
		if err := w.sleep(ctx, b.wake.Sub(w.mono())); err != nil {
			w.giveBack(ctx, b, limits.Waited)
			return c, b, err
		}
		if !w.late(&b) || (try >= lateTries && !w.tooLate(b)) {
			b.due = true
			return c, b, nil
		}
		if try >= lateTries {
			w.giveBack(ctx, b, limits.Waited)
			return c, b, errTooLate
		}
		// Late after the claim: nothing was sent, so the claim goes back (its attempt with it)
		// and the send waits in place for a fresh slot. This is not a throttled send (the
		// same task sends after all), so it has its own code and is not counted as one.
		w.giveBack(ctx, b, limits.Waited)
		if err := w.requeue(p, c.Attempts, CodeLateAfterClaim); err != nil {
			return c, b, err
		}
	}
}

// CodeLateAfterClaim is the code of a claim a paced send gave back because it came to its
// slot late after claiming: the same task takes a fresh slot and sends, so it is no refusal.
const CodeLateAfterClaim = ledger.CodeLateAfterClaim

// lateTries is how many slots a send late for them takes before it goes late all the same
// (a busy machine still sends), unless it is too late for its pair slot (tooLate).
const lateTries = 3

// lateLimit is how late after its slot a send may still go out; a later one lets its slot go
// and takes a fresh one. Sends leave between their slot and lateLimit after it, so a sliding
// one-second window holds at most rate × (1 s + lateLimit) + 1 of them before the network's
// jitter: at 80/s 82 (1.025×), at 200/s 204. A tighter limit lets more slots go unused on a
// busy machine (docs/benchmarks.md).
const lateLimit = 15 * time.Millisecond

// claimLead is how long before its slot a paced send claims its recipient: about a loaded
// machine's round trip to Redis, so the claim does not make the send late. The claim is then
// held that long before the request, much less than a send that reserved and claimed in one
// round trip holds it.
const claimLead = 10 * time.Millisecond

// late reports whether a send is past its slot by more than lateLimit, and counts it once
// per booking (a booking looked at before and after its claim is one late send). The slot is
// taken as b.wake: an answer that came late is not counted (counting it cost a quarter of
// the throughput on a loaded machine, where Redis's round trips reach tens of ms).
func (w *Worker) late(b *booking) bool {
	if w.mono().Sub(b.wake) <= lateLimit {
		return false
	}
	if w.metrics != nil && !b.lateSeen {
		w.metrics.LimitWaits.WithLabelValues("late").Inc()
	}
	b.lateSeen = true
	return true
}

// pairLateness is how late after its slot a send that holds a pair slot may still go once it
// is out of fresh slots (lateTries): half of limits.Config.PairMargin (none when the margin is
// off). The next send to the same person is booked PairInterval + PairMargin after this
// send's slot, not after its request, so the margin is all the lateness the pair interval
// can absorb; half of it is spent here, and the other half is left for what comes after
// this check and before the request reaches Connectly (the OnSending hook, the request
// itself), which is no less delayed on a loaded machine. Lateness is counted here from the
// earliest the slot can have been (wake less the reservation's round trip, tooLate), since an
// answer delayed on its way back delays the send as much.
func (w *Worker) pairLateness() time.Duration {
	return max(w.cfg.Limits.PairMargin, 0) / 2
}

// tooLate reports whether b, come late to its slot on its last try, could break the pair
// interval if it went now: it holds a pair slot and is past it by more than pairLateness.
// The rate limits tolerate a late send (see lateLimit), so one without a pair slot goes.
func (w *Worker) tooLate(b booking) bool {
	req := b.Request()
	if !b.OK || req == nil || len(req.Limits) <= limits.LimPair || req.Limits[limits.LimPair].Rate <= 0 {
		return false
	}
	return w.mono().Sub(b.wake)+b.trip > w.pairLateness()
}

// errTooLate is the error of a send that came to its last slot too late to keep the pair
// interval (tooLate): it did not go, and its booking has been given back.
var errTooLate = errors.New("too late for its slot to keep the pair interval")

// CodeLateForPair is the code of a claim given back because its send came to its last slot too
// late to keep the pair interval (tooLate): nothing was sent, and the task tries again later.
const CodeLateForPair = ledger.CodeLateForPair

// lateForPair ends a task whose send was too late for its slot to keep the pair interval
// (errTooLate): its claim, when c is one, goes back unused (CodeLateForPair, the attempt
// given back and nothing counted, as a claim given back late after its claim), and the task
// tries again after ThrottleDelay, a throttle that uses no attempt of the task. Nothing was
// sent and nothing was refused, so the recipient is neither failed nor skipped.
func (w *Worker) lateForPair(j *job, c ledger.Claim) error {
	if c.Verdict == ledger.VerdictSend {
		if err := w.requeue(j.p, c.Attempts, CodeLateForPair); err != nil {
			return err
		}
	}
	j.log.Debug().Dur("retry_in", w.cfg.ThrottleDelay).Msg("too late for its slot to keep the pair interval; the send will try again")
	return &ThrottledError{RetryAfter: w.cfg.ThrottleDelay, Reason: "late for its slot"}
}

// onTime waits for b's slot and returns once the claimed send may leave: within lateLimit of
// its slot. A send found later (the claim's round trip or the process stalled) lets its slot
// go (limits.Late: the pair slot goes back, the shared limits keep theirs used) and waits for
// a fresh one, at most twice (lateTries slots in all), keeping its claim: for up to
// Limits.MaxWait, as a send that reserved and claimed in one round trip already does; late
// for its last slot it goes all the same, unless it is too late for its pair slot (tooLate).
// The booking returned is !OK when no fresh slot came within Limits.MaxWait (it says why, and
// has given its room in the tier and the cap back); err is Redis's or ctx's (when ctx ended,
// the booking has given back what the send did not use), or errTooLate (the booking has been
// given back as limits.Waited; the claim is the caller's to give back, see lateForPair). A
// booking pacedClaim already brought to its slot (due) is returned as it is.
func (w *Worker) onTime(ctx context.Context, b booking) (booking, error) {
	if b.due {
		return b, nil
	}
	for try := 1; ; try++ {
		if err := w.sleep(ctx, b.wake.Sub(w.mono())); err != nil {
			// Not sent: what the booking holds goes back as far as it got (a slot whose
			// time has come keeps its shared rate permits, see limits.Waited).
			how := b.spent()
			if !w.mono().Before(b.wake) {
				how = limits.Waited
			}
			w.giveBack(ctx, b, how)
			return b, err
		}
		if !w.late(&b) {
			return b, nil
		}
		if try >= lateTries {
			if !w.tooLate(b) {
				return b, nil
			}
			w.giveBack(ctx, b, limits.Waited)
			return b, errTooLate
		}
		w.giveBack(ctx, b, limits.Late)
		nb, err := w.book(ctx, b.Request())
		nb.Adopt(b.Booking)
		nb.waited = true
		if err != nil || !nb.OK {
			// Not sent after all: the room taken in the tier and the cap goes back.
			w.giveBack(ctx, nb, limits.Turned)
			return nb, err
		}
		b = nb
	}
}

// reserveKeepingPlace reserves, and while the sender, business or run limits are booked
// further ahead than Limits.MaxWait it waits in place until a slot should be free (with a little
// jitter, so the waiting sends do not all ask at once) and asks again, until deadline. The
// deadline is on the worker's clock (Deps.Now), whose time Deps.Sleep passes; the slots
// themselves (wake, late) are on the process's monotonic clock.
func (w *Worker) reserveKeepingPlace(ctx context.Context, req *limits.Request, deadline time.Time) (booking, error) {
	for {
		b, err := w.book(ctx, req)
		// A wait for one person's pair slot is theirs alone: reschedule it, keep the place
		// for the next task.
		if err != nil || b.OK || b.Reason != limits.ReasonRate || b.Binding == limits.LimPair {
			return b, err
		}
		left := deadline.Sub(w.now())
		if left <= 0 {
			return b, nil
		}
		d := min(b.Wait-w.cfg.Limits.MaxWait, left) + rand.N(20*time.Millisecond)
		if err := w.sleep(ctx, d); err != nil {
			return b, err
		}
	}
}
