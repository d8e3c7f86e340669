package ledger

import (
	"context"
	"testing"
	"time"
)

// resendSettleStories: a delivery event that comes once an unknown recipient's resend was
// released (queued) but before the resend was sent can only be about the earlier request: it
// settles the entry and withdraws the resend, and the resend's claim finds nothing to send.
var resendSettleStories = []resendStory{
	{"AnEventAfterTheReleaseSettlesAndWithdrawsTheResend", func(t *testing.T, rs *resendBundle) {
		ctx := context.Background()
		pe, a := rs.releasedResend(t)
		v, prior, err := rs.l.ApplyDelivery(ctx, DeliveryEvent{Address: a, State: Delivered, MessageID: "m-first"})
		if err != nil || v != DeliveryApplied || prior != Unknown {
			t.Fatalf("ApplyDelivery = %s (prior %s), %v; want applied to the entry made unknown again", v, prior, err)
		}
		if e := rs.entry(t, pe); e.State != Delivered || e.MessageID != "m-first" {
			t.Fatalf("entry %+v, want delivered with the first message's id", e)
		}
		c, err := rs.l.Counters(ctx, rs.runID)
		if err != nil {
			t.Fatal(err)
		}
		if c.ResentUnknown != 0 || c.States[Queued] != 0 || c.States[Delivered] != 1 || c.Codes["settled:delivered"] != 1 {
			t.Fatalf("counters: resent %d, states %v, codes %v; want no resend counted, one delivered, settled from unknown",
				c.ResentUnknown, c.States, c.Codes)
		}
		h, err := rs.l.History(ctx, a)
		if err != nil || len(h) == 0 || h[len(h)-1].Outcome != "resend_withdrawn" || h[len(h)-1].Code != "settled" {
			t.Fatalf("history %+v, %v; want the resend withdrawn, settled", h, err)
		}
		// The resend's task comes: nothing to send.
		if cl, err := rs.l.Claim(ctx, a, AtMostOnce); err != nil || cl.Verdict != VerdictDone {
			t.Fatalf("resend claim %+v, %v; want done", cl, err)
		}
		if r, err := rs.l.GetRun(ctx, rs.runID); err != nil || r.Status != RunCompleted {
			t.Fatalf("run %s, %v; want completed", r.Status, err)
		}
	}},
	{"AGuessedEventAfterTheReleaseIsNotTakenForTheFirst", func(t *testing.T, rs *resendBundle) {
		// Matched by guesswork (Strict, no callbackData): an unknown entry records no message
		// id to check it against, so it settles nothing, as for an unknown entry.
		ctx := context.Background()
		pe, a := rs.releasedResend(t)
		v, _, err := rs.l.ApplyDelivery(ctx, DeliveryEvent{Address: a, State: Delivered, MessageID: "m-guess", Strict: true})
		if err != nil || v == DeliveryApplied {
			t.Fatalf("ApplyDelivery = %s, %v; want not applied", v, err)
		}
		if e := rs.entry(t, pe); e.State != Queued {
			t.Fatalf("entry %+v, want still queued for its resend", e)
		}
	}},
}

// releasedResend seeds a run of one recipient whose answer was lost, lets the quiet period
// pass and releases its resend: the entry is queued for it, the resend not sent yet.
func (rs *resendBundle) releasedResend(t *testing.T) (PlanEntry, Address) {
	t.Helper()
	pe := rs.seed(t, quiet, 1)[0]
	rs.lostAnswer(t, pe)
	rs.clock.Advance(quiet + time.Minute)
	members, _ := rs.lease(t)
	if len(members) != 1 {
		t.Fatalf("leased %v, want the unknown recipient", members)
	}
	if v, _ := rs.release(t, members[0]); v != ResendEnqueue {
		t.Fatalf("release: %s, want enqueue", v)
	}
	if e := rs.entry(t, pe); e.State != Queued {
		t.Fatalf("entry %+v, want queued for its resend", e)
	}
	return pe, Address{Run: rs.runID, Bucket: pe.Bucket, Recipient: pe.Recipient}
}
