package conversation

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
)

// Source returns the campaign a run was started from: the submitted version, or its
// campaign file (expand.Runs.SourceOf). An error that no retry will cure (the campaign file
// removed or no longer valid, its version not kept) wraps ErrNoCampaign; any other error
// (Redis unreachable, a timeout, the caller's context ended) passes.
type Source func(ctx context.Context, run ledger.Run) (*campaigns.Definition, error)

// ErrNoCampaign is wrapped by a Source's error when a run's campaign is gone for good.
var ErrNoCampaign = errors.New("the run's campaign is gone")

// RunResolver returns the Resolver of runs in ledger l: each run's campaign is read from
// source once per run while it stays among the recent runs (CachedResolver), since a run's
// rules never change. A run whose campaign is gone for good (ErrNoCampaign) resolves to an
// empty campaign, whose replies trigger nothing, with a warning on log. Any other error of
// source is returned and not kept: the reply's webhook is answered with an error, so
// Connectly delivers it again, and the worker's send waits (SendRecorder), where an empty
// campaign kept for the life of the process would leave every later reply to the run
// unanswered.
func RunResolver(l *ledger.Ledger, source Source, log zerolog.Logger) Resolver {
	return CachedResolver(func(ctx context.Context, id string) (RunInfo, bool, error) {
		run, err := l.GetRun(ctx, id)
		if errors.Is(err, ledger.ErrRunNotFound) {
			return RunInfo{}, false, nil
		}
		if err != nil {
			return RunInfo{}, false, err
		}
		def, err := source(ctx, run)
		switch {
		case errors.Is(err, ErrNoCampaign):
			log.Warn().Str(logx.KeyRun, id).Err(err).Msg("on_reply: the run's campaign is gone; its replies trigger nothing")
			def = &campaigns.Definition{}
		case err != nil:
			return RunInfo{}, false, fmt.Errorf("on_reply: run %s: %w", id, err)
		}
		return RunInfo{Run: run, Def: def}, true, nil
	}, 0)
}

// RuleIDs returns the ids of the on_reply rules of run r's campaign, in order; none for a
// follow-up run, a campaign without on_reply, or one that cannot be read.
func (s Source) RuleIDs(ctx context.Context, r ledger.Run) []string {
	if _, _, ok := ledger.FollowupOf(r.ID); ok {
		return nil
	}
	def, err := s(ctx, r)
	if err != nil || !def.OnReply.Enabled() {
		return nil
	}
	ids := make([]string, len(def.OnReply.Rules))
	for i := range def.OnReply.Rules {
		ids[i] = def.OnReply.Rules[i].ID()
	}
	return ids
}
