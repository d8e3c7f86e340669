package campaigns

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/hibiken/asynq"
)

// TypeExpand is the task type of a run's expansion: create the run (when it does not exist
// yet) and stream its audience into ledger entries and send tasks, a backlog at a time.
const TypeExpand = "run:expand"

// ExpandQueue is the queue of expansion tasks.
const ExpandQueue = rkeys.ExpandQueue

// ExpandPayload is the payload of a TypeExpand task.
type ExpandPayload struct {
	// Run is the run id: for a cron or one-shot tick, derived from the campaign and the fire
	// time (see expand.TickRunID), so every scheduler replica names the same run.
	Run      string `json:"run"`
	Campaign string `json:"c"`
	// Version is the submitted campaign version the run is created from; a run keeps it.
	// 0: a run started from its file by campaign send (continuation steps only).
	Version int `json:"v"`
	// Fire is the tick the run belongs to (zero for a run started by hand).
	Fire time.Time `json:"fire,omitzero"`
	// Trigger says what started the run: cron, at, missed (a missed tick run late), manual, or
	// send (campaign send, whose later expansion steps are tasks); repair marks a step `run
	// repair` enqueued to restart a run's lost expansion.
	Trigger string `json:"trigger"`
	// Seq numbers the tasks of one expansion: 0 starts it, each later one continues it when
	// the previous stopped at a full backlog.
	Seq int `json:"seq,omitempty"`
	// Backlog is the run's backlog in tasks (how many may wait ahead of the workers), carried
	// by continuations so that one finding the backlog still full hands over again after one
	// read (0: unknown, look it up). The JSON name is the one earlier versions wrote.
	Backlog int `json:"w,omitempty"`
	// Made is when a command enqueued this step of a run it was about to create (unix ms;
	// campaign send, run retry): a step that finds no run waits for it a while rather than
	// being archived. 0: the run existed when the step was enqueued.
	Made int64 `json:"made,omitempty"`
	// Stopped marks the step that looks again at a run whose expansion stopped (expand's
	// Handler paused it with the reason): while the run stays paused it only looks again
	// later, and it expands once the run is resumed (or closes it once cancelled).
	Stopped bool `json:"stopped,omitempty"`
}

// ExpandTaskID is the TaskID of an expansion task: the run id for the first, so N scheduler
// replicas enqueue one; the run id and sequence number for continuations.
func ExpandTaskID(runID string, seq int) string { return rkeys.ExpandTaskID(runID, seq) }

// NewExpandTask builds the asynq task of an expansion step. processIn delays it (a
// continuation waiting for room in the backlog); retention keeps a completed first task (and so its
// TaskID, which blocks a second enqueue of the same tick) that long. Its 25 retries count
// failures only: the expansion server (expand.Server) counts none for a cause that passes
// (Redis or the network failing, the audience's storage), so no run's expansion is archived
// half done for one.
func NewExpandTask(p ExpandPayload, processIn, retention time.Duration) (*asynq.Task, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode expand payload: %w", err)
	}
	opts := []asynq.Option{asynq.TaskID(ExpandTaskID(p.Run, p.Seq)), asynq.Queue(ExpandQueue), asynq.MaxRetry(25),
		asynq.Timeout(15 * time.Minute)}
	if processIn > 0 {
		opts = append(opts, asynq.ProcessIn(processIn))
	}
	if retention > 0 {
		opts = append(opts, asynq.Retention(retention))
	}
	return asynq.NewTask(TypeExpand, b, opts...), nil
}

// DecodeExpand decodes a TypeExpand payload.
func DecodeExpand(b []byte) (ExpandPayload, error) {
	var p ExpandPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("decode expand payload: %w", err)
	}
	// Version 0 names a run started from a file (campaign send): only its continuations
	// exist as tasks, as the command created the run.
	if p.Run == "" || p.Campaign == "" || p.Version < 0 || (p.Version == 0 && p.Seq < 1) {
		return p, fmt.Errorf("decode expand payload: run, campaign and version are required")
	}
	return p, nil
}
