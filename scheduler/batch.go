package scheduler

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"
)

// TaskSpec is one task for BatchEnqueuer: what asynq.NewTask and its options would say.
type TaskSpec struct {
	Type    string
	Payload []byte
	// ID is the asynq TaskID (required).
	ID    string
	Queue string
	// MaxRetry is asynq's retry budget.
	MaxRetry int
	// Timeout bounds one handler run; 0 means asynq's default of 30 minutes.
	Timeout time.Duration
	// Retention keeps the completed task this long.
	Retention time.Duration
	// ProcessAt, when after now, schedules the task instead of making it pending.
	ProcessAt time.Time
}

// BatchEnqueuer writes many tasks into asynq's queues in one pipelined round trip, with the
// same scripts and the same message encoding as asynq v0.26's Client (which has no batch
// enqueue): a task whose TaskID exists is left alone, as Enqueue's ErrTaskIDConflict would.
// The encoding is tested against asynq's own reader (Inspector, Server) in batch_test.go, so
// an asynq upgrade that changes it fails the tests rather than production.
type BatchEnqueuer struct {
	rdb       redis.UniversalClient
	published sync.Map // queue name → true once added to asynq's queue set
	now       func() time.Time
}

// NewBatchEnqueuer returns a BatchEnqueuer on rdb.
func NewBatchEnqueuer(rdb redis.UniversalClient) *BatchEnqueuer {
	return &BatchEnqueuer{rdb: rdb, now: time.Now}
}

// asynqEnqueueCmd is asynq v0.26's enqueueCmd (internal/rdb/rdb.go), unchanged.
//
// KEYS[1] -> asynq:{<qname>}:t:<task_id>, KEYS[2] -> asynq:{<qname>}:pending
// ARGV[1] -> task message data, ARGV[2] -> task ID, ARGV[3] -> current unix time in nsec
// Returns 1 when the task was created, 0 when the id exists.
var asynqEnqueueCmd = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 1 then
	return 0
end
redis.call("HSET", KEYS[1],
           "msg", ARGV[1],
           "state", "pending",
           "pending_since", ARGV[3])
redis.call("LPUSH", KEYS[2], ARGV[2])
return 1
`)

// asynqScheduleCmd is asynq v0.26's scheduleCmd, unchanged.
//
// KEYS[1] -> asynq:{<qname>}:t:<task_id>, KEYS[2] -> asynq:{<qname>}:scheduled
// ARGV[1] -> task message data, ARGV[2] -> process_at (unix seconds), ARGV[3] -> task ID
// Returns 1 when the task was created, 0 when the id exists.
var asynqScheduleCmd = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 1 then
	return 0
end
redis.call("HSET", KEYS[1],
           "msg", ARGV[1],
           "state", "scheduled")
redis.call("ZADD", KEYS[2], ARGV[2], ARGV[3])
return 1
`)

// asynq's key layout (internal/base/base.go).
func asynqTaskKey(queue, id string) string  { return "asynq:{" + queue + "}:t:" + id }
func asynqPendingKey(queue string) string   { return "asynq:{" + queue + "}:pending" }
func asynqScheduledKey(queue string) string { return "asynq:{" + queue + "}:scheduled" }
func asynqAllQueuesKey() string             { return "asynq:queues" }

// asynqDefaultTimeout is what asynq's Client sets when a task has neither timeout nor deadline.
const asynqDefaultTimeout = 30 * time.Minute

// encodeTaskMessage encodes asynq's TaskMessage protobuf (internal/proto/asynq.proto) for a
// new task: type = 1, payload = 2, id = 3, queue = 4, retry = 5, timeout = 8, deadline = 9,
// retention = 12; zero fields are omitted as proto3 does.
func encodeTaskMessage(t TaskSpec) []byte {
	b := make([]byte, 0, len(t.Payload)+len(t.Type)+len(t.ID)+len(t.Queue)+32)
	str := func(num protowire.Number, s string) {
		if s != "" {
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendString(b, s)
		}
	}
	varint := func(num protowire.Number, v int64) {
		if v != 0 {
			b = protowire.AppendTag(b, num, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(v))
		}
	}
	str(1, t.Type)
	if len(t.Payload) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, t.Payload)
	}
	str(3, t.ID)
	str(4, t.Queue)
	varint(5, int64(int32(t.MaxRetry)))
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = asynqDefaultTimeout
	}
	varint(8, int64(timeout.Seconds()))
	// deadline (9): asynq writes time.Unix(0, 0).Unix() = 0 for "none", which proto omits.
	varint(12, int64(t.Retention.Seconds()))
	return b
}

// Enqueue writes the tasks in one pipeline and reports, per task, whether it was created
// (false: a task with its id already existed). On error some tasks may have been written;
// calling again with the same tasks is safe.
func (b *BatchEnqueuer) Enqueue(ctx context.Context, tasks []TaskSpec) ([]bool, error) {
	created := make([]bool, len(tasks))
	if len(tasks) == 0 {
		return created, nil
	}
	for _, t := range tasks {
		if t.ID == "" || t.Queue == "" || t.Type == "" {
			return nil, fmt.Errorf("batch enqueue: task id, queue and type are required")
		}
		if _, ok := b.published.Load(t.Queue); !ok {
			if err := b.rdb.SAdd(ctx, asynqAllQueuesKey(), t.Queue).Err(); err != nil {
				return nil, fmt.Errorf("batch enqueue: register queue %s: %w", t.Queue, err)
			}
			b.published.Store(t.Queue, true)
		}
	}
	now := b.now()
	todo := make([]int, len(tasks))
	for i := range todo {
		todo[i] = i
	}
	// Two passes at most: the first by script hash; tasks whose script was not loaded yet
	// (NOSCRIPT: the script did not run) go again after loading it.
	for pass := 0; pass < 2 && len(todo) > 0; pass++ {
		cmds := make([]*redis.Cmd, len(todo))
		_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, i := range todo {
				t := tasks[i]
				msg := encodeTaskMessage(t)
				if t.ProcessAt.After(now) {
					cmds[j] = asynqScheduleCmd.EvalSha(ctx, p,
						[]string{asynqTaskKey(t.Queue, t.ID), asynqScheduledKey(t.Queue)}, msg, t.ProcessAt.Unix(), t.ID)
				} else {
					cmds[j] = asynqEnqueueCmd.EvalSha(ctx, p,
						[]string{asynqTaskKey(t.Queue, t.ID), asynqPendingKey(t.Queue)}, msg, t.ID, now.UnixNano())
				}
			}
			return nil
		})
		// Pipelined reports the first failed command; every command carries its own error
		// (a connection failure is set on all of them), so each is looked at below.
		_ = err
		var again []int
		for j, i := range todo {
			n, err := cmds[j].Int64()
			switch {
			case err == nil:
				created[i] = n == 1
			case redis.HasErrorPrefix(err, "NOSCRIPT") && pass == 0:
				again = append(again, i)
			default:
				return created, fmt.Errorf("batch enqueue task %s: %w", tasks[i].ID, err)
			}
		}
		if len(again) > 0 {
			for _, s := range []*redis.Script{asynqEnqueueCmd, asynqScheduleCmd} {
				if err := s.Load(ctx, b.rdb).Err(); err != nil {
					return created, fmt.Errorf("batch enqueue: load script: %w", err)
				}
			}
		}
		todo = again
	}
	return created, nil
}
