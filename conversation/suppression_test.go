package conversation_test

import (
	"context"
	"testing"

	"github.com/heraldmsg/herald/internal/ledger"
)

// TestFollowupsMarketingOnlySuppression: to a person who stopped marketing messages (Meta
// 131050), a follow-up's session message, which answers their own reply, is created with its
// task; a follow-up template of the marketing category is written skipped(suppressed) with no
// task; and an Unsubscribe (suppress: true) widens the entry to every message, its
// confirmation still going.
func TestFollowupsMarketingOnlySuppression(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	ana, bea, cid := b.rcpts[0], b.rcpts[1], b.rcpts[2]
	for _, r := range []string{ana, bea, cid} {
		if err := b.l.Suppress(ctx, r, "131050"); err != nil {
			t.Fatal(err)
		}
	}
	taskOf := func(rule, to string) int {
		return len(b.tasks.tasks[b.taskID(ledger.FollowupRun(b.run.ID, rule), to)])
	}

	out, err := b.fu.Reply(ctx, b.tap(ana, "Yes, show me"))
	if err != nil || !out.Created || out.Verdict != ledger.FollowupCreated || taskOf("interested", ana) != 1 {
		t.Fatalf("session follow-up to a person who stopped marketing: %+v, %v, %d tasks; want created with its task",
			out, err, taskOf("interested", ana))
	}

	// The campaign's template category (marketing) is the follow-up template's.
	out, err = b.fu.Reply(ctx, b.tap(bea, "Not now"))
	if err != nil || out.Verdict != ledger.FollowupSkipped || taskOf("later", bea) != 0 {
		t.Fatalf("marketing template follow-up: %+v, %v, %d tasks; want skipped with no task", out, err, taskOf("later", bea))
	}
	e, ok, err := b.l.Entry(ctx, ledger.FollowupAddress(b.run.ID, "later", bea, b.run.Buckets))
	if err != nil || !ok || e.State != ledger.Skipped || e.Code != ledger.SkipSuppressed {
		t.Fatalf("marketing template follow-up entry %+v (%v, %v), want skipped(%s)", e, ok, err, ledger.SkipSuppressed)
	}

	if _, err := b.fu.Reply(ctx, b.tap(cid, "Unsubscribe")); err != nil {
		t.Fatal(err)
	}
	if taskOf("unsubscribe", cid) != 1 {
		t.Fatal("no confirmation task")
	}
	ss, err := b.l.Suppressions(ctx, []string{cid})
	if err != nil || ss[0].Scope != ledger.ScopeAll || ss[0].Reason != "ON_REPLY" {
		t.Fatalf("after Unsubscribe: %+v, %v; want every message (ON_REPLY)", ss, err)
	}
}
