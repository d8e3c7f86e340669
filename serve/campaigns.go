package serve

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/scheduler"
)

// FileRules maps the config's campaigns section onto the rules campaign files are read under.
func FileRules(c config.Config) campaigns.FileRules {
	return campaigns.FileRules{Root: c.Campaigns.Root, MaxRecordBytes: c.Campaigns.MaxRecordBytes,
		MaxFileBytes: c.Campaigns.MaxFileBytes, MaxRows: c.Campaigns.MaxRows}
}

// SendParams say which campaign file SendCampaign starts a run of, and with what.
type SendParams struct {
	// Path is the campaign file.
	Path   string
	Config config.Config
	Log    zerolog.Logger
	// Connect opens Redis once the file has loaded and its sender is known. SendCampaign
	// closes the client it returns.
	Connect func(ctx context.Context) (redis.UniversalClient, error)
	// Progress, when set, is told rows done and the estimated total as the audience is
	// expanded.
	Progress func(done, estimate int)
	// Note, when set, is told what the check of the file could not check (CheckCampaign's
	// notes); Warning, of a sender the config does not list (campaigns.UnlistedSender), which
	// does not refuse the file: the worker sends from it, at the default rate.
	Note, Warning func(string)
}

// Sent is what SendCampaign started: the run, and how long starting it took.
type Sent struct {
	expand.Started
	Took time.Duration
}

// SendCampaign starts a run of the campaign file at p.Path now (`campaign send`): every
// recipient gets one send task, written with the send task options of config p.Config, up to
// the run's backlog in the call; an expansion server carries on as sends complete
// (Started.Continues). The file is checked first as campaign validate checks it
// (CheckCampaign): a file with a problem starts no run, and the error lists every problem.
func SendCampaign(ctx context.Context, p SendParams) (Sent, error) {
	notes, err := CheckCampaign(ctx, p.Config, p.Path)
	if p.Note != nil {
		for _, n := range notes {
			p.Note(n)
		}
	}
	if err != nil {
		return Sent{}, fmt.Errorf("no run started: %w", err)
	}
	def, err := campaigns.Load(p.Path)
	if err != nil {
		return Sent{}, err
	}
	// The audience is read under the given config's rules, not the process's default.
	def.Files = FileRules(p.Config)
	if w := campaigns.UnlistedSender(def, p.Config.Senders); w != "" && p.Warning != nil {
		p.Warning(w)
	}
	// A campaign whose sender cannot be chosen fails before Redis is asked for anything.
	if _, err := SenderOf(def, p.Config); err != nil {
		return Sent{}, err
	}
	rdb, err := p.Connect(ctx)
	if err != nil {
		return Sent{}, err
	}
	defer rdb.Close()
	start := time.Now()
	started, err := Runs(p.Config, rdb, p.Log, SendTaskOptions(p.Config)).StartRun(ctx,
		expand.StartParams{Def: def, Bounded: true, Progress: p.Progress})
	return Sent{Started: started, Took: time.Since(start)}, err
}

// ListCampaigns lists the submitted campaigns (version, schedule, next run after now) and the
// campaigns that have runs (up to limit of them), as `campaign ls` shows them.
func ListCampaigns(ctx context.Context, rdb redis.UniversalClient, limit int, now time.Time) ([]campaigns.Listed, error) {
	withRuns, err := ledger.New(rdb, nil).Campaigns(ctx, limit)
	if err != nil {
		return nil, err
	}
	submitted, err := defstore.New(rdb, nil).Active(ctx)
	if err != nil {
		return nil, err
	}
	return campaigns.Listing(withRuns, submitted, now, scheduler.NextFire), nil
}
