package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/heraldmsg/herald/serve"
)

// TestRecipientTimelineGolden builds a recipient's story in the ledger and the conversation
// record as the worker and the receiver write them (a send retried then accepted and read, a
// tap that created a follow-up, which was delivered, a question typed in answer to it and a
// copy of its webhook), explains it with the record's reader and renders the timeline against
// testdata/recipient_timeline.golden (-update rewrites it).
func TestRecipientTimelineGolden(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	clock := func() time.Time { return now }
	l := ledger.New(rdb, clock)
	const run, to = "spring-20260301T120000Z-a1b2c3", "+447700900123"
	if err := l.CreateRun(ctx, ledger.Run{ID: run, Campaign: "spring", Delivery: ledger.AtMostOnce, Buckets: 1, Created: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: run, From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: to, Row: 1}}}); err != nil {
		t.Fatal(err)
	}
	settle := func(a ledger.Address, o ledger.Outcome) {
		t.Helper()
		now = now.Add(time.Minute)
		if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Finish(ctx, a, o); err != nil {
			t.Fatal(err)
		}
	}
	deliver := func(a ledger.Address, st ledger.State, id string) {
		t.Helper()
		if v, _, err := l.ApplyDelivery(ctx, ledger.DeliveryEvent{Address: a, State: st, MessageID: id}); err != nil || v != ledger.DeliveryApplied {
			t.Fatalf("ApplyDelivery(%s) = %v, %v", st, v, err)
		}
	}
	addr := ledger.AddressIn(run, to, 1)
	settle(addr, ledger.Outcome{State: ledger.Queued, Mode: ledger.ReleaseRetry, Code: "HTTP_503"})
	settle(addr, ledger.Outcome{State: ledger.Accepted, MessageID: "01JSEND"})
	deliver(addr, ledger.Read, "01JSEND")

	h := conversation.NewHistory(rdb, clock)
	record := func(e conversation.Entry, r conversation.Reply, id, rule string) {
		t.Helper()
		if _, err := h.Record(ctx, e, r, id, rule); err != nil {
			t.Fatal(err)
		}
	}
	// A first reply no rule matched, then the tap whose rule's follow-up follows it, not the
	// first reply.
	now = t0.Add(5 * time.Minute)
	record(conversation.Entry{Run: run, Recipient: to, Via: conversation.ViaRecent},
		conversation.Reply{Kind: webhooks.ReplyText, Text: "who is this?", At: now}, "wamid.first", "")
	now = t0.Add(10 * time.Minute)
	tap := conversation.Reply{Kind: webhooks.ReplyButton, ButtonPayload: "YES", ButtonText: "Yes, show me", At: now}
	record(conversation.Entry{Run: run, Recipient: to, Via: conversation.ViaCallback}, tap, "wamid.tap", "yes")
	if _, err := l.CreateFollowup(ctx, ledger.Followup{Parent: ledger.ParentRun{ID: run, Campaign: "spring", Delivery: ledger.AtMostOnce, Buckets: 1},
		Rule: "yes", Recipient: to, Row: 1, Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	fa := ledger.FollowupAddress(run, "yes", to, 1)
	settle(fa, ledger.Outcome{State: ledger.Accepted, MessageID: "01JFOLLOW"})
	deliver(fa, ledger.Delivered, "01JFOLLOW")
	now = t0.Add(30 * time.Minute)
	q := conversation.Reply{Kind: webhooks.ReplyText, Text: "How much is the medium one?\nCall me on +44 7700 900456", At: now}
	record(conversation.Entry{Run: fa.Run, Recipient: to, Via: conversation.ViaRecent}, q, "wamid.q", "")
	record(conversation.Entry{Run: fa.Run, Recipient: to, Via: conversation.ViaRecent}, q, "wamid.q", "") // a copy

	table, err := serve.ErrorTable(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	x, err := report.Explain(ctx, l, rdb, report.ExplainParams{Run: run, Recipient: to, Shown: shownID(to, false), Table: table,
		RuleIDs: func(context.Context, ledger.Run) []string { return []string{"yes", "price"} },
		Replies: conversation.NewHistory(rdb, nil).Read, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	printTimeline(&b, x)
	golden := filepath.Join("testdata", "recipient_timeline.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("timeline differs from %s (run with -update if intended):\n--- want\n%s\n--- got\n%s", golden, want, b.String())
	}
}

// A skip made no attempt: the timeline says "skipped window_closed", not "attempt 0: ...".
func TestTimelineSkipHasNoAttempt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ev   report.TimelineEvent
		want string
	}{
		{report.TimelineEvent{Kind: report.EventSend, Outcome: "skipped", Code: "window_closed"}, "skipped window_closed"},
		{report.TimelineEvent{Kind: report.EventFollowup, Rule: "yes", Outcome: "skipped", Code: "suppressed"}, "yes: skipped suppressed"},
		{report.TimelineEvent{Kind: report.EventSend, Outcome: "accepted", Attempt: 1}, "attempt 1: accepted"},
	} {
		if got := timelineWhat("r", tc.ev); got != tc.want {
			t.Errorf("timelineWhat(%+v) = %q, want %q", tc.ev, got, tc.want)
		}
	}
}

// A tapped button's label and payload come from the customer's message: the timeline shows
// both with their numbers masked and their control characters escaped, in text and JSON.
func TestTimelineMasksAndEscapesTheTap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := ledger.New(rdb, func() time.Time { return now })
	const run, to = "spring-1", "+447700900123"
	if err := l.CreateRun(ctx, ledger.Run{ID: run, Campaign: "spring", Delivery: ledger.AtMostOnce, Buckets: 1, Created: now}); err != nil {
		t.Fatal(err)
	}
	replies := func(context.Context, string, string) ([]report.Reply, error) {
		return []report.Reply{{At: now, Kind: conversation.SaidButton, Text: "Yes, show me +14155466010\x1b[31m",
			ID: "PAY-+14155466010\x1b[2K\r\nforged", Run: run}}, nil
	}
	x, err := report.Explain(ctx, l, rdb, report.ExplainParams{Run: run, Recipient: to, Shown: shownID(to, false), Replies: replies, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	printTimeline(&b, x)
	want := `tapped "Yes, show me ********6010\x1b[31m" (PAY-********6010\x1b[2K\r\nforged)`
	if out := b.String(); strings.ContainsAny(out, "\x1b\r") || strings.Contains(out, "4155466010") || !strings.Contains(out, want) {
		t.Errorf("timeline, want %s:\n%s", want, out)
	}
	js, err := json.Marshal(x)
	if err != nil || strings.Contains(string(js), "4155466010") {
		t.Errorf("explain --json shows a number in full (%v):\n%s", err, js)
	}
}
