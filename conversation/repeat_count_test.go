package conversation_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heraldmsg/herald/conversation"
)

// Connectly may deliver one webhook several times (reference 5.3). The reply metric counts
// replies, not copies: one tap delivered five times is matched once (and creates one
// follow-up), one late tap delivered three times is late once.
func TestFollowupMetricsCountAReplyOnceWhateverItsCopies(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	fu, m, _ := b.observed(t)
	tap := b.tap(b.rcpts[0], "Not now")
	tap.MessageID = "wamid.ana-1"
	for range 5 {
		if _, err := fu.Reply(ctx, tap); err != nil {
			t.Fatal(err)
		}
	}
	for outcome, want := range map[string]float64{"matched": 1, "created": 1} {
		if got := testutil.ToFloat64(m.Replies.WithLabelValues("promo", "later", outcome, conversation.ViaCallback)); got != want {
			t.Errorf("%s: %g, want %g", outcome, got, want)
		}
	}

	b.clock.t = b.clock.t.Add(73 * time.Hour) // past on_reply.until (72h)
	late := b.tap(b.rcpts[1], "Not now")
	late.MessageID = "wamid.bea-1"
	for range 3 {
		out, err := fu.Reply(ctx, late)
		if err != nil || !out.Late {
			t.Fatalf("late tap: %+v, %v", out, err)
		}
	}
	if got := testutil.ToFloat64(m.Replies.WithLabelValues("promo", "", "late", conversation.ViaCallback)); got != 1 {
		t.Errorf("late: %g, want 1", got)
	}
}
