package main

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
)

// Follow-up outbox sweep: how often, and how old an entry left without its task must be (a
// receiver writes the task right after the entry, within milliseconds).
const (
	followupSweepEvery = 10 * time.Second
	followupSweepAfter = 30 * time.Second
)

// runSource reads the campaign of a run (expand.Runs.SourceOf) with config c.
func runSource(c config.Config, rdb redis.UniversalClient, log zerolog.Logger) conversation.Source {
	return runs(c, rdb, log, expandTaskOptions(c)).SourceOf
}

// runResolver returns the campaign of each run (conversation.RunResolver).
func runResolver(c config.Config, rdb redis.UniversalClient, log zerolog.Logger) conversation.Resolver {
	return conversation.RunResolver(ledger.New(rdb, nil), runSource(c, rdb, log), log)
}

// newFollowups returns the follow-ups of config c (the receiver's on_reply hook).
func newFollowups(c config.Config, rdb redis.UniversalClient, log zerolog.Logger, m *conversation.Metrics) (*conversation.Followups, error) {
	return conversation.NewFollowups(conversation.FollowupConfig{Redis: rdb, Business: c.Connectly.BusinessID,
		Resolve: runResolver(c, rdb, log), Task: expandTaskOptions(c), Logger: log, Metrics: m})
}

// sendRecorder returns the worker's OnSending function (conversation.SendRecorder): a send
// of a campaign with on_reply is recorded in the index of recent sends just before its
// request, and the audience columns its follow-ups read are stored for the recipient.
func sendRecorder(c config.Config, rdb redis.UniversalClient, log zerolog.Logger) func(context.Context, campaigns.SendPayload) {
	return conversation.SendRecorder(runResolver(c, rdb, log), conversation.NewIndex(rdb, c.Connectly.BusinessID, nil),
		conversation.NewColumns(rdb), log)
}

// runRuleIDs returns the on_reply rule ids of runs, read from their campaign (what a run's
// funnel is read for).
func runRuleIDs(c config.Config, rdb redis.UniversalClient) report.RuleIDs {
	return runSource(c, rdb, zerolog.Nop()).RuleIDs
}
