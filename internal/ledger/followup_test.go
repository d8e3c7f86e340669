package ledger

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/redis/go-redis/v9"
)

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

func followupParent(id string) ParentRun {
	return ParentRun{ID: id, Campaign: "spring-sale", Template: "spring_sale", Language: "en",
		Delivery: AtMostOnce, Buckets: 4}
}

func TestFollowupRunIDs(t *testing.T) {
	t.Parallel()
	id := FollowupRun("spring-sale-20260101T000000Z-ab12", "r1")
	run, rule, ok := FollowupOf(id)
	if !ok || run != "spring-sale-20260101T000000Z-ab12" || rule != "r1" {
		t.Fatalf("FollowupOf(%q) = %q, %q, %v", id, run, rule, ok)
	}
	for _, bad := range []string{"spring-sale-1", "~r1", "run~"} {
		if _, _, ok := FollowupOf(bad); ok {
			t.Errorf("FollowupOf(%q) ok, want not a follow-up run", bad)
		}
	}
}

// A follow-up entry is created once whatever the number of calls; its payload waits in the
// outbox until FollowupQueued, and the entry goes through the usual claim.
func TestCreateFollowupOnce(t *testing.T) {
	t.Parallel()
	runFollowupStory(t, setup(t), "run-fu-1")
}

func TestCreateFollowupOnceRealRedis(t *testing.T) {
	t.Parallel()
	id := "test-fu-" + time.Now().Format("150405.000000000")
	runFollowupStory(t, realRedis(t, id, FollowupRun(id, "yes"), FollowupRun(id, "stop")), id)
}

func runFollowupStory(t *testing.T, b *testBundle, id string) {
	ctx := context.Background()
	f := Followup{Parent: followupParent(id), Rule: "yes", Recipient: "+15550001111", Row: 7, Payload: []byte(`{"p":1}`)}
	res, err := b.l.CreateFollowup(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "first verdict", FollowupCreated, res.Verdict)
	wantEqual(t, "run", FollowupRun(id, "yes"), res.Run)
	// A second webhook before the task was written: write it again, with the first payload.
	f2 := f
	f2.Payload = []byte(`{"p":2}`)
	res2, err := b.l.CreateFollowup(ctx, f2)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "second verdict", FollowupPending, res2.Verdict)
	wantEqual(t, "stored payload", `{"p":1}`, string(res2.Payload))
	// Still in the outbox: a sweep finds it once it is old enough.
	items, err := b.l.FollowupOutbox(ctx, testNow.Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range items {
		if it.Run == res.Run {
			found = true
			wantEqual(t, "outbox recipient", "+15550001111", it.Recipient)
		}
	}
	if !found {
		t.Fatalf("outbox %+v misses the entry", items)
	}
	if err := b.l.FollowupQueued(ctx, res.Run, f.Recipient); err != nil {
		t.Fatal(err)
	}
	res3, err := b.l.CreateFollowup(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "after queued", FollowupQueuedBefore, res3.Verdict)
	items, _ = b.l.FollowupOutbox(ctx, testNow.Add(time.Minute), 10)
	for _, it := range items {
		if it.Run == res.Run {
			t.Fatalf("outbox still holds %+v after FollowupQueued", it)
		}
	}
	// The follow-up run is a run: the entry is queued, counted, and claimed once.
	r := getRun(t, b, res.Run)
	wantEqual(t, "parent", id, r.Parent)
	wantEqual(t, "status", RunRunning, r.Status)
	c := getCounters(t, b, res.Run)
	wantEqual(t, "queued", int64(1), c.States[Queued])
	cl, err := b.l.Claim(ctx, res.Address, AtMostOnce)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "claim", VerdictSend, cl.Verdict)
	cl, err = b.l.Claim(ctx, res.Address, AtMostOnce)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Verdict == VerdictSend {
		t.Fatal("second claim of a follow-up entry says send")
	}
	// A skipped entry (a suppressed recipient) has no task.
	s := Followup{Parent: followupParent(id), Rule: "stop", Recipient: "bsuid:US.1", Skip: "suppressed"}
	rs, err := b.l.CreateFollowup(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "skipped verdict", FollowupSkipped, rs.Verdict)
	wantEqual(t, "skipped count", int64(1), getCounters(t, b, rs.Run).States[Skipped])
}

// The sweep's registry keeps a follow-up run while its outbox holds anything or while it had a
// new entry within FollowupIdle; an idle run leaves it and its next entry brings it back. The
// registry kept before (a plain set) is moved over on the first sweep.
func TestFollowupRegistryForgetsIdleRuns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	now := testNow
	b.l = New(b.rdb, func() time.Time { return now })
	registered := func() []string {
		t.Helper()
		runs, err := b.rdb.ZRange(ctx, rkeys.FollowupActive(), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		return runs
	}
	sweep := func(before time.Time) []OutboxItem {
		t.Helper()
		items, err := b.l.FollowupOutbox(ctx, before, 10)
		if err != nil {
			t.Fatal(err)
		}
		return items
	}
	b.rdb.SAdd(ctx, rkeys.FollowupRunsV1(), "old-run~r1")

	done := Followup{Parent: followupParent("run-a"), Rule: "yes", Recipient: "+15550001111", Payload: []byte(`{"p":1}`)}
	res, err := b.l.CreateFollowup(ctx, done)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.l.FollowupQueued(ctx, res.Run, done.Recipient); err != nil {
		t.Fatal(err)
	}
	// An entry whose task was never written, newer than what this sweep looks for.
	waiting := Followup{Parent: followupParent("run-b"), Rule: "yes", Recipient: "+15550002222", Payload: []byte(`{"p":2}`)}
	resB, err := b.l.CreateFollowup(ctx, waiting)
	if err != nil {
		t.Fatal(err)
	}

	now = testNow.Add(time.Minute)
	sweep(testNow.Add(-time.Second))
	if n, _ := b.rdb.Exists(ctx, rkeys.FollowupRunsV1()).Result(); n != 0 {
		t.Fatal("the old registry set is still there after a sweep")
	}
	wantEqual(t, "registry within the idle time", []string{"old-run~r1", res.Run, resB.Run}, sorted(registered()))

	now = testNow.Add(FollowupIdle + 2*time.Minute)
	sweep(testNow.Add(-time.Second))
	wantEqual(t, "registry after the idle time", []string{resB.Run}, registered())
	if items := sweep(now); len(items) != 1 || items[0].Run != resB.Run {
		t.Fatalf("sweep = %+v, want the waiting entry of %s", items, resB.Run)
	}

	again := Followup{Parent: followupParent("run-a"), Rule: "yes", Recipient: "+15550003333", Payload: []byte(`{"p":3}`)}
	if _, err := b.l.CreateFollowup(ctx, again); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "registry after a new entry", []string{res.Run, resB.Run}, sorted(registered()))
	items := sweep(now.Add(time.Second))
	wantEqual(t, "entries swept", 2, len(items))
}

func TestOncePerCampaign(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for i, c := range []struct {
		run  string
		want bool
	}{{"run-a", true}, {"run-a", true}, {"run-b", false}} {
		got, err := b.l.OncePerCampaign(ctx, "spring-sale", "yes", "+15550001111", c.run)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("call %d (%s): %v, want %v", i, c.run, got, c.want)
		}
	}
}

// A recipient keeps every tag rules gave them, once each and sorted; a tag given again (a
// retried webhook) changes nothing; a run recorded with one tag a recipient reads as it.
func TestTags(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const to = "+15550001111"
	for _, tag := range []string{"interested", "medium", "interested", "asked-price"} {
		if err := b.l.Tag(ctx, "run-a", to, tag); err != nil {
			t.Fatal(err)
		}
	}
	tags, err := b.l.Tags(ctx, "run-a")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"asked-price", "interested", "medium"}
	if !slices.Equal(tags[to], want) || len(tags) != 1 {
		t.Errorf("tags %v, want %s: %v", tags, to, want)
	}
	own, err := b.l.RecipientTags(ctx, "run-a", to)
	if err != nil || !slices.Equal(own, want) {
		t.Errorf("RecipientTags = %v, %v; want %v", own, err, want)
	}
	if none, err := b.l.RecipientTags(ctx, "run-a", "+15550002222"); err != nil || none != nil {
		t.Errorf("RecipientTags of an untagged recipient = %v, %v", none, err)
	}
	if err := b.l.Tag(ctx, "run-a", to, "a,b"); err == nil {
		t.Error("a tag with a comma was taken")
	}
	// A run recorded before recipients kept several tags: one tag, as it was written.
	if err := b.rdb.HSet(ctx, rkeys.Tags("run-old"), to, "interested").Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.l.Tag(ctx, "run-old", to, "bought"); err != nil {
		t.Fatal(err)
	}
	if own, _ := b.l.RecipientTags(ctx, "run-old", to); !slices.Equal(own, []string{"bought", "interested"}) {
		t.Errorf("old run's tags %v", own)
	}
}

// sremHook runs before once, just before the first SREM of the resend sweep's list: what
// happens between the lease script's "nothing left" and the drop.
type sremHook struct {
	before func()
	done   bool
}

func (h *sremHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *sremHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); !h.done && len(args) > 1 && strings.EqualFold(cmd.Name(), "srem") && args[1] == rkeys.ResendRuns() {
			h.done = true
			h.before()
		}
		return next(ctx, cmd)
	}
}

func (h *sremHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A follow-up run of a campaign that resends unknown recipients carries the policy and is
// swept while one of its entries is queued, being sent or waiting for its resend; once none
// is, the sweep drops it (it never finishes, so the run's own rule would keep it for good),
// and an entry created while it is being dropped keeps it listed.
func TestFollowupRunIsSweptForResendsWhileItNeedsIt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	parent := followupParent("run-rs")
	parent.ResendAfter = time.Minute
	create := func(l *Ledger, to string) FollowupResult {
		t.Helper()
		res, err := l.CreateFollowup(ctx, Followup{Parent: parent, Rule: "yes", Recipient: to, Payload: []byte("p"), Queue: "herald:utility"})
		if err != nil || res.Verdict != FollowupCreated {
			t.Fatalf("CreateFollowup: %+v %v", res, err)
		}
		if err := l.ListFollowupResends(ctx, res.Run); err != nil {
			t.Fatal(err)
		}
		return res
	}
	listed := func() bool {
		t.Helper()
		ok, err := b.rdb.SIsMember(ctx, rkeys.ResendRuns(), FollowupRun("run-rs", "yes")).Result()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	lease := func(l *Ledger, run string) bool {
		t.Helper()
		members, gone, err := l.LeaseUnknown(ctx, run, 10, time.Minute)
		if err != nil || len(members) != 0 {
			t.Fatalf("LeaseUnknown: %v %v", members, err)
		}
		return gone
	}
	res := create(b.l, "+15550000001")
	r := getRun(t, b, res.Run)
	wantEqual(t, "resend_after", time.Minute, r.ResendAfter)
	wantEqual(t, "queue", "herald:utility", r.Queue)
	if err := b.l.ListFollowupResends(ctx, "run-rs"); err == nil {
		t.Fatal("ListFollowupResends listed a run that is not a follow-up run")
	}
	if lease(b.l, res.Run) || !listed() {
		t.Fatal("a follow-up run with a queued entry left the sweep")
	}
	if _, err := b.l.Claim(ctx, res.Address, AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if lease(b.l, res.Run) || !listed() {
		t.Fatal("a follow-up run with an entry being sent left the sweep")
	}
	if _, err := b.l.Finish(ctx, res.Address, Outcome{State: Accepted, MessageID: "m1", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if !lease(b.l, res.Run) || listed() {
		t.Fatal("a follow-up run with nothing left to resend is still swept")
	}
	// Listed again by its next entry's task, dropped by a sweep that looked just before that
	// entry was created: the drop looks again and lists it back.
	if err := b.l.ListFollowupResends(ctx, res.Run); err != nil {
		t.Fatal(err)
	}
	hooked := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
	t.Cleanup(func() { hooked.Close() })
	hooked.AddHook(&sremHook{before: func() { create(b.l, "+15550000002") }})
	if lease(New(hooked, func() time.Time { return testNow }), res.Run) || !listed() {
		t.Fatal("a follow-up run whose entry came while the sweep dropped it is no longer swept")
	}
}

// A sweeper that dropped a follow-up run and stopped before it looked again leaves an entry
// written in between unlisted; once that entry becomes unknown (its answer lost, or a dead
// worker's claim found), the run is listed again, so its one resend is not lost.
func TestAnUnknownFollowupListsItsRunAgain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	parent := followupParent("run-rl")
	parent.ResendAfter = time.Minute
	listed := func(run string) bool {
		t.Helper()
		ok, err := b.rdb.SIsMember(ctx, rkeys.ResendRuns(), run).Result()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for i, lost := range []string{"answer", "claim"} {
		res, err := b.l.CreateFollowup(ctx, Followup{Parent: parent, Rule: "yes", Recipient: fmt.Sprintf("+1555000000%d", i),
			Payload: []byte("p"), Queue: "herald:utility"})
		if err != nil || res.Verdict != FollowupCreated {
			t.Fatalf("CreateFollowup: %+v %v", res, err)
		}
		// The sweeper's drop, with no look again after it.
		if err := b.rdb.SRem(ctx, rkeys.ResendRuns(), res.Run).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := b.l.Claim(ctx, res.Address, AtMostOnce); err != nil {
			t.Fatal(err)
		}
		code := "NO_RESPONSE"
		if lost == "claim" {
			if c, err := b.l.Claim(ctx, res.Address, AtMostOnce); err != nil || c.Verdict != VerdictFound {
				t.Fatalf("second claim: %+v %v", c, err)
			}
			code = CodeClaimFound
		}
		if _, err := b.l.Finish(ctx, res.Address, Outcome{State: Unknown, Code: code, Attempt: 1, Payload: []byte("p")}); err != nil {
			t.Fatal(err)
		}
		if !listed(res.Run) {
			t.Errorf("%s lost: the follow-up run is not listed for its resend", lost)
		}
	}
}
