package report_test

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
)

// Callbacks count for the rule of the run's follow-up they name; others are passed over.
func TestCountFollowups(t *testing.T) {
	t.Parallel()
	cb := func(a ledger.Address) json.RawMessage {
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	callbacks := []json.RawMessage{
		cb(ledger.FollowupAddress("promo-1", "interested", "+15550000001", 1)),
		cb(ledger.FollowupAddress("promo-1", "interested", "+15550000002", 1)),
		cb(ledger.FollowupAddress("promo-1", "price", "+15550000001", 1)),
		cb(ledger.FollowupAddress("promo-2", "price", "+15550000001", 1)), // another run's
		cb(ledger.AddressIn("promo-1", "+15550000003", 1)),                // the run's own send
		json.RawMessage(`{"step":"x"}`),
		nil,
	}
	got := report.CountFollowups("promo-1", callbacks)
	if want := map[string]int64{"interested": 2, "price": 1}; !maps.Equal(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
}

// A funnel is settled when no rule has a follow-up pending.
func TestFunnelSettled(t *testing.T) {
	t.Parallel()
	f := &report.Funnel{Rules: []report.FunnelRule{{Rule: "a", Created: 3, Pending: 1}, {Rule: "b", Created: 2}}}
	if created, done := f.Settled(); created != 5 || done {
		t.Fatalf("one pending: %d, %v", created, done)
	}
	f.Rules[0].Pending = 0
	if created, done := f.Settled(); created != 5 || !done {
		t.Fatalf("none pending: %d, %v", created, done)
	}
}
