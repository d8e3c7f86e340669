package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// line is a timeline event in one comparable line: kind, rule, outcome or reply, and its time
// as minutes after t0 ("-" when not recorded).
func line(t0 time.Time, ev report.TimelineEvent) string {
	at := "-"
	if !ev.At.IsZero() {
		at = fmt.Sprint(ev.At.Sub(t0).Minutes())
	}
	what := ev.Outcome
	if ev.Reply != nil {
		what = ev.Reply.Kind + ":" + ev.Reply.Text
	}
	return strings.Join([]string{at, ev.Kind, ev.Rule, what}, " ")
}

func TestTimeline(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for _, tc := range []struct {
		name string
		x    report.Explanation
		want []string
	}{
		{
			name: "RetriedSendRepliesAndAFollowup",
			x: report.Explanation{InLedger: true, State: "read", Attempts: 2,
				History: []report.HistoryLine{
					{Event: ledger.Event{Outcome: "retry", Attempt: 1, Code: "HTTP_503", At: at(1)}},
					{Event: ledger.Event{Outcome: "accepted", Attempt: 2, At: at(2)}},
				},
				Replies: []report.Reply{
					{At: at(10), Kind: "button", ID: "YES", Text: "Yes, show me"},
					{At: at(30), Kind: "text", Text: "how much?", Run: "R1~yes"},
				},
				// Created by the tap, sent on its first attempt: no history, no times.
				Followups: []report.FollowupStory{{Rule: "yes", State: "delivered", Attempts: 1}},
			},
			want: []string{"0 run  ", "1 send  retry", "2 send  accepted", "- status  read", "10 reply  button:Yes, show me",
				"- followup yes accepted", "- followup yes delivered", "30 reply  text:how much?"},
		},
		{
			name: "CleanAcceptWithoutHistory",
			x:    report.Explanation{InLedger: true, State: "delivered", Attempts: 1, Replies: []report.Reply{{At: at(5), Kind: "list_row", Text: "Medium"}}},
			want: []string{"0 run  ", "- send  accepted", "- status  delivered", "5 reply  list_row:Medium"},
		},
		{
			name: "FollowupHistoryKeepsItsTimes",
			x: report.Explanation{InLedger: true, State: "accepted", Attempts: 1,
				Replies: []report.Reply{{At: at(5), Kind: "text", Text: "price"}, {At: at(50), Kind: "text", Text: "thanks"}},
				Followups: []report.FollowupStory{{Rule: "price", State: "failed", Attempts: 1, Code: "X",
					History: []report.HistoryLine{{Event: ledger.Event{Outcome: "failed", Attempt: 1, Code: "X", At: at(6)}}}}},
			},
			want: []string{"0 run  ", "- send  accepted", "5 reply  text:price", "6 followup price failed", "50 reply  text:thanks"},
		},
		{
			// Accepted on the first attempt (no history), then delivery_failed: the failure is
			// a delivery state after the accept, not the send's outcome.
			name: "DeliveryFailureWithoutHistory",
			x: report.Explanation{InLedger: true, State: "failed", Attempts: 1, Code: "X", MessageID: "m1",
				Replies:   []report.Reply{{At: at(5), Kind: "text", Text: "price"}},
				Followups: []report.FollowupStory{{Rule: "price", State: "failed", Attempts: 1, Code: "Y", MessageID: "m2"}},
			},
			want: []string{"0 run  ", "- send  accepted", "- status  failed", "5 reply  text:price",
				"- followup price accepted", "- followup price failed"},
		},
		{
			name: "QueuedNotYetSent",
			x:    report.Explanation{InLedger: true, State: "queued"},
			want: []string{"0 run  "},
		},
		{
			name: "NotInTheLedger",
			x:    report.Explanation{},
			want: []string{"0 run  "},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, ev := range report.Timeline(t0, tc.x) {
				got = append(got, line(t0, ev))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("timeline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestTimelineRunStartsFirstInItsSecond: the run's start keeps its milliseconds, the history
// only whole seconds: sends settled in the run's first second still follow its start, and
// each thread keeps its order (run, send, replies, follow-ups) within a second.
func TestTimelineRunStartsFirstInItsSecond(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	started := t0.Add(700 * time.Millisecond)
	x := report.Explanation{InLedger: true, State: "delivered", Attempts: 2,
		History: []report.HistoryLine{
			{Event: ledger.Event{Outcome: "retry", Attempt: 1, Code: "HTTP_503", At: t0}},
			{Event: ledger.Event{Outcome: "accepted", Attempt: 2, At: t0}},
		},
		Replies: []report.Reply{{At: t0.Add(900 * time.Millisecond), Kind: "text", Text: "price"}},
		Followups: []report.FollowupStory{{Rule: "price", State: "accepted", Attempts: 1,
			History: []report.HistoryLine{{Event: ledger.Event{Outcome: "accepted", Attempt: 1, At: t0}}}}},
	}
	var got []string
	for _, ev := range report.Timeline(started, x) {
		what := ev.Kind + " " + ev.Outcome
		if ev.Reply != nil {
			what = ev.Kind + " " + ev.Reply.Text
		}
		got = append(got, what)
	}
	want := []string{"run ", "send retry", "send accepted", "status delivered", "reply price", "followup accepted"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("timeline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// explainBench is a ledger on miniredis holding run R1, its recipients planned and queued,
// and the clock its outcomes are stamped with, for the Explain tests.
type explainBench struct {
	rdb *redis.Client
	l   *ledger.Ledger
	now time.Time
}

// newExplainBench creates run R1 at t0 with tos as its audience rows 1, 2...
func newExplainBench(t *testing.T, t0 time.Time, tos ...string) *explainBench {
	t.Helper()
	_, rdb := testredis.Mini(t)
	b := &explainBench{rdb: rdb, now: t0}
	b.l = ledger.New(rdb, func() time.Time { return b.now })
	ctx := context.Background()
	if err := b.l.CreateRun(ctx, ledger.Run{ID: "R1", Campaign: "spring", Delivery: ledger.AtMostOnce, Buckets: 1, Created: t0}); err != nil {
		t.Fatal(err)
	}
	pe := make([]ledger.PlanEntry, len(tos))
	for i, to := range tos {
		pe[i] = ledger.PlanEntry{Recipient: to, Bucket: 0, Row: i + 1}
	}
	if _, err := b.l.PlanQueued(ctx, ledger.Batch{Run: "R1", From: 0, To: len(tos), Entries: pe}); err != nil {
		t.Fatal(err)
	}
	return b
}

// settle claims to's entry a minute later than the last outcome and finishes it with o.
func (b *explainBench) settle(t *testing.T, to string, o ledger.Outcome) {
	t.Helper()
	ctx := context.Background()
	b.now = b.now.Add(time.Minute)
	addr := ledger.AddressIn("R1", to, 1)
	if _, err := b.l.Claim(ctx, addr, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.Finish(ctx, addr, o); err != nil {
		t.Fatal(err)
	}
}

// TestExplainTimeline explains a recipient whose send was retried, accepted and read, and who
// replied, on miniredis: the replies come from ExplainParams.Replies, phone numbers in them
// masked, and the timeline holds the whole story in order.
func TestExplainTimeline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const run, to = "R1", "+447700900123"
	b := newExplainBench(t, t0, to)
	l, rdb := b.l, b.rdb
	addr := ledger.AddressIn(run, to, 1)
	b.settle(t, to, ledger.Outcome{State: ledger.Queued, Mode: ledger.ReleaseRetry, Code: "HTTP_503"})
	b.settle(t, to, ledger.Outcome{State: ledger.Accepted, MessageID: "msg-1"})
	now := b.now
	if v, _, err := l.ApplyDelivery(ctx, ledger.DeliveryEvent{Address: addr, State: ledger.Read, MessageID: "msg-1"}); err != nil || v != ledger.DeliveryApplied {
		t.Fatalf("ApplyDelivery = %v, %v", v, err)
	}
	var asked []string
	replies := func(_ context.Context, run, recipient string) ([]report.Reply, error) {
		asked = append(asked, run+" "+recipient)
		return []report.Reply{
			{At: t0.Add(10 * time.Minute), Kind: "button", ID: "YES", Text: "Yes", MessageID: "wamid.1", Run: run, Via: "callback"},
			{At: t0.Add(20 * time.Minute), Kind: "text", Text: "call me on +44 7700 900456", MessageID: "wamid.2", Run: run, Via: "recent"},
		}, nil
	}
	x, err := report.Explain(ctx, l, rdb, report.ExplainParams{Run: run, Recipient: to, Shown: "*********0123", Replies: replies, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != run+" "+to {
		t.Errorf("replies read for %q, want the run and the ledger key", asked)
	}
	if got := x.Replies[1].Text; strings.Contains(got, "900456") || !strings.HasSuffix(got, "0456") {
		t.Errorf("reply text %q: a phone number in it must be masked to its last 4 digits", got)
	}
	if x.Tags != nil {
		t.Errorf("tags %v before any rule gave one", x.Tags)
	}
	var got []string
	for _, ev := range x.Timeline {
		got = append(got, line(t0, ev))
	}
	want := []string{"0 run  ", "1 send  retry", "2 send  accepted", "- status  read", "10 reply  button:Yes", "20 reply  text:" + x.Replies[1].Text}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("timeline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Every tag rules gave the recipient shows, sorted.
	for _, tag := range []string{"interested", "asked-price"} {
		if err := l.Tag(ctx, run, to, tag); err != nil {
			t.Fatal(err)
		}
	}
	x, err = report.Explain(ctx, l, rdb, report.ExplainParams{Run: run, Recipient: to, Shown: "*********0123", Now: now})
	if err != nil || !slices.Equal(x.Tags, []string{"asked-price", "interested"}) {
		t.Errorf("tags %v (%v), want both, sorted", x.Tags, err)
	}
	var printed bytes.Buffer
	report.PrintExplanation(&printed, x, now)
	if !strings.Contains(printed.String(), "\nTags       asked-price, interested\n") {
		t.Errorf("printed:\n%s\nwant a Tags line", printed.String())
	}

	// Without a reader the story has no replies, and says so with an empty list.
	x, err = report.Explain(ctx, l, rdb, report.ExplainParams{Run: run, Recipient: to, Shown: "x", Now: now})
	if err != nil || x.Replies == nil || len(x.Replies) != 0 {
		t.Errorf("Explain without a reader: replies %v, %v", x.Replies, err)
	}
}

// TestExplainShowsTheSuppressionScope: recipient explain says what the recipient's entry on
// the suppression list stops, why and since when: marketing only for a person who stopped
// marketing messages (131050), every message for a STOP and for an entry written before
// scopes; a recipient not on the list reads as before ("Suppressed false").
func TestExplainShowsTheSuppressionScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := ledger.New(rdb, func() time.Time { return now })
	const run = "R1"
	if err := l.CreateRun(ctx, ledger.Run{ID: run, Campaign: "spring", Delivery: ledger.AtMostOnce, Buckets: 1, Created: now}); err != nil {
		t.Fatal(err)
	}
	if err := l.Suppress(ctx, "+15550000001", "131050"); err != nil {
		t.Fatal(err)
	}
	if err := l.Suppress(ctx, "+15550000002", "INBOUND_OPT_OUT"); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, rkeys.Suppressed(), "+15550000003", "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT|1767225600000").Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		to, line, scope string
	}{
		{"+15550000001", "Suppressed for marketing (131050) since 2026-03-01T12:00:00Z", "marketing"},
		{"+15550000002", "Suppressed for every message (INBOUND_OPT_OUT) since 2026-03-01T12:00:00Z", "all"},
		{"+15550000003", "Suppressed for every message (ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT) since 2026-01-01T00:00:00Z", "all"},
		{"+15550000004", "Suppressed false", ""},
	} {
		x, err := report.Explain(ctx, l, rdb, report.ExplainParams{Run: run, Recipient: tc.to, Shown: tc.to, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if x.Suppressed != (tc.scope != "") || (x.Suppression == nil) != (tc.scope == "") ||
			(x.Suppression != nil && x.Suppression.Scope != tc.scope) {
			t.Errorf("%s: suppressed %v, suppression %+v; want scope %q", tc.to, x.Suppressed, x.Suppression, tc.scope)
		}
		var buf bytes.Buffer
		report.PrintExplanation(&buf, x, now)
		if !strings.Contains(buf.String(), "\n"+tc.line+"\n") {
			t.Errorf("%s printed:\n%s\nwant the line %q", tc.to, buf.String(), tc.line)
		}
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(b), `"suppression":{"scope":"`+tc.scope+`"`); got != (tc.scope != "") {
			t.Errorf("%s JSON %s: want the suppression's scope %q", tc.to, b, tc.scope)
		}
	}
}

// TestExplainHeraldCodesAreNotFailures: a send that waited for Herald's own limits reads as
// pacing, never as a permanent failure, in the history, the timeline and the text; a claim
// given back before any request reads as requeued; a skip's reason has no failure class.
func TestExplainHeraldCodesAreNotFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	table := defaultTable(t)
	const run = "R1"
	tos := []string{"+447700900123", "+447700900124"}
	b := newExplainBench(t, time.Date(2026, 12, 6, 21, 30, 0, 0, time.UTC), tos...)
	b.settle(t, tos[0], ledger.Outcome{State: ledger.Queued, Mode: ledger.ReleaseThrottle, Code: "RATE_LIMIT"})
	b.settle(t, tos[0], ledger.Outcome{State: ledger.Queued, Mode: ledger.ReleaseThrottle, Code: "DAILY_TIER"})
	b.settle(t, tos[0], ledger.Outcome{State: ledger.Queued, Mode: ledger.ReleaseRequeue, Code: "LATE_FOR_PAIR"})
	b.settle(t, tos[0], ledger.Outcome{State: ledger.Queued, Mode: ledger.ReleaseThrottle, Code: "PACE_ERROR"})
	b.settle(t, tos[1], ledger.Outcome{State: ledger.Queued, Mode: ledger.ReleaseThrottle, Code: "RATE_LIMIT"})
	b.settle(t, tos[1], ledger.Outcome{State: ledger.Skipped, Code: ledger.SkipSuppressed})
	l, rdb, now := b.l, b.rdb, b.now

	x, err := report.Explain(ctx, l, rdb, report.ExplainParams{Run: run, Recipient: tos[0], Shown: "*********0123", Table: table, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"RATE_LIMIT": "pacing", "DAILY_TIER": "pacing", "LATE_FOR_PAIR": "pacing", "PACE_ERROR": "requeued"}
	if len(x.History) != len(want) {
		t.Fatalf("history %+v, want %d lines", x.History, len(want))
	}
	for _, h := range x.History {
		if h.Class != want[h.Code] {
			t.Errorf("history %s %s: class %q, want %q", h.Outcome, h.Code, h.Class, want[h.Code])
		}
	}
	for _, ev := range x.Timeline {
		if ev.Code != "" && ev.Class != want[ev.Code] {
			t.Errorf("timeline %s %s: class %q, want %q", ev.Outcome, ev.Code, ev.Class, want[ev.Code])
		}
	}
	if x.Class != "requeued" || x.Why == "" || strings.Contains(x.Why, "no documented meaning") {
		t.Errorf("last code %s: class %q, why %q", x.Code, x.Class, x.Why)
	}
	var printed bytes.Buffer
	report.PrintExplanation(&printed, x, now)
	if s := printed.String(); strings.Contains(s, "permanent") || !strings.Contains(s, "throttle RATE_LIMIT (pacing)") {
		t.Errorf("printed:\n%s\nwant the rate-limit wait as pacing, nothing permanent", s)
	}

	x, err = report.Explain(ctx, l, rdb, report.ExplainParams{Run: run, Recipient: tos[1], Shown: "*********0124", Table: table, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(x.History) != 2 || x.History[0].Class != "pacing" || x.History[1].Outcome != "skipped" || x.History[1].Class != "" {
		t.Errorf("history %+v, want a pacing wait, then a skip without a failure class", x.History)
	}
	printed.Reset()
	report.PrintExplanation(&printed, x, now)
	if s := printed.String(); !strings.Contains(s, "skipped suppressed\n") {
		t.Errorf("printed:\n%s\nwant the skip's reason without a class", s)
	}
}

// A withdrawn resend's code is its reason (cancelled, expired...), not a failure: no class,
// unless it is Herald's own code (RESEND_DELETED), which has its own. Before, the reason was
// looked up as a provider code and shown "(permanent)".
func TestExplainWithdrawnResendReasonHasNoFailureClass(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	table := defaultTable(t)
	const to = "+447700900125"
	b := newExplainBench(t, time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC), to)
	b.settle(t, to, ledger.Outcome{State: ledger.Queued, Mode: ledger.ReleaseThrottle, Code: "RATE_LIMIT"})
	key := rkeys.History("R1", ledger.AddressIn("R1", to, 1).Bucket)
	fields, err := b.rdb.HGetAll(ctx, key).Result()
	if err != nil || len(fields) != 1 {
		t.Fatalf("history hash %v (err %v), want one recipient", fields, err)
	}
	sec := b.now.Unix()
	for f, v := range fields {
		v += fmt.Sprintf(";resend_withdrawn:1:cancelled:%d;resend_withdrawn:1:%s:%d", sec, ledger.CodeResendDeleted, sec)
		if err := b.rdb.HSet(ctx, key, f, v).Err(); err != nil {
			t.Fatal(err)
		}
	}
	x, err := report.Explain(ctx, b.l, b.rdb, report.ExplainParams{Run: "R1", Recipient: to, Shown: "*********0125", Table: table, Now: b.now})
	if err != nil {
		t.Fatal(err)
	}
	ownClass, _, _ := ledger.CodeMeaning(ledger.CodeResendDeleted)
	var got []string
	for _, h := range x.History {
		got = append(got, h.Outcome+" "+h.Code+" "+h.Class)
	}
	want := []string{"throttle RATE_LIMIT pacing", "resend_withdrawn cancelled ", "resend_withdrawn " + ledger.CodeResendDeleted + " " + ownClass}
	if !slices.Equal(got, want) {
		t.Errorf("history %q, want %q", got, want)
	}
}
