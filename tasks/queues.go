package tasks

import (
	"context"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/internal/audit"
)

// PauseQueue pauses queue q (no worker takes its tasks until ResumeQueue) and keeps it in the
// audit log of rec as "queue pause".
func PauseQueue(ctx context.Context, in *asynq.Inspector, q string, rec audit.Record) error {
	if err := in.PauseQueue(q); err != nil {
		return err
	}
	return rec.Keep(ctx, "queue pause", q, "")
}

// ResumeQueue resumes paused queue q and keeps it in the audit log of rec as "queue resume".
func ResumeQueue(ctx context.Context, in *asynq.Inspector, q string, rec audit.Record) error {
	if err := in.UnpauseQueue(q); err != nil {
		return err
	}
	return rec.Keep(ctx, "queue resume", q, "")
}
