package ledger

import (
	"context"
	"strings"
	"testing"
)

// TestNewClaimTokenIsValidAndFresh: every token is one ClaimWith takes, and tokens do not
// repeat (one attempt's token must not be taken for another's).
func TestNewClaimTokenIsValidAndFresh(t *testing.T) {
	seen := map[string]bool{}
	for range 10_000 {
		tok := NewClaimToken()
		if !validToken(tok) || len(tok) != 12 {
			t.Fatalf("token %q is not a valid 12-character token", tok)
		}
		if seen[tok] {
			t.Fatalf("token %q came twice", tok)
		}
		seen[tok] = true
	}
}

// TestAMalformedClaimTokenIsRefused: a token sits where a message id goes, last in the entry:
// one that could read as a packed message id, or none at all, is refused before Redis, and
// the entry is left as it was.
func TestAMalformedClaimTokenIsRefused(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	es := seedRun(t, b, "run-tok", AtMostOnce, recipients(1), true)
	a := Address{Run: "run-tok", Bucket: es[0].Bucket, Recipient: es[0].Recipient}
	for _, tok := range []string{"", "a|b", "\xff0123456789abcdef", strings.Repeat("a", 33), "tok en"} {
		if _, err := b.l.ClaimWith(ctx, a, AtMostOnce, tok); err == nil {
			t.Errorf("ClaimWith took token %q", tok)
		}
		if _, err := b.l.Finish(ctx, a, Outcome{State: Queued, Mode: ReleaseRequeue, Token: tok}); tok != "" && err == nil {
			t.Errorf("Finish took token %q", tok)
		}
	}
	wantEqual(t, "entry", Entry{State: Queued, Row: 1}, getEntry(t, b, "run-tok", es[0]))
	// The check can pass: a well-formed token claims.
	c, err := b.l.ClaimWith(ctx, a, AtMostOnce, strings.Repeat("Z9", 16))
	if err != nil || c.Verdict != VerdictSend {
		t.Fatalf("ClaimWith a 32-character token: %+v, %v", c, err)
	}
}
