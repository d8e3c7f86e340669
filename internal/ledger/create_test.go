package ledger

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// errListing is what failListing fails the listing of a run with.
var errListing = errors.New("i/o timeout on the node of the run lists")

// failListing fails, once, the pipeline that lists a run (the one that writes herald:runs),
// before it reaches Redis, as a timeout on the node holding those keys would.
func failListing() *testredis.FailPipelineOnce {
	return &testredis.FailPipelineOnce{Err: errListing, Match: func(c redis.Cmder) bool {
		a := c.Args()
		return c.Name() == "zadd" && len(a) > 1 && a[1] == rkeys.Runs()
	}}
}

// listed returns where a run is listed: its score in the run list (0: absent), in its
// campaign's, and whether the resend sweep's set holds it.
func listed(tb testing.TB, rdb redis.UniversalClient, r Run) (all, campaign float64, resend bool) {
	tb.Helper()
	ctx := context.Background()
	all, err1 := rdb.ZScore(ctx, rkeys.Runs(), r.ID).Result()
	campaign, err2 := rdb.ZScore(ctx, rkeys.CampaignRuns(r.Campaign), r.ID).Result()
	resend, err3 := rdb.SIsMember(ctx, rkeys.ResendRuns(), r.ID).Result()
	for _, err := range []error{err1, err2, err3} {
		if err != nil && !errors.Is(err, redis.Nil) {
			tb.Fatal(err)
		}
	}
	return all, campaign, resend
}

// TestCreateRunWhoseReplyIsLost: the create script runs, its reply is lost, and go-redis sends
// it again on a new connection. The second run finds the run the first created, under the
// call's own token: the call reads it as created (not as a run that exists already, which its
// caller takes for another's) and lists it. Another call with the same id is still refused.
// On miniredis, and on real Redis with HERALD_TEST_REDIS.
func TestCreateRunWhoseReplyIsLost(t *testing.T) {
	t.Parallel()
	story := func(t *testing.T, b *testBundle, upstream, runID string) {
		ctx := context.Background()
		l, d, lose := lossyLedger(t, upstream, b.rdb.Options().DB)
		lose(createRunCmd)
		r := Run{ID: runID, Campaign: "spring-sale", Delivery: AtMostOnce, Buckets: 1, ResendAfter: time.Hour}
		err := l.CreateRetryRun(ctx, r, []string{"+15550000001", "+15550000002"})
		if d.Dropped() != 1 {
			t.Fatalf("%d replies dropped, want 1", d.Dropped())
		}
		if err != nil {
			t.Fatalf("CreateRetryRun whose first reply was lost: %v; want the run created", err)
		}
		got := getRun(t, b, runID)
		if got.Status != RunRunning || got.Picked != 2 {
			t.Fatalf("run %+v, want running with 2 picked", got)
		}
		if all, campaign, resend := listed(t, b.rdb, got); all == 0 || campaign == 0 || !resend {
			t.Fatalf("listed: runs %v, campaign %v, resend %v; want everywhere", all, campaign, resend)
		}
		err = l.CreateRun(ctx, Run{ID: runID, Campaign: "spring-sale", Buckets: 1})
		wantErrIs(t, err, ErrRunExists)
	}
	t.Run("Miniredis", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		story(t, b, b.mr.Addr(), "lost-create")
	})
	t.Run("RealRedis", func(t *testing.T) {
		t.Parallel()
		runID := "lost-create-" + time.Now().Format("150405.000000000")
		b := realRedis(t, runID)
		t.Cleanup(func() { b.rdb.SRem(context.Background(), rkeys.ResendRuns(), runID) })
		story(t, b, b.rdb.Options().Addr, runID)
	})
}

// TestCreateRunUnlistedIsListedAgain: a run stored whose listing then fails is reported as
// stored but unlisted (not as a failed create, after which a caller would give it up), and
// ListRun of the run as read back lists it: in the run lists, in the resend sweep's set, and
// its campaign at its latest run. Listing it again changes nothing, and a campaign's latest
// run is never moved back to an older one.
func TestCreateRunUnlistedIsListedAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	newer := Run{ID: "newer", Campaign: "spring-sale", Delivery: AtMostOnce, Buckets: 1, Created: testNow.Add(time.Hour)}
	if err := b.l.CreateRun(ctx, newer); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
	t.Cleanup(func() { c.Close() })
	c.AddHook(failListing())
	l := New(c, func() time.Time { return testNow })
	err := l.CreateRun(ctx, Run{ID: "unlisted", Campaign: "spring-sale", Delivery: AtMostOnce, Buckets: 1, ResendAfter: time.Hour})
	wantErrIs(t, err, ErrRunUnlisted)
	if !errors.Is(err, errListing) {
		t.Fatalf("error %v does not wrap its cause", err)
	}
	run := getRun(t, b, "unlisted")
	if all, campaign, resend := listed(t, b.rdb, run); all != 0 || campaign != 0 || resend {
		t.Fatalf("listed before ListRun: runs %v, campaign %v, resend %v", all, campaign, resend)
	}
	for range 2 {
		if err := b.l.ListRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		all, campaign, resend := listed(t, b.rdb, run)
		want := float64(testNow.UnixMilli())
		if all != want || campaign != want || !resend {
			t.Fatalf("listed: runs %v, campaign %v, resend %v; want %v, %v, true", all, campaign, resend, want, want)
		}
		ids, err := b.l.RecentRuns(ctx, "", 10)
		wantEqual(t, "runs listed", []string{"newer", "unlisted"}, ids)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := b.l.Campaigns(ctx, 10)
		if err != nil || len(cs) != 1 {
			t.Fatalf("campaigns %+v, %v", cs, err)
		}
		wantEqual(t, "campaign's latest run", CampaignSummary{Campaign: "spring-sale", Runs: 2, LastRun: "newer",
			LastAt: testNow.Add(time.Hour).UTC()}, cs[0])
	}
}
