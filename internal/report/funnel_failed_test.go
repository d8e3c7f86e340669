package report

import (
	"context"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
)

// A follow-up that Connectly accepted and whose delivery then failed is one failure, not two.
func TestFunnelCountsADeliveryFailureOnce(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	ctx := context.Background()
	l := ledger.New(rdb, func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) })
	parent := ledger.ParentRun{ID: "promo-1", Campaign: "promo", Template: "t", Language: "en", Delivery: ledger.AtMostOnce, Buckets: 1}
	to := "+15550000001"
	if _, err := l.CreateFollowup(ctx, ledger.Followup{Parent: parent, Rule: "interested", Recipient: to, Row: 1, Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	a := ledger.FollowupAddress("promo-1", "interested", to, 1)
	if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: "m1", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if v, _, err := l.ApplyDelivery(ctx, ledger.DeliveryEvent{Address: a, State: ledger.Failed, Code: "ERROR_CODE_UNSPECIFIED",
		Class: "transient", MessageID: "m1"}); err != nil || v != ledger.DeliveryApplied {
		t.Fatalf("apply: %v %v", v, err)
	}
	f, err := ReadFunnel(ctx, l, "promo-1", []string{"interested"})
	if err != nil {
		t.Fatal(err)
	}
	r := f.Rules[0]
	t.Logf("rule %+v", r)
	if r.Created != 1 || r.Failed != 1 {
		t.Fatalf("one follow-up created and failed in delivery: created %d, failed %d", r.Created, r.Failed)
	}
}
