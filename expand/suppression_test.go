package expand_test

import (
	"context"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// TestExpandMarketingOnlySuppression: expansion plans skipped(suppressed) only the rows whose
// send the recipient's entry on the suppression list stops. A person who stopped marketing
// messages (Meta 131050) gets a utility template's task and none of a marketing template's;
// an entry for every message (a STOP) stops both, and so does an entry written before scopes,
// unless its code is 131050. A session campaign's row is left to the worker (which knows
// whether the message or its fallback goes) unless the entry stops every message.
func TestExpandMarketingOnlySuppression(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const fallback = "fallback_template:\n  name: order_status\n  language: en\n  category: marketing\n" +
		"  parameters:\n    body_1: \"{{.name}}\"\n"
	for _, tc := range []struct {
		name string
		def  func(b *testBundle, csv string) *campaigns.Definition
		// skipped are the indexes (in the suppressed four) of the rows planned skipped.
		skipped []int
	}{
		{name: "Utility", skipped: []int{1, 2}, def: func(b *testBundle, csv string) *campaigns.Definition {
			def := b.campaign(t, csv, "")
			def.Template.Category = "utility"
			return def
		}},
		{name: "Authentication", skipped: []int{1, 2}, def: func(b *testBundle, csv string) *campaigns.Definition {
			def := b.campaign(t, csv, "")
			def.Template.Category = "authentication"
			return def
		}},
		{name: "Marketing", skipped: []int{0, 1, 2, 3}, def: func(b *testBundle, csv string) *campaigns.Definition {
			return b.campaign(t, csv, "")
		}},
		{name: "SessionWithMarketingFallback", skipped: []int{1, 2}, def: func(b *testBundle, csv string) *campaigns.Definition {
			return b.sessionCampaign(t, csv, fallback)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			csv, valid := audience(20)
			// valid[0] stopped marketing; valid[1] wrote STOP; valid[2] and valid[3] were put on
			// the list before scopes, for an opt-out answer and for 131050.
			for i, reason := range []string{"131050", "INBOUND_OPT_OUT"} {
				if err := b.ledger.Suppress(ctx, valid[i], reason); err != nil {
					t.Fatal(err)
				}
			}
			for i, v := range map[int]string{2: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT|1767225600000", 3: "131050|1767225600000"} {
				if err := b.rdb.HSet(ctx, rkeys.Suppressed(), valid[i], v).Err(); err != nil {
					t.Fatal(err)
				}
			}
			def := tc.def(b, csv)
			e := b.expander(nil, 5)
			run := b.createRun(t, e, def)
			if _, err := e.Expand(ctx, def, run); err != nil {
				t.Fatalf("Expand: %v", err)
			}
			skip := map[string]bool{}
			for _, i := range tc.skipped {
				skip[valid[i]] = true
			}
			var sent []string
			for _, r := range valid {
				if !skip[r] {
					sent = append(sent, r)
				}
			}
			b.checkConsistent(t, run.ID, 20, sent)
			wantEqual(t, "suppressed", int64(len(tc.skipped)), b.counters(t, run.ID).Codes["skipped:suppressed"])
		})
	}
}
