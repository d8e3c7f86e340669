package worker

import (
	"context"

	"github.com/heraldmsg/herald/internal/ledger"
)

// sentAs is the code an accepted send records (ledger.SentSession, SentFallback,
// SentInWindow, or "" for a template sent outside any customer service window), so the
// run's counters say how its messages went. A template's window is the one its reservation
// read for the daily tier; with no daily tier the reservation read none, so it is read here
// (one read, after the send). A window that cannot be read counts the send as outside one.
func (w *Worker) sentAs(ctx context.Context, j *job) string {
	switch j.msg.Kind() {
	case sessionMessage{}.Kind():
		return ledger.SentSession
	case kindFallback:
		return ledger.SentFallback
	}
	if b := j.bk.Booking; b != nil && b.Request() != nil && b.Request().Tier != nil {
		if b.InWindow {
			return ledger.SentInWindow
		}
		return ""
	}
	if _, open, err := w.windows.Open(ctx, w.cfg.Limits.BusinessID, j.p.To); err == nil && open {
		return ledger.SentInWindow
	}
	return ""
}
