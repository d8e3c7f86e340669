package tasks

import (
	"context"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
)

// SkipDeleted marks the recipients of deleted send tasks skipped(deleted) in the ledger, so
// their runs can still complete, and returns how many moved. Tasks that are not send tasks
// are passed over; the first ledger error is returned, after the other tasks were tried.
func SkipDeleted(ctx context.Context, l *ledger.Ledger, tasks []*asynq.TaskInfo) (int, error) {
	n := 0
	var first error
	for _, t := range tasks {
		if t.Type != campaigns.TypeSend {
			continue
		}
		p, err := campaigns.DecodeSend(t.Payload)
		if err != nil {
			continue
		}
		ok, err := l.Skip(ctx, p.Address(), "deleted")
		if err != nil {
			if first == nil {
				first = fmt.Errorf("task %s: skip its recipient: %w", t.ID, err)
			}
			continue
		}
		if ok {
			n++
		}
	}
	return n, first
}
