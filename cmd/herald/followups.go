package main

import (
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/serve"
)

// runRuleIDs returns the on_reply rule ids of runs, read from their campaign (what a run's
// funnel is read for).
func runRuleIDs(c config.Config, rdb redis.UniversalClient) report.RuleIDs {
	return serve.RunRuleIDs(c, rdb)
}
