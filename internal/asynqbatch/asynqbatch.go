// Package asynqbatch writes many asynq tasks in one Redis round trip, in asynq's own format.
// It is the one way Herald's expansion puts send tasks into the queue, and the one place that
// knows that format: DecodeTask reads a stored task's type and payload back without an
// Inspector round trip per task.
package asynqbatch

import (
	"context"
	_ "embed"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// Writer writes tasks into asynq's queues and reports per task whether it was created
// (false: a task with its id already existed and was left alone). fresh says the caller knows
// no task with these ids exists; RedisWriter no longer relies on it (see RedisWriter.Write).
type Writer interface {
	Write(ctx context.Context, tasks []Task, fresh bool) ([]bool, error)
}

// Task is one task for a Writer: what asynq.NewTask and its options would say.
type Task struct {
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
	// msg is the encoded message, when NewTask encoded it (Write encodes the others).
	msg []byte
}

// NewTask returns t with its message encoded now, its payload written by appendPayload (which
// appends it to the slice it is given and returns the result) straight into the message, in
// place of t.Payload, which then holds a view of it: a producer of many tasks encodes each
// payload once, with no copy. size is about the payload's length (a wrong guess costs a move
// of the payload, never a different message). Write writes the message as encoded: t's fields
// are not to be changed afterwards.
func NewTask(t Task, size int, appendPayload func([]byte) []byte) Task {
	b := make([]byte, 0, messageSize(t, size))
	b = appendHead(b, t)
	tagAt := len(b)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	lenAt := len(b)
	reserved := protowire.SizeVarint(uint64(size))
	for range reserved {
		b = append(b, 0)
	}
	start := len(b)
	b = appendPayload(b)
	n := len(b) - start
	var from, to int // where the payload ends up in the message
	if n == 0 {
		b = b[:tagAt] // an empty payload is omitted, as proto3 omits it
	} else {
		// The payload's length, in the bytes reserved for it: the payload moves when its
		// length takes fewer or more.
		need := protowire.SizeVarint(uint64(n))
		switch {
		case need < reserved:
			copy(b[lenAt+need:], b[start:])
			b = b[:len(b)-(reserved-need)]
		case need > reserved:
			for range need - reserved {
				b = append(b, 0)
			}
			copy(b[lenAt+need:], b[start:start+n])
		}
		protowire.AppendVarint(b[lenAt:lenAt], uint64(n))
		from, to = lenAt+need, lenAt+need+n
	}
	b = appendTail(b, t)
	t.msg, t.Payload = b, b[from:to:to]
	return t
}

// RedisWriter writes many tasks into asynq's queues in one round trip, with the same Redis
// operations and the same message encoding as asynq v0.26's Client (which has no batch
// enqueue; see its enqueueCmd and scheduleCmd in internal/rdb/rdb.go): a task whose TaskID
// exists is left alone, as Enqueue's ErrTaskIDConflict would.
// The encoding is tested against asynq's own reader (Inspector, Server) and a golden message
// in asynqbatch_test.go, so an asynq upgrade that changes it fails the tests rather than
// production.
type RedisWriter struct {
	rdb       redis.UniversalClient
	published sync.Map // queue name → true once added to asynq's queue set
	now       func() time.Time
}

var _ Writer = (*RedisWriter)(nil)

// New returns a RedisWriter on rdb.
func New(rdb redis.UniversalClient) *RedisWriter {
	return &RedisWriter{rdb: rdb, now: time.Now}
}

// asynqDefaultTimeout is what asynq's Client sets when a task has neither timeout nor deadline.
const asynqDefaultTimeout = 30 * time.Minute

// encodeTaskMessage encodes asynq's TaskMessage protobuf (internal/proto/asynq.proto) for a
// new task: type = 1, payload = 2, id = 3, queue = 4, retry = 5, timeout = 8, deadline = 9,
// retention = 12; zero fields are omitted as proto3 does.
func encodeTaskMessage(t Task) []byte {
	b := make([]byte, 0, messageSize(t, len(t.Payload)))
	b = appendHead(b, t)
	if len(t.Payload) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, t.Payload)
	}
	return appendTail(b, t)
}

// messageSize is at least the length of t's message with a payload of size bytes.
func messageSize(t Task, size int) int {
	// Four tags and lengths of up to three bytes each, and three varints of up to 10 bytes
	// with their tags.
	return size + len(t.Type) + len(t.ID) + len(t.Queue) + 16 + 33
}

// appendHead appends the fields of t's message before its payload: its type (1).
func appendHead(b []byte, t Task) []byte {
	return appendString(b, 1, t.Type)
}

// appendTail appends the fields of t's message after its payload: id (3), queue (4), retry
// (5), timeout (8) and retention (12).
func appendTail(b []byte, t Task) []byte {
	b = appendString(b, 3, t.ID)
	b = appendString(b, 4, t.Queue)
	b = appendVarint(b, 5, int64(int32(t.MaxRetry)))
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = asynqDefaultTimeout
	}
	b = appendVarint(b, 8, int64(timeout.Seconds()))
	// deadline (9): asynq writes time.Unix(0, 0).Unix() = 0 for "none", which proto omits.
	return appendVarint(b, 12, int64(t.Retention.Seconds()))
}

// appendString appends a string field, omitted when empty as proto3 does.
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendVarint appends a varint field, omitted when zero as proto3 does.
func appendVarint(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// DecodeTask reads the type (field 1) and payload (field 2) of asynq's TaskMessage protobuf,
// as asynq v0.26 stores it in a task's hash (rkeys.AsynqTask, field "msg") and Writer writes
// it, so a reader of many tasks needs no Inspector round trip per task; ok is false for a
// message that does not parse.
func DecodeTask(b []byte) (typ string, payload []byte, ok bool) {
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", nil, false
		}
		b = b[n:]
		if wt == protowire.BytesType && (num == 1 || num == 2) {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return "", nil, false
			}
			if num == 1 {
				typ = string(v)
			} else {
				payload = v
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, wt, b)
		if m < 0 {
			return "", nil, false
		}
		b = b[m:]
	}
	return typ, payload, typ != ""
}

//go:embed lua/batch.lua
var batchLua string

// asynqBatchCmd writes many tasks of one queue in one script call, each as asynq's Client
// would. Its KEYS, ARGV and reply are documented at the top of lua/batch.lua.
var asynqBatchCmd = redis.NewScript(batchLua)

// Write writes the tasks, one script call per queue, all in one pipeline, and reports per
// task whether it was created (false: a task with its id already existed, left alone as
// asynq's Enqueue would with ErrTaskIDConflict). On error some tasks may have been written;
// calling again with the same tasks is safe.
//
// Every task is checked, whatever fresh says: a task whose id exists is never written again
// nor queued a second time. fresh used to skip that check, but a call runs twice whenever the
// connection drops after Redis ran it and before its reply was read (a read timeout, a
// failover), as go-redis then sends the pipeline again; unchecked, the second run queued
// every id of the batch twice, and a task id twice in pending is either handled twice at
// once or left as a pending id without a task. The check costs Redis one lookup per task
// inside the script, no round trip. A call that ran twice reports its tasks as existing
// (false), as only the second run's reply arrives.
func (b *RedisWriter) Write(ctx context.Context, tasks []Task, fresh bool) ([]bool, error) {
	created := make([]bool, len(tasks))
	if len(tasks) == 0 {
		return created, nil
	}
	byQueue := map[string][]int{}
	var queues []string
	for i, t := range tasks {
		if t.ID == "" || t.Queue == "" || t.Type == "" {
			return nil, fmt.Errorf("asynqbatch: task id, queue and type are required")
		}
		if _, ok := byQueue[t.Queue]; !ok {
			queues = append(queues, t.Queue)
			if _, ok := b.published.Load(t.Queue); !ok {
				if err := b.rdb.SAdd(ctx, rkeys.AsynqQueues(), t.Queue).Err(); err != nil {
					return nil, fmt.Errorf("asynqbatch: register queue %s: %w", t.Queue, err)
				}
				b.published.Store(t.Queue, true)
			}
		}
		byQueue[t.Queue] = append(byQueue[t.Queue], i)
	}
	now := b.now()
	type call struct {
		idx  []int
		keys []string
		args []any
	}
	calls := make([]call, 0, len(queues))
	for _, q := range queues {
		idx := byQueue[q]
		c := call{idx: idx, keys: make([]string, 0, 2+len(idx)), args: make([]any, 0, 1+3*len(idx))}
		c.keys = append(c.keys, rkeys.AsynqPending(q), rkeys.AsynqScheduled(q))
		c.args = append(c.args, now.UnixNano())
		for _, i := range idx {
			t := tasks[i]
			var at int64
			if t.ProcessAt.After(now) {
				at = t.ProcessAt.Unix()
			}
			msg := t.msg
			if msg == nil {
				msg = encodeTaskMessage(t)
			}
			c.keys = append(c.keys, rkeys.AsynqTask(q, t.ID))
			c.args = append(c.args, msg, t.ID, at)
		}
		calls = append(calls, c)
	}
	// Two passes at most: by script hash first; a NOSCRIPT (the script did not run) loads it
	// and runs the call again.
	for pass := 0; pass < 2 && len(calls) > 0; pass++ {
		cmds := make([]*redis.Cmd, len(calls))
		_, _ = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, c := range calls {
				cmds[j] = asynqBatchCmd.EvalSha(ctx, p, c.keys, c.args...)
			}
			return nil
		})
		var again []call
		for j, c := range calls {
			res, err := cmds[j].Int64Slice()
			switch {
			case err == nil && len(res) == len(c.idx):
				for k, i := range c.idx {
					created[i] = res[k] == 1
				}
			case err == nil:
				return created, fmt.Errorf("asynqbatch: %d results for %d tasks", len(res), len(c.idx))
			case redis.HasErrorPrefix(err, "NOSCRIPT") && pass == 0:
				again = append(again, c)
			default:
				return created, fmt.Errorf("asynqbatch: %w", err)
			}
		}
		if len(again) > 0 {
			if err := asynqBatchCmd.Load(ctx, b.rdb).Err(); err != nil {
				return created, fmt.Errorf("asynqbatch: load script: %w", err)
			}
		}
		calls = again
	}
	return created, nil
}
