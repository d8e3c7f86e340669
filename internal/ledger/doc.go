// Package ledger keeps one entry per (run, recipient) in Redis and moves it through the
// recipient state machine with atomic, monotonic Lua scripts:
//
//	planned → queued → submitting → accepted → sent → delivered → read
//	                         │  └──→ failed(code)        (permanent, or attempts used up)
//	                         └─────→ unknown             (a claim from an earlier attempt was found
//	                                                      and the run is at-most-once; an answer
//	                                                      that may follow a sent message; under
//	                                                      at-least-once, attempts used up after one)
//	planned/queued ──────────────→ skipped(reason)       (duplicate, invalid, cancelled, ...)
//	queued ──────────────────────→ unknown               (not sent after all, where an earlier
//	                                                      attempt may have gone: a released resend
//	                                                      or a retry after a maybe-sent answer)
//	unknown ─────────────────────→ queued                (once: the run's resend_after passed
//	                                                      with no delivery event; resend.go)
//
// Every transition also moves the run's per-state counters in the same script, so the
// counters always add up to the rows processed and, once the run is expanded, to the
// audience size. The run is marked completed by the transition that makes every row terminal
// while no unknown recipient waits for its resend.
//
// Ledger entries live in bucketed hashes (see rkeys.LedgerBucket) so that a million-recipient
// run costs tens of megabytes of Redis memory, not hundreds.
package ledger
