package ledger

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

func TestAddress(t *testing.T) {
	t.Parallel()

	t.Run("CallbackIsTheWireFormat", func(t *testing.T) {
		t.Parallel()
		// The callbackData of every message sent so far: a change here strands their webhooks.
		a := Address{Run: "spring-20260101T000000Z-a1b2c3", Recipient: "+5511987654321", Bucket: 12}
		wantEqual(t, "callback", `{"herald_run":"spring-20260101T000000Z-a1b2c3","herald_to":"+5511987654321","herald_b":12}`,
			string(a.Callback()))
		back, ok := ParseCallback(a.Callback())
		if !ok || back != a {
			t.Fatalf("ParseCallback(Callback()) = %+v, %v", back, ok)
		}
	})

	t.Run("AddressInUsesTheRunsBuckets", func(t *testing.T) {
		t.Parallel()
		a := AddressIn("r", "bsuid:US.13491208655302741918", 64)
		wantEqual(t, "address", Address{Run: "r", Recipient: "bsuid:US.13491208655302741918", Bucket: BucketOf("bsuid:US.13491208655302741918", 64)}, a)
	})

	t.Run("ParseCallback", func(t *testing.T) {
		t.Parallel()
		want := Address{Run: "r1", Recipient: "+15550001111", Bucket: 3}
		for _, tc := range []struct {
			name string
			raw  string
			ok   bool
		}{
			{"Object", `{"herald_run":"r1","herald_to":"+15550001111","herald_b":3}`, true},
			{"ObjectWithSpaces", ` { "herald_b": 3, "herald_to": "+15550001111", "herald_run": "r1" } `, true},
			{"EchoedAsAString", `"{\"herald_run\":\"r1\",\"herald_to\":\"+15550001111\",\"herald_b\":3}"`, true},
			{"ExtraFieldsIgnored", `{"herald_run":"r1","herald_to":"+15550001111","herald_b":3,"x":1}`, true},
			{"Empty", ``, false},
			{"Null", `null`, false},
			{"AnotherSendersData", `{"campaign_id":"c-42","recipient_id":"r-9001"}`, false},
			{"NoBucket", `{"herald_run":"r1","herald_to":"+15550001111"}`, false},
			{"EmptyRun", `{"herald_run":"","herald_to":"+15550001111","herald_b":3}`, false},
			{"EmptyRecipient", `{"herald_run":"r1","herald_to":"","herald_b":3}`, false},
			{"NegativeBucket", `{"herald_run":"r1","herald_to":"+15550001111","herald_b":-1}`, false},
			{"HugeBucket", `{"herald_run":"r1","herald_to":"+15550001111","herald_b":16777216}`, false},
			{"BucketAsText", `{"herald_run":"r1","herald_to":"+15550001111","herald_b":"3"}`, false},
			{"NotJSON", `{"herald_run":`, false},
			{"StringOfGarbage", `"not json"`, false},
		} {
			got, ok := ParseCallback(json.RawMessage(tc.raw))
			if ok != tc.ok || (ok && got != want) {
				t.Errorf("%s: ParseCallback(%s) = %+v, %v; want ok %v", tc.name, tc.raw, got, ok, tc.ok)
			}
		}
	})
}

// TestCountReplyConcurrently sends the same reply from many goroutines at once, as two
// receiver replicas and Connectly's retries may: it is counted exactly once. Other replies
// of the same run still count.
func TestCountReplyConcurrently(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const n = 32
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		counted int
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := b.l.CountReply(ctx, Reply{Run: "r", ID: "m:01JSAME", Button: "Yes"})
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				counted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if counted != 1 {
		t.Fatalf("%d of %d copies counted, want 1", counted, n)
	}
	long := strings.Repeat("x", 100)
	for _, id := range []string{"m:01JOTHER", long, long + "y"} {
		if ok, err := b.l.CountReply(ctx, Reply{Run: "r", ID: id, Button: "No"}); err != nil || !ok {
			t.Fatalf("CountReply(%.20s...) = %v, %v; want counted", id, ok, err)
		}
	}
	d, err := b.l.DeliveryStats(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "taps", map[string]int64{"Yes": 1, "No": 3}, d.ButtonReplies)
	wantEqual(t, "replies", int64(4), d.Replies)
}
