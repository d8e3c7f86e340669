// Package tasks administers asynq's queues for an operator (`herald task`, `herald queue`):
// it lists a queue's tasks by state, reads one task with its recipient's ledger entry,
// retries, archives or deletes tasks one at a time or in bulk, and pauses and resumes
// queues, each action kept in the audit log by the action itself. The one idea it owns is
// that a task is never removed behind the ledger's back: the recipients of deleted send tasks
// become skipped(deleted) (SkipDeleted), or unknown(TASK_DELETED) when a worker died sending
// to them and no task is left to settle its claim, so their runs can still complete and no
// continuation queues again what the operator deleted.
package tasks
