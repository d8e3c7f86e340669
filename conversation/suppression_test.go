package conversation_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/webhooks"
	"github.com/rs/zerolog"
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

// TestUnsubscribeButtonConfirmsThroughTheReceiver: a tap on the campaign's Unsubscribe
// button, an opt-out word, reaches the rule with suppress: true through the webhook receiver,
// which suppressed the customer first: the rule's confirmation is created once, however
// often the webhook comes. An opt-out that matches a rule without suppress: true triggers
// nothing.
func TestUnsubscribeButtonConfirmsThroughTheReceiver(t *testing.T) {
	t.Parallel()
	const secret = "whsec-test"
	b := setupFollowups(t)
	ctx := context.Background()
	cid := b.rcpts[2]
	cb := ledger.AddressIn(b.run.ID, cid, b.run.Buckets)
	body := fmt.Appendf(nil, `{"timestamp":"%d","sender":{"id":%q,"channelType":"whatsapp"},"context":{"replyToId":"wamid.promo"},`+
		`"buttonResponse":{"text":"Unsubscribe","payload":"unsub"},"callbackData":%s}`, b.clock.t.Unix(), cid, cb.Callback())
	rc, err := webhooks.New(webhooks.Config{Secrets: []string{secret}, Now: b.clock.now, Business: "biz"},
		webhooks.Deps{Redis: b.rdb, Logger: zerolog.Nop(), Replies: b.fu})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set(webhooks.SignatureHeader, webhooks.Sign(body, secret))
		w := httptest.NewRecorder()
		rc.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	sups, err := b.l.Suppressions(ctx, []string{cid})
	if err != nil || !sups[0].Blocks(false) {
		t.Fatalf("after the Unsubscribe tap: %+v, %v; want suppressed", sups, err)
	}
	if n := len(b.tasks.tasks[b.taskID(ledger.FollowupRun(b.run.ID, "unsubscribe"), cid)]); n != 1 {
		t.Fatalf("confirmation tasks: %d, want 1", n)
	}

	ana := b.rcpts[0]
	r := b.tap(ana, "Yes, show me")
	r.OptOut = true
	if out, err := b.fu.Reply(ctx, r); err != nil || out.Created || out.Rule != "" {
		t.Fatalf("an opt-out matching a rule without suppress: %+v, %v; want nothing created", out, err)
	}
	if n := len(b.tasks.tasks[b.taskID(ledger.FollowupRun(b.run.ID, "interested"), ana)]); n != 0 {
		t.Fatalf("follow-up tasks for an opt-out: %d, want none", n)
	}
}
