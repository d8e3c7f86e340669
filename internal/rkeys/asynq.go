package rkeys

import (
	"strconv"
	"strings"
)

// asynq's keys: the ones Herald reads or writes beside asynq's Client and Server (the batch
// writer of send tasks, the reclaim of dead servers' tasks). They are asynq v0.26's layout
// (its internal/base package), not Herald's: they start with AsynqPrefix, not Prefix, and
// every key of one queue carries the queue's name as hash tag. TestAsynqKeysAreAsynqs checks
// them against the keys asynq itself writes.

// AsynqPrefix starts every key of asynq's.
const AsynqPrefix = "asynq:"

// asynqQueue is the start of every key of one asynq queue.
func asynqQueue(queue string) string { return AsynqPrefix + "{" + queue + "}:" }

// AsynqTask is asynq's hash of one task of a queue (its message "msg", its "state", ...).
func AsynqTask(queue, id string) string { return asynqQueue(queue) + "t:" + id }

// AsynqPending is asynq's list of a queue's task ids waiting to be processed.
func AsynqPending(queue string) string { return asynqQueue(queue) + "pending" }

// AsynqScheduled is asynq's sorted set of a queue's task ids due later, scored by when
// (unix s).
func AsynqScheduled(queue string) string { return asynqQueue(queue) + "scheduled" }

// AsynqArchived is asynq's sorted set of a queue's archived task ids (an operator's task
// archive, or a task that ended with an error it may not retry), scored by when (unix s). asynq
// keeps at most 10,000 and none past 90 days.
func AsynqArchived(queue string) string { return asynqQueue(queue) + "archived" }

// AsynqActive is asynq's list of a queue's task ids being processed.
func AsynqActive(queue string) string { return asynqQueue(queue) + "active" }

// AsynqLease is asynq's sorted set of a queue's active task ids, scored by when the lease of
// the server processing each one runs out (unix s).
func AsynqLease(queue string) string { return asynqQueue(queue) + "lease" }

// AsynqQueues is asynq's set of every queue name, which its Inspector and Server list.
func AsynqQueues() string { return AsynqPrefix + "queues" }

// AsynqWorkers is asynq's sorted set of every server's workers hash key
// ("asynq:workers:{host:pid:server id}"), scored by when it expires (unix s).
func AsynqWorkers() string { return AsynqPrefix + "workers" }

// EscapeGlob escapes the characters a MATCH pattern (SCAN, ZSCAN) treats as a pattern ({} are
// literal there, but * ? [ ] \ are not), so a name can start a pattern: EscapeGlob(run)+"/*".
func EscapeGlob(s string) string { return globEscaper.Replace(s) }

var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)

// ExpandQueue is the asynq queue of run expansion tasks.
const ExpandQueue = Prefix + "expand"

// expandStep separates a run's id from the step number in the task id of each of its
// expansion's continuations.
const expandStep = "/expand/"

// ExpandTaskID is the task id of a run's expansion step: the run id for the first (seq 0), so
// any number of scheduler replicas enqueue one; the run id, "/expand/" and seq for the others.
func ExpandTaskID(runID string, seq int) string {
	if seq == 0 {
		return runID
	}
	return ExpandStepPrefix(runID) + strconv.Itoa(seq)
}

// ExpandStepPrefix starts the task id of every continuation of run's expansion.
func ExpandStepPrefix(runID string) string { return runID + expandStep }
