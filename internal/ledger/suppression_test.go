package ledger

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestSuppressedInSharesThePipeline: the suppression read queued beside a claim answers in
// the same round trip, for a phone number and a BSUID, and a failed pipeline reports its error
// rather than "not suppressed".
func TestSuppressedInSharesThePipeline(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	rcpts := recipients(2)
	entries := seedRun(t, b, "run-supp", AtMostOnce, rcpts, true)
	const bsuid = "bsuid:US.13491208655302741918"
	for _, r := range []string{rcpts[1], bsuid} {
		if err := b.l.Suppress(ctx, r, "STOP"); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []bool{false, true} {
		var cc *ClaimCmd
		var sc, bc *SuppressedCmd
		if _, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			cc = b.l.ClaimIn(ctx, p, Address{Run: "run-supp", Bucket: entries[i].Bucket, Recipient: rcpts[i]}, AtMostOnce, NewClaimToken())
			sc = b.l.SuppressedIn(ctx, p, rcpts[i])
			bc = b.l.SuppressedIn(ctx, p, bsuid)
			return nil
		}); err != nil && !redis.HasErrorPrefix(err, "NOSCRIPT") {
			t.Fatal(err)
		}
		if c, err := cc.Result(ctx); err != nil || c.Verdict != VerdictSend {
			t.Fatalf("claim of %s: %+v, %v", rcpts[i], c, err)
		}
		if got, err := sc.Result(); err != nil || got != want {
			t.Errorf("suppressed(%s) = %v, %v; want %v", rcpts[i], got, err, want)
		}
		if got, err := bc.Result(); err != nil || !got {
			t.Errorf("suppressed(%s) = %v, %v; want true", bsuid, got, err)
		}
	}

	b.mr.SetError("READONLY You can't write against a read only replica.")
	var sc *SuppressedCmd
	_, _ = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		sc = b.l.SuppressedIn(ctx, p, rcpts[1])
		return nil
	})
	b.mr.SetError("")
	if got, err := sc.Result(); err == nil || got {
		t.Fatalf("read with Redis failing = %v, %v; want an error", got, err)
	} else if errors.Is(err, redis.Nil) {
		t.Fatalf("read with Redis failing reported redis.Nil: %v", err)
	}
}
