package ledger

// How an accepted send went, recorded as the accepted outcome's code: the run's counters
// then count "accepted:<code>" (Counters.Codes), which `herald run show` reports. A template
// send outside any customer service window records none.
const (
	// SentSession: a session campaign's message, sent inside the recipient's window.
	SentSession = "session"
	// SentFallback: a session campaign's fallback template, sent because the recipient's
	// window was closed.
	SentFallback = "fallback"
	// SentInWindow: a template sent while the recipient's customer service window was open
	// (Meta does not charge a utility template sent inside one).
	SentInWindow = "in_window"
)

// SkipWindowClosed is the skip reason of a session send whose recipient's window was closed
// at send time, with no fallback template: no request was made.
const SkipWindowClosed = "window_closed"

// Accepted returns how many sends of the run Connectly accepted as code (SentSession,
// SentFallback, SentInWindow).
func (c Counters) Accepted(code string) int64 { return c.Codes[string(Accepted)+":"+code] }
