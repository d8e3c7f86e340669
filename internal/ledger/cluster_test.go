package ledger

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// TestClusterScriptCases plays the table of script cases on a Redis Cluster
// (HERALD_TEST_REDIS_CLUSTER), each on a run of its own, through a proxy that runs every
// command on the Cluster (testredis.ProxyClient): every script of the ledger runs with the
// keys the ledger builds for it, and the Cluster refuses any whose KEYS are in more than one
// slot, or that touches a key of another node. The keys of each case's run, and its members
// of the shared sets, are deleted after it.
func TestClusterScriptCases(t *testing.T) {
	cc := testredis.Cluster(t)
	rdb := testredis.ProxyClient(t, cc)
	ctx := context.Background()
	playScriptCases(t, rdb, func(runID string) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := testredis.DeleteMatching(ctx, cc, "*"+runID+"*"); err != nil {
			t.Errorf("delete the keys of %s: %v", runID, err)
		}
		for _, key := range []string{rkeys.FollowupActive(), rkeys.FollowupsPaused()} {
			cc.ZRem(ctx, key, FollowupRun(runID, "yes"))
		}
		cc.ZRem(ctx, rkeys.Runs(), runID)
		cc.ZRem(ctx, rkeys.ActiveRuns(), runID)
		cc.ZRem(ctx, rkeys.CampaignRuns("script-cases"), runID)
		cc.SRem(ctx, rkeys.ResendRuns(), runID)
		parked, _ := cc.ZRange(ctx, rkeys.WebhookParked(), 0, -1).Result()
		for _, m := range parked {
			if strings.Contains(m, `"r":"`+runID+`"`) {
				cc.ZRem(ctx, rkeys.WebhookParked(), m)
			}
		}
		if n, _ := cc.ZCard(ctx, rkeys.CampaignRuns("script-cases")).Result(); n == 0 {
			cc.ZRem(ctx, rkeys.Campaigns(), "script-cases")
		}
	})
}
