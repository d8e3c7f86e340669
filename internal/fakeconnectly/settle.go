package fakeconnectly

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// WaitForWebhooks waits until the fake has no webhook call pending and parked, the
// receiver's count of events it holds back for a message it does not know yet, says none,
// or d passes (an error saying how many are left), or ctx is done. It checks every 50 ms.
func (s *Server) WaitForWebhooks(ctx context.Context, parked func(context.Context) (int64, error), d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		n, err := parked(ctx)
		if err != nil {
			return err
		}
		st := s.WebhookStats()
		if st.Pending == 0 && n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d webhook calls pending and %d events parked after %s", st.Pending, n, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// AcceptedSessionCallbacks returns the callbackData of every session message the fake
// answered 200 for, from its conversation record. It returns an error wrapping
// ErrNoConversations when MaxReceived is set.
func (s *Server) AcceptedSessionCallbacks() ([]json.RawMessage, error) {
	convs, err := s.Conversations()
	if err != nil {
		return nil, err
	}
	var out []json.RawMessage
	for _, cv := range convs {
		for _, m := range cv.Messages {
			if m.Kind == KindSession && m.Status == 200 {
				out = append(out, m.CallbackData)
			}
		}
	}
	return out, nil
}
