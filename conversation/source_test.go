package conversation_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"
)

// A run resolves to its campaign, read once; a run whose campaign is gone for good resolves
// to an empty one, with a warning; a read that fails for a passing cause (Redis timed out) is
// an error and is not kept, so the next call reads again; a run that does not exist does not
// resolve.
func TestRunResolver(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	ctx := context.Background()
	l := ledger.New(rdb, nil)
	for _, id := range []string{"promo-1", "gone-1", "flaky-1"} {
		if err := l.CreateRun(ctx, ledger.Run{ID: id, Campaign: strings.TrimSuffix(id, "-1"), Delivery: ledger.AtMostOnce, Buckets: 1, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	def := repliesExample(t)
	reads := map[string]int{}
	source := func(_ context.Context, r ledger.Run) (*campaigns.Definition, error) {
		reads[r.ID]++
		switch {
		case r.ID == "gone-1":
			return nil, fmt.Errorf("%w: file removed", conversation.ErrNoCampaign)
		case r.ID == "flaky-1" && reads[r.ID] == 1:
			return nil, context.DeadlineExceeded
		}
		return def, nil
	}
	var logs bytes.Buffer
	resolve := conversation.RunResolver(l, source, zerolog.New(&logs))
	for range 2 {
		info, ok, err := resolve(ctx, "promo-1")
		if err != nil || !ok || info.Def != def || info.Run.Campaign != "promo" {
			t.Fatalf("promo-1: %+v %v %v", info, ok, err)
		}
	}
	if reads["promo-1"] != 1 {
		t.Errorf("the campaign of promo-1 read %d times, want once", reads["promo-1"])
	}
	info, ok, err := resolve(ctx, "gone-1")
	if err != nil || !ok || info.Def == nil || info.Def.OnReply.Enabled() || !strings.Contains(logs.String(), "campaign is gone") {
		t.Fatalf("gone-1: %+v %v %v, log %q", info, ok, err, logs.String())
	}
	if _, _, err := resolve(ctx, "flaky-1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("flaky-1, first read timed out: %v, want the error", err)
	}
	info, ok, err = resolve(ctx, "flaky-1")
	if err != nil || !ok || !info.Def.OnReply.Enabled() || reads["flaky-1"] != 2 {
		t.Fatalf("flaky-1 after a failed read: %+v %v %v (read %d times); want its campaign, read again", info, ok, err, reads["flaky-1"])
	}
	if _, ok, err := resolve(ctx, "nope"); ok || err != nil {
		t.Fatalf("a run that does not exist: ok %v, %v", ok, err)
	}
}

// A run's rule ids are its campaign's on_reply rules, in order; a follow-up run and a
// campaign that cannot be read have none.
func TestSourceRuleIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	def := repliesExample(t)
	src := conversation.Source(func(_ context.Context, r ledger.Run) (*campaigns.Definition, error) {
		if r.ID == "gone-1" {
			return nil, errors.New("file removed")
		}
		return def, nil
	})
	if got, want := src.RuleIDs(ctx, ledger.Run{ID: "promo-1"}), []string{"unsubscribe", "interested", "later", "price", "replied"}; !slices.Equal(got, want) {
		t.Errorf("rule ids %q, want %q", got, want)
	}
	if got := src.RuleIDs(ctx, ledger.Run{ID: ledger.FollowupRun("promo-1", "interested")}); got != nil {
		t.Errorf("a follow-up run: %q", got)
	}
	if got := src.RuleIDs(ctx, ledger.Run{ID: "gone-1"}); got != nil {
		t.Errorf("a campaign that cannot be read: %q", got)
	}
}
