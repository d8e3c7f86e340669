package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
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
		if got, err := sc.Result(); err != nil || got.Listed() != want {
			t.Errorf("suppressed(%s) = %+v, %v; want %v", rcpts[i], got, err, want)
		}
		if got, err := bc.Result(); err != nil || got.Scope != ScopeAll || got.Reason != "STOP" {
			t.Errorf("suppressed(%s) = %+v, %v; want every message for STOP", bsuid, got, err)
		}
	}

	b.mr.SetError("READONLY You can't write against a read only replica.")
	var sc *SuppressedCmd
	_, _ = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		sc = b.l.SuppressedIn(ctx, p, rcpts[1])
		return nil
	})
	b.mr.SetError("")
	if got, err := sc.Result(); err == nil || got.Listed() {
		t.Fatalf("read with Redis failing = %+v, %v; want an error", got, err)
	} else if errors.Is(err, redis.Nil) {
		t.Fatalf("read with Redis failing reported redis.Nil: %v", err)
	}
}

// TestSuppressionScopes: what an entry of the list blocks. The classification table scopes a
// code (131050: marketing only; any other reason: every message); a value written before
// scopes reads with its reason's scope; a scope this version does not know reads as every
// message; and the pipelined read (SuppressedIn) sees the scope the list read does.
func TestSuppressionScopes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := time.UnixMilli(1_767_225_600_000).UTC()
	cases := []struct {
		name, value string
		want        Suppression
		// blocks says whether the entry stops a marketing send and a utility send.
		marketing, utility bool
	}{
		{"Marketing131050", "131050|1767225600000|marketing", Suppression{ScopeMarketing, "131050", at}, true, false},
		{"AllOptOut", "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT|1767225600000|all", Suppression{ScopeAll, "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT", at}, true, true},
		{"OldOptOutReadsAsAll", "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT|1767225600000", Suppression{ScopeAll, "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT", at}, true, true},
		{"OldStopReadsAsAll", "INBOUND_OPT_OUT|1767225600000", Suppression{ScopeAll, "INBOUND_OPT_OUT", at}, true, true},
		{"Old131050ReadsAsMarketing", "131050|1767225600000", Suppression{ScopeMarketing, "131050", at}, true, false},
		{"UnknownScopeReadsAsAll", "131050|1767225600000|promotions", Suppression{Scope: ScopeAll, Reason: "131050|1767225600000"}, true, true},
		{"NoTime", "STOP", Suppression{Scope: ScopeAll, Reason: "STOP"}, true, true},
		{"ReasonWithABar", "A|B|1767225600000|marketing", Suppression{ScopeMarketing, "A|B", at}, true, false},
	}
	b := setup(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseSuppression(tc.value); got != tc.want {
				t.Fatalf("parse %q = %+v, want %+v", tc.value, got, tc.want)
			}
			s := tc.want
			if s.Blocks(true) != tc.marketing || s.Blocks(false) != tc.utility {
				t.Fatalf("%+v blocks marketing %v, utility %v; want %v, %v", s, s.Blocks(true), s.Blocks(false), tc.marketing, tc.utility)
			}
			who := "+1555" + tc.name
			if err := b.rdb.HSet(ctx, rkeys.Suppressed(), who, tc.value).Err(); err != nil {
				t.Fatal(err)
			}
			var sc *SuppressedCmd
			_, _ = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				sc = b.l.SuppressedIn(ctx, p, who)
				return nil
			})
			ss, err := b.l.Suppressions(ctx, []string{who, "+15550000000"})
			if err != nil {
				t.Fatal(err)
			}
			piped, err := sc.Result()
			if err != nil || piped != tc.want || ss[0] != tc.want || ss[1] != (Suppression{}) {
				t.Fatalf("read %+v (pipelined %+v, %v), not listed %+v; want %+v", ss[0], piped, err, ss[1], tc.want)
			}
		})
	}
	for reason, want := range map[string]Scope{"131050": ScopeMarketing, "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT": ScopeAll,
		"INBOUND_OPT_OUT": ScopeAll, "ON_REPLY": ScopeAll, "131049": ScopeAll} {
		if got := ScopeOf(reason); got != want {
			t.Errorf("ScopeOf(%s) = %s, want %s", reason, got, want)
		}
	}
	for cat, want := range map[string]bool{"marketing": true, "": true, "promo": true, "utility": false, "authentication": false} {
		if got := MarketingCategory(cat); got != want {
			t.Errorf("MarketingCategory(%q) = %v, want %v", cat, got, want)
		}
	}
	if got := (Suppression{ScopeMarketing, "131050", at}).String(); got != "for marketing (131050) since 2026-01-01T00:00:00Z" {
		t.Errorf("String = %q", got)
	}
}

// TestSuppressNeverNarrows: writers racing on one recipient, some suppressing it for every
// message and some for marketing only, leave it suppressed for every message whatever their
// order; on miniredis and, with HERALD_TEST_REDIS, on real Redis.
func TestSuppressNeverNarrows(t *testing.T) {
	t.Parallel()
	race := func(t *testing.T, b *testBundle) {
		ctx := context.Background()
		who := fmt.Sprintf("+1555%d", time.Now().UnixNano()%1e10)
		t.Cleanup(func() { b.rdb.HDel(context.Background(), rkeys.Suppressed(), who) })
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reason := "131050"
				if i%10 == 3 {
					reason = "INBOUND_OPT_OUT"
				}
				errs <- b.l.Suppress(ctx, who, reason)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		ss, err := b.l.Suppressions(ctx, []string{who})
		if err != nil || ss[0].Scope != ScopeAll || ss[0].Reason != "INBOUND_OPT_OUT" {
			t.Fatalf("after the race: %+v, %v; want every message (INBOUND_OPT_OUT)", ss, err)
		}
	}
	t.Run("Miniredis", func(t *testing.T) { race(t, setup(t)) })
	t.Run("RealRedis", func(t *testing.T) { race(t, realRedis(t)) })
}
