// Package worker runs Herald's asynq server and its send handler.
//
// For each send task the handler decodes the payload, gates it (send hours, expiry, a paused
// run), reserves its limits (internal/limits: one Booking that gives back what the send did
// not use) and claims the recipient's ledger entry, sends its Message (a template message,
// or any other kind behind the same interface) to Connectly, and turns the outcome into a
// ledger transition and an asynq result by connectly.Table.Decide, which reads every answer
// as accepted, refused, not taken or maybe sent:
//
//	accepted               → ledger accepted(message id); task done
//	refused, permanent     → ledger failed(code); task archived (asynq.SkipRetry), never retried
//	refused, window closed → with a fallback template: the template is sent under the same
//	(session message)        claim (one more request, its own limits); its answer settles
//	                         the entry (accepted: code fallback); without one: failed(code)
//	refused, stop-run      → claim released; run paused with the reason; task held
//	not taken, throttle    → claim released, attempt given back; rescheduled, not a failure
//	(a 429, read by its body's throttle code if any, or a throttle code at any status;
//	HTTP_429, 130429, 80007 and GRPC_RESOURCE_EXHAUSTED also back the sender's rate off,
//	131056 one person's)
//	not taken, transient   → claim released; asynq retries with exponential backoff and full
//	(408, not written)       jitter until the attempts are used, then failed(code)
//	maybe sent             → at-most-once: ledger unknown; at-least-once: retried like
//	(5xx, no answer)         not taken
//
// Throttle and hold results are not failures for asynq (Config.IsFailure), so they never use
// an attempt; Herald counts attempts in the ledger and keeps asynq's retry budget above them.
//
// In runs of campaigns with unknown.resend_after, each worker also sweeps (resend.go): an
// unknown recipient with no delivery event after that quiet period is queued again and sent
// once more under its own task id (ledger.TaskIDs.ResendTaskID), never a third time.
package worker
