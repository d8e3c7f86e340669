// Package worker runs Herald's asynq server and its send handler.
//
// For each send task the handler paces (sender and business limits in Redis), claims the
// recipient's ledger entry, posts the template message to Connectly, and turns the outcome
// into a ledger transition and an asynq result through the classification table:
//
//	accepted           → ledger accepted(message id); task done
//	permanent          → ledger failed(code); task archived (asynq.SkipRetry), never retried
//	transient          → claim released; asynq retries with exponential backoff and full
//	                     jitter until the attempts are used, then failed(code)
//	transient, no answer after the request was written
//	                   → at-most-once: ledger unknown; at-least-once: retried like transient
//	throttle (429)     → claim released, attempt given back; rescheduled, not a failure
//	stop-run           → claim released; run paused with the reason; task held
//
// Throttle and hold results are not failures for asynq (Config.IsFailure), so they never use
// an attempt; Herald counts attempts in the ledger and keeps asynq's retry budget above them.
package worker
