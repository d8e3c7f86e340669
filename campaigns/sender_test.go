package campaigns_test

import (
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
)

// TestUnlistedSender: a warning only when the config lists senders and the campaign names
// another, at the sender field's place.
func TestUnlistedSender(t *testing.T) {
	t.Parallel()
	d := planFile(t, "sender: \"+14155550199\"\n")
	listed := []config.Sender{{Number: "+14155550100"}, {Number: "+14155550101"}}
	if got := campaigns.UnlistedSender(d, listed); !strings.HasPrefix(got, d.Path+":4:9: sender: not one of the config's senders (2 listed)") {
		t.Fatalf("unlisted sender: %q", got)
	}
	for name, senders := range map[string][]config.Sender{"NoneConfigured": nil, "Listed": append(listed, config.Sender{Number: "+14155550199"})} {
		if got := campaigns.UnlistedSender(d, senders); got != "" {
			t.Errorf("%s: %q, want no warning", name, got)
		}
	}
	if got := campaigns.UnlistedSender(planFile(t, ""), listed); got != "" {
		t.Errorf("no sender named: %q, want no warning", got)
	}
}
