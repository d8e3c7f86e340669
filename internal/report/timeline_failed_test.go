package report

import (
	"context"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
)

// A recipient accepted after a retry whose delivery then failed: its timeline should end in
// the delivery failure, not in "accepted".
func TestTimelineShowsDeliveryFailureAfterRetry(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := ledger.New(rdb, func() time.Time { return now })
	to := "+15550000001"
	if err := l.CreateRun(ctx, ledger.Run{ID: "r1", Campaign: "c", Delivery: ledger.AtMostOnce, Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: "r1", From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: to, Bucket: 0, Row: 1}}}); err != nil {
		t.Fatal(err)
	}
	a := ledger.Address{Run: "r1", Recipient: to, Bucket: 0}
	if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Queued, Mode: ledger.ReleaseRetry, Code: "HTTP_503"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if v, _, err := l.ApplyDelivery(ctx, ledger.DeliveryEvent{Address: a, State: ledger.Failed, Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT",
		Class: "permanent", MessageID: "m1"}); err != nil || v != ledger.DeliveryApplied {
		t.Fatalf("apply: %v %v", v, err)
	}
	x, err := Explain(ctx, l, rdb, ExplainParams{Run: "r1", Recipient: to, Business: "b", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range x.Timeline {
		t.Logf("%+v", ev)
	}
	last := x.Timeline[len(x.Timeline)-1]
	if last.Outcome != string(ledger.Failed) {
		t.Fatalf("state %s code %s, but the timeline ends with %q", x.State, x.Code, last.Outcome)
	}
}
