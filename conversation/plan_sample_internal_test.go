package conversation

import (
	"maps"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// The reply plan shows a follow-up for has the fields campaigns.Plan renders it with for
// every row (ReplyRule.SampleReplyFields): both render the same follow-up.
func TestSampleReplyFields(t *testing.T) {
	t.Parallel()
	for _, rule := range []campaigns.ReplyRule{
		{Button: campaigns.Words{"Yes, please", "Sure"}},
		{ListRow: campaigns.Words{"row-2"}},
		{Keyword: campaigns.Words{"coupon"}},
		{Any: true},
	} {
		if got, want := ReplyColumns(sampleReply(&rule)), rule.SampleReplyFields(); !maps.Equal(got, want) {
			t.Errorf("rule %+v: plan's reply has fields %q, Plan renders with %q", rule, got, want)
		}
	}
}
