package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// Late fallbacks: Connectly may accept a session message (200 with an id) and report later,
// in a delivery_failed event, that it did not reach the customer because their 24-hour
// window had closed (reference 9.3: failures arrive as delivery_failed with Connectly's
// codes; 9.2: Meta's 131047). Nothing went to the customer, so the session message's
// fallback template goes then, exactly once, as a follow-up of the run: the follow-up run
// LateFallbackRun(run) holds one entry per recipient (CreateFollowup's exactly once), with
// its own delivery statistics, pause and cancel following the run's as every follow-up's do.
//
// The receiver that learns of the failure has no audience file, so the worker keeps the
// fallback's task payload (KeepFallback) just before the session message's request, for
// Config's keep time; a session message whose window Herald's record found closed sends its
// fallback at once and keeps nothing, and a fallback sent at once after Connectly refused the
// session request takes the kept payload back (ForgetFallback): the receiver sends a late
// fallback only for a kept payload, so only for a session message that went.

// lateFallbackRule is the rule id of the late fallback of a run's own message; a follow-up's
// late fallback is lateFallbackRule + "-" + the follow-up's rule. An on_reply rule's id starts
// with a letter or digit (a name) or is r<N>, so none takes this shape.
const lateFallbackRule = "_fallback"

// LateFallbackRun returns the follow-up run that holds the late fallback of a session
// message sent in run (a campaign's run, or a follow-up run of one), and the run it follows:
// "RUN~_fallback" for a run's own message, "RUN~_fallback-RULE" for the message of the
// follow-up run "RUN~RULE".
func LateFallbackRun(run string) (followup, parent, rule string) {
	parent, rule = run, lateFallbackRule
	if p, r, ok := FollowupOf(run); ok {
		parent, rule = p, lateFallbackRule+"-"+r
	}
	return FollowupRun(parent, rule), parent, rule
}

// LateFallbackSource returns the run whose session message the late fallback run run
// (LateFallbackRun) answers: "RUN" for "RUN~_fallback", "RUN~RULE" for "RUN~_fallback-RULE";
// ok is false for any other run. The recipient's entry there has the same bucket as in run.
func LateFallbackSource(run string) (source string, ok bool) {
	parent, rule, ok := FollowupOf(run)
	switch {
	case !ok:
		return "", false
	case rule == lateFallbackRule:
		return parent, true
	case strings.HasPrefix(rule, lateFallbackRule+"-") && len(rule) > len(lateFallbackRule)+1:
		return FollowupRun(parent, rule[len(lateFallbackRule)+1:]), true
	}
	return "", false
}

// SkipSessionDelivered is the skip reason of a late fallback whose session message turned out
// delivered after all: when it came to be sent, the message's entry no longer recorded the
// failure (a delivered or read replaced it).
const SkipSessionDelivered = "session_delivered"

// IsLateFallback reports whether rule is the rule id of a late fallback (LateFallbackRun).
func IsLateFallback(rule string) bool {
	return rule == lateFallbackRule || strings.HasPrefix(rule, lateFallbackRule+"-")
}

// keptField is a recipient's field in a kept-fallback bucket: a phone's digits, else the
// recipient as written.
func keptField(recipient string) string {
	if d, ok := digitField(recipient); ok {
		return d
	}
	return recipient
}

// KeepFallback keeps payload, the task payload of the fallback template of the session
// message about to go to a's recipient, for keep: one round trip (one MULTI on one key).
func (l *Ledger) KeepFallback(ctx context.Context, a Address, payload []byte, keep time.Duration) error {
	if a.Run == "" || a.Recipient == "" || len(payload) == 0 || keep <= 0 {
		return errors.New("ledger: keep fallback: run, recipient, payload and a keep time are required")
	}
	key := rkeys.KeptFallback(a.Run, a.Bucket)
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, keptField(a.Recipient), payload)
		p.PExpire(ctx, key, keep)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger: keep fallback in run %s: %w", a.Run, err)
	}
	return nil
}

// KeepFallbackIn queues KeepFallback's commands in pipe (a send's claim round trip) and
// returns what reads their answer once the pipeline ran.
func (l *Ledger) KeepFallbackIn(ctx context.Context, pipe redis.Pipeliner, a Address, payload []byte, keep time.Duration) func() error {
	key := rkeys.KeptFallback(a.Run, a.Bucket)
	set := pipe.HSet(ctx, key, keptField(a.Recipient), payload)
	exp := pipe.PExpire(ctx, key, keep)
	return func() error {
		if err := errors.Join(set.Err(), exp.Err()); err != nil {
			return fmt.Errorf("ledger: keep fallback in run %s: %w", a.Run, err)
		}
		return nil
	}
}

// ForgetFallback drops the fallback kept for a's recipient (KeepFallback): its session
// message did not go.
func (l *Ledger) ForgetFallback(ctx context.Context, a Address) error {
	if err := l.rdb.HDel(ctx, rkeys.KeptFallback(a.Run, a.Bucket), keptField(a.Recipient)).Err(); err != nil {
		return fmt.Errorf("ledger: forget fallback in run %s: %w", a.Run, err)
	}
	return nil
}

// ForgetFallbackIn queues ForgetFallback's command in pipe (a send's claim round trip) and
// returns what reads its answer once the pipeline ran.
func (l *Ledger) ForgetFallbackIn(ctx context.Context, pipe redis.Pipeliner, a Address) func() error {
	del := pipe.HDel(ctx, rkeys.KeptFallback(a.Run, a.Bucket), keptField(a.Recipient))
	return func() error {
		if err := del.Err(); err != nil {
			return fmt.Errorf("ledger: forget fallback in run %s: %w", a.Run, err)
		}
		return nil
	}
}

// KeptFallback returns the fallback payload kept for a's recipient; nil when none is kept
// (the message had no fallback, the worker kept none, or the keep time has passed).
func (l *Ledger) KeptFallback(ctx context.Context, a Address) ([]byte, error) {
	v, err := l.rdb.HGet(ctx, rkeys.KeptFallback(a.Run, a.Bucket), keptField(a.Recipient)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: read kept fallback in run %s: %w", a.Run, err)
	}
	return v, nil
}
