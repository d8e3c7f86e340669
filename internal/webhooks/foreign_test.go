package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
)

// A reply whose callbackData names another customer than its sender (ForeignCallback) is
// counted as a reply without callbackData: not in the run the callbackData names, whose
// customer tapped nothing, but in the run replyRun finds for the sender, if any.
func TestReceiverForeignCallbackCountedAsWithout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, Config{})
	const x, y, stranger = "+15550000001", "+15550000002", "+15550000077"
	const bsuid = "US.13491208655302741918"
	seedAccepted(t, b, "run-old", []string{y}, []string{ulidAt(testNow, 2)})
	b.now = testNow.Add(time.Minute)
	buckets := seedAccepted(t, b, "run-new", []string{x}, []string{ulidAt(b.now, 1)})
	xcb := ledger.Address{Run: "run-new", Recipient: x, Bucket: buckets[x]}
	body := func(sender map[string]any, text string, button bool) []byte {
		m := map[string]any{
			"timestamp":    fmt.Sprint(testNow.Unix()),
			"sender":       sender,
			"recipient":    map[string]any{"id": "+14155550100", "channelType": "whatsapp"},
			"callbackData": xcb,
		}
		if button {
			m["buttonResponse"] = map[string]any{"text": text, "payload": text}
		} else {
			m["message"] = map[string]any{"text": text}
		}
		out, _ := json.Marshal(m)
		return out
	}
	phone := func(p string) map[string]any { return map[string]any{"id": p, "channelType": "whatsapp"} }
	for _, tc := range []struct {
		name string
		body []byte
	}{
		// Counted in run-new, which the callbackData names.
		{"OwnTap", body(phone(x), "Yes", true)},
		{"BSUIDOnlySender", body(map[string]any{"id": bsuid, "userId": bsuid, "phoneNumber": ""}, "Yes", true)},
		// Foreign: Y's tap counts in the newest run that sent to Y (run-old), the stranger's
		// and Y's quoted text (no run joined it) nowhere.
		{"OtherCustomersTap", body(phone(y), "Yes", true)},
		{"StrangersTap", body(phone(stranger), "Yes", true)},
		{"OtherCustomersQuotedText", body(phone(y), "is this for me?", false)},
	} {
		if w := post(t, b, tc.body, testSecret); w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.name, w.Code, w.Body)
		}
	}
	for run, want := range map[string]int64{"run-new": 2, "run-old": 1} {
		d, err := b.l.DeliveryStats(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		if wantButtons := map[string]int64{"Yes": want}; d.Replies != want || !maps.Equal(d.ButtonReplies, wantButtons) {
			t.Errorf("%s: %d replies, buttons %v; want %d, %v", run, d.Replies, d.ButtonReplies, want, wantButtons)
		}
	}
}
