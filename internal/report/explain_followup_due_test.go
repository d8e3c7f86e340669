package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
)

// delayedFollowup writes the entry of rule's follow-up for to in run R1 and its task,
// scheduled at due (the receiver's way: the entry, then the task, then out of the outbox).
func delayedFollowup(t *testing.T, b *explainBench, rule, to string, p campaigns.SendPayload, due time.Time) {
	t.Helper()
	ctx := context.Background()
	r, err := b.l.GetRun(ctx, "R1")
	if err != nil {
		t.Fatal(err)
	}
	const queue = "herald:utility"
	p.Run, p.To, p.Row, p.Campaign = ledger.FollowupRun("R1", rule), to, 1, r.Campaign
	payload := campaigns.EncodeSend(p)
	res, err := b.l.CreateFollowup(ctx, ledger.Followup{Parent: ledger.ParentRun{ID: r.ID, Campaign: r.Campaign, Delivery: r.Delivery,
		Buckets: r.Buckets}, Rule: rule, Recipient: to, Row: 1, Payload: payload, Queue: queue})
	if err != nil || res.Verdict != ledger.FollowupCreated {
		t.Fatalf("CreateFollowup: %v, %v", res.Verdict, err)
	}
	id, err := b.l.TaskID(ctx, res.Run, to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asynqbatch.New(b.rdb).Write(ctx, []asynqbatch.Task{{Type: campaigns.TypeSend, Payload: payload, ID: id,
		Queue: queue, ProcessAt: due}}, false); err != nil {
		t.Fatal(err)
	}
	if err := b.l.FollowupQueued(ctx, res.Run, to); err != nil {
		t.Fatal(err)
	}
}

// A delayed follow-up waiting for its time says when it is due, in text and JSON; one whose
// due time is the opening of its send hours says they hold it; one whose run is paused says
// the pause holds it, and why.
func TestExplainDelayedFollowupSaysWhenItIsDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A Monday, 20:00 in Madrid, in the future: asynq schedules a task by the real clock.
	t0 := time.Date(2037, 3, 2, 19, 0, 0, 0, time.UTC)
	tos := []string{"+447700900301", "+447700900302"}
	b := newExplainBench(t, t0, tos...)
	for _, to := range tos {
		b.settle(t, to, ledger.Outcome{State: ledger.Accepted, MessageID: "m-" + to})
	}
	// tos[0]: due two hours after its reply, no send hours.
	due0 := t0.Add(2*time.Hour + 123*time.Millisecond)
	delayedFollowup(t, b, "later", tos[0], campaigns.SendPayload{Template: "nudge", Language: "en"}, due0)
	// tos[1]: due at 09:00 Madrid the next morning, the opening of its send hours.
	due1 := time.Date(2037, 3, 3, 8, 0, 0, 0, time.UTC)
	delayedFollowup(t, b, "later", tos[1], campaigns.SendPayload{Template: "nudge", Language: "en",
		SendHours: "0111110|0900|1800|Europe/Madrid"}, due1)
	rules := func(context.Context, ledger.Run) []string { return []string{"later"} }
	explain := func(to string) (report.FollowupStory, string, string) {
		t.Helper()
		x, err := report.Explain(ctx, b.l, b.rdb, report.ExplainParams{Run: "R1", Recipient: to, Shown: to, RuleIDs: rules, Now: b.now})
		if err != nil {
			t.Fatal(err)
		}
		if len(x.Followups) != 1 {
			t.Fatalf("%s: follow-ups %+v, want one", to, x.Followups)
		}
		var out bytes.Buffer
		report.PrintExplanation(&out, x, b.now)
		js, err := json.Marshal(x.Followups[0])
		if err != nil {
			t.Fatal(err)
		}
		return x.Followups[0], out.String(), string(js)
	}

	f, text, js := explain(tos[0])
	if f.State != string(ledger.Queued) || strings.Contains(js, "held") {
		t.Errorf("%s: follow-up %s, want queued, nothing holding it", tos[0], js)
	}
	if want := "Follow-up  later: queued, 0 attempts, due 2037-03-02T21:00:00Z (in 1h58m)\n"; !strings.Contains(text, want) {
		t.Errorf("%s printed:\n%s\nwant %q", tos[0], text, want)
	}
	if !strings.Contains(js, `"due":"2037-03-02T21:00:00Z"`) {
		t.Errorf("%s JSON %s: want its due time", tos[0], js)
	}

	_, text, js = explain(tos[1])
	if want := "due 2037-03-03T08:00:00Z (in 12h58m), held by the send hours: mon-fri 09:00-18:00 Europe/Madrid"; !strings.Contains(text, want) {
		t.Errorf("%s printed:\n%s\nwant %q", tos[1], text, want)
	}
	if !strings.Contains(js, `"due":"2037-03-03T08:00:00Z"`) || !strings.Contains(js, `"held_by":"send_hours"`) {
		t.Errorf("%s JSON %s: want held_by send_hours", tos[1], js)
	}

	// Paused: the pause holds them, with its reason (masked).
	if ok, err := b.l.Pause(ctx, "R1", "paused by ana: call +14155550123"); err != nil || !ok {
		t.Fatalf("Pause: %v, %v", ok, err)
	}
	_, text, js = explain(tos[0])
	if !strings.Contains(text, "held by a pause: paused by ana: call ********0123") {
		t.Errorf("%s paused: printed:\n%s", tos[0], text)
	}
	if strings.Contains(js, "4155550123") || !strings.Contains(js, `"held_by":"pause"`) {
		t.Errorf("%s paused: JSON %s", tos[0], js)
	}
}

// A follow-up Connectly accepted as a session message reads as that, not as a code: "sent as
// the session message", one attempt in the singular; its JSON keeps the code and adds sent_as.
func TestExplainFollowupSentAsSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Date(2037, 3, 2, 19, 0, 0, 0, time.UTC)
	const to = "+447700900401"
	b := newExplainBench(t, t0, to)
	b.settle(t, to, ledger.Outcome{State: ledger.Accepted, MessageID: "m-1"})
	delayedFollowup(t, b, "sad", to, campaigns.SendPayload{Kind: campaigns.KindSession}, b.now)
	fa := ledger.FollowupAddress("R1", "sad", to, 1)
	if _, err := b.l.Claim(ctx, fa, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.Finish(ctx, fa, ledger.Outcome{State: ledger.Accepted, Code: ledger.SentSession, MessageID: "m-2"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.l.ApplyDelivery(ctx, ledger.DeliveryEvent{Address: fa, State: ledger.Read, MessageID: "m-2"}); err != nil {
		t.Fatal(err)
	}
	x, err := report.Explain(ctx, b.l, b.rdb, report.ExplainParams{Run: "R1", Recipient: to, Shown: to, Now: b.now,
		RuleIDs: func(context.Context, ledger.Run) []string { return []string{"sad"} }})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	report.PrintExplanation(&out, x, b.now)
	if want := "Follow-up  sad: read, 1 attempt, sent as the session message, message m-2\n"; !strings.Contains(out.String(), want) {
		t.Errorf("printed:\n%s\nwant %q", out.String(), want)
	}
	js, err := json.Marshal(x.Followups)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"code":"session"`) || !strings.Contains(string(js), `"sent_as":"session"`) {
		t.Errorf("JSON %s: want code session kept and sent_as session", js)
	}
}
