package webhooks

import (
	"context"

	"github.com/heraldmsg/herald/internal/ledger"
)

// LateRefusalHandler acts on a delivery failure that says the customer's 24-hour window had
// closed (a code the classification table marks WindowClosed): Connectly accepted a session
// message, then could not deliver it. Package conversation's follow-ups implement it: the
// message's fallback template goes then, once (conversation.Followups.HandleLateRefusal).
//
// The receiver calls it after applying the event, for every copy of such an event whose entry
// it found (applied, or stale: a copy of one applied before), parked ones included once they
// apply: the handler must be idempotent. An error makes the receiver answer 503 (a parked
// event stays parked), so that the next copy finishes what this one left undone.
type LateRefusalHandler interface {
	HandleLateRefusal(ctx context.Context, ev ledger.DeliveryEvent) error
}

// lateRefusal calls the LateRefusalHandler, if any, for de, a window-closed delivery failure
// the ledger answered with verdict.
func (rc *Receiver) lateRefusal(ctx context.Context, de ledger.DeliveryEvent, verdict string) error {
	if rc.late == nil || de.Run == "" {
		return nil
	}
	switch ledger.DeliveryVerdict(verdict) {
	case ledger.DeliveryApplied, ledger.DeliveryStale:
		return rc.late.HandleLateRefusal(ctx, de)
	}
	return nil
}

// windowClosed reports whether a delivery failure's code says the customer's window had
// closed (the classification table's WindowClosed).
func (rc *Receiver) windowClosed(code string) bool {
	r, _ := rc.table.Lookup(code)
	return r.WindowClosed
}
