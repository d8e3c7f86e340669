package ledger

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/luacheck"
)

// allScripts is every Lua script of the ledger, by its Go variable. TestScriptFiles checks that
// it names exactly the package's redis.NewScript variables.
var allScripts = map[string]*redis.Script{
	"planCmd":           planCmd,
	"queuedCmd":         queuedCmd,
	"expandedCmd":       expandedCmd,
	"claimCmd":          claimCmd,
	"finishCmd":         finishCmd,
	"pauseCmd":          pauseCmd,
	"skipCmd":           skipCmd,
	"createRunCmd":      createRunCmd,
	"resumeCmd":         resumeCmd,
	"cancelCmd":         cancelCmd,
	"sweepCancelledCmd": sweepCancelledCmd,
	"deliveryCmd":       deliveryCmd,
	"resendLeaseCmd":    resendLeaseCmd,
	"resendReleaseCmd":  resendReleaseCmd,
	"resendDoneCmd":     resendDoneCmd,
	"replyCmd":          replyCmd,
	"followupCmd":       followupCmd,
	"onceCampaignCmd":   onceCampaignCmd,
	"followupForgetCmd": followupForgetCmd,
	"retryMarkCmd":      retryMarkCmd,
	"suppressCmd":       suppressCmd,
	"tagCmd":            tagCmd,
	"followupsCmd":      followupsCmd,
}

// TestScriptFiles pins the layout of the ledger's Lua (luacheck.Files): every script is one
// lua/*.lua file, embedded, used by exactly one script variable (luaLib's prelude aside), with
// its contract at its top; no file in lua/ is left unused and no script is written inline in
// Go; allScripts names every script.
func TestScriptFiles(t *testing.T) {
	luacheck.Files(t, "luaLib", slices.Collect(maps.Keys(allScripts)))
}

// TestScriptsLoad loads every script with SCRIPT LOAD, which compiles it: on miniredis always,
// and on real Redis when HERALD_TEST_REDIS is set. The SHA Redis answers must be the one
// go-redis runs the script by, and a script that does not compile must be refused.
func TestScriptsLoad(t *testing.T) {
	load := func(t *testing.T, rdb *redis.Client) {
		t.Helper()
		ctx := context.Background()
		for name, s := range allScripts {
			sha, err := s.Load(ctx, rdb).Result()
			if err != nil {
				t.Errorf("%s: SCRIPT LOAD: %v", name, err)
				continue
			}
			if sha != s.Hash() {
				t.Errorf("%s: SCRIPT LOAD answered %s, want %s", name, sha, s.Hash())
			}
		}
		// The check can fail: a script that does not compile is refused.
		if err := redis.NewScript(luaLib+"local x = (\n").Load(ctx, rdb).Err(); err == nil {
			t.Error("SCRIPT LOAD accepted a script with a syntax error")
		}
	}
	t.Run("Miniredis", func(t *testing.T) { load(t, setup(t).rdb) })
	t.Run("RealRedis", func(t *testing.T) { load(t, realRedis(t).rdb) })
}
