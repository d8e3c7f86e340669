package conversation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// hoursYAML sends between 09:00 and 20:00 New York time; "Not now" is answered two days later
// with a template, "Yes" at once. Tests replace its send_window and expire_after.
const hoursYAML = `
id: hours
template: {name: hours_news, language: en_US}
audience: {file: audience.csv, timezone: tz}
send_window: {from: "09:00", to: "20:00", timezone: America/New_York}
expire_after: 48h
on_reply:
  - name: later
    button: "Not now"
    delay: 48h
    template: {name: hours_reminder}
  - name: now
    button: "Yes"
    message: {text: "Here it is"}
`

// hoursBench is a run R of def whose message to ana went out (recorded with the audience
// columns its send carries for follow-ups, row), and the follow-ups that answer her.
type hoursBench struct {
	def   *campaigns.Definition
	l     *ledger.Ledger
	fu    *conversation.Followups
	tasks *taskLog
	clock *clock
	run   ledger.Run
}

func setupHours(t *testing.T, yaml string, row map[string]string, now time.Time) *hoursBench {
	t.Helper()
	m, rdb := testredis.Mini(t)
	c := &clock{t: now}
	m.SetTime(now)
	def, err := campaigns.Parse("hours.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	b := &hoursBench{def: def, l: ledger.New(rdb, c.now), clock: c, tasks: &taskLog{tasks: map[string][]asynqbatch.Task{}}}
	ctx := context.Background()
	run := ledger.Run{ID: "R", Campaign: "hours", Template: "hours_news", Language: "en_US", Queue: "herald:marketing",
		Delivery: ledger.AtMostOnce, Buckets: 1, Created: now.Add(-time.Hour)}
	if err := b.l.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.PlanQueued(ctx, ledger.Batch{Run: run.ID, From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: ana, Row: 1}}}); err != nil {
		t.Fatal(err)
	}
	b.run, _ = b.l.GetRun(ctx, run.ID)
	resolve := func(_ context.Context, id string) (conversation.RunInfo, bool, error) {
		return conversation.RunInfo{Run: b.run, Def: def}, id == run.ID, nil
	}
	b.fu, err = conversation.NewFollowups(conversation.FollowupConfig{Redis: rdb, Business: "biz", Tasks: b.tasks, Resolve: resolve, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	p := campaigns.SendPayload{Run: run.ID, To: ana, ReplyCols: def.OnReply.PickColumns(row)}
	if err := conversation.SendRecorder(resolve, b.fu.Index(), conversation.NewColumns(rdb))(ctx, p); err != nil {
		t.Fatal(err)
	}
	a := p.Address()
	if _, err := b.l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: "wamid.R", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	return b
}

// tap is ana tapping button on R's message now, and the follow-up task it wrote (nil: none).
func (b *hoursBench) tap(t *testing.T, button, rule string) (conversation.Outcome, *asynqbatch.Task, campaigns.SendPayload) {
	t.Helper()
	ctx := context.Background()
	cb := ledger.AddressIn(b.run.ID, ana, 1)
	out, err := b.fu.Reply(ctx, conversation.Reply{Kind: webhooks.ReplyButton, From: webhooks.Customer{Phone: ana}, At: b.clock.t,
		Callback: &cb, ButtonText: button, MessageID: "wamid.tap-" + rule})
	if err != nil || out.Rule != rule {
		t.Fatalf("tap %q: %+v %v, want rule %s", button, out, err, rule)
	}
	id, err := b.l.TaskID(ctx, ledger.FollowupRun(b.run.ID, rule), ana)
	if err != nil {
		t.Fatal(err)
	}
	tasks := b.tasks.tasks[id]
	if len(tasks) == 0 {
		return out, nil, campaigns.SendPayload{}
	}
	p, err := campaigns.DecodeSend(tasks[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	return out, &tasks[0], p
}

// TestDelayedFollowupKeepsTheSendHours: "Not now" tapped at 23:00 New York time with a 48h
// delay is due at 23:00 two days later, outside the campaign's send hours: its task waits for
// 09:00, and it carries the send hours (the worker checks them again) and an expiry counted
// from when it was due. "Yes", answered at once, goes at once, as a conversation.
func TestDelayedFollowupKeepsTheSendHours(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip(err)
	}
	now := time.Date(2026, 3, 1, 23, 0, 0, 0, ny)
	b := setupHours(t, hoursYAML, map[string]string{"tz": "Asia/Tokyo"}, now)
	due := now.Add(48 * time.Hour)
	out, task, p := b.tap(t, "Not now", "later")
	if !out.Created || task == nil {
		t.Fatalf("Not now: %+v, want its follow-up's task", out)
	}
	if open := time.Date(2026, 3, 4, 9, 0, 0, 0, ny); !task.ProcessAt.Equal(open) {
		t.Fatalf("the follow-up's task is due at %s, want %s, when the send hours open after %s",
			task.ProcessAt.In(ny), open, due.In(ny))
	}
	if p.SendHours != "1111111|0900|2000|America/New_York" || p.Expires != due.Add(48*time.Hour).Unix() {
		t.Fatalf("payload send hours %q, expires %d; want the campaign's, and %d (48h after it is due)",
			p.SendHours, p.Expires, due.Add(48*time.Hour).Unix())
	}
	if expired, wait := campaigns.CheckTime(p, due); expired || wait != 10*time.Hour {
		t.Fatalf("the worker at its due time: expired %v, wait %s; want a wait of 10h", expired, wait)
	}

	out, task, p = b.tap(t, "Yes", "now")
	if !out.Created || task == nil || !task.ProcessAt.IsZero() || p.SendHours != "" || p.Expires != 0 {
		t.Fatalf("Yes: %+v, task %+v, payload %+v; want it sent at once, without send hours or expiry", out, task, p)
	}
}

// TestDelayedFollowupInTheRecipientsZone: with send hours in the recipient's zone, a delayed
// follow-up reads the zone as the campaign's sends do: the audience's time zone column, which
// the run's send carried for it.
func TestDelayedFollowupInTheRecipientsZone(t *testing.T) {
	t.Parallel()
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Skip(err)
	}
	yaml := strings.Replace(hoursYAML, "timezone: America/New_York", "timezone: recipient", 1)
	now := time.Date(2026, 3, 1, 23, 0, 0, 0, tokyo)
	b := setupHours(t, yaml, map[string]string{"tz": "Asia/Tokyo"}, now)
	if got := b.def.OnReply.PickColumns(map[string]string{"tz": "Asia/Tokyo"}); got["tz"] != "Asia/Tokyo" {
		t.Fatalf("the send carries %v, want the time zone column for the delayed follow-up", got)
	}
	out, task, p := b.tap(t, "Not now", "later")
	if !out.Created || task == nil {
		t.Fatalf("Not now: %+v, want its follow-up's task", out)
	}
	if open := time.Date(2026, 3, 4, 9, 0, 0, 0, tokyo); !task.ProcessAt.Equal(open) || p.Zone != "Asia/Tokyo" {
		t.Fatalf("task due %s, zone %q; want %s in Asia/Tokyo", task.ProcessAt, p.Zone, open)
	}
}

// TestDelayedFollowupExpiresBeforeTheHoursOpen: a delayed follow-up whose send hours open only
// after its expiry (expire_after counted from when it is due) is written skipped(expired), with
// no task, as a campaign's recipient is.
func TestDelayedFollowupExpiresBeforeTheHoursOpen(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip(err)
	}
	yaml := strings.Replace(hoursYAML, "expire_after: 48h", "expire_after: 2h", 1)
	b := setupHours(t, yaml, nil, time.Date(2026, 3, 1, 23, 0, 0, 0, ny))
	out, task, _ := b.tap(t, "Not now", "later")
	if !out.Created || out.Verdict != ledger.FollowupSkipped || task != nil {
		t.Fatalf("Not now: %+v, task %+v; want its follow-up written skipped, no task", out, task)
	}
	e, ok, err := b.l.Entry(context.Background(), ledger.FollowupAddress(b.run.ID, "later", ana, 1))
	if err != nil || !ok || e.State != ledger.Skipped || e.Code != "expired" {
		t.Fatalf("follow-up entry %+v (%v %v), want skipped(expired)", e, ok, err)
	}
}
