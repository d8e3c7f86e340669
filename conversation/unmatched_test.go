package conversation_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// A reply within on_reply.until that matches none of the run's rules is counted, once however
// many copies of its webhook come, as outcome "unmatched" with rule "" (the receiver counts it
// only as a reply), and logged at debug level without its text. An opt-out that matches no
// rule is the receiver's to count (verdict opt_out), not this.
func TestReplyMatchingNoRuleIsCounted(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	fu, m, logs := b.observed(t)
	tap := b.tap(b.rcpts[0], "Maybe later")
	tap.MessageID = "wamid.ana-maybe"
	for range 3 {
		out, err := fu.Reply(ctx, tap)
		if err != nil || out.Rule != "" || out.Created || out.Entry.Run != b.run.ID {
			t.Fatalf("unmatched tap: %+v, %v", out, err)
		}
	}
	text := conversation.Reply{Kind: webhooks.ReplyText, From: webhooks.Customer{Phone: b.rcpts[1]}, At: b.clock.t,
		Callback: tap.Callback, Text: "who is this, my number is 4155550123?", MessageID: "wamid.bea-who"}
	cb := *tap.Callback
	cb.Recipient = b.rcpts[1]
	text.Callback = &cb
	if _, err := fu.Reply(ctx, text); err != nil {
		t.Fatal(err)
	}
	stop := b.tap(b.rcpts[2], "Yes, show me")
	stop.OptOut, stop.MessageID = true, "wamid.cid-stop"
	if _, err := fu.Reply(ctx, stop); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.Replies.WithLabelValues("promo", "", "unmatched", conversation.ViaCallback)); got != 2 {
		t.Errorf("unmatched: %g, want 2 (the tap once, the text; not the opt-out)", got)
	}
	if n := testutil.CollectAndCount(m.Replies); n != 1 {
		t.Errorf("%d series, want only the unmatched one", n)
	}
	if n := strings.Count(logs.String(), "matched no on_reply rule"); n != 2 {
		t.Errorf("logged %d times, want twice:\n%s", n, logs)
	}
	for _, secret := range []string{"Maybe later", "who is this", "4155550123", b.rcpts[0], b.rcpts[1]} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
}
