// Package expand starts runs and streams their audiences into ledger entries and send tasks.
//
// Every run starts through Runs: StartRun (campaign send, campaign run, demo, the scheduler's
// ticks) and RetryRun (run retry). An Expander writes an audience in batches, each planned in
// the ledger (PlanQueued) and its tasks written in one round trip through the one task writer
// (internal/asynqbatch), with the run's cursors in Redis so an interrupted expansion resumes
// without duplicates. A run's backlog (its tasks waiting ahead of the workers) is bounded: when
// it is full the expansion hands over to a continuation task, which Handler runs on an
// expansion Server.
package expand
