// Package scheduler turns submitted campaigns' schedules into runs: robfig/cron decides when,
// and each tick starts one run through expand.Runs (which enqueues its first expansion task,
// so any number of replicas make one run per tick). Expansion itself is package expand's.
package scheduler
