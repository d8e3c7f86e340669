package conversation_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
)

func TestColumnsSaveLoad(t *testing.T) {
	t.Parallel()
	m, rdb, outage := testredis.MiniOutage(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m.SetTime(now)
	ctx := context.Background()
	cols := conversation.NewColumns(rdb)
	expire := now.Add(72 * time.Hour)

	ana := map[string]string{"first_name": "Ana", "coupon code": `SPRING "20"`, "city": ""}
	if err := cols.Save(ctx, ledger.Address{Run: "R1", Bucket: 3, Recipient: "+15550000001"}, ana, expire); err != nil {
		t.Fatal(err)
	}
	if err := cols.Save(ctx, ledger.Address{Run: "R1", Bucket: 3, Recipient: "bsuid:US.abc"}, map[string]string{"city": "Porto", "coupon code": "X", "first_name": "Bea"}, expire); err != nil {
		t.Fatal(err)
	}
	got, err := cols.Load(ctx, ledger.Address{Run: "R1", Bucket: 3, Recipient: "+15550000001"})
	if err != nil || len(got) != 3 || got["first_name"] != "Ana" || got["coupon code"] != `SPRING "20"` || got["city"] != "" {
		t.Fatalf("load %v %v", got, err)
	}
	if got, err := cols.Load(ctx, ledger.Address{Run: "R1", Bucket: 3, Recipient: "bsuid:US.abc"}); err != nil || got["first_name"] != "Bea" {
		t.Fatalf("load by BSUID %v %v", got, err)
	}
	// The field is the phone's digits, as in the index and the ledger.
	if v := m.HGet(rkeys.ReplyColumns("R1", 3), "15550000001"); v != `["","SPRING \"20\"","Ana"]` {
		t.Fatalf("stored %q", v)
	}
	if ttl := m.TTL(rkeys.ReplyColumns("R1", 3)); ttl != 72*time.Hour {
		t.Fatalf("ttl %v", ttl)
	}
	// Nothing stored: another recipient, another run, or empty columns.
	for _, tc := range []struct{ run, to string }{{"R1", "+15550000009"}, {"R2", "+15550000001"}} {
		if got, err := cols.Load(ctx, ledger.Address{Run: tc.run, Bucket: 3, Recipient: tc.to}); err != nil || got != nil {
			t.Fatalf("%s %s: %v %v", tc.run, tc.to, got, err)
		}
	}
	if err := cols.Save(ctx, ledger.Address{Run: "R3", Bucket: 0, Recipient: "+15550000001"}, nil, expire); err != nil || m.Exists(rkeys.ReplyColumns("R3", 0)) {
		t.Fatalf("empty columns stored something (%v)", err)
	}
	if err := cols.Save(ctx, ledger.Address{Run: "R1", Bucket: 0, Recipient: ""}, ana, expire); !errors.Is(err, conversation.ErrNoRecipient) {
		t.Fatalf("no recipient: %v", err)
	}
	// Values written under other names than the header's read as missing, not shifted.
	m.HSet(rkeys.ReplyColumns("R1", 3), "15550000002", `["x"]`)
	if got, err := cols.Load(ctx, ledger.Address{Run: "R1", Bucket: 3, Recipient: "+15550000002"}); err != nil || got != nil {
		t.Fatalf("mismatched row: %v %v", got, err)
	}
	// Expired with the run's on_reply.until and its margin.
	m.FastForward(72*time.Hour + time.Second)
	if got, err := cols.Load(ctx, ledger.Address{Run: "R1", Bucket: 3, Recipient: "+15550000001"}); err != nil || got != nil {
		t.Fatalf("after expiry: %v %v", got, err)
	}
	// A Redis failure is an error (the webhook is answered 503 and comes again). The Outage is
	// cut, not the miniredis closed: that would free its port for another test process's server.
	outage.Cut()
	if _, err := cols.Load(ctx, ledger.Address{Run: "R1", Bucket: 3, Recipient: "+15550000001"}); err == nil {
		t.Fatal("load from a closed Redis: no error")
	}
}

// The worker's OnSending hook records a send of a campaign with on_reply in the index and
// stores the columns it carries; a follow-up's send and a campaign without rules store none.
func TestSendRecorder(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	cols := conversation.NewColumns(b.rdb)
	rec := conversation.SendRecorder(b.resolve, b.fu.Index(), cols)
	ana, bea := b.rcpts[0], b.rcpts[1]
	for _, p := range []campaigns.SendPayload{
		{Run: b.run.ID, To: ana, Bucket: ledger.BucketOf(ana, b.run.Buckets), ReplyCols: map[string]string{"first_name": "ana"}},
		{Run: ledger.FollowupRun(b.run.ID, "later"), To: bea, Bucket: 0, ReplyCols: map[string]string{"first_name": "bea"}},
		{Run: "other-run", To: bea, ReplyCols: map[string]string{"first_name": "bea"}},
	} {
		if err := rec(ctx, p); err != nil {
			t.Fatalf("record %s: %v", p.Run, err)
		}
	}
	got, err := cols.Load(ctx, ledger.Address{Run: b.run.ID, Bucket: ledger.BucketOf(ana, b.run.Buckets), Recipient: ana})
	if err != nil || got["first_name"] != "ana" {
		t.Fatalf("ana's columns %v %v", got, err)
	}
	until := b.clock.t.Add(72 * time.Hour)
	if ttl := b.m.TTL(rkeys.ReplyColumns(b.run.ID, ledger.BucketOf(ana, b.run.Buckets))); ttl != until.Add(conversation.ColumnsMargin).Sub(b.clock.t) {
		t.Fatalf("ttl %v", ttl)
	}
	for _, run := range []string{b.run.ID, ledger.FollowupRun(b.run.ID, "later"), "other-run"} {
		if got, _ := cols.Load(ctx, ledger.Address{Run: run, Bucket: 0, Recipient: bea}); got != nil {
			t.Fatalf("bea's columns stored under %s: %v", run, got)
		}
	}
	// Both sends to the campaign's run joined the index.
	for _, to := range []string{ana, bea} {
		e, ok, err := b.fu.Index().Join(ctx, conversation.Reply{From: webhooks.Customer{Phone: to}})
		if err != nil || !ok || e.Run != b.run.ID {
			t.Fatalf("join of %s: %+v %v %v", to, e, ok, err)
		}
	}
}

// A follow-up renders the recipient's own columns, stored at the run's send; a reply to a
// follow-up reads the run's; a recipient with nothing stored gets an empty column (here the
// rule's default).
func TestFollowupsReadStoredColumns(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	ana, bea, cid := b.rcpts[0], b.rcpts[1], b.rcpts[2]
	if got := b.def.OnReply.Columns(); len(got) != 1 || got[0] != "first_name" {
		t.Fatalf("columns %v", got)
	}
	rec := conversation.SendRecorder(b.resolve, b.fu.Index(), conversation.NewColumns(b.rdb))
	for to, name := range map[string]string{ana: "Ana", cid: "Cid"} {
		if err := rec(ctx, campaigns.SendPayload{Run: b.run.ID, To: to, Bucket: ledger.BucketOf(to, b.run.Buckets),
			ReplyCols: map[string]string{"first_name": name}}); err != nil {
			t.Fatal(err)
		}
	}
	body := func(to string) string {
		t.Helper()
		task := b.tasks.tasks[b.taskID(ledger.FollowupRun(b.run.ID, "later"), to)]
		if len(task) != 1 {
			t.Fatalf("%d tasks for %s", len(task), to)
		}
		p, err := campaigns.DecodeSend(task[0].Payload)
		if err != nil || len(p.Params) != 1 {
			t.Fatalf("payload %+v %v", p, err)
		}
		if p.ReplyCols != nil {
			t.Fatalf("a follow-up's payload carries columns: %v", p.ReplyCols)
		}
		return p.Params[0].Value
	}
	if _, err := b.fu.Reply(ctx, b.tap(ana, "Not now")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.fu.Reply(ctx, b.tap(bea, "Not now")); err != nil {
		t.Fatal(err)
	}
	// Cid answers the follow-up he was sent (its callbackData names the follow-up run).
	reply := b.tap(cid, "Not now")
	fa := ledger.FollowupAddress(b.run.ID, "interested", cid, b.run.Buckets)
	reply.Callback = &fa
	if out, err := b.fu.Reply(ctx, reply); err != nil || out.Rule != "later" || !out.Created {
		t.Fatalf("reply to a follow-up: %+v %v", out, err)
	}
	if got := body(ana); got != "Ana" {
		t.Errorf("ana's follow-up says %q", got)
	}
	if got := body(bea); got != "there" {
		t.Errorf("bea's follow-up (no stored columns) says %q", got)
	}
	if got := body(cid); got != "Cid" {
		t.Errorf("cid's follow-up to a follow-up says %q", got)
	}
}
