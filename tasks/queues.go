package tasks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/audit"
)

// ErrUnknownQueue is wrapped by the errors of PauseQueue, ResumeQueue and Queue for a name
// that is none of Herald's send queues.
var ErrUnknownQueue = errors.New("not a queue of Herald's")

// queuePrefix starts the name of every send queue (campaigns.QueueFor).
const queuePrefix = "herald:"

// Queue returns the send queue (campaigns.Queues) that name names: the queue's full name
// (herald:marketing), or the same without "herald:" (marketing, the template category the
// queue carries). Any other name is an error wrapping ErrUnknownQueue that names the queues:
// asynq pauses a queue of any name, so a mistyped one would stop nothing.
func Queue(name string) (string, error) {
	if _, ok := campaigns.Queues[name]; ok {
		return name, nil
	}
	if _, ok := campaigns.Queues[queuePrefix+name]; ok && !strings.HasPrefix(name, queuePrefix) {
		return queuePrefix + name, nil
	}
	return "", fmt.Errorf("queue %q: %w; Herald's queues are %s (the part after %q will do)", name, ErrUnknownQueue,
		strings.Join(slices.Sorted(maps.Keys(campaigns.Queues)), ", "), queuePrefix)
}

// PauseQueue pauses the send queue q names (Queue): no worker takes its tasks until
// ResumeQueue. It keeps the pause in the audit log of rec as "queue pause" and returns the
// queue's full name. A name that is none of Herald's queues pauses nothing and is kept
// nowhere: the error wraps ErrUnknownQueue.
func PauseQueue(ctx context.Context, in *asynq.Inspector, q string, rec audit.Record) (string, error) {
	return actOnQueue(ctx, q, rec, "queue pause", in.PauseQueue)
}

// ResumeQueue resumes the paused send queue q names (Queue), keeps it in the audit log of rec
// as "queue resume" and returns the queue's full name; an unknown name is refused as by
// PauseQueue.
func ResumeQueue(ctx context.Context, in *asynq.Inspector, q string, rec audit.Record) (string, error) {
	return actOnQueue(ctx, q, rec, "queue resume", in.UnpauseQueue)
}

// actOnQueue applies act to the send queue q names (Queue) and keeps it in the audit log of
// rec as action; it returns the queue's full name.
func actOnQueue(ctx context.Context, q string, rec audit.Record, action string, act func(string) error) (string, error) {
	q, err := Queue(q)
	if err != nil {
		return "", err
	}
	if err := act(q); err != nil {
		return q, err
	}
	return q, rec.Keep(ctx, action, q, "")
}
