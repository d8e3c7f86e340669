package tasks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/report"
)

// States are the states a queue's tasks are listed in, in the order `herald task` names them.
var States = []string{"pending", "active", "scheduled", "retry", "archived", "completed"}

// View is one task for people, as `task ls --json` and `task show --json` print it.
type View struct {
	ID        string    `json:"id"`
	Queue     string    `json:"queue"`
	Type      string    `json:"type"`
	State     string    `json:"state"`
	Run       string    `json:"run,omitempty"`
	Recipient string    `json:"recipient,omitempty"`
	Retried   int       `json:"retried"`
	MaxRetry  int       `json:"max_retry"`
	LastError string    `json:"last_error,omitempty"`
	ErrorCode string    `json:"error_code,omitempty"`
	Class     string    `json:"class,omitempty"`
	NextAt    time.Time `json:"next_at,omitzero"`
	Attempts  *int      `json:"ledger_attempts,omitempty"`
	Ledger    string    `json:"ledger_state,omitempty"`
}

// ViewOf decodes a task for people: its run, its recipient (masked unless reveal), its last
// error (digits masked) and that error's class under table.
func ViewOf(t *asynq.TaskInfo, table *connectly.Table, reveal bool) View {
	v := View{ID: t.ID, Queue: t.Queue, Type: t.Type, State: t.State.String(), Retried: t.Retried,
		MaxRetry: t.MaxRetry, LastError: logx.MaskDigits(t.LastErr), NextAt: t.NextProcessAt}
	if p, ok := sendPayload(t); ok {
		v.Run, v.Recipient = p.Run, p.To
		if !reveal {
			v.Recipient = logx.Phone(p.To)
		}
	}
	if code, ok := report.TaskErrorCode(t.LastErr); ok {
		v.ErrorCode, v.Class = code, table.ClassOf(code).String()
	}
	return v
}

// sendPayload decodes a send task's payload; ok is false for other tasks and payloads that do
// not decode.
func sendPayload(t *asynq.TaskInfo) (campaigns.SendPayload, bool) {
	if t.Type != campaigns.TypeSend {
		return campaigns.SendPayload{}, false
	}
	p, err := campaigns.DecodeSend(t.Payload)
	return p, err == nil
}

// ListParams say which page of a queue's tasks List reads, and how.
type ListParams struct {
	Inspector *asynq.Inspector
	// Table classifies the tasks' last errors.
	Table *connectly.Table
	Queue string
	// State is one of States.
	State          string
	PageSize, Page int
	// Reveal shows recipients in full.
	Reveal bool
}

// List returns one page of a queue's tasks in a state, decoded for people. A state that is not
// one of States is a TaskStateError.
func List(p ListParams) ([]View, error) {
	list := TaskLists(p.Inspector)[p.State]
	if list == nil {
		return nil, TaskStateError{fmt.Sprintf("--state %q: want one of %s", p.State, strings.Join(States, ", "))}
	}
	ts, err := list(p.Queue, asynq.PageSize(p.PageSize), asynq.Page(p.Page))
	if err != nil {
		return nil, err
	}
	views := make([]View, 0, len(ts))
	for _, t := range ts {
		views = append(views, ViewOf(t, p.Table, p.Reveal))
	}
	return views, nil
}

// ReadParams say which task Read reads, and how.
type ReadParams struct {
	Inspector *asynq.Inspector
	// Ledger holds the entries of send tasks' recipients.
	Ledger *ledger.Ledger
	// Table classifies the task's last error.
	Table       *connectly.Table
	Queue, Task string
	// Reveal shows the recipient in full.
	Reveal bool
}

// Read returns one task decoded for people and, for a send task, its recipient's state and
// attempts in the ledger. An error reading the ledger is returned: a task shown without its
// ledger state would look like one whose recipient has no entry.
func Read(ctx context.Context, p ReadParams) (View, error) {
	t, err := p.Inspector.GetTaskInfo(p.Queue, p.Task)
	if err != nil {
		return View{}, err
	}
	v := ViewOf(t, p.Table, p.Reveal)
	if sp, ok := sendPayload(t); ok {
		e, ok, err := p.Ledger.Entry(ctx, sp.Address())
		if err != nil {
			return View{}, fmt.Errorf("task %s/%s: its recipient's ledger entry: %w", p.Queue, p.Task, err)
		}
		if ok {
			v.Attempts, v.Ledger = &e.Attempts, string(e.State)
		}
	}
	return v, nil
}
