package fakeconnectly

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// AcceptedSessionCallbacks lists the callbackData of session sends answered 200 only: not
// templates, not sends refused for a closed window.
func TestAcceptedSessionCallbacks(t *testing.T) {
	t.Parallel()
	s, base := newFake(t, Config{RateLimit: -1})
	const a, b = "+15550300001", "+15550300002"
	sendTemplateTo(t, base, a, "spring")
	if err := s.OpenWindow(a, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if r := sendFollowUp(t, base, a, "one"); r.status != 200 {
		t.Fatalf("follow-up in window: %d %s", r.status, r.body)
	}
	if r := sendFollowUp(t, base, b, "two"); r.status != 400 {
		t.Fatalf("follow-up without a window: %d %s", r.status, r.body)
	}
	cbs, err := s.AcceptedSessionCallbacks()
	if err != nil || len(cbs) != 1 || !strings.Contains(string(cbs[0]), `"step":"one"`) {
		t.Fatalf("callbacks %s, %v; want the one accepted follow-up's", cbs, err)
	}
	kept, _ := newFake(t, Config{RateLimit: -1, MaxReceived: 10})
	if _, err := kept.AcceptedSessionCallbacks(); !errors.Is(err, ErrNoConversations) {
		t.Fatalf("a fake keeping no conversations: %v", err)
	}
}

// WaitForWebhooks returns once nothing is parked, and says how much is left when its time
// runs out.
func TestWaitForWebhooks(t *testing.T) {
	t.Parallel()
	s, _ := newFake(t, Config{RateLimit: -1})
	ctx := context.Background()
	left := int64(2)
	parked := func(context.Context) (int64, error) { left = max(0, left-1); return left, nil }
	if err := s.WaitForWebhooks(ctx, parked, time.Minute); err != nil || left != 0 {
		t.Fatalf("parked events drain: %v, %d left", err, left)
	}
	stuck := func(context.Context) (int64, error) { return 3, nil }
	if err := s.WaitForWebhooks(ctx, stuck, 0); err == nil || err.Error() != "0 webhook calls pending and 3 events parked after 0s" {
		t.Fatalf("stuck: %v", err)
	}
	boom := errors.New("boom")
	if err := s.WaitForWebhooks(ctx, func(context.Context) (int64, error) { return 0, boom }, time.Minute); !errors.Is(err, boom) {
		t.Fatalf("a receiver that cannot be read: %v", err)
	}
}
