package worker

import (
	"github.com/heraldmsg/herald/internal/ledger"
)

// sentAs is the code an accepted send records (ledger.SentSession, SentFallback,
// SentInWindow, or "" for a template sent outside any customer service window), so the
// run's counters say how its messages went. A template's window is the one its reservation
// read, in the same round trip (a template send's intention asks for it: ReadWindow; the
// daily tier reads it anyway). A booking that read no window counts the send as outside one.
func sentAs(j *job) string {
	switch j.msg.Kind() {
	case sessionMessage{}.Kind():
		return ledger.SentSession
	case kindFallback:
		return ledger.SentFallback
	}
	if b := j.bk.Booking; b != nil && b.InWindow {
		return ledger.SentInWindow
	}
	return ""
}
