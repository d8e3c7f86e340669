package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/heraldmsg/herald/internal/ledger"
)

// lateRecorder is a LateRefusalHandler that records its calls and fails while fail is set.
type lateRecorder struct {
	calls []ledger.DeliveryEvent
	fail  bool
}

func (r *lateRecorder) HandleLateRefusal(_ context.Context, ev ledger.DeliveryEvent) error {
	r.calls = append(r.calls, ev)
	if r.fail {
		return errors.New("Redis went away")
	}
	return nil
}

// windowFailureBody is a delivery_failed event whose error says the customer's window had
// closed (the reference's example body, 4.1), with code.
func windowFailureBody(t *testing.T, runID, to string, bucket int, id, code string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(statusBody(runID, to, bucket, id, StatusDeliveryFailed, testNow), &m); err != nil {
		t.Fatal(err)
	}
	m["statusUpdate"] = map[string]any{"id": id, "status": StatusDeliveryFailed, "error": map[string]any{
		"message": "Failed to send a message because more than 24 hours have passed since the customer last replied",
		"type":    "ERROR_TYPE_DEADLINE_EXCEEDED", "code": code, "userTitle": "", "userMessage": "", "cntTraceId": "1",
		"details": map[string]any{}}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLateRefusalHook: a window-closed delivery failure reaches the LateRefusalHandler with
// its entry's address, every copy of it, and one that arrived while its entry was still being
// sent once it applies from the parked set; a handler's error answers 503 (a parked event stays
// parked). Other failures and other statuses never reach it.
func TestLateRefusalHook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, Config{})
	late := &lateRecorder{}
	b.rc.late = late
	const ana, ben, cy = "+15550000001", "+15550000002", "+15550000003"
	idA, idB, idC := ulidAt(testNow, 1), ulidAt(testNow, 2), ulidAt(testNow, 3)
	buckets := seedAccepted(t, b, "run-l", []string{ana, ben}, []string{idA, idB})
	const window = "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"

	for range 2 {
		if w := post(t, b, windowFailureBody(t, "run-l", ana, buckets[ana], idA, window), testSecret); w.Code != http.StatusOK {
			t.Fatalf("window failure: %d", w.Code)
		}
	}
	if w := post(t, b, statusBody("run-l", ben, buckets[ben], idB, StatusDeliveryFailed, testNow), testSecret); w.Code != http.StatusOK {
		t.Fatalf("opt-out failure: %d", w.Code)
	}
	if w := post(t, b, statusBody("run-l", ben, buckets[ben], idB, StatusDelivered, testNow), testSecret); w.Code != http.StatusOK {
		t.Fatalf("delivered: %d", w.Code)
	}
	if len(late.calls) != 2 {
		t.Fatalf("%d calls, want one per copy of the window failure: %+v", len(late.calls), late.calls)
	}
	if ev := late.calls[0]; ev.Run != "run-l" || ev.Recipient != ana || ev.Code != window || ev.MessageID != idA || ev.State != ledger.Failed {
		t.Errorf("call %+v, want the window failure of %s's entry", ev, ana)
	}

	// A handler that fails: 503, so Connectly delivers the event again.
	late.fail = true
	if w := post(t, b, windowFailureBody(t, "run-l", ana, buckets[ana], idA, "131047"), testSecret); w.Code != http.StatusServiceUnavailable {
		t.Errorf("handler failed: %d, want 503", w.Code)
	}
	late.fail, late.calls = false, nil

	// An entry still being sent: the event is parked, and reaches the handler once it applies.
	n := ledger.BucketsFor(1)
	if err := b.l.CreateRun(ctx, ledger.Run{ID: "run-p", Campaign: "spring", Buckets: n}); err != nil {
		t.Fatal(err)
	}
	a := ledger.Address{Run: "run-p", Bucket: ledger.BucketOf(cy, n), Recipient: cy}
	if _, err := b.l.PlanQueued(ctx, ledger.Batch{Run: "run-p", From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: cy, Bucket: a.Bucket, Row: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if w := post(t, b, windowFailureBody(t, "run-p", cy, a.Bucket, idC, window), testSecret); w.Code != http.StatusOK {
		t.Fatalf("parked: %d", w.Code)
	}
	if len(late.calls) != 0 {
		t.Fatalf("the handler was called for a parked event: %+v", late.calls)
	}
	if _, err := b.l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: idC}); err != nil {
		t.Fatal(err)
	}
	late.fail = true
	if _, _, err := b.rc.RetryParked(ctx); err == nil {
		t.Fatal("RetryParked with a failing handler: no error")
	}
	if n, err := b.rc.Parked(ctx); err != nil || n != 1 {
		t.Fatalf("%d parked (%v), want the event kept after the handler failed", n, err)
	}
	late.fail = false
	if _, _, err := b.rc.RetryParked(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := b.rc.Parked(ctx); err != nil || n != 0 {
		t.Fatalf("%d parked (%v), want none", n, err)
	}
	if len(late.calls) != 2 || late.calls[1].Run != "run-p" || late.calls[1].Recipient != cy {
		t.Errorf("calls %+v, want the parked event's twice (the failed try and the one that finished)", late.calls)
	}
}
