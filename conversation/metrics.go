package conversation

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what replies did, by campaign and rule (never by recipient).
type Metrics struct {
	// Replies counts replies by outcome: matched (a rule matched), created (a follow-up entry
	// was created), skipped (created skipped: suppressed, not renderable), late (after the
	// run's on_reply.until; rule "").
	Replies *prometheus.CounterVec
}

// NewMetrics registers the follow-up metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{Replies: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_followup_replies_total",
		Help: "Replies to runs with on_reply rules, by campaign, rule and outcome (matched, created, skipped, late).",
	}, []string{"campaign", "rule", "outcome"})}
	if reg != nil {
		reg.MustRegister(m.Replies)
	}
	return m
}

func (f *Followups) count(campaign, rule, outcome string) {
	if f.cfg.Metrics != nil {
		f.cfg.Metrics.Replies.WithLabelValues(campaign, rule, outcome).Inc()
	}
}
