// Package audit keeps the log of operator actions (pause, resume, cancel, retry, delete...)
// in Redis: who did what to which run, queue or task, when, and why.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// Keep is how many entries the log keeps; older ones are dropped.
const Keep = 10000

// Entry is one operator action. Its actor, reason and detail are kept with their phone numbers
// masked to the last 4 digits (logx.MaskDigits): Append masks them, so the log never holds a
// number an operator typed into --reason ("customer +1 415 555 2671 complained"). They keep
// any other character as given: a command prints them through logx.Safe.
type Entry struct {
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Reason string    `json:"reason,omitempty"`
	// Detail says what the action did (e.g. "148 recipients skipped").
	Detail string `json:"detail,omitempty"`
}

// Append adds an entry to the log, its actor, reason and detail masked (Entry).
func Append(ctx context.Context, rdb redis.UniversalClient, e Entry) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	e = e.Masked()
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, rkeys.Audit(), b)
		p.LTrim(ctx, rkeys.Audit(), 0, Keep-1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit: append: %w", err)
	}
	return nil
}

// Masked returns e with the phone numbers of its actor, reason and detail masked to their
// last 4 digits (logx.MaskDigits). Its target, a run, queue, task or campaign id or a number
// masked already, is left as it is.
func (e Entry) Masked() Entry {
	e.Actor, e.Reason, e.Detail = logx.MaskDigits(e.Actor), logx.MaskDigits(e.Reason), logx.MaskDigits(e.Detail)
	return e
}

// List returns up to n entries, newest first, masked (Entry.Masked: an entry written before
// Append masked them shows no number either). An n below 1 is an error: read as a range it
// would list every entry (0) or all but the oldest (-1).
func List(ctx context.Context, rdb redis.UniversalClient, n int) ([]Entry, error) {
	if n < 1 {
		return nil, fmt.Errorf("audit: list %d entries: want 1 or more", n)
	}
	raw, err := rdb.LRange(ctx, rkeys.Audit(), 0, int64(n-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	out := make([]Entry, 0, len(raw))
	for _, r := range raw {
		var e Entry
		if err := json.Unmarshal([]byte(r), &e); err != nil {
			return nil, fmt.Errorf("audit: malformed entry: %w", err)
		}
		out = append(out, e.Masked())
	}
	return out, nil
}

// Record is who takes an operator action, why, and the log it is kept in. Every action that
// changes a run, a queue, a task or a submitted campaign takes one and writes its own entry
// (Keep, Failed), so that no caller can take the action and forget the entry.
type Record struct {
	// Redis holds the log.
	Redis redis.UniversalClient
	// Actor is who acts; "" is the OS user (Operator).
	Actor string
	// Reason is why, as the operator gave it; it may be empty.
	Reason string
}

// Keep appends the entry of action on target, which did detail. When the append fails, the
// error says that the action was taken all the same.
func (r Record) Keep(ctx context.Context, action, target, detail string) error {
	if err := r.append(ctx, action, target, detail); err != nil {
		return fmt.Errorf("%s %s was done, but not kept in the audit log: %w", action, target, err)
	}
	return nil
}

// Failed appends the entry of an action on target that failed part way with err (its
// phone-like digits masked, as every entry's), and returns err joined with the append's
// error: the log keeps the attempt and what went wrong, which says what was done.
func (r Record) Failed(ctx context.Context, action, target string, err error) error {
	return errors.Join(err, r.append(ctx, action, target, "failed: "+err.Error()))
}

func (r Record) append(ctx context.Context, action, target, detail string) error {
	if r.Redis == nil {
		return errors.New("audit: no log to write to")
	}
	return Append(ctx, r.Redis, Entry{Actor: Operator(r.Actor), Action: action, Target: target, Reason: r.Reason, Detail: detail})
}

// Why is who acts and why, as a run's status note keeps it: "actor" or "actor: reason", its
// phone numbers masked as the log's entry has them (Entry).
func (r Record) Why() string {
	if r.Reason == "" {
		return logx.MaskDigits(Operator(r.Actor))
	}
	return logx.MaskDigits(Operator(r.Actor) + ": " + r.Reason)
}

// Operator names who is acting: actor, else the OS user, else "operator".
func Operator(actor string) string {
	if actor != "" {
		return actor
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "operator"
}
