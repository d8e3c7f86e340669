package worker

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
)

// The suppression list at send time.
//
// Expansion plans a recipient on the suppression list as skipped(suppressed), and a reply's
// follow-up is refused to one; but a task may wait long after it was planned (a delayed
// follow-up, a paused run's held tasks, a send waiting for the daily tier, the resend of an
// unknown recipient), and an opt-out (STOP, an opt-out answer) cancels nothing queued. So every
// send reads its recipient's suppression again in the round trip of its claim (claimIn: one
// pipeline with the claim, and with the reservation while the sender's permits come without a
// wait), and a claim that says send to a recipient suppressed for this message settles the
// entry skipped(suppressed) with no request (skipSuppressed). A read that fails lets nothing
// go: the claim goes back by its token and the task tries again, as after a claim whose answer
// was lost. The fallback template after a refused session message, which waits for a slot of
// its own after the claim, reads the list again before its request (recheckSuppressed). The
// one send that goes to a suppressed recipient is the confirmation of the opt-out itself: the
// follow-up of an on_reply rule with suppress: true (SendPayload.ConfirmsOptOut).
//
// An entry blocks every message, or marketing messages only (a person who stopped marketing
// messages, Meta 131050; ledger.Scope). Which messages count as marketing is decided here, at
// send time, where it is known what goes (marketing): expansion leaves a session message's
// send to it.

// CodeSuppressionUnread is the code of a claim given back because the suppression list could
// not be read in its round trip: the send is not made unchecked, and the task tries again.
const CodeSuppressionUnread = ledger.CodeSuppressionUnread

// claimRead is a send's claim and the read of its recipient's suppression, queued in one
// pipeline (claimIn).
type claimRead struct {
	claim *ledger.ClaimCmd
	supp  *ledger.SuppressedCmd
	// kept reads the answer of the keep of a session message's fallback (keptFallback), nil
	// when nothing is kept.
	kept func() error
}

// claimIn queues j's claim and the read of its recipient's entry on the suppression list in
// pipe. The list has no hash tag, so it cannot be read inside the claim's script on Redis
// Cluster; a pipeline may hold commands for several slots.
func (w *Worker) claimIn(ctx context.Context, pipe redis.Pipeliner, j *job) claimRead {
	p := j.p
	r := claimRead{
		claim: w.ledger.ClaimIn(ctx, pipe, p.Address(), ledger.Delivery(p.Delivery), j.token),
		supp:  w.ledger.SuppressedIn(ctx, pipe, p.To),
	}
	switch fb, keep := w.keptFallback(j); {
	case fb != nil:
		r.kept = w.ledger.KeepFallbackIn(ctx, pipe, p.Address(), fb, w.cfg.LateFallbackFor)
	case keep:
		// A session payload that sends something else this time (its fallback, the window
		// closed in Herald's record): a fallback an earlier attempt kept must not be sent
		// again by a late refusal of that attempt's message.
		r.kept = w.ledger.ForgetFallbackIn(ctx, pipe, p.Address())
	}
	return r
}

// claimed reads r after its pipeline ran, and sets j.suppressed: the claim says send and the
// recipient is on the suppression list for the message j sends (blocked). On an error the
// claim must be given back by its token (unclaim) under the code returned: the claim's answer
// was lost (CodeClaimUnanswered), or it said send and the suppression list could not be read
// (CodeSuppressionUnread; the Claim returned is then empty, so nothing else settles it).
// A suppression read that failed for a claim that sends nothing is of no matter.
func (w *Worker) claimed(ctx context.Context, j *job, r claimRead) (ledger.Claim, string, error) {
	j.suppressed = false
	c, err := r.claim.Result(ctx)
	if err != nil {
		return c, CodeClaimUnanswered, err
	}
	if c.Verdict != ledger.VerdictSend {
		return c, "", nil
	}
	s, err := r.supp.Result()
	if err != nil {
		return ledger.Claim{}, CodeSuppressionUnread, err
	}
	if r.kept != nil {
		if err := r.kept(); err != nil {
			return ledger.Claim{}, ledger.CodeFallbackUnkept, err
		}
	}
	j.suppressed = w.blocked(j, s)
	return c, "", nil
}

// blocked reports whether s, j's recipient's entry on the suppression list, stops the message
// j sends now. The confirmation of an opt-out goes to the person who just opted out.
func (w *Worker) blocked(j *job, s ledger.Suppression) bool {
	return s.Blocks(w.marketing(j)) && !j.p.ConfirmsOptOut
}

// marketing reports whether the message j sends now counts as marketing for the suppression
// list: a template (a session message's fallback too) by its category
// (ledger.MarketingCategory: an unknown or empty one counts); a campaign's session message
// unless Config.CampaignSessionsNotMarketing (by default it counts: a broadcast is usually
// promotional); a follow-up's session message, which answers the customer's own reply, never.
func (w *Worker) marketing(j *job) bool {
	if j.bound == nil {
		return ledger.MarketingCategory(j.in.Category)
	}
	if _, _, followup := ledger.FollowupOf(j.p.Run); followup {
		return false
	}
	return !w.cfg.CampaignSessionsNotMarketing
}

// claim claims j's recipient and reads its suppression in one round trip (claimIn), for a
// send that reserved its limits before.
func (w *Worker) claim(ctx context.Context, j *job) (ledger.Claim, string, error) {
	var r claimRead
	_, _ = w.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		r = w.claimIn(ctx, pipe, j)
		return nil
	})
	return w.claimed(ctx, j, r)
}

// skipSuppressed settles a claimed send whose recipient is on the suppression list for its
// message: skipped
// (ledger.SkipSuppressed, the reason expansion plans such a recipient with) under the task's
// claim, its attempt given back, and counted as a skip; unknown, when an earlier attempt may
// have gone out (a maybe-sent retry, counted unknown; a resend, withdrawn and not counted
// again). No request is made; the caller has given the booking back.
func (w *Worker) skipSuppressed(j *job) error {
	r, err := w.finishRetrying(j.p, ledger.Outcome{State: ledger.Skipped, Code: ledger.SkipSuppressed,
		Attempt: j.claim.Attempts, Token: j.token})
	if err != nil {
		return err
	}
	if w.countSkip(j.log, j.p, r.Moved(ledger.Skipped), ledger.SkipSuppressed) {
		j.log.Info().Msg("skipped: the recipient is on the suppression list for this message")
	}
	if r.RunCompleted {
		j.log.Info().Msg("run completed")
	}
	return nil
}

// recheckSuppressed reads, just before a second request under j's claim (the fallback after a
// refused session message, which waited for a slot of its own), whether the recipient is on
// the suppression list for it now. It returns done when no request may go, after giving j's
// booking back: the recipient opted out of it (the entry is skipped(suppressed)), or the list
// could not be read (the claim goes back by its token and the task tries again; the refused
// request reached no one). A round trip more, only on this path.
func (w *Worker) recheckSuppressed(ctx context.Context, j *job) (bool, error) {
	ss, err := w.ledger.Suppressions(ctx, []string{j.p.To})
	if err == nil && !w.blocked(j, ss[0]) {
		return false, nil
	}
	w.giveBack(ctx, j.bk, limits.Waited)
	if err != nil {
		w.unclaim(ctx, j.p, j.token, CodeSuppressionUnread)
		return true, w.unreachable(ctx, j.log, err)
	}
	return true, w.skipSuppressed(j)
}
