package conversation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/webhooks"
)

func TestForeignCallback(t *testing.T) {
	t.Parallel()
	const bsuid = "US.13491208655302741918"
	for _, tc := range []struct {
		name string
		to   string
		from webhooks.Customer
		want bool
	}{
		{"SamePhone", "+14155559901", webhooks.Customer{Phone: "+14155559901"}, false},
		{"SamePhoneWrittenOtherwise", "+14155559901", webhooks.Customer{Phone: "+1 415-555-9901"}, false},
		{"OtherPhone", "+14155559901", webhooks.Customer{Phone: "+14155559902"}, true},
		{"OtherPhoneWithABSUID", "+14155559901", webhooks.Customer{Phone: "+14155559902", BSUID: bsuid}, true},
		// reference 6: a customer who hides their number writes with their BSUID alone.
		{"BSUIDOnlySenderOfAMessageSentToTheirPhone", "+14155559901", webhooks.Customer{BSUID: bsuid}, false},
		{"SameBSUID", "bsuid:" + bsuid, webhooks.Customer{BSUID: bsuid}, false},
		{"SameBSUIDWithAPhone", "bsuid:" + bsuid, webhooks.Customer{Phone: "+14155559901", BSUID: bsuid}, false},
		{"OtherBSUID", "bsuid:" + bsuid, webhooks.Customer{BSUID: "US.99999999999999999999"}, true},
		{"PhoneOnlySenderOfAMessageSentToTheirBSUID", "bsuid:" + bsuid, webhooks.Customer{Phone: "+14155559901"}, false},
		{"NoSender", "+14155559901", webhooks.Customer{}, false},
		{"RecipientOfNeitherForm", "someone", webhooks.Customer{Phone: "+14155559902"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cb := ledger.Address{Run: "promo-1", Recipient: tc.to}
			if got := conversation.ForeignCallback(conversation.Reply{From: tc.from, Callback: &cb}); got != tc.want {
				t.Errorf("ForeignCallback = %v, want %v", got, tc.want)
			}
		})
	}
	if conversation.ForeignCallback(conversation.Reply{From: webhooks.Customer{Phone: "+1"}}) {
		t.Error("a reply without callbackData has a foreign one")
	}
}

// Customer Y sends a tap whose callbackData names customer X of the run. The customer is the
// webhook's sender (reference 5.4): X, who wrote nothing, gets no follow-up; Y's tap joins Y's
// own run entry, as a reply without callbackData would.
func TestForeignCallbackIsNotTrustedForTheJoin(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	fu, m, logs := b.observed(t)
	x, y, stranger := b.rcpts[0], b.rcpts[1], "+15550000099"
	xcb := ledger.AddressIn(b.run.ID, x, b.run.Buckets)

	// A stranger (in no run) taps with X's callbackData: joined nowhere, nothing for X.
	for range 2 {
		out, err := fu.Reply(ctx, conversation.Reply{Kind: webhooks.ReplyButton, From: webhooks.Customer{Phone: stranger},
			At: b.clock.t, Callback: &xcb, ButtonText: "Not now", MessageID: "wamid.stranger-1"})
		if err != nil || !out.ForeignCallback || out.Entry.Run != "" || out.Created {
			t.Fatalf("stranger's tap: %+v, %v", out, err)
		}
	}
	if _, ok, _ := b.l.Entry(ctx, ledger.FollowupAddress(b.run.ID, "later", x, b.run.Buckets)); ok {
		t.Fatal("a follow-up entry for the customer the callbackData names")
	}
	if got := b.followupTasks("later", x, b.run.ID); got[0] != 0 {
		t.Fatal("a follow-up task for the customer the callbackData names")
	}
	if got := testutil.ToFloat64(m.Replies.WithLabelValues("promo", "", "foreign_callback", "none")); got != 1 {
		t.Errorf("foreign_callback: %g, want 1 (once for two copies)", got)
	}
	if n := strings.Count(logs.String(), "another customer than its sender"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), x) || strings.Contains(logs.String(), stranger) {
		t.Errorf("a full phone number in the log:\n%s", logs)
	}

	// Y, messaged by the run (in the index of recent sends), taps with X's callbackData: the
	// tap joins Y's entry and Y gets the follow-up.
	ya := ledger.AddressIn(b.run.ID, y, b.run.Buckets)
	if err := fu.Index().Record(ctx, b.run.ID, ya.Bucket, y, b.clock.t.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	out, err := fu.Reply(ctx, conversation.Reply{Kind: webhooks.ReplyButton, From: webhooks.Customer{Phone: y}, At: b.clock.t,
		Callback: &xcb, ButtonText: "Not now", MessageID: "wamid.y-1"})
	if err != nil || !out.ForeignCallback || out.Entry.Recipient != y || out.Entry.Via != conversation.ViaRecent || !out.Created {
		t.Fatalf("Y's tap with X's callbackData: %+v, %v", out, err)
	}
	if got := b.followupTasks("later", y, b.run.ID); got[0] != 1 {
		t.Fatal("no follow-up for Y")
	}
	if got := b.followupTasks("later", x, b.run.ID); got[0] != 0 {
		t.Fatal("a follow-up for X")
	}
	if got := testutil.ToFloat64(m.Replies.WithLabelValues("promo", "", "foreign_callback", conversation.ViaRecent)); got != 1 {
		t.Errorf("foreign_callback via recent: %g, want 1", got)
	}
}

// A customer known to the webhook only by their BSUID (they hid their number) taps a message
// Herald sent to their phone: nothing contradicts the callbackData, which joins as ever.
func TestBSUIDOnlySenderJoinsTheCallbackOfTheirPhone(t *testing.T) {
	t.Parallel()
	b := setupFollowups(t)
	ctx := context.Background()
	x := b.rcpts[0]
	xcb := ledger.AddressIn(b.run.ID, x, b.run.Buckets)
	out, err := b.fu.Reply(ctx, conversation.Reply{Kind: webhooks.ReplyButton, From: webhooks.Customer{BSUID: "US.13491208655302741918"},
		At: b.clock.t, Callback: &xcb, ButtonText: "Not now", MessageID: "wamid.x-1"})
	if err != nil || out.ForeignCallback || out.Entry.Via != conversation.ViaCallback || out.Entry.Recipient != x || !out.Created {
		t.Fatalf("BSUID-only tap: %+v, %v", out, err)
	}
}
