package metrics

import (
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// QueueInspector reads asynq's queues; asynq's Inspector is one.
type QueueInspector interface {
	Queues() ([]string, error)
	GetQueueInfo(queue string) (*asynq.QueueInfo, error)
}

// queueCollector reports asynq's queues at scrape time. It replaces asynq's own exporter
// (asynq/x/metrics), which names two gauges with a "_total" suffix that Prometheus reserves
// for counters (asynq_tasks_enqueued_total, asynq_queue_paused_total): here they are
// asynq_queue_tasks and asynq_queue_paused. The other names are asynq's.
type queueCollector struct {
	in                                  QueueInspector
	tasks, size, latency, memory, pause *prometheus.Desc
	processed, failed                   *prometheus.Desc
}

// NewQueueCollector reports, per asynq queue: asynq_queue_tasks{queue, state} (tasks in each
// state), asynq_queue_size, asynq_queue_latency_seconds (age of the oldest pending task),
// asynq_queue_memory_usage_approx_bytes, asynq_queue_paused (1 while paused), and the
// counters asynq_tasks_processed_total and asynq_tasks_failed_total. A queue that cannot be
// read is left out of that scrape.
func NewQueueCollector(in QueueInspector) prometheus.Collector {
	q := []string{"queue"}
	return &queueCollector{
		in: in,
		tasks: prometheus.NewDesc("asynq_queue_tasks",
			"Tasks in an asynq queue by state (active, pending, aggregating, scheduled, retry, archived, completed).", []string{"queue", "state"}, nil),
		size: prometheus.NewDesc("asynq_queue_size",
			"Tasks in an asynq queue but the completed ones: pending, active, scheduled, retry, aggregating and archived.", q, nil),
		latency: prometheus.NewDesc("asynq_queue_latency_seconds",
			"How long the oldest pending task of the queue has waited.", q, nil),
		memory: prometheus.NewDesc("asynq_queue_memory_usage_approx_bytes",
			"Approximate Redis memory used by the queue (sampled).", q, nil),
		pause: prometheus.NewDesc("asynq_queue_paused",
			"1 while the queue is paused, else 0.", q, nil),
		processed: prometheus.NewDesc("asynq_tasks_processed_total",
			"Tasks of the queue processed, succeeded or failed.", q, nil),
		failed: prometheus.NewDesc("asynq_tasks_failed_total",
			"Tasks of the queue whose processing failed.", q, nil),
	}
}

// queueSize is the number of tasks in a queue that are not completed: pending, active,
// scheduled, retry, aggregating and archived. asynq's own QueueInfo.Size (v0.26) adds the
// completed tasks too, which the queues keep for their retention (a day for send tasks),
// though its documentation says it does not.
func queueSize(info *asynq.QueueInfo) int {
	return info.Pending + info.Active + info.Scheduled + info.Retry + info.Aggregating + info.Archived
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.tasks, c.size, c.latency, c.memory, c.pause, c.processed, c.failed} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	names, err := c.in.Queues()
	if err != nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, name := range names {
		info, err := c.in.GetQueueInfo(name)
		if err != nil {
			continue
		}
		for state, n := range map[string]int{
			"active": info.Active, "pending": info.Pending, "aggregating": info.Aggregating, "scheduled": info.Scheduled,
			"retry": info.Retry, "archived": info.Archived, "completed": info.Completed,
		} {
			gauge(c.tasks, float64(n), name, state)
		}
		gauge(c.size, float64(queueSize(info)), name)
		gauge(c.latency, info.Latency.Seconds(), name)
		gauge(c.memory, float64(info.MemoryUsage), name)
		paused := 0.0
		if info.Paused {
			paused = 1
		}
		gauge(c.pause, paused, name)
		ch <- prometheus.MustNewConstMetric(c.processed, prometheus.CounterValue, float64(info.ProcessedTotal), name)
		ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(info.FailedTotal), name)
	}
}
