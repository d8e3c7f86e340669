package main

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/report"
)

// Follow-up outbox sweep: how often, and how old an entry left without its task must be (a
// receiver writes the task right after the entry, within milliseconds).
const (
	followupSweepEvery = 10 * time.Second
	followupSweepAfter = 30 * time.Second
)

// runResolver returns the campaign of each run (the submitted version it was started from,
// or its campaign file), read once per run while it stays among the process's recent runs
// (conversation.CachedResolver): a run's rules never change.
func runResolver(c config.Config, rdb redis.UniversalClient, log zerolog.Logger) conversation.Resolver {
	l := ledger.New(rdb, nil)
	src := runs(c, rdb, log, expandTaskOptions(c))
	return conversation.CachedResolver(func(ctx context.Context, id string) (conversation.RunInfo, bool, error) {
		run, err := l.GetRun(ctx, id)
		if errors.Is(err, ledger.ErrRunNotFound) {
			return conversation.RunInfo{}, false, nil
		}
		if err != nil {
			return conversation.RunInfo{}, false, err
		}
		def, err := src.SourceOf(ctx, run)
		if err != nil {
			// A run whose campaign cannot be read (a file since removed) has no rules to apply.
			log.Warn().Str(logx.KeyRun, id).Err(err).Msg("on_reply: the run's campaign cannot be read; its replies trigger nothing")
			def = &campaigns.Definition{}
		}
		return conversation.RunInfo{Run: run, Def: def}, true, nil
	}, 0)
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

// runRuleIDs returns ruleIDs of config c as report.RuleIDs: what a run's funnel is read for.
func runRuleIDs(c config.Config, rdb redis.UniversalClient) report.RuleIDs {
	return func(ctx context.Context, r ledger.Run) []string { return ruleIDs(ctx, c, rdb, r) }
}

// ruleIDs returns the ids of the on_reply rules of run r's campaign version, in order; none
// for a follow-up run, a campaign without on_reply, or a version that cannot be read.
func ruleIDs(ctx context.Context, c config.Config, rdb redis.UniversalClient, r ledger.Run) []string {
	if _, _, ok := ledger.FollowupOf(r.ID); ok {
		return nil
	}
	def, err := runs(c, rdb, zerolog.Nop(), expandTaskOptions(c)).SourceOf(ctx, r)
	if err != nil || !def.OnReply.Enabled() {
		return nil
	}
	ids := make([]string, len(def.OnReply.Rules))
	for i := range def.OnReply.Rules {
		ids[i] = def.OnReply.Rules[i].ID()
	}
	return ids
}
