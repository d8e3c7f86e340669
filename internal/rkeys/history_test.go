package rkeys_test

import (
	"testing"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// TestConversationKey pins the key of a recipient's replies and keeps it in its run's slot,
// whatever the run id or the recipient holds (a BSUID may hold braces).
func TestConversationKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		run, recipient, want string
	}{
		{"R1", "+15550001", "herald:run:{R1}:conv:+15550001"},
		{"R1", "bsuid:US.123", "herald:run:{R1}:conv:bsuid:US.123"},
		{"r:with:colons", "bsuid:{odd}", "herald:run:{r:with:colons}:conv:bsuid:{odd}"},
	} {
		got := rkeys.Conversation(tc.run, tc.recipient)
		if got != tc.want {
			t.Errorf("Conversation(%q, %q) = %q, want %q", tc.run, tc.recipient, got, tc.want)
		}
		if tag := rkeys.HashTag(got); tag != tc.run {
			t.Errorf("%q hashes on %q, want the run id %q", got, tag, tc.run)
		}
	}
}
