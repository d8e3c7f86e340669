package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/defstore"
)

// SubmitParams is what Submit needs: the campaign file, and the two things only the caller
// knows how to get (the file rules of its config and a Redis connection). Submit calls them in
// the order that reports a user's mistake before a machine's: a file that is not a campaign
// before the config is read, a bad audience before Redis is dialled.
type SubmitParams struct {
	// Path is the campaign file.
	Path string
	// Rules returns the rules campaign files are read under (the config's campaigns section).
	Rules func() (campaigns.FileRules, error)
	// Connect opens Redis once the campaign and its audience passed their checks. Submit
	// closes the client it returns.
	Connect func(ctx context.Context) (redis.UniversalClient, error)
	// Check, when set, checks the parsed campaign beyond its file and audience (the
	// command's on_reply check against the templates) before anything is stored; its error
	// refuses the submit.
	Check func(ctx context.Context, def *campaigns.Definition) error
	// Now is the time the next run is counted from (zero: time.Now).
	Now time.Time
}

// Submitted is what Submit stored.
type Submitted struct {
	Campaign string
	Version  int
	// Changed says the file became a new version; false: it was already the current one.
	Changed bool
	// Restored says the campaign had been removed (campaign rm) and is scheduled again.
	Restored bool
	// NextRun is the campaign's next tick, zero when it has none.
	NextRun time.Time
	// Scheduled says the campaign has a schedule (cron or at), even one with no future tick.
	Scheduled bool
}

// Submit reads a campaign file, checks it as `campaign validate` does without reading the
// audience's rows (the file, its place inside the campaigns root, its header), and stores it as
// the campaign's current version for the scheduler: `campaign submit`.
func Submit(ctx context.Context, p SubmitParams) (Submitted, error) {
	data, err := campaigns.ReadFile(p.Path)
	if err != nil {
		return Submitted{}, fmt.Errorf("campaign: %w", err)
	}
	def, err := campaigns.Parse(p.Path, data)
	if err != nil {
		return Submitted{}, err
	}
	if def.Files, err = p.Rules(); err != nil {
		return Submitted{}, err
	}
	if err := campaigns.CheckAudience(def); err != nil {
		return Submitted{}, err
	}
	if p.Check != nil {
		if err := p.Check(ctx, def); err != nil {
			return Submitted{}, err
		}
	}
	rdb, err := p.Connect(ctx)
	if err != nil {
		return Submitted{}, err
	}
	defer rdb.Close()
	stored, err := defstore.New(rdb, nil).SubmitFile(ctx, def.ID, def.Path, data)
	if err != nil {
		return Submitted{}, err
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	return Submitted{Campaign: def.ID, Version: stored.Version, Changed: stored.Created, Restored: stored.Restored,
		NextRun: NextFire(def, now), Scheduled: def.Schedule.Cron != "" || def.Schedule.At != ""}, nil
}
