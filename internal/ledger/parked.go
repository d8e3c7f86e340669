package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// Parked delivery events.
//
// A delivery event can arrive before the worker has recorded its send (ApplyDelivery answers
// DeliveryEarly: the entry is still planned, queued or being sent). Such an event is parked in
// one sorted set (rkeys.WebhookParked), scored by when it first arrived, and tried again by
// RetryParked until its entry is ready or it has waited too long. A member is the event as
// JSON; the same event parked twice is one member.
//
// How long is too long depends on the entry. One still planned or queued is given the keep
// period the caller names (webhooks.park_for): its next send records a new message id, so an
// event about an earlier request could only be found to be about another message. One still
// submitting holds a claim whose request may be the very message the event is about: the
// worker records the send, or, if it died, the next attempt turns the claim unknown, and the
// event then settles it. That can take longer than the keep period: a paused run holds its
// tasks, a dead worker's claim included, until it is resumed. So an event whose entry is still
// submitting is kept beyond the keep period, up to ParkedMaxAge. A submitting entry means its
// run has not ended (a run completes only once every entry is settled), so this keeps an event
// for as long as its run is running or paused, or cancelled with the claim not yet turned
// unknown, and never longer than ParkedMaxAge.

// parkedEvent is a delivery event as stored in the parked set. Its JSON names are the stored
// format: events parked by an earlier version must still read.
type parkedEvent struct {
	Run       string `json:"r"`
	Bucket    int    `json:"b"`
	Recipient string `json:"t"`
	State     string `json:"s"`
	Code      string `json:"c,omitempty"`
	Class     string `json:"k,omitempty"`
	MessageID string `json:"m,omitempty"`
	// TTDms is the time to deliver in milliseconds, rounded up so a sample is never lost.
	TTDms int64 `json:"d,omitempty"`
	// Strict is DeliveryEvent.Strict: the event was matched without callbackData, so only an
	// entry that records its message id takes it (absent in events parked by an earlier
	// version, which all had callbackData).
	Strict bool `json:"x,omitempty"`
}

// ParkedMaxAge is the longest a parked event is kept, whatever its entry: an event whose entry
// is still submitting outlives RetryParked's keep period, up to this (see above).
const ParkedMaxAge = 7 * 24 * time.Hour

// Park keeps a delivery event that ApplyDelivery found early, to be tried again by
// RetryParked. Parking the same event again keeps its first arrival time.
func (l *Ledger) Park(ctx context.Context, ev DeliveryEvent) error {
	b, err := json.Marshal(parkedEvent{Run: ev.Run, Bucket: ev.Bucket, Recipient: ev.Recipient, State: string(ev.State),
		Code: ev.Code, Class: ev.Class, MessageID: ev.MessageID, TTDms: (ev.TimeToDeliver + time.Millisecond - 1).Milliseconds(),
		Strict: ev.Strict})
	if err != nil {
		return fmt.Errorf("ledger: park event: %w", err)
	}
	err = l.rdb.ZAddNX(ctx, rkeys.WebhookParked(), redis.Z{Score: float64(l.nowMS()), Member: string(b)}).Err()
	if err != nil {
		return fmt.Errorf("ledger: park event: %w", err)
	}
	return nil
}

// ParkedVerdict is what RetryParked did with one parked event.
type ParkedVerdict string

const (
	// ParkedKept: the entry is still not recorded as sent; the event stays parked.
	ParkedKept ParkedVerdict = ""
	// ParkedApplied: the event moved its entry forward and was dropped.
	ParkedApplied ParkedVerdict = "applied"
	// ParkedStale: the event changed nothing (a duplicate, out of order, another message, or
	// no such entry) and was dropped.
	ParkedStale ParkedVerdict = "stale"
	// ParkedExpired: the event waited its whole keep period (ParkedMaxAge while its entry was
	// still submitting) and was dropped.
	ParkedExpired ParkedVerdict = "expired"
	// ParkedDropped: the member could not be read as an event and was dropped.
	ParkedDropped ParkedVerdict = "dropped"
)

// ParkedOutcome reports one event RetryParked tried.
type ParkedOutcome struct {
	Event   DeliveryEvent
	Verdict ParkedVerdict
	// Prior is the entry's state when the event was tried.
	Prior State
	// Age is how long the event had been parked.
	Age time.Duration
	// Delivery is what applying the event answered (ApplyDelivery), when it was tried.
	Delivery DeliveryVerdict
}

// parkedBatch is how many of the oldest parked events one RetryParked call tries.
const parkedBatch = 10000

// RetryParked tries the oldest parked events once: an event whose entry is now recorded as
// sent is applied (or found stale) and dropped; one still early stays until keepFor has passed
// since it arrived, or, while its entry is still submitting, until ParkedMaxAge has (see the
// top of this file). It calls report, when not nil, for every event it dropped, and returns
// how many it dropped and how many it left parked.
func (l *Ledger) RetryParked(ctx context.Context, keepFor time.Duration, report func(ParkedOutcome)) (done, remaining int, err error) {
	return l.RetryParkedThen(ctx, keepFor, nil, report)
}

// RetryParkedThen is RetryParked with then, when not nil, called for each event tried and not
// kept, before it is dropped: an error stops the call and leaves that event parked, to be
// tried again (then must be idempotent).
func (l *Ledger) RetryParkedThen(ctx context.Context, keepFor time.Duration, then func(context.Context, ParkedOutcome) error, report func(ParkedOutcome)) (done, remaining int, err error) {
	now := l.now()
	zs, err := l.rdb.ZRangeWithScores(ctx, rkeys.WebhookParked(), 0, parkedBatch-1).Result()
	if err != nil {
		return 0, 0, fmt.Errorf("ledger: read parked events: %w", err)
	}
	for _, z := range zs {
		member, _ := z.Member.(string)
		o, err := l.retryParked(ctx, member, now.Sub(time.UnixMilli(int64(z.Score))), keepFor)
		if err != nil {
			return done, remaining, err
		}
		if o.Verdict == ParkedKept {
			remaining++
			continue
		}
		if then != nil {
			if err := then(ctx, o); err != nil {
				return done, remaining, err
			}
		}
		if err := l.rdb.ZRem(ctx, rkeys.WebhookParked(), member).Err(); err != nil {
			return done, remaining, fmt.Errorf("ledger: drop parked event: %w", err)
		}
		done++
		if report != nil {
			report(o)
		}
	}
	return done, remaining, nil
}

// retryParked applies one parked event.
func (l *Ledger) retryParked(ctx context.Context, member string, age, keepFor time.Duration) (ParkedOutcome, error) {
	o := ParkedOutcome{Age: age, Verdict: ParkedDropped}
	var p parkedEvent
	if err := json.Unmarshal([]byte(member), &p); err != nil {
		return o, nil
	}
	o.Event = DeliveryEvent{Address: Address{Run: p.Run, Bucket: p.Bucket, Recipient: p.Recipient}, State: State(p.State),
		Code: p.Code, Class: p.Class, MessageID: p.MessageID, TimeToDeliver: time.Duration(p.TTDms) * time.Millisecond,
		Strict: p.Strict}
	switch o.Event.State {
	case Sent, Delivered, Read, Failed:
	default:
		return o, nil
	}
	v, prior, err := l.ApplyDelivery(ctx, o.Event)
	if err != nil {
		return o, err
	}
	o.Prior, o.Delivery = prior, v
	switch v {
	case DeliveryEarly:
		o.Verdict = ParkedKept
		limit := keepFor
		if prior == Submitting {
			// The claim may be this very message: keep the event until the claim settles.
			limit = max(keepFor, ParkedMaxAge)
		}
		if age >= limit {
			o.Verdict = ParkedExpired
		}
	case DeliveryApplied:
		o.Verdict = ParkedApplied
	default:
		o.Verdict = ParkedStale
	}
	return o, nil
}

// ParkedCount returns how many delivery events are parked.
func (l *Ledger) ParkedCount(ctx context.Context) (int64, error) {
	n, err := l.rdb.ZCard(ctx, rkeys.WebhookParked()).Result()
	if err != nil {
		return 0, fmt.Errorf("ledger: count parked events: %w", err)
	}
	return n, nil
}
