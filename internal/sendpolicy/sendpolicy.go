// Package sendpolicy holds the defaults of how Herald queues and sends: how many sends a worker
// has in flight, how often and how long a send is tried, when a run stops on a burst of one
// error code, how many send tasks a run keeps queued ahead of the workers, and the asynq budget
// a send task needs to allow for all that. Each value is written here once: the worker and the
// expander apply them to the zero fields of their Config, and the config file's defaults
// (internal/config) show them.
package sendpolicy

import (
	"time"

	"github.com/heraldmsg/herald/internal/connectly"
)

// Defaults of worker.Config.
const (
	// DefaultConcurrency is the number of sends in flight in one worker process.
	DefaultConcurrency = 50
	// DefaultMaxAttempts is how many times a recipient is tried on transient failures.
	DefaultMaxAttempts = 5
	// DefaultThrottleDelay is how long a send waits after a throttle without Retry-After.
	DefaultThrottleDelay = 2 * time.Second
	// DefaultHoldDelay is how often a task of a paused run looks again.
	DefaultHoldDelay = 5 * time.Second
	// DefaultKeepPlaceFor is how long a send whose limits are booked too far ahead keeps its
	// place before its task is rescheduled.
	DefaultKeepPlaceFor = 20 * time.Second
	// DefaultLateFallbackFor is how long the worker keeps a session message's fallback
	// template for a late refusal (a delivery_failed saying the window had closed): Meta
	// judges the window when Connectly hands the message on, so such a failure comes within
	// minutes of the accept; a day covers a Connectly that queues its sends for hours.
	DefaultLateFallbackFor = 24 * time.Hour
	// DefaultRequestTimeout bounds one Connectly request: the client's own default.
	DefaultRequestTimeout = connectly.DefaultTimeout
	// ShutdownGrace is what a worker's shutdown waits for sends in flight beyond their
	// request timeout: its ShutdownTimeout defaults to RequestTimeout + ShutdownGrace.
	ShutdownGrace = 5 * time.Second
	// DefaultBurstSample is how many recent outcomes of a run are looked at for a burst of one
	// permanent code; DefaultBurstShare is the share of them one code may fill before the run
	// pauses.
	DefaultBurstSample = 100
	DefaultBurstShare  = 0.2
	// DefaultTierRecheck is the longest a send waiting for room in the daily tier sleeps before
	// it looks again.
	DefaultTierRecheck = 5 * time.Minute
	// DefaultPollInterval is how often asynq moves due tasks back to pending
	// (DelayedTaskCheckInterval: a worker's retries, an expansion's continuations) and how
	// often an idle worker or expansion server polls its queues (TaskCheckInterval).
	DefaultPollInterval = time.Second
	// DefaultResendSweepEvery is how often a worker looks for unknown recipients due to be
	// sent once more; DefaultResendLease is how long a sweep holds the recipients it took.
	DefaultResendSweepEvery = 5 * time.Second
	DefaultResendLease      = time.Minute
)

// DefaultAdaptiveCodes returns the throttle keys (connectly.Decision.Key) that say the sender
// goes too fast: HTTP_429 (a 429 whose body names no throttle code), Meta's 130429 and 80007 at
// any status (not 131056, which is about one recipient), and GRPC_RESOURCE_EXHAUSTED (a
// grpc-gateway {"code": 8} answered with a status other than 429; at a 429 it is HTTP_429).
// Meta's short code 4 is not listed: a top-level 4 in an answer is gRPC's DEADLINE_EXCEEDED
// (connectly.Table.Decide), so no answer to a send is keyed "4". The slice is new at each call.
func DefaultAdaptiveCodes() []string {
	return []string{"HTTP_429", "130429", "80007", "GRPC_RESOURCE_EXHAUSTED"}
}

// Defaults of expand.Config: a run's backlog, the send tasks it keeps queued ahead of the
// workers, holds DefaultBacklog of sending at the run's rate, between DefaultMinBacklog and
// DefaultMaxBacklog tasks (about 4 MB of Redis at asynq's ~760 bytes a task).
const (
	DefaultBacklog    = 2 * time.Minute
	DefaultMinBacklog = 1000
	DefaultMaxBacklog = 5000
)

// DefaultExpandConcurrency is how many runs one process expands at once (expand.ServerConfig's
// Concurrency; config scheduler.expand_concurrency).
const DefaultExpandConcurrency = 4

// Retention keeps a completed task, and with it its TaskID, this long, so that the same task
// cannot be enqueued twice meanwhile: a campaign send task, a resend, a run's first expansion
// task.
const Retention = 24 * time.Hour

// MaxRetry is asynq's retry budget for a send task under maxAttempts. Herald counts attempts
// itself and stops earlier; throttles and waits for the limits use asynq retries without using
// an attempt, so the budget stays well above the attempts (a throttle on asynq's last retry
// would archive the task).
func MaxRetry(maxAttempts int) int { return maxAttempts + 20 }

// TaskTimeout bounds one run of a send task's handler: it may wait for its rate permits
// (maxWait), keep its place while the limits are booked further ahead (keepPlaceFor; negative,
// off, counts as none), then make its request (requestTimeout); and a session message that
// Connectly refuses because the customer's window has closed does all of it a second time, for
// its fallback template, under the same claim. 30s more covers the ledger.
//
// The bound must hold that longest run: at the deadline asynq schedules the task's retry
// without waiting for the handler, so a retry could find the claim of a request still in
// flight and settle it unknown (at-most-once) or send again (at-least-once).
func TaskTimeout(requestTimeout, maxWait, keepPlaceFor time.Duration) time.Duration {
	return 2*(requestTimeout+maxWait+max(keepPlaceFor, 0)) + 30*time.Second
}
