package conversation

import (
	"context"
	"errors"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
)

// Source returns the campaign a run was started from: the submitted version, or its
// campaign file (expand.Runs.SourceOf).
type Source func(ctx context.Context, run ledger.Run) (*campaigns.Definition, error)

// RunResolver returns the Resolver of runs in ledger l: each run's campaign is read from
// source once per run while it stays among the recent runs (CachedResolver), since a run's
// rules never change. A run whose campaign cannot be read (a file since removed) resolves
// to an empty campaign, whose replies trigger nothing, with a warning on log.
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
		if err != nil {
			log.Warn().Str(logx.KeyRun, id).Err(err).Msg("on_reply: the run's campaign cannot be read; its replies trigger nothing")
			def = &campaigns.Definition{}
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
