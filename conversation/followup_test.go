package conversation_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
)

const promoYAML = `
id: promo
template: {name: spring_promo, language: en_US}
audience: {file: audience.csv}
on_reply:
  until: 72h
  rules:
    - name: unsubscribe
      button: Unsubscribe
      suppress: true
      message: {text: "You are unsubscribed."}
    - name: interested
      button: "Yes, show me"
      tag: interested
      once_per: campaign
      message: {text: "Here it is: {{ .button }}"}
    - name: later
      button: "Not now"
      delay: 48h
      template: {name: spring_reminder}
      parameters: {body_1: "{{ .first_name | default \"there\" }}"}
    - name: price
      keyword: [price, "how much"]
      message: {text: "From $9"}
`

// taskLog is an asynqbatch.Writer that records tasks by id, failing while fail is set.
type taskLog struct {
	mu    sync.Mutex
	tasks map[string][]asynqbatch.Task
	fail  bool
}

func (w *taskLog) Write(_ context.Context, ts []asynqbatch.Task, _ bool) ([]bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail {
		return nil, errors.New("connection reset")
	}
	out := make([]bool, len(ts))
	for i, t := range ts {
		out[i] = len(w.tasks[t.ID]) == 0
		w.tasks[t.ID] = append(w.tasks[t.ID], t)
	}
	return out, nil
}

type fuBundle struct {
	m     *miniredis.Miniredis
	rdb   *redis.Client
	def   *campaigns.Definition
	l     *ledger.Ledger
	fu    *conversation.Followups
	tasks *taskLog
	clock *clock
	run   ledger.Run
	rcpts []string
	// resolve is the follow-ups' resolver.
	resolve conversation.Resolver
}

func setupFollowups(t *testing.T) *fuBundle {
	t.Helper()
	m, rdb := testredis.Mini(t)
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	m.SetTime(c.t)
	def, err := campaigns.Parse("promo.yaml", []byte(promoYAML))
	if err != nil {
		t.Fatal(err)
	}
	l := ledger.New(rdb, c.now)
	ctx := context.Background()
	rcpts := []string{"+15550000001", "+15550000002", "+15550000003", "+15550000004"}
	run := ledger.Run{ID: "promo-1", Campaign: "promo", Template: "spring_promo", Language: "en_US", Queue: "herald:marketing",
		Delivery: ledger.AtMostOnce, Buckets: 2, Created: c.t}
	if err := l.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	entries := make([]ledger.PlanEntry, len(rcpts))
	for i, r := range rcpts {
		entries[i] = ledger.PlanEntry{Recipient: r, Bucket: ledger.BucketOf(r, 2), Row: i + 1}
	}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: run.ID, From: 0, To: len(rcpts), Entries: entries}); err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		a := ledger.Address{Run: run.ID, Recipient: e.Recipient, Bucket: e.Bucket}
		if _, err := l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
			t.Fatal(err)
		}
		if i == len(entries)-1 {
			break // the last is still sending when its customer answers
		}
		if _, err := l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: e.Recipient, Attempt: 1}); err != nil {
			t.Fatal(err)
		}
	}
	run, _ = l.GetRun(ctx, run.ID)
	tasks := &taskLog{tasks: map[string][]asynqbatch.Task{}}
	resolve := func(_ context.Context, id string) (conversation.RunInfo, bool, error) {
		if id != run.ID {
			return conversation.RunInfo{}, false, nil
		}
		return conversation.RunInfo{Run: run, Def: def}, true, nil
	}
	fu, err := conversation.NewFollowups(conversation.FollowupConfig{Redis: rdb, Business: "biz", Tasks: tasks, Resolve: resolve, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return &fuBundle{m: m, rdb: rdb, def: def, l: l, fu: fu, tasks: tasks, clock: c, run: run, rcpts: rcpts, resolve: resolve}
}

func (b *fuBundle) tap(to, button string) conversation.Reply {
	cb := ledger.AddressIn(b.run.ID, to, b.run.Buckets)
	return conversation.Reply{Kind: webhooks.ReplyButton, From: webhooks.Customer{Phone: to}, At: b.clock.t,
		Callback: &cb, ButtonText: button}
}

func TestFollowupsOncePerRule(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	ana := b.rcpts[0]
	// The same tap three times (a retried webhook, a second replica): one entry, one task.
	for i := range 3 {
		out, err := b.fu.Reply(ctx, b.tap(ana, "yes, SHOW me"))
		if err != nil {
			t.Fatal(err)
		}
		if out.Rule != "interested" || out.Created != (i == 0) {
			t.Fatalf("tap %d: %+v", i, out)
		}
	}
	id := b.taskID(ledger.FollowupRun(b.run.ID, "interested"), ana)
	if n := len(b.tasks.tasks[id]); n != 1 {
		t.Fatalf("%d tasks for the follow-up, want 1", n)
	}
	p, err := campaigns.DecodeSend(b.tasks.tasks[id][0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	content, err := campaigns.DecodeSession(p.Session)
	if err != nil || p.Kind != campaigns.KindSession || content.Text != "Here it is: yes, SHOW me" {
		t.Fatalf("payload %+v content %+v (%v)", p, content, err)
	}
	if p.Run != ledger.FollowupRun(b.run.ID, "interested") || p.To != ana {
		t.Fatalf("payload addressed to %s %s", p.Run, p.To)
	}
	tags, _ := b.l.Tags(ctx, b.run.ID)
	if !slices.Equal(tags[ana], []string{"interested"}) {
		t.Fatalf("tags %v", tags)
	}
	// A second run of the same campaign: once_per campaign gives it nothing.
	run2 := b.run
	run2.ID = "promo-2"
	if ok, err := b.l.OncePerCampaign(ctx, "promo", "interested", ana, run2.ID); err != nil || ok {
		t.Fatalf("once per campaign for a second run: %v %v", ok, err)
	}
}

func TestFollowupsDelayLateAndSuppress(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	bea, cid, dan := b.rcpts[1], b.rcpts[2], b.rcpts[3]
	if _, err := b.fu.Reply(ctx, b.tap(bea, "Not now")); err != nil {
		t.Fatal(err)
	}
	task := b.tasks.tasks[b.taskID(ledger.FollowupRun(b.run.ID, "later"), bea)]
	if len(task) != 1 || !task[0].ProcessAt.Equal(b.clock.t.Add(48*time.Hour)) {
		t.Fatalf("delayed follow-up: %+v", task)
	}
	p, _ := campaigns.DecodeSend(task[0].Payload)
	if p.Kind != campaigns.KindTemplate || p.Template != "spring_reminder" || len(p.Params) != 1 || p.Params[0].Value != "there" {
		t.Fatalf("template follow-up payload %+v", p)
	}
	// Unsubscribe: suppressed, and the confirmation still goes.
	if _, err := b.fu.Reply(ctx, b.tap(cid, "Unsubscribe")); err != nil {
		t.Fatal(err)
	}
	if sup, _ := b.l.Suppressed(ctx, []string{cid}); !sup[0] {
		t.Fatal("unsubscribe did not suppress")
	}
	if len(b.tasks.tasks[b.taskID(ledger.FollowupRun(b.run.ID, "unsubscribe"), cid)]) != 1 {
		t.Fatal("no confirmation task")
	}
	// A suppressed recipient's next follow-up is written skipped, with no task.
	out, err := b.fu.Reply(ctx, b.tap(cid, "Yes, show me"))
	if err != nil || out.Verdict != ledger.FollowupSkipped {
		t.Fatalf("suppressed tap: %+v %v", out, err)
	}
	if len(b.tasks.tasks[b.taskID(ledger.FollowupRun(b.run.ID, "interested"), cid)]) != 0 {
		t.Fatal("a task for a suppressed recipient")
	}
	// After on_reply.until: nothing.
	b.clock.t = b.clock.t.Add(73 * time.Hour)
	out, err = b.fu.Reply(ctx, b.tap(dan, "Yes, show me"))
	if err != nil || !out.Late || out.Created {
		t.Fatalf("late tap: %+v %v", out, err)
	}
}

// leaveInOutbox has to, a recipient of the run, ask the price in plain text (joined through
// the index of recent sends) while task writes fail, which leaves the "price" follow-up's
// entry in the outbox without its task; it returns that reply.
func (b *fuBundle) leaveInOutbox(t *testing.T, to string) conversation.Reply {
	t.Helper()
	ctx := context.Background()
	b.recordSend(t, to)
	text := conversation.Reply{Kind: webhooks.ReplyText, From: webhooks.Customer{Phone: to}, At: b.clock.t, Text: "How much is it?"}
	b.tasks.fail = true
	if _, err := b.fu.Reply(ctx, text); err == nil {
		t.Fatal("a failed task write must fail the reply (the webhook comes again)")
	}
	b.tasks.fail = false
	return text
}

// RunSweep, as a receiver runs it, writes the task of an entry left in the outbox on its own,
// at its configured period and age.
func TestRunSweepWritesALeftEntrysTask(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	ana := b.rcpts[0]
	b.leaveInOutbox(t, ana)
	b.clock.t = b.clock.t.Add(2 * time.Minute)
	fu, err := conversation.NewFollowups(conversation.FollowupConfig{Redis: b.rdb, Business: "biz", Tasks: b.tasks,
		Resolve: b.resolve, Now: b.clock.now, SweepEvery: time.Millisecond, SweepAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); fu.RunSweep(sctx) }()
	defer func() { stop(); <-done }()
	id := b.taskID(ledger.FollowupRun(b.run.ID, "price"), ana)
	for deadline := time.Now().Add(10 * time.Second); ; {
		b.tasks.mu.Lock()
		n := len(b.tasks.tasks[id])
		b.tasks.mu.Unlock()
		if n == 1 {
			return
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("tasks written for the left entry: %d", n)
		}
		time.Sleep(time.Millisecond) // the poll interval
	}
}

// Plain text joins through the index of recent sends; a crash between the entry and its task
// leaves the entry in the outbox, where the sweep writes its task.
func TestFollowupsTextAndSweep(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	ana := b.rcpts[0]
	text := b.leaveInOutbox(t, ana)
	id := b.taskID(ledger.FollowupRun(b.run.ID, "price"), ana)
	if n, err := b.fu.Sweep(ctx, time.Minute); err != nil || n != 0 {
		t.Fatalf("sweep of a fresh entry: %d %v", n, err)
	}
	b.clock.t = b.clock.t.Add(2 * time.Minute)
	if n, err := b.fu.Sweep(ctx, time.Minute); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if n, err := b.fu.Sweep(ctx, time.Minute); err != nil || n != 0 {
		t.Fatalf("second sweep: %d %v", n, err)
	}
	// The webhook delivered again finds the entry queued: nothing more.
	out, err := b.fu.Reply(ctx, text)
	if err != nil || out.Rule != "price" || out.Verdict != ledger.FollowupQueuedBefore {
		t.Fatalf("repeat: %+v %v", out, err)
	}
	if n := len(b.tasks.tasks[id]); n != 1 {
		t.Fatalf("%d tasks, want 1", n)
	}
}

// Every joined reply lands in the recipient's conversation record once, whether or not a
// rule matches it, and a repeated webhook (same provider id) is kept once.
func TestFollowupsRecordTheConversation(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	ana := b.rcpts[0]
	tap := b.tap(ana, "yes, SHOW me")
	tap.MessageID = "wamid.tap-1"
	for range 2 {
		if _, err := b.fu.Reply(ctx, tap); err != nil {
			t.Fatal(err)
		}
	}
	b.clock.t = b.clock.t.Add(time.Minute)
	text := conversation.Reply{Kind: webhooks.ReplyText, From: webhooks.Customer{Phone: ana}, At: b.clock.t,
		Text: "nothing any rule knows", MessageID: "wamid.text-2", Callback: tap.Callback}
	if _, err := b.fu.Reply(ctx, text); err != nil {
		t.Fatal(err)
	}
	got, err := conversation.NewHistory(b.rdb, b.clock.now).Read(ctx, b.run.ID, ana)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].MessageID != "wamid.tap-1" || got[1].MessageID != "wamid.text-2" ||
		got[1].Text != "nothing any rule knows" || !got[0].At.Before(got[1].At) ||
		got[0].Rule != "interested" || got[1].Rule != "" {
		t.Fatalf("conversation %+v", got)
	}
	// A customer Herald never sent to is joined to nothing and recorded nowhere.
	stranger := conversation.Reply{Kind: webhooks.ReplyText, From: webhooks.Customer{Phone: "+15559999999"}, At: b.clock.t, Text: "hi", MessageID: "wamid.x"}
	if _, err := b.fu.Reply(ctx, stranger); err != nil {
		t.Fatal(err)
	}
	if got, _ := conversation.NewHistory(b.rdb, b.clock.now).Read(ctx, b.run.ID, "+15559999999"); len(got) != 0 {
		t.Fatalf("stranger recorded: %+v", got)
	}
}

// An opt-out (the receiver marks it) is recorded in the conversation and triggers no rule,
// even one its text or button would match.
func TestFollowupsOptOutIsRecordedOnly(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	bo := b.rcpts[1]
	stop := b.tap(bo, "yes, SHOW me")
	stop.OptOut, stop.MessageID = true, "wamid.stop"
	out, err := b.fu.Reply(ctx, stop)
	if err != nil {
		t.Fatal(err)
	}
	if out.Entry.Recipient != bo || out.Rule != "" || out.Created {
		t.Fatalf("opt-out outcome %+v", out)
	}
	if n := len(b.tasks.tasks); n != 0 {
		t.Fatalf("%d follow-up tasks for an opt-out", n)
	}
	got, err := conversation.NewHistory(b.rdb, b.clock.now).Read(ctx, b.run.ID, bo)
	if err != nil || len(got) != 1 || !got[0].OptOut || got[0].Rule != "" {
		t.Fatalf("conversation %+v (%v)", got, err)
	}
}

// TestFollowupsMetrics counts a reply's outcomes with how it was joined to its run: a tap that
// carries Herald's callbackData is matched and creates its follow-up, via "callback"; the same
// tap again matches again but creates nothing.
func TestFollowupsMetrics(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	m := conversation.NewMetrics(nil)
	fu, err := conversation.NewFollowups(conversation.FollowupConfig{Redis: b.rdb, Business: "biz", Tasks: b.tasks,
		Resolve: b.resolve, Now: b.clock.now, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 {
		if _, err := fu.Reply(ctx, b.tap(b.rcpts[0], "Yes, show me")); err != nil {
			t.Fatal(err)
		}
	}
	for outcome, want := range map[string]float64{"matched": 2, "created": 1} {
		got := testutil.ToFloat64(m.Replies.WithLabelValues("promo", "interested", outcome, conversation.ViaCallback))
		if got != want {
			t.Errorf("%s via callback: %g, want %g", outcome, got, want)
		}
	}
	if n := testutil.CollectAndCount(m.Replies); n != 2 {
		t.Errorf("%d series, want 2 (matched and created, via callback)", n)
	}
}

// taskID is the id of to's send task in run, under the deployment's key in b's Redis.
func (b *fuBundle) taskID(run, to string) string {
	id, err := b.l.TaskID(context.Background(), run, to)
	if err != nil {
		panic(err)
	}
	return id
}
