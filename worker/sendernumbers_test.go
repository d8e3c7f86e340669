package worker

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/testredis"
)

// Two sender numbers of one business. A customer opens a window by writing to one of them;
// only a send from that number is inside it (Connectly refuses a session message from the
// other, and Meta's daily tier counts a template from the other).
const (
	numberA = "+16044441234"
	numberB = "+16044445678"
)

// twoNumbers is a worker of a business with senders A and B under scope, on Redis of tier
// (Miniredis, or RealRedis with HERALD_TEST_REDIS: the worker's flushed database), with a
// client that answers a session message as Connectly would for customers who wrote to A only:
// refused from any other number.
func twoNumbers(t *testing.T, tier string, scope servicewindow.Scope, dailyTier int) (*testBundle, *sessionClient) {
	t.Helper()
	var mr *miniredis.Miniredis
	var rdb *redis.Client
	if tier == "RealRedis" {
		rdb = testredis.Open(t, testredis.OffsetWorker)
	} else {
		mr, rdb = testredis.Mini(t)
	}
	cfg := testConfig()
	cfg.Limits.BusinessID = "biz-two-numbers"
	cfg.Limits.DailyTier = dailyTier
	cfg.Windows = servicewindow.Policy{Scope: scope, Senders: []string{numberA, numberB}}
	sender := &fakeSender{}
	w := New(cfg, Deps{Redis: rdb, Sender: sender, Logger: zerolog.Nop()})
	c := &sessionClient{fakeSender: sender, SessionFunc: func(m connectly.SessionMessage) (connectly.SendResult, error) {
		if m.Sender != numberA {
			return connectly.SendResult{}, windowClosedAnswer
		}
		return connectly.SendResult{ID: "session-" + m.To}, nil
	}}
	w.client = c
	return &testBundle{mr: mr, rdb: rdb, ledger: ledger.New(rdb, nil), sender: sender, worker: w}, c
}

// wroteTo records, as the webhook receiver does, that each of ps wrote to business number to
// ("" for an inbound message that named none) an hour ago.
func wroteTo(t *testing.T, b *testBundle, to string, ps ...campaigns.SendPayload) {
	t.Helper()
	tr := servicewindow.New(b.rdb, nil)
	tr.SetPolicy(b.worker.cfg.Windows)
	for _, p := range ps {
		if _, err := tr.TouchTo(context.Background(), b.worker.cfg.Limits.BusinessID, to, []string{p.To}, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
}

// from returns ps sent from number.
func from(number string, ps []campaigns.SendPayload) []campaigns.SendPayload {
	out := make([]campaigns.SendPayload, len(ps))
	for i, p := range ps {
		p.Sender = number
		out[i] = p
	}
	return out
}

var redisTiers = []string{"Miniredis", "RealRedis"}

// TestTierCountsATemplateFromAnotherNumber: a customer who wrote to A is in no window for a
// template from B, which takes its room in the daily tier (one room: the next recipient
// waits); a template from A to a customer who wrote to A takes none, even with the tier full.
func TestTierCountsATemplateFromAnotherNumber(t *testing.T) {
	for _, tier := range redisTiers {
		t.Run(tier, func(t *testing.T) {
			b, _ := twoNumbers(t, tier, servicewindow.ScopeSender, 1)
			ctx := context.Background()
			ps := seedRun(t, b, "run-from-b", ledger.AtMostOnce, 2)
			wroteTo(t, b, numberA, ps[0])
			pending, te := drain(t, b, from(numberB, ps))
			if len(pending) != 1 || pending[0].To != ps[1].To || te == nil || te.Reason != "daily tier" {
				t.Fatalf("pending %v (%+v), want the second recipient waiting for the tier the first took", pending, te)
			}
			tier, err := b.rdb.ZRange(ctx, rkeys.Tier(b.worker.cfg.Limits.BusinessID), 0, -1).Result()
			if err != nil || len(tier) != 1 || tier[0] != ps[0].To {
				t.Fatalf("tier holds %v (%v), want the customer who wrote to A, messaged from B", tier, err)
			}
			wantEntry(t, b, ps[0], ledger.Entry{State: ledger.Accepted, Attempts: 1, MessageID: "msg-" + ps[0].To})

			// From A, the number written to: in the window, no room taken though the tier is full.
			qs := seedRunNumbers(t, b, "run-from-a", ledger.AtMostOnce, "+1556", 1)
			wroteTo(t, b, numberA, qs[0])
			if pending, te := drain(t, b, from(numberA, qs)); len(pending) != 0 {
				t.Fatalf("from A: pending %v (%+v), want sent in the window", pending, te)
			}
			wantEntry(t, b, qs[0], ledger.Entry{State: ledger.Accepted, Attempts: 1, Code: ledger.SentInWindow, MessageID: "msg-" + qs[0].To})
		})
	}
}

// TestSessionFromAnotherNumber: a customer who wrote to A is in no window for a session
// message from B: with a fallback template the template goes, without one the entry is
// skipped(window_closed), and neither makes a session request Connectly would refuse. From
// A the session message goes.
func TestSessionFromAnotherNumber(t *testing.T) {
	for _, tier := range redisTiers {
		t.Run(tier, func(t *testing.T) {
			b, c := twoNumbers(t, tier, servicewindow.ScopeSender, 0)
			ps := seedRun(t, b, "run-session-b", ledger.AtMostOnce, 3)
			wroteTo(t, b, numberA, ps...)
			fromB := from(numberB, ps)
			withFallback, without := sessionPayload(t, fromB[0], true), sessionPayload(t, fromB[1], false)
			fromA := sessionPayload(t, from(numberA, ps)[2], false)
			for _, p := range []campaigns.SendPayload{withFallback, without, fromA} {
				if err := handle(t, b, p); err != nil {
					t.Fatalf("%s from %s: %v", p.To, p.Sender, err)
				}
			}
			if n := c.Sessions(); n != 1 {
				t.Errorf("%d session requests, want 1 (from A only)", n)
			}
			wantEntry(t, b, withFallback, ledger.Entry{State: ledger.Accepted, Attempts: 1, Code: ledger.SentFallback, MessageID: "msg-" + withFallback.To})
			wantEntry(t, b, without, ledger.Entry{State: ledger.Skipped, Code: CodeWindowClosed})
			wantEntry(t, b, fromA, ledger.Entry{State: ledger.Accepted, Attempts: 1, Code: ledger.SentSession, MessageID: "session-" + fromA.To})
		})
	}
}

// TestSessionWithNoNumberNamed: an inbound message that named no business number opens a
// window for a send from A or B only under windows.scope business. Under the default (sender)
// the session message goes as its fallback, and a template books its tier room; under
// business both are sent in the window. A window recorded before Herald told numbers apart
// (the customer's field alone, as written then) reads the same.
func TestSessionWithNoNumberNamed(t *testing.T) {
	for _, tier := range redisTiers {
		for _, c := range []struct {
			scope    servicewindow.Scope
			inWindow bool
		}{{servicewindow.ScopeSender, false}, {servicewindow.ScopeBusiness, true}} {
			for _, old := range []bool{false, true} {
				name := tier + "/" + string(c.scope) + "/NoNumberNamed"
				if old {
					name = tier + "/" + string(c.scope) + "/RecordedBefore"
				}
				t.Run(name, func(t *testing.T) {
					b, sc := twoNumbers(t, tier, c.scope, 2)
					sc.SessionFunc = nil // the provider's own window is not what is tested here
					ps := seedRun(t, b, "run-no-number", ledger.AtMostOnce, 2)
					if old {
						for _, p := range ps {
							key, field := servicewindow.Locate(b.worker.cfg.Limits.BusinessID, p.To)
							if err := b.rdb.HSet(context.Background(), key, field, time.Now().Add(-time.Hour).Unix()).Err(); err != nil {
								t.Fatal(err)
							}
						}
					} else {
						wroteTo(t, b, "", ps...)
					}
					session := sessionPayload(t, from(numberB, ps)[0], true)
					template := from(numberA, ps)[1]
					if err := handle(t, b, session); err != nil {
						t.Fatal(err)
					}
					if err := handle(t, b, template); err != nil {
						t.Fatal(err)
					}
					tierSize, err := b.rdb.ZCard(context.Background(), rkeys.Tier(b.worker.cfg.Limits.BusinessID)).Result()
					if err != nil {
						t.Fatal(err)
					}
					if c.inWindow {
						wantEntry(t, b, session, ledger.Entry{State: ledger.Accepted, Attempts: 1, Code: ledger.SentSession, MessageID: "session-" + session.To})
						wantEntry(t, b, template, ledger.Entry{State: ledger.Accepted, Attempts: 1, Code: ledger.SentInWindow, MessageID: "msg-" + template.To})
						if tierSize != 0 || sc.Sessions() != 1 {
							t.Fatalf("tier holds %d, %d session requests; want none and 1", tierSize, sc.Sessions())
						}
						return
					}
					wantEntry(t, b, session, ledger.Entry{State: ledger.Accepted, Attempts: 1, Code: ledger.SentFallback, MessageID: "msg-" + session.To})
					wantEntry(t, b, template, ledger.Entry{State: ledger.Accepted, Attempts: 1, MessageID: "msg-" + template.To})
					if tierSize != 2 || sc.Sessions() != 0 {
						t.Fatalf("tier holds %d, %d session requests; want both recipients and none", tierSize, sc.Sessions())
					}
				})
			}
		}
	}
}
