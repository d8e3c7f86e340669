// Package scheduler turns a campaign into runs: it creates a run and expands its audience into
// ledger entries and send tasks, in batches, with a cursor so an interrupted expansion resumes
// without duplicates. Cron and one-shot triggers build on Expander.
package scheduler
