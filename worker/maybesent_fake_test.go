package worker

import (
	"context"
	"testing"

	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// An at-least-once run through the fake Connectly, cancelled while some of its recipients
// wait for a retry: the fake's own count of the messages it took says who may hold one, and
// none of them is reported skipped ("never sent"). Recipients whose answer said nothing went
// (a 429), or who were never tried, are skipped(cancelled); no retry is sent after the
// cancel.
func TestCancelNeverSkipsARecipientTheFakeTookAMessageFor(t *testing.T) {
	t.Parallel()
	const runID = "spring-sale/maybe-sent-fake"
	fake, b := withFakeOf(t, fakeconnectly.Config{}, shapesBusiness, shapesKey)
	ps := bodyParams(seedRun(t, b, runID, ledger.AtLeastOnce, 6))
	taken503, takenLost, refused503, throttled, accepted, untried := ps[0], ps[1], ps[2], ps[3], ps[4], ps[5]
	fake.SetRules([]fakeconnectly.Rule{
		// Taken, then answered 503: the message went out.
		{Numbers: []string{taken503.To}, Status: 503, Sent: true, Times: 1},
		// Taken, then the connection dropped with no answer.
		{Numbers: []string{takenLost.To}, LoseResponse: true, Times: 1},
		// A 503 for a message that did not go: the worker cannot tell it from the first.
		{Numbers: []string{refused503.To}, Status: 503, Times: 1},
		{Numbers: []string{throttled.To}, Status: 429, Times: 1},
	})
	for _, p := range ps[:5] {
		_ = handle(t, b, p) // each but the accepted one's ends in an error its task retries after
	}
	if n := fake.AcceptedCount(taken503.To) + fake.AcceptedCount(takenLost.To); n != 2 {
		t.Fatalf("the fake took %d messages for the 503 and the lost answer, want 2", n)
	}
	// The codes the answers were recorded under, kept by the retries.
	codes := map[string]string{}
	for _, p := range ps[:3] {
		e := entryOf(t, b, p)
		if e.State != ledger.Queued || e.Attempts != 1 || e.Code == "" {
			t.Fatalf("%s after its first answer: %+v, want queued for its retry", p.To, e)
		}
		codes[p.To] = e.Code
	}
	before := len(fake.Received())
	if _, _, err := b.ledger.Cancel(context.Background(), runID, "operator"); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps { // their tasks come after all
		if err := handle(t, b, p); err != nil {
			t.Fatalf("task of %s after the cancel: %v", p.To, err)
		}
	}
	if n := len(fake.Received()); n != before {
		t.Errorf("%d requests after the cancel, want none", n-before)
	}
	for _, p := range ps {
		if e := entryOf(t, b, p); e.State == ledger.Skipped && fake.AcceptedCount(p.To) > 0 {
			t.Errorf("%s: skipped(%s), but the fake took %d message(s) for it", p.To, e.Code, fake.AcceptedCount(p.To))
		}
	}
	for _, p := range ps[:3] {
		wantEntry(t, b, p, ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: codes[p.To]})
	}
	wantEntry(t, b, throttled, ledger.Entry{State: ledger.Skipped, Code: ledger.SkipCancelled})
	wantEntry(t, b, untried, ledger.Entry{State: ledger.Skipped, Code: ledger.SkipCancelled})
	if e := entryOf(t, b, accepted); e.State != ledger.Accepted || fake.AcceptedCount(accepted.To) != 1 {
		t.Errorf("%s: %+v, taken %d times; want accepted once", accepted.To, e, fake.AcceptedCount(accepted.To))
	}
	c := countersOf(t, b, runID)
	if c.States[ledger.Unknown] != 3 || c.States[ledger.Skipped] != 2 || c.Codes["skipped:cancelled"] != 2 {
		t.Errorf("counters: states %v, codes %v; want 3 unknown and 2 skipped(cancelled)", c.States, c.Codes)
	}
	if r := runOf(t, b, runID); r.Status != ledger.RunCancelled || r.Finished.IsZero() {
		t.Errorf("run %s, finished %v; want cancelled and finished", r.Status, r.Finished)
	}
	if v, err := b.ledger.Verify(context.Background(), runID); err != nil || len(v.Mismatches) > 0 {
		t.Errorf("Verify: %+v, %v", v.Mismatches, err)
	}
}

// An at-least-once run through the fake Connectly: the first request is answered by a 500
// with Connectly's error body after the fake took the message; the retry is refused because
// the customer opted out, which may have come after that first message. The fake's record says
// the customer holds it: the recipient is unknown, never failed, and suppressed all the same.
func TestAnOptOutAfterAMessageTheFakeTookIsNotAFailure(t *testing.T) {
	t.Parallel()
	const runID = "spring-sale/refused-after-sent"
	fake, b := withFakeOf(t, fakeconnectly.Config{}, shapesBusiness, shapesKey)
	p := bodyParams(seedRun(t, b, runID, ledger.AtLeastOnce, 1))[0]
	fake.SetRules([]fakeconnectly.Rule{
		{Numbers: []string{p.To}, Status: 500, Sent: true, Times: 1},
		{Numbers: []string{p.To}, Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
	})
	_ = handle(t, b, p) // the 500: retried
	_ = handle(t, b, p) // the opt-out: the task ends
	if n, took := len(fake.Received()), fake.AcceptedCount(p.To); n != 2 || took != 1 {
		t.Fatalf("%d requests, %d taken; want 2 requests and the first taken", n, took)
	}
	if e := entryOf(t, b, p); e.State != ledger.Unknown {
		t.Errorf("%+v: the fake took the message, and the recipient is not unknown", e)
	}
	if !suppressedOf(t, b, p.To) {
		t.Error("opted out and not suppressed")
	}
	if v, err := b.ledger.Verify(context.Background(), runID); err != nil || len(v.Mismatches) > 0 {
		t.Errorf("Verify: %+v, %v", v.Mismatches, err)
	}
}
