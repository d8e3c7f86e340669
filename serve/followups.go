package serve

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
)

// RunSource reads the campaign of a run (expand.Runs.SourceOf) with config c. An error that
// no retry will cure (expand.Permanent) wraps conversation.ErrNoCampaign.
func RunSource(c config.Config, rdb redis.UniversalClient, log zerolog.Logger) conversation.Source {
	runs := Runs(c, rdb, log, ExpandTaskOptions(c))
	return func(ctx context.Context, run ledger.Run) (*campaigns.Definition, error) {
		def, err := runs.SourceOf(ctx, run)
		if expand.Permanent(err) {
			return nil, fmt.Errorf("%w: %w", conversation.ErrNoCampaign, err)
		}
		return def, err
	}
}

// RunResolver returns the campaign of each run (conversation.RunResolver).
func RunResolver(c config.Config, rdb redis.UniversalClient, log zerolog.Logger) conversation.Resolver {
	return conversation.RunResolver(ledger.New(rdb, nil), RunSource(c, rdb, log), log)
}

// NewFollowups returns the follow-ups of config c (the receiver's on_reply hook). m counts
// them; it may be nil.
func NewFollowups(c config.Config, rdb redis.UniversalClient, log zerolog.Logger, m *conversation.Metrics) (*conversation.Followups, error) {
	return conversation.NewFollowups(conversation.FollowupConfig{Redis: rdb, Business: c.Connectly.BusinessID,
		Resolve: RunResolver(c, rdb, log), Task: ExpandTaskOptions(c), Logger: log, Metrics: m})
}

// SendRecorder returns the worker's OnSending function (conversation.SendRecorder): a send
// of a campaign with on_reply is recorded in the index of recent sends just before its
// request, and the audience columns its follow-ups read are stored for the recipient.
func SendRecorder(c config.Config, rdb redis.UniversalClient, log zerolog.Logger) func(context.Context, campaigns.SendPayload) error {
	return conversation.SendRecorder(RunResolver(c, rdb, log), conversation.NewIndex(rdb, c.Connectly.BusinessID, nil),
		conversation.NewColumns(rdb))
}

// RunRuleIDs returns the on_reply rule ids of runs, read from their campaign (what a run's
// funnel is read for).
func RunRuleIDs(c config.Config, rdb redis.UniversalClient) report.RuleIDs {
	return RunSource(c, rdb, zerolog.Nop()).RuleIDs
}
