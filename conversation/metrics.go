package conversation

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what replies did, by campaign and rule (never by recipient).
type Metrics struct {
	// Replies counts replies (each once, however many copies of its webhook arrive) by
	// outcome: matched (a rule matched an entry whose message may have reached the customer),
	// created (a follow-up entry was created), skipped (created skipped: suppressed, not
	// renderable, not_reached), late (after the run's on_reply.until; rule ""), unanswerable
	// (a rule matched, but the entry's message did not reach the customer, or the run has no
	// such entry: no follow-up, logged with the reason), unanswered (a rule matched a reached
	// entry, and no follow-up was asked for: the run was cancelled, or another run holds the
	// rule's once_per: campaign follow-up; logged with the reason), unmatched (the reply came
	// within on_reply.until and matched none of the run's rules; rule "": no follow-up, logged
	// at debug level; an opt-out that matches no rule is the receiver's verdict opt_out and is
	// not counted here), foreign_callback (the reply's
	// callbackData named another customer than its sender and was ignored for the join; rule
	// "", campaign the callbackData's run's, via how the reply was joined instead or "none");
	// and by how the reply was joined to its run (via: callback, reply_to or recent, the Via*
	// constants), so an operator sees how many follow-ups rest on the index of recent sends
	// rather than on the reply naming its message.
	Replies *prometheus.CounterVec
}

// NewMetrics registers the follow-up metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{Replies: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_followup_replies_total",
		Help: "Replies to runs with on_reply rules, each once, by campaign, rule, outcome (matched, created, skipped, late, " +
			"unanswerable, unanswered, unmatched, foreign_callback) and how the reply was joined to its run (callback, reply_to, recent).",
	}, []string{"campaign", "rule", "outcome", "via"})}
	if reg != nil {
		reg.MustRegister(m.Replies)
	}
	return m
}

func (f *Followups) count(campaign, rule, outcome, via string) {
	if f.cfg.Metrics != nil {
		f.cfg.Metrics.Replies.WithLabelValues(campaign, rule, outcome, via).Inc()
	}
}
