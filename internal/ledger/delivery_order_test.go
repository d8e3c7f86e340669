package ledger

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// The delivery events of one message merge in a total order (accepted < sent < failed <
// delivered < read), so their arrival order does not change what the ledger ends with.

func init() {
	scriptCases = append(scriptCases,
		scriptCase{name: "DeliveredAfterAFailureReplacesItAndItsCounts", scripts: []string{"deliveryCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
			if err := e.accept(ctx, 0, "m"); err != nil {
				return err
			}
			fail := DeliveryEvent{Address: e.addr(0), State: Failed, Code: "131026", Class: "permanent", MessageID: "m"}
			v1, _, err1 := e.b.l.ApplyDelivery(ctx, fail)
			v2, prior, err2 := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: e.addr(0), State: Delivered, MessageID: "m", TimeToDeliver: time.Second})
			v3, _, err3 := e.b.l.ApplyDelivery(ctx, fail)
			en, err4 := e.entry(ctx, 0)
			d, err5 := e.b.l.DeliveryStats(ctx, e.run)
			c, err6 := e.b.l.Counters(ctx, e.run)
			return first(err1, err2, err3, err4, err5, err6, want("failure", DeliveryApplied, v1), want("delivered", DeliveryApplied, v2),
				want("prior", Failed, prior), want("failure again", DeliveryStale, v3), want("state", Delivered, en.State),
				want("code", "", en.Code), want("message", "m", en.MessageID), want("delivery failed", int64(0), d.DeliveryFailed),
				want("by code", 0, len(d.FailedByCode)), want("by class", 0, len(d.FailedByClass)), want("delivered", int64(1), d.Delivered),
				want("accepted", int64(1), d.Accepted), want("samples", int64(1), d.TimeToDeliver.Samples),
				want("failed:131026", int64(0), c.Codes["failed:131026"]))
		}},
		scriptCase{name: "HowAMessageWasSentOutlivesItsDeliveryEvents", scripts: []string{"claimCmd", "finishCmd", "deliveryCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
			// Recipient 0 goes sent, delivered, read; recipient 1 fails in delivery, then is
			// delivered after all: both keep the code their accept recorded (fallback).
			for i := range 2 {
				c, err := e.claim(ctx, i)
				if err != nil {
					return err
				}
				if _, err := e.b.l.Finish(ctx, e.addr(i), Outcome{State: Accepted, Code: SentFallback, MessageID: "m", Attempt: c.Attempts}); err != nil {
					return err
				}
			}
			for _, st := range []State{Sent, Delivered, Read} {
				if _, _, err := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: e.addr(0), State: st, MessageID: "m"}); err != nil {
					return err
				}
			}
			_, _, err1 := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: e.addr(1), State: Failed, Code: "131026", Class: "permanent", MessageID: "m"})
			failed, err2 := e.entry(ctx, 1)
			h, err3 := e.b.l.History(ctx, e.addr(1))
			_, _, err4 := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: e.addr(1), State: Delivered, MessageID: "m"})
			read, err5 := e.entry(ctx, 0)
			delivered, err6 := e.entry(ctx, 1)
			c, err7 := e.b.l.Counters(ctx, e.run)
			accept := Event{}
			if len(h) == 1 {
				accept = h[0]
				accept.At = time.Time{}
			}
			return first(err1, err2, err3, err4, err5, err6, err7,
				want("read", Entry{State: Read, Row: e.es[0].Row, Attempts: 1, Code: SentFallback, MessageID: "m"}, read),
				want("failed code", "131026", failed.Code), want("history", 1, len(h)),
				want("accept in the history", Event{Outcome: string(Accepted), Attempt: 1, Code: SentFallback}, accept),
				want("delivered", Entry{State: Delivered, Row: e.es[1].Row, Attempts: 1, Code: SentFallback, MessageID: "m"}, delivered),
				want("accepted:fallback", int64(2), c.Codes["accepted:fallback"]), want("failed:131026", int64(0), c.Codes["failed:131026"]))
		}},
		scriptCase{name: "ASendFailureIsNotMovedByADeliveryEvent", scripts: []string{"deliveryCmd"}, play: func(ctx context.Context, e *scriptEnv) error {
			c, err := e.claim(ctx, 0)
			if err != nil {
				return err
			}
			if _, err := e.b.l.Finish(ctx, e.addr(0), Outcome{State: Failed, Code: "131026", Attempt: c.Attempts}); err != nil {
				return err
			}
			v, _, err1 := e.b.l.ApplyDelivery(ctx, DeliveryEvent{Address: e.addr(0), State: Delivered, MessageID: "m"})
			en, err2 := e.entry(ctx, 0)
			return first(err1, err2, want("verdict", DeliveryStale, v), want("state", Failed, en.State), want("code", "131026", en.Code))
		}},
	)
}

// deliveryOutcome is what the ledger ends with after a message's delivery events.
type deliveryOutcome struct {
	State          State
	Code           string
	Counts, Codes  string
	Sent, Dlv, Rd  int64
	Failed         int64
	ByCode, Class  string
	Accepted       int64
	Samples        int64
	DeliveryRate   float64
	SettledUnknown int64
}

func sortedCounts[K ~string](m map[K]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		}
	}
	return strings.Join(parts, ",")
}

// TestDeliveryEventsInAnyOrder applies every order of every set of the events sent,
// delivered, read and delivery_failed of one accepted message (each order on a run of its
// own, the first event of the order delivered twice) and wants what the events give in their
// timestamp order: the same entry, counters and delivery statistics.
func TestDeliveryEventsInAnyOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	all := []State{Sent, Failed, Delivered, Read} // the merge's order; a failure's timestamp may come anywhere
	n := 0
	// sentAs is the code the accept records (how the message went: a session run's fallback
	// template, say), which the entry keeps whatever the events' order.
	sentAs := ""
	play := func(t *testing.T, order []State) deliveryOutcome {
		t.Helper()
		n++
		runID := fmt.Sprintf("order-%d", n)
		es := seedRun(t, b, runID, AtMostOnce, recipients(1), true)
		pe := es[0]
		claim(t, b, runID, pe, AtMostOnce)
		finish(t, b, runID, pe, Outcome{State: Accepted, Code: sentAs, MessageID: "m1", Attempt: 1})
		for i, st := range append([]State{order[0]}, order...) {
			ev := DeliveryEvent{Address: Address{Run: runID, Bucket: pe.Bucket, Recipient: pe.Recipient}, State: st,
				MessageID: "m1", TimeToDeliver: 1500 * time.Millisecond}
			if st == Failed {
				ev.Code, ev.Class = "ERROR_CODE_UNSPECIFIED", "transient"
			}
			if _, _, err := b.l.ApplyDelivery(ctx, ev); err != nil {
				t.Fatalf("event %d (%s): %v", i, st, err)
			}
		}
		en := getEntry(t, b, runID, pe)
		c := getCounters(t, b, runID)
		d, err := b.l.DeliveryStats(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := b.l.Verify(ctx, runID); err != nil || len(v.Mismatches) > 0 {
			t.Fatalf("order %v: the counters disagree with the ledger: %+v, %v", order, v.Mismatches, err)
		}
		return deliveryOutcome{State: en.State, Code: en.Code, Counts: sortedCounts(c.States), Codes: sortedCounts(c.Codes),
			Sent: d.Sent, Dlv: d.Delivered, Rd: d.Read, Failed: d.DeliveryFailed, ByCode: sortedCounts(d.FailedByCode),
			Class: sortedCounts(d.FailedByClass), Accepted: d.Accepted, Samples: d.TimeToDeliver.Samples,
			DeliveryRate: d.DeliveryRate, SettledUnknown: d.Settled}
	}
	for _, sentAs = range []string{"", SentFallback} {
		for mask := 1; mask < 1<<len(all); mask++ {
			var set []State
			for i, st := range all {
				if mask&(1<<i) != 0 {
					set = append(set, st)
				}
			}
			wantOut := play(t, set)
			if last := set[len(set)-1]; last != Failed && wantOut.Code != sentAs {
				t.Errorf("sent as %q, events %v: the entry ends with code %q", sentAs, set, wantOut.Code)
			}
			for _, order := range permutations(set) {
				if got := play(t, order); got != wantOut {
					t.Errorf("sent as %q, events %v: got %+v, want (as in the order %v) %+v", sentAs, order, got, set, wantOut)
				}
			}
		}
	}
}

// permutations returns every order of s.
func permutations(s []State) [][]State {
	if len(s) <= 1 {
		return [][]State{slices.Clone(s)}
	}
	var out [][]State
	for i := range s {
		rest := append(slices.Clone(s[:i]), s[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]State{s[i]}, p...))
		}
	}
	return out
}
