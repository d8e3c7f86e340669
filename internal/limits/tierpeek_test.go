package limits

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/servicewindow"
)

// TestPeekTierAgreesWithReserve: a preview of the daily tier (PeekTier) finds a recipient in
// an open customer service window exactly when a reservation of the same send would: the
// same windows count for the sender under the policy (its number's, and one recorded with no
// number only when the policy counts it), and one closing within the margin counts as closed.
func TestPeekTierAgreesWithReserve(t *testing.T) {
	const biz, s1, s2 = "biz", "+14155550100", "+14155550101"
	now := t0
	margin := servicewindow.DefaultMargin
	// Recipients, each with what they wrote (to which number, how long ago).
	type wrote struct {
		to  string
		ago time.Duration
	}
	people := map[string][]wrote{
		"+15550000001": {{s1, time.Hour}},
		"+15550000002": {{s2, time.Hour}},
		"+15550000003": {{"", time.Hour}},
		"+15550000004": {{s1, servicewindow.Length - time.Minute}}, // closes within the margin
		"+15550000005": nil,
	}
	var recipients []string
	for i := 1; i <= len(people); i++ {
		recipients = append(recipients, fmt.Sprintf("+1555000000%d", i))
	}
	for _, tc := range []struct {
		name   string
		policy servicewindow.Policy
		sender string
		want   []bool // in a window, per recipient
	}{
		{"own number", servicewindow.Policy{Senders: []string{s1, s2}}, s1, []bool{true, false, false, false, false}},
		{"other number", servicewindow.Policy{Senders: []string{s1, s2}}, s2, []bool{false, true, false, false, false}},
		{"unnamed counts for the business", servicewindow.Policy{Scope: servicewindow.ScopeBusiness, Senders: []string{s1, s2}}, s1,
			[]bool{true, false, true, false, false}},
		// Every window is recorded with no number then, and counts for the send.
		{"no numbers known", servicewindow.Policy{}, "", []bool{true, true, true, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t)
			ctx := context.Background()
			tracker := servicewindow.New(b.rdb, func() time.Time { return now })
			tracker.SetPolicy(tc.policy)
			for to, ws := range people {
				for _, w := range ws {
					if _, err := tracker.TouchTo(ctx, biz, w.to, []string{to}, now.Add(-w.ago)); err != nil {
						t.Fatal(err)
					}
				}
			}
			s := NewSends(b.lim, Config{BusinessID: biz, DailyTier: 10, PairInterval: -1, Adaptive: Policy{Period: -1}})
			// The last recipient, who never wrote, is in the tier already.
			last := len(recipients) - 1
			if bk, err := s.Reserve(ctx, Intention{Run: "r0", Recipient: recipients[last]}, now.Add(-time.Hour)); err != nil || !bk.TierAdded {
				t.Fatalf("first send: %+v, %v", bk, err)
			}
			got, err := b.lim.PeekTier(ctx, TierCheck{Business: biz, Sender: tc.sender, Recipients: recipients, Period: 24 * time.Hour,
				WindowPolicy: tc.policy, WindowMargin: margin, Now: now})
			if err != nil || len(got) != len(recipients) {
				t.Fatalf("PeekTier: %v, %v", got, err)
			}
			for i, to := range recipients {
				bk, err := s.Reserve(ctx, Intention{Sender: tc.sender, Run: "r1", Recipient: to, WindowPolicy: tc.policy,
					WindowMargin: margin}, now)
				if err != nil || !bk.OK {
					t.Fatalf("%s: reservation %+v, %v", to, bk.Reservation, err)
				}
				if got[i].InWindow != tc.want[i] || bk.InWindow != tc.want[i] {
					t.Errorf("%s: preview in a window %t, reservation %t; want %t", to, got[i].InWindow, bk.InWindow, tc.want[i])
				}
				if got[i].InTier != (i == last) || got[i].New() != (i != last && !tc.want[i]) {
					t.Errorf("%s: preview %+v; in the tier %t", to, got[i], i == last)
				}
			}
		})
	}
}
