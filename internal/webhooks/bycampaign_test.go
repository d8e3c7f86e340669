package webhooks

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
)

// campaignStatusBody is a delivery event without callbackData, naming campaign "spring" at
// the top level (reference 5.4).
func campaignStatusBody(to, id, status string) []byte {
	return []byte(fmt.Sprintf(`{"topic":"delivery_status","timestamp":"%d","sender":{"id":"+14155550100","channelType":"whatsapp","name":null},
"recipient":{"id":%q,"channelType":"whatsapp","name":null},"metadata":{"campaign_name":"spring"},
"statusUpdate":{"id":%q,"status":%q,"error":null}}`, testNow.Unix(), to, id, status))
}

// sendInFlight plans recipient r in run and claims its entry, as a worker whose request is in
// flight has: the entry is submitting, with no message id recorded yet.
func sendInFlight(ctx context.Context, t *testing.T, b *testBundle, run, r string) (ledger.Address, map[string]int) {
	t.Helper()
	buckets := seedAccepted(t, b, run, []string{r}, nil)
	a := ledger.Address{Run: run, Bucket: buckets[r], Recipient: r}
	if _, err := b.l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	return a, buckets
}

// A delivery event without Herald's callbackData (matched by campaign name and message id) that
// arrives while its send is still being recorded is not lost: it waits like an event with
// callbackData does, and applies once the worker records the message id.
func TestEventWithoutCallbackDataDuringTheSendIsParked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, Config{})
	r := "+15550000001"
	a, buckets := sendInFlight(ctx, t, b, "run-e", r)
	id := ulidAt(testNow, 1)
	// The documented delivery-failed shape (reference 5.4): no callbackData, campaign in statusUpdate.metadata.
	body := []byte(fmt.Sprintf(`{"topic":"delivery_status","timestamp":"%d","sender":{"id":"+14155550100","channelType":"whatsapp","name":null},
"recipient":{"id":%q,"channelType":"whatsapp","name":null},"metadata":null,
"statusUpdate":{"id":%q,"status":"delivery_failed","error":{"message":"Internal server error","type":"ERROR_TYPE_UNSPECIFIED",
"code":"ERROR_CODE_UNSPECIFIED","userTitle":"Encountered unexpected error","userMessage":"x","cntTraceId":"6909023413031898817","details":{}},
"metadata":{"campaignName":"spring"}}}`, testNow.Unix(), r, id))
	if w := post(t, b, body, testSecret); w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if n, err := b.rc.Parked(ctx); err != nil || n != 1 {
		t.Fatalf("%d parked, %v; want the event parked", n, err)
	}
	// The worker now records Connectly's answer, with the same message id.
	if _, err := b.l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: id}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.rc.RetryParked(ctx); err != nil {
		t.Fatal(err)
	}
	if e := entryState(t, b, "run-e", r, buckets[r]); e.State != ledger.Failed || e.Code != "ERROR_CODE_UNSPECIFIED" {
		t.Fatalf("entry %+v: the delivery failure that arrived during the send was lost", e)
	}
}

// Parked without callbackData, the event stays matched by its message id: when the send
// records another id, the event is about another message and is dropped, the entry untouched.
func TestEventWithoutCallbackDataParkedForAnotherSendIsDropped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, Config{})
	r := "+15550000001"
	a, buckets := sendInFlight(ctx, t, b, "run-e", r)
	if w := post(t, b, campaignStatusBody(r, ulidAt(testNow, 1), StatusDelivered), testSecret); w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	own := ulidAt(testNow, 2)
	if _, err := b.l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: own}); err != nil {
		t.Fatal(err)
	}
	if done, left, err := b.rc.RetryParked(ctx); err != nil || done != 1 || left != 0 {
		t.Fatalf("RetryParked = %d, %d, %v", done, left, err)
	}
	if e := entryState(t, b, "run-e", r, buckets[r]); e.State != ledger.Accepted || e.MessageID != own {
		t.Fatalf("entry %+v: changed by an event about another message", e)
	}
}

// An entry that records the event's message id takes the event at once, even when the same
// customer's entry in a newer run of the campaign is still being sent: nothing is parked.
func TestEventWithoutCallbackDataPrefersTheEntryWithItsID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, Config{})
	r := "+15550000001"
	id := ulidAt(testNow, 1)
	old := seedAccepted(t, b, "run-old", []string{r}, []string{id})
	b.now = b.now.Add(time.Minute)
	nb := seedAccepted(t, b, "run-new", []string{r}, nil)
	if _, err := b.l.Claim(ctx, ledger.Address{Run: "run-new", Bucket: nb[r], Recipient: r}, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if w := post(t, b, campaignStatusBody(r, id, StatusDelivered), testSecret); w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if e := entryState(t, b, "run-old", r, old[r]); e.State != ledger.Delivered {
		t.Fatalf("entry with the event's id: %+v", e)
	}
	if e := entryState(t, b, "run-new", r, nb[r]); e.State != ledger.Submitting {
		t.Fatalf("entry being sent: %+v", e)
	}
	if n, err := b.rc.Parked(ctx); err != nil || n != 0 {
		t.Fatalf("%d parked, %v; want none", n, err)
	}
}

// A status for a phone-less customer (BSUID only), without callbackData, is matched by campaign.
func TestBSUIDOnlyStatusByCampaign(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	r := "bsuid:US.13491208655302741918"
	id := ulidAt(testNow, 3)
	buckets := seedAccepted(t, b, "run-b", []string{r}, []string{id})
	body := []byte(fmt.Sprintf(`{"topic":"delivery_status","timestamp":"%d","sender":{"id":"+14155550100","channelType":"whatsapp","name":null},
"recipient":{"id":"US.13491208655302741918","channelType":"whatsapp","name":null,"userId":"US.13491208655302741918","phoneNumber":""},"metadata":{"campaign_name":"spring"},
"statusUpdate":{"id":%q,"status":"delivered","error":null}}`, testNow.Unix(), id))
	if w := post(t, b, body, testSecret); w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if e := entryState(t, b, "run-b", r, buckets[r]); e.State != ledger.Delivered {
		t.Fatalf("entry %+v", e)
	}
}
