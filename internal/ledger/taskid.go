package ledger

import (
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// TaskIDs names send tasks: a recipient's send in a run has one asynq task id, the run id and
// 96 bits of SHA-256 of the recipient under a key of the run's own, derived with HMAC-SHA256
// from the deployment's secret key (ForRun). The id is the same for every producer of one
// deployment (expansion, the resend sweep, follow-ups), so a replayed batch or a second producer
// finds it taken; it carries no phone number; and one person's ids in two runs do not match.
// Task ids are shown where numbers are masked (`task ls`, the dashboard, asynq's logs): an
// unkeyed hash of a number whose length and last four digits are shown beside it is reversed
// in about 10^7 guesses, a keyed one is not. (Only 96 bits of the digest are shown, so the
// key-prefixed digest cannot be extended either.)
type TaskIDs struct{ key []byte }

// NewTaskIDs names tasks with key, for tests and tools that name tasks outside a deployment; a
// deployment's producers read its key with Ledger.TaskIDs.
func NewTaskIDs(key []byte) TaskIDs { return TaskIDs{key: key} }

// ForRun returns the namer of run's send tasks; expansion takes one per step, so a batch
// costs one SHA-256 block per recipient, as an unkeyed hash did.
func (k TaskIDs) ForRun(run string) RunTaskIDs {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(run))
	r := RunTaskIDs{run: run}
	m.Sum(r.key[:0])
	return r
}

// TaskID is the id of recipient's send task in run.
func (k TaskIDs) TaskID(run, recipient string) string { return k.ForRun(run).TaskID(recipient) }

// ResendTaskID is the asynq task id of recipient's one resend in run: its send task's id with
// ":r1", so it never collides with the original task (which may still exist, retained or about
// to be redelivered), and a second enqueue of the same resend is refused.
func (k TaskIDs) ResendTaskID(run, recipient string) string { return k.TaskID(run, recipient) + ":r1" }

// RunTaskIDs names the send tasks of one run (TaskIDs.ForRun).
type RunTaskIDs struct {
	run string
	key [sha256.Size]byte
}

// TaskID is the id of recipient's send task in the run.
func (r RunTaskIDs) TaskID(recipient string) string {
	var buf [96]byte
	sum := sha256.Sum256(append(append(buf[:0], r.key[:]...), recipient...))
	return r.run + "/" + hex.EncodeToString(sum[:12])
}

// taskIDKeyLen is the length of the key in bytes; a shorter stored key is refused.
const taskIDKeyLen = 32

// TaskIDs returns the deployment's task id key, kept in Redis (rkeys.TaskIDKey) and written
// with random bytes by whichever process asks first; the ledger keeps it once read.
func (l *Ledger) TaskIDs(ctx context.Context) (TaskIDs, error) {
	if k := l.taskIDs.Load(); k != nil {
		return *k, nil
	}
	key := rkeys.TaskIDKey()
	v, err := l.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		b := make([]byte, taskIDKeyLen)
		_, _ = crand.Read(b) // never fails (crypto/rand)
		var set bool
		if set, err = l.rdb.SetNX(ctx, key, hex.EncodeToString(b), 0).Result(); err == nil && set {
			v = hex.EncodeToString(b)
		} else if err == nil {
			v, err = l.rdb.Get(ctx, key).Result()
		}
	}
	if err != nil {
		return TaskIDs{}, fmt.Errorf("ledger: read the task id key: %w", err)
	}
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != taskIDKeyLen {
		return TaskIDs{}, fmt.Errorf("ledger: the task id key at %s is not %d hex-encoded bytes; delete it to have a new one written (tasks already queued keep their ids)", key, taskIDKeyLen)
	}
	k := &TaskIDs{key: b}
	l.taskIDs.Store(k)
	return *k, nil
}

// TaskID is the id of recipient's send task in run (TaskIDs).
func (l *Ledger) TaskID(ctx context.Context, run, recipient string) (string, error) {
	k, err := l.TaskIDs(ctx)
	if err != nil {
		return "", err
	}
	return k.TaskID(run, recipient), nil
}
