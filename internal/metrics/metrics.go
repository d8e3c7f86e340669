// Package metrics holds Herald's Prometheus metrics and the operations HTTP endpoints:
// /metrics, /healthz (the process is alive) and /readyz (it can do its work).
//
// Labels never carry a recipient: campaign, sender number (masked but for its last 4 digits:
// SenderLabels), outcome and error class only.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Outcomes of a send as counted by herald_sends_total.
const (
	OutcomeAccepted  = "accepted"
	OutcomeFailed    = "failed"
	OutcomeUnknown   = "unknown"
	OutcomeRetried   = "retried"
	OutcomeThrottled = "throttled"
	OutcomeHeld      = "held"
	OutcomeSkipped   = "skipped"
)

// scrapeTimeout bounds the Redis reads a collector (run progress, limits) makes for one
// scrape of /metrics.
const scrapeTimeout = 2 * time.Second

// Metrics are one process's metrics on their own registry.
type Metrics struct {
	reg *prometheus.Registry
	// Sends counts settled sends: herald_sends_total{campaign, sender, outcome, class}; sender
	// is the SenderLabels label of the number, never the number itself. A
	// follow-up's send (on_reply) counts there under the campaign of the run it follows, and
	// again in FollowupSends.
	Sends *prometheus.CounterVec
	// FollowupSends counts the settled sends of on_reply follow-ups alone, by the rule that
	// made them: herald_followup_sends_total{campaign, rule, outcome, class}, with the outcome
	// and class of herald_sends_total. Rules are bounded by the campaign's file.
	FollowupSends *prometheus.CounterVec
	// RequestDuration is the latency of the workers' requests to Connectly, every kind of
	// message, by result class ("ok" on success).
	RequestDuration *prometheus.HistogramVec
	// PaceWait is how long sends waited for a rate-limit permit.
	PaceWait prometheus.Histogram
	// LimitWaits counts sends put off by a limit: herald_limit_waits_total{reason} with reason
	// rate (a wait longer than the in-place maximum) or tier (the daily messaging tier is full).
	LimitWaits *prometheus.CounterVec
	// SchedulerTicks counts schedule ticks by campaign and result (fired, duplicate,
	// missed_run, missed_skipped, error); ExpandedTasks counts send tasks written by
	// expansion, by campaign (its rate is the expansion rate).
	SchedulerTicks *prometheus.CounterVec
	ExpandedTasks  *prometheus.CounterVec
}

// New returns metrics registered on a fresh registry, with Go and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.Sends = m.counterVec("herald_sends_total",
		"Send attempts settled by workers, by campaign, sender (masked but for the last 4 digits), outcome (accepted, failed, unknown, retried, throttled, held, skipped) and error class.",
		"campaign", "sender", "outcome", "class")
	m.FollowupSends = m.counterVec("herald_followup_sends_total",
		"Follow-up (on_reply) sends settled by workers, by campaign, rule, outcome and class as in herald_sends_total, which counts them too.",
		"campaign", "rule", "outcome", "class")
	m.RequestDuration = m.histogramVec("herald_connectly_request_duration_seconds",
		"Latency of the workers' send requests to Connectly (templates, session messages, fallback templates), by result class (ok, transient, permanent, throttle, stop-run).",
		[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "class")
	m.PaceWait = m.histogram("herald_pace_wait_seconds",
		"Time sends waited for a sender or business rate-limit permit.",
		[]float64{.001, .005, .01, .025, .05, .1, .25, .5, 1})
	m.LimitWaits = m.counterVec("herald_limit_waits_total",
		"Sends put off by a limit, by reason: rate (rescheduled: the limits are booked too far ahead), tier (the daily tier is full), late (woke too long after its slot and took a fresh one).",
		"reason")
	m.SchedulerTicks = m.counterVec("herald_scheduler_ticks_total",
		"Schedule ticks by campaign and result: fired, duplicate (another replica fired it), missed_run, missed_skipped, error (a start that failed; it is tried again).",
		"campaign", "result")
	m.ExpandedTasks = m.counterVec("herald_expanded_tasks_total", "Send tasks written by run expansion, by campaign.", "campaign")
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// counterVec, histogram and histogramVec create a metric and register it.

func (m *Metrics) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	m.reg.MustRegister(c)
	return c
}

func (m *Metrics) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	m.reg.MustRegister(h)
	return h
}

func (m *Metrics) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	m.reg.MustRegister(h)
	return h
}

// Register adds collectors (run progress, for example) to the registry.
func (m *Metrics) Register(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

// RegisterQueues adds the asynq queue metrics (tasks per state, size, latency, processed and
// failed; see NewQueueCollector).
func (m *Metrics) RegisterQueues(in QueueInspector) {
	m.reg.MustRegister(NewQueueCollector(in))
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Mux returns /metrics, /healthz (always 200 while the process serves) and /readyz (200 when
// ready reports nil within 2 seconds, else 503 with the reason).
func (m *Metrics) Mux(ready func(ctx context.Context) error) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}
