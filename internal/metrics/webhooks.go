package metrics

import "github.com/prometheus/client_golang/prometheus"

// Webhooks are the webhook receiver's metrics.
type Webhooks struct {
	// Requests counts webhook requests by result: ok, unauthorized, too_large, bad_request,
	// unsupported_media_type, method_not_allowed, error (Redis failed; Connectly retries).
	Requests *prometheus.CounterVec
	// Events counts parsed events by kind (status, inbound, ignored), status and verdict
	// (applied, stale, parked, other_message, no_entry, unmatched, opt_out, reply, ...).
	Events *prometheus.CounterVec
	// Duration is the time from a request's arrival to its answer.
	Duration prometheus.Histogram
	// Parked counts events kept for a later try, and what became of them on retry.
	Parked *prometheus.CounterVec
	// Lag is the time from an event's own timestamp to its arrival, by status.
	Lag *prometheus.HistogramVec
}

// NewWebhooks creates the receiver's metrics on m's registry.
func (m *Metrics) NewWebhooks() *Webhooks {
	return &Webhooks{
		Requests: m.counterVec("herald_webhook_requests_total",
			"Webhook requests by result (ok, unauthorized, too_large, bad_request, unsupported_media_type, method_not_allowed, error).",
			"result"),
		Events: m.counterVec("herald_webhook_events_total",
			"Webhook events by kind (status, inbound, ignored), status and what the receiver did with them.",
			"kind", "status", "verdict"),
		Duration: m.histogram("herald_webhook_request_duration_seconds",
			"Time from a webhook request's arrival to its answer.",
			[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}),
		Parked: m.counterVec("herald_webhook_parked_total",
			"Delivery events that arrived before their send was recorded, by outcome (parked, applied, stale, expired, dropped).",
			"outcome"),
		Lag: m.histogramVec("herald_webhook_event_lag_seconds",
			"Time from a webhook event's timestamp to its arrival at the receiver, by status (the timestamp has one-second precision).",
			[]float64{1, 2, 5, 10, 30, 60, 300, 900, 3600}, "status"),
	}
}
