package campaigns

import (
	"cmp"
	"time"

	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/ledger"
)

// Listed is one campaign of a listing (`campaign ls`): a submitted campaign, one with runs,
// or both.
type Listed struct {
	ledger.CampaignSummary
	// Version is the submitted version (0: not submitted).
	Version int `json:"version,omitempty"`
	// Schedule says when a submitted campaign runs: "CRON TZ", "at TIME", "by hand", or
	// "invalid: ..." when its stored definition no longer parses.
	Schedule string     `json:"schedule,omitempty"`
	NextRun  *time.Time `json:"next_run,omitempty"`
}

// NextFire returns a campaign's next scheduled start after a time, zero when it has none
// (scheduler.NextFire).
type NextFire func(def *Definition, after time.Time) time.Time

// Listing merges the campaigns that have runs (most recently run first, as
// ledger.Ledger.Campaigns lists them) with the submitted ones (defstore.Store.Active): a
// submitted campaign without runs comes after, in the order given. A submitted campaign
// carries its version, its schedule and its next start after now (in UTC).
func Listing(withRuns []ledger.CampaignSummary, submitted []defstore.Submitted, now time.Time, next NextFire) []Listed {
	rows := make([]Listed, 0, len(withRuns)+len(submitted))
	idx := map[string]int{}
	for _, c := range withRuns {
		idx[c.Campaign] = len(rows)
		rows = append(rows, Listed{CampaignSummary: c})
	}
	for _, sub := range submitted {
		i, ok := idx[sub.ID]
		if !ok {
			i = len(rows)
			rows = append(rows, Listed{CampaignSummary: ledger.CampaignSummary{Campaign: sub.ID}})
		}
		rows[i].Version = sub.Version
		def, err := ParseStored(sub.Path, sub.YAML) // as expand.Definition reads a stored version
		if err != nil {
			rows[i].Schedule = "invalid: " + err.Error()
			continue
		}
		switch {
		case def.Schedule.Cron != "":
			rows[i].Schedule = def.Schedule.Cron + " " + cmp.Or(def.Schedule.Timezone, "UTC")
		case def.Schedule.At != "":
			rows[i].Schedule = "at " + def.Schedule.At
		default:
			rows[i].Schedule = "by hand"
		}
		if n := next(def, now); !n.IsZero() {
			n = n.UTC()
			rows[i].NextRun = &n
		}
	}
	return rows
}
