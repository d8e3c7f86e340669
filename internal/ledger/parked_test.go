package ledger

import (
	"context"
	"testing"
	"time"
)

// A delivery event parked while its entry is still submitting outlives the keep period: in a
// paused run a dead worker's claim waits for the resume, and the event then settles the entry
// its next attempt turns unknown. It is dropped only after ParkedMaxAge. An event whose entry
// is queued (no claim) still expires after the keep period.
func TestParkedEventWaitsForItsClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	now := testNow
	b.l.now = func() time.Time { return now }
	es := seedRun(t, b, "r1", AtMostOnce, recipients(2), true)
	claim(t, b, "r1", es[0], AtMostOnce) // the worker that dies mid-send
	addr := func(i int) Address { return Address{Run: "r1", Bucket: es[i].Bucket, Recipient: es[i].Recipient} }
	if err := b.l.Park(ctx, DeliveryEvent{Address: addr(0), State: Delivered, MessageID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if err := b.l.Park(ctx, DeliveryEvent{Address: addr(1), State: Delivered, MessageID: "m2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.Pause(ctx, "r1", "operator"); err != nil {
		t.Fatal(err)
	}
	const keepFor = 15 * time.Minute
	var got []ParkedOutcome
	report := func(o ParkedOutcome) { got = append(got, o) }

	now = now.Add(time.Hour)
	if c := claim(t, b, "r1", es[0], AtMostOnce); c.Verdict != VerdictPaused {
		t.Fatalf("claim in the paused run: %+v", c)
	}
	done, left, err := b.l.RetryParked(ctx, keepFor, report)
	if err != nil || done != 1 || left != 1 {
		t.Fatalf("RetryParked after the keep period = %d, %d, %v; want the queued entry's event dropped, the submitting one's kept", done, left, err)
	}
	if got[0].Verdict != ParkedExpired || got[0].Prior != Queued {
		t.Fatalf("dropped %+v, want the queued entry's event expired", got[0])
	}

	if _, err := b.l.Resume(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if c := claim(t, b, "r1", es[0], AtMostOnce); c.Verdict != VerdictUnknown {
		t.Fatalf("claim after resume: %+v", c)
	}
	if done, left, err := b.l.RetryParked(ctx, keepFor, report); err != nil || done != 1 || left != 0 {
		t.Fatalf("RetryParked after resume = %d, %d, %v", done, left, err)
	}
	if got[1].Verdict != ParkedApplied || got[1].Prior != Unknown {
		t.Fatalf("%+v, want the event to settle the unknown entry", got[1])
	}
	if e := getEntry(t, b, "r1", es[0]); e.State != Delivered || e.MessageID != "m1" {
		t.Fatalf("entry %+v", e)
	}
}

// The same in a run that resends unknown recipients (resend_after): the entry found unknown
// after the resume waits for its resend, and the parked event settles it and takes it out of
// the resend set, so Connectly's "delivered" is not followed by a second message.
func TestParkedEventOutlivesAPauseAndStopsTheResend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	now := testNow
	b.l.now = func() time.Time { return now }
	rcpts := recipients(1)
	if err := b.l.CreateRun(ctx, Run{ID: "r1", Campaign: "spring-sale", Delivery: AtMostOnce, Buckets: 1, ResendAfter: time.Hour}); err != nil {
		t.Fatal(err)
	}
	es := planEntries(rcpts, 1)
	if _, err := b.l.PlanQueued(ctx, Batch{Run: "r1", From: 0, To: 1, Entries: es}); err != nil {
		t.Fatal(err)
	}
	a := Address{Run: "r1", Bucket: es[0].Bucket, Recipient: es[0].Recipient}
	claim(t, b, "r1", es[0], AtMostOnce)
	if err := b.l.Park(ctx, DeliveryEvent{Address: a, State: Delivered, MessageID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.Pause(ctx, "r1", "operator"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	if done, left, err := b.l.RetryParked(ctx, 15*time.Minute, nil); err != nil || done != 0 || left != 1 {
		t.Fatalf("RetryParked in the pause = %d, %d, %v", done, left, err)
	}
	if _, err := b.l.Resume(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	c := claim(t, b, "r1", es[0], AtMostOnce)
	if c.Verdict != VerdictFound {
		t.Fatalf("claim after resume: %+v", c)
	}
	finish(t, b, "r1", es[0], Outcome{State: Unknown, Code: CodeClaimFound, Attempt: c.Attempts, Payload: []byte(`{"p":1}`)})
	if n := getCounters(t, b, "r1").ResendWaiting; n != 1 {
		t.Fatalf("resend_waiting %d before the event, want 1", n)
	}
	if done, left, err := b.l.RetryParked(ctx, 15*time.Minute, nil); err != nil || done != 1 || left != 0 {
		t.Fatalf("RetryParked after resume = %d, %d, %v", done, left, err)
	}
	if e := getEntry(t, b, "r1", es[0]); e.State != Delivered {
		t.Fatalf("entry %+v", e)
	}
	if n := getCounters(t, b, "r1").ResendWaiting; n != 0 {
		t.Fatalf("resend_waiting %d after the event: it would be sent again", n)
	}
}

// Nothing is parked for ever: an event whose entry stays submitting expires after ParkedMaxAge.
func TestParkedEventExpiresAfterParkedMaxAge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	now := testNow
	b.l.now = func() time.Time { return now }
	es := seedRun(t, b, "r1", AtMostOnce, recipients(1), true)
	claim(t, b, "r1", es[0], AtMostOnce)
	if err := b.l.Park(ctx, DeliveryEvent{Address: Address{Run: "r1", Bucket: es[0].Bucket, Recipient: es[0].Recipient}, State: Sent}); err != nil {
		t.Fatal(err)
	}
	var got []ParkedOutcome
	now = now.Add(ParkedMaxAge - time.Second)
	if done, left, err := b.l.RetryParked(ctx, time.Minute, nil); err != nil || done != 0 || left != 1 {
		t.Fatalf("RetryParked before ParkedMaxAge = %d, %d, %v", done, left, err)
	}
	now = now.Add(time.Second)
	done, left, err := b.l.RetryParked(ctx, time.Minute, func(o ParkedOutcome) { got = append(got, o) })
	if err != nil || done != 1 || left != 0 || got[0].Verdict != ParkedExpired || got[0].Prior != Submitting || got[0].Age != ParkedMaxAge {
		t.Fatalf("RetryParked at ParkedMaxAge = %d, %d, %v, %+v", done, left, err, got)
	}
}

// An event matched without callbackData (Strict) and parked while its entry was being sent
// stays strict: it applies only to the entry that records its message id, and never settles
// an entry whose claim turned unknown (nothing ties that lost send to the event's id).
func TestStrictParkedEventStaysStrict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	es := seedRun(t, b, "r1", AtMostOnce, recipients(2), true)
	addr := func(i int) Address { return Address{Run: "r1", Bucket: es[i].Bucket, Recipient: es[i].Recipient} }
	for i := range es {
		claim(t, b, "r1", es[i], AtMostOnce)
		ev := DeliveryEvent{Address: addr(i), State: Failed, Code: "ERROR_CODE_UNSPECIFIED", Class: "transient", MessageID: "m1", Strict: true}
		if v, prior, err := b.l.ApplyDelivery(ctx, ev); err != nil || v != DeliveryEarly || prior != Submitting {
			t.Fatalf("strict event for a submitting entry: %s %s %v, want early", v, prior, err)
		}
		if err := b.l.Park(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	finish(t, b, "r1", es[0], Outcome{State: Accepted, MessageID: "m1"})
	if c := claim(t, b, "r1", es[1], AtMostOnce); c.Verdict != VerdictUnknown {
		t.Fatalf("second claim %+v", c)
	}
	var got []ParkedOutcome
	if done, left, err := b.l.RetryParked(ctx, time.Hour, func(o ParkedOutcome) { got = append(got, o) }); err != nil || done != 2 || left != 0 {
		t.Fatalf("RetryParked = %d, %d, %v", done, left, err)
	}
	verdicts := map[string]ParkedVerdict{}
	for _, o := range got {
		verdicts[o.Event.Recipient] = o.Verdict
		if !o.Event.Strict {
			t.Errorf("%+v: read back without Strict", o.Event)
		}
	}
	wantEqual(t, "verdicts", map[string]ParkedVerdict{es[0].Recipient: ParkedApplied, es[1].Recipient: ParkedStale}, verdicts)
	if e := getEntry(t, b, "r1", es[0]); e.State != Failed || e.Code != "ERROR_CODE_UNSPECIFIED" {
		t.Fatalf("entry with the event's id: %+v", e)
	}
	if e := getEntry(t, b, "r1", es[1]); e.State != Unknown {
		t.Fatalf("unknown entry settled by a strict event: %+v", e)
	}
}
