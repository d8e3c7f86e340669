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
	if !strings.Contains(buf.String(), "Follow-up  interested: accepted, 1 attempt, message m-follow") {
		t.Fatalf("printed:\n%s", buf.String())
	}
	if x, err := Explain(ctx, l, rdb, ExplainParams{Run: "promo-1", Recipient: to, Business: "b", Now: now}); err != nil || len(x.Followups) != 0 {
		t.Fatalf("no rules: %+v, %v", x.Followups, err)
	}
}

// A long button text or rule id widens the funnel's first column: every count stays in line
// instead of being pushed right by its label.
func TestPrintFunnelKeepsCountsInLine(t *testing.T) {
	t.Parallel()
	f := &Funnel{Replied: 3, Taps: map[string]int64{"Yes": 1, "Tell me more about the offer": 2},
		Tagged: map[string]int64{"interested": 2}, Rules: []FunnelRule{{Rule: "a-rather-long-rule-id", Created: 2}, {Rule: "no", Created: 1}}}
	var buf bytes.Buffer
	PrintFunnel(&buf, f)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")[1:] // after "Replies (on_reply)"
	if len(lines) != 7 {
		t.Fatalf("%d lines, want 4 counts, a header and 2 rules:\n%s", len(lines), buf.String())
	}
	// The counts start in one column (they are left-aligned after the label).
	for _, l := range lines[:4] {
		if at, want := strings.LastIndex(l, " ")+1, strings.LastIndex(lines[0], " ")+1; at != want {
			t.Errorf("count of %q at column %d, want %d:\n%s", l, at, want, buf.String())
		}
	}
	// The table's columns are right-aligned: every row as wide as its header.
	for _, l := range lines[5:] {
		if len(l) != len(lines[4]) {
			t.Errorf("rule row %q %d wide, header %d:\n%s", l, len(l), len(lines[4]), buf.String())
		}
	}
}
