package report

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
)

// The funnel adds up the run's replies and taps and each rule's follow-up run.
func TestReadFunnel(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	ctx := context.Background()
	l := ledger.New(rdb, func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) })
	parent := ledger.ParentRun{ID: "promo-1", Campaign: "promo", Template: "t", Language: "en", Delivery: ledger.AtMostOnce, Buckets: 1}
	for i, to := range []string{"+15550000001", "+15550000002"} {
		if _, err := l.CountReply(ctx, ledger.Reply{Run: "promo-1", ID: to, Button: "Yes"}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.CreateFollowup(ctx, ledger.Followup{Parent: parent, Rule: "interested", Recipient: to, Row: i + 1, Payload: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		if err := l.Tag(ctx, "promo-1", to, "interested"); err != nil {
			t.Fatal(err)
		}
	}
	// A later rule's tag adds to the first: the recipient counts under both.
	if err := l.Tag(ctx, "promo-1", "+15550000001", "size-m"); err != nil {
		t.Fatal(err)
	}
	a := ledger.FollowupAddress("promo-1", "interested", "+15550000001", 1)
	if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: "m1", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFunnel(ctx, l, "promo-1", []string{"interested", "price"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Replied != 2 || f.Taps["Yes"] != 2 || f.Tagged["interested"] != 2 || f.Tagged["size-m"] != 1 || len(f.Rules) != 2 {
		t.Fatalf("funnel %+v", f)
	}
	r := f.Rules[0]
	if r.Created != 2 || r.Pending != 1 || r.Sent != 1 || f.Rules[1].Created != 0 {
		t.Fatalf("rules %+v", f.Rules)
	}
	var buf bytes.Buffer
	PrintFunnel(&buf, f)
	if !strings.Contains(buf.String(), "interested") || !strings.Contains(buf.String(), "replied            2") {
		t.Fatalf("printed:\n%s", buf.String())
	}
	if f, err := ReadFunnel(ctx, l, "promo-1", nil); err != nil || f != nil {
		t.Fatalf("no rules: %+v %v", f, err)
	}
}

// recipient explain shows, after the recipient's own story, each follow-up their replies
// created, with its state and history; rules that created none are left out.
func TestExplainShowsFollowups(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := ledger.New(rdb, func() time.Time { return now })
	if err := l.CreateRun(ctx, ledger.Run{ID: "promo-1", Campaign: "promo", Delivery: ledger.AtMostOnce, Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	to := "+15550000001"
	parent := ledger.ParentRun{ID: "promo-1", Campaign: "promo", Template: "t", Language: "en", Delivery: ledger.AtMostOnce, Buckets: 1}
	if _, err := l.CreateFollowup(ctx, ledger.Followup{Parent: parent, Rule: "interested", Recipient: to, Row: 1, Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	a := ledger.FollowupAddress("promo-1", "interested", to, 1)
	if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: "m-follow", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	x, err := Explain(ctx, l, rdb, ExplainParams{Run: "promo-1", Recipient: to, Shown: "****0001", Business: "b",
		RuleIDs: func(context.Context, ledger.Run) []string { return []string{"interested", "price"} }, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Followups) != 1 || x.Followups[0].Rule != "interested" || x.Followups[0].State != string(ledger.Accepted) ||
		x.Followups[0].MessageID != "m-follow" {
		t.Fatalf("follow-ups %+v", x.Followups)
	}
	x.InLedger = true // print the story's lines as for a recipient of the run
	var buf bytes.Buffer
	PrintExplanation(&buf, x, now)
	if !strings.Contains(buf.String(), "Follow-up  interested: accepted, 1 attempts, message m-follow") {
		t.Fatalf("printed:\n%s", buf.String())
	}
	if x, err := Explain(ctx, l, rdb, ExplainParams{Run: "promo-1", Recipient: to, Business: "b", Now: now}); err != nil || len(x.Followups) != 0 {
		t.Fatalf("no rules: %+v, %v", x.Followups, err)
	}
}
