package metrics

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
)

// fakeQueues is a QueueInspector with fixed queues; a queue without info fails to read.
type fakeQueues map[string]*asynq.QueueInfo

func (f fakeQueues) Queues() ([]string, error) {
	names := make([]string, 0, len(f))
	for n := range f {
		names = append(names, n)
	}
	return names, nil
}

func (f fakeQueues) GetQueueInfo(q string) (*asynq.QueueInfo, error) {
	if f[q] == nil {
		return nil, errors.New("NOSCRIPT")
	}
	return f[q], nil
}

func TestQueueCollector(t *testing.T) {
	t.Parallel()
	c := NewQueueCollector(fakeQueues{
		// Size as asynq v0.26 counts it: the completed tasks too.
		"herald:marketing": {Queue: "herald:marketing", Pending: 5, Active: 2, Scheduled: 1, Retry: 1, Archived: 3, Completed: 9,
			Size: 21, Latency: 1500 * time.Millisecond, MemoryUsage: 4096, ProcessedTotal: 40, FailedTotal: 4, Paused: true},
		"broken": nil,
	})
	want := `
# HELP asynq_queue_paused 1 while the queue is paused, else 0.
# TYPE asynq_queue_paused gauge
asynq_queue_paused{queue="herald:marketing"} 1
# HELP asynq_queue_tasks Tasks in an asynq queue by state (active, pending, aggregating, scheduled, retry, archived, completed).
# TYPE asynq_queue_tasks gauge
asynq_queue_tasks{queue="herald:marketing",state="active"} 2
asynq_queue_tasks{queue="herald:marketing",state="aggregating"} 0
asynq_queue_tasks{queue="herald:marketing",state="archived"} 3
asynq_queue_tasks{queue="herald:marketing",state="completed"} 9
asynq_queue_tasks{queue="herald:marketing",state="pending"} 5
asynq_queue_tasks{queue="herald:marketing",state="retry"} 1
asynq_queue_tasks{queue="herald:marketing",state="scheduled"} 1
# HELP asynq_queue_size Tasks in an asynq queue but the completed ones: pending, active, scheduled, retry, aggregating and archived.
# TYPE asynq_queue_size gauge
asynq_queue_size{queue="herald:marketing"} 12
# HELP asynq_queue_latency_seconds How long the oldest pending task of the queue has waited.
# TYPE asynq_queue_latency_seconds gauge
asynq_queue_latency_seconds{queue="herald:marketing"} 1.5
# HELP asynq_tasks_failed_total Tasks of the queue whose processing failed.
# TYPE asynq_tasks_failed_total counter
asynq_tasks_failed_total{queue="herald:marketing"} 4
# HELP asynq_tasks_processed_total Tasks of the queue processed, succeeded or failed.
# TYPE asynq_tasks_processed_total counter
asynq_tasks_processed_total{queue="herald:marketing"} 40
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"asynq_queue_paused", "asynq_queue_tasks", "asynq_queue_size", "asynq_queue_latency_seconds", "asynq_tasks_failed_total", "asynq_tasks_processed_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != 13 {
		t.Fatalf("%d series, want 13 (the unreadable queue left out)", n)
	}
}

// TestMetricsPassPromlint fills every metric Herald registers (each vector gets a series, each
// collector has something to report), scrapes the text format as Prometheus would, and runs
// the lint `promtool check metrics` runs. The processes' own scrapes are linted again in
// cmd/herald.
func TestMetricsPassPromlint(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	l := ledger.New(rdb, nil)
	if err := l.CreateRun(ctx, ledger.Run{ID: "r1", Campaign: "spring", Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: "r1", From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: "+14155550101", Row: 1}}}); err != nil {
		t.Fatal(err)
	}

	m := New()
	m.Sends.WithLabelValues("spring", "+14155550100", OutcomeAccepted, "none").Inc()
	m.FollowupSends.WithLabelValues("spring", "yes", OutcomeAccepted, "none").Inc()
	m.RequestDuration.WithLabelValues("ok").Observe(0.1)
	m.PaceWait.Observe(0.01)
	m.LimitWaits.WithLabelValues("rate").Inc()
	m.SchedulerTicks.WithLabelValues("spring", "fired").Inc()
	m.ExpandedTasks.WithLabelValues("spring").Inc()
	w := m.NewWebhooks()
	w.Requests.WithLabelValues("ok").Inc()
	w.Events.WithLabelValues("status", "read", "applied").Inc()
	w.Duration.Observe(0.001)
	w.Parked.WithLabelValues("parked").Inc()
	w.Lag.WithLabelValues("read").Observe(2)
	m.RegisterQueues(fakeQueues{"herald:marketing": {Queue: "herald:marketing", Pending: 1, Size: 1}})
	m.Register(NewRunCollector(l), NewLimitsCollector(LimitsSource{Limiter: limits.New(rdb), Business: "biz", TierLimit: 250,
		TierPeriod: 24 * time.Hour, Senders: []limits.Control{limits.SenderControl("", "+14155550100", 80, limits.DefaultPolicy())}}))

	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	code, body := get(t, srv.URL)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, family := range []string{
		"herald_sends_total", "herald_followup_sends_total", "herald_connectly_request_duration_seconds", "herald_pace_wait_seconds", "herald_limit_waits_total",
		"herald_scheduler_ticks_total", "herald_expanded_tasks_total", "herald_webhook_requests_total", "herald_webhook_events_total",
		"herald_webhook_request_duration_seconds", "herald_webhook_parked_total", "herald_webhook_event_lag_seconds",
		"herald_run_recipients", "herald_run_paused", "herald_runs_active", "herald_daily_tier_used", "herald_daily_tier_limit", "herald_sender_rate_factor",
		"asynq_queue_tasks", "asynq_queue_size", "asynq_queue_latency_seconds", "asynq_queue_memory_usage_approx_bytes",
		"asynq_queue_paused", "asynq_tasks_processed_total", "asynq_tasks_failed_total", "go_goroutines", "process_cpu_seconds_total",
	} {
		if !strings.Contains(body, "\n# TYPE "+family+" ") {
			t.Errorf("the scrape has no %s: the lint did not see it", family)
		}
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
