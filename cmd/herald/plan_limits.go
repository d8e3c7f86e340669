package main

import (
	"context"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/report"
)

// newLimitCheck starts `campaign plan`'s preview of what the frequency cap and the daily
// tier would do to def sent now: nil when neither applies, a check that only carries a note
// when Redis cannot be reached. Call the returned function when the plan is done.
func (a *app) newLimitCheck(ctx context.Context, c config.Config, def *campaigns.Definition) (*report.LimitCheck, func()) {
	cat := def.SendCategory() // a session campaign without a fallback is sent as utility
	p := report.PlanLimitsFor(c, cat, time.Now())
	if !p.Applies() {
		return nil, func() {}
	}
	rdb, err := a.redis(ctx, c)
	if err != nil {
		p.NotChecked = "frequency cap and daily tier not checked: " + err.Error()
		return report.NewLimitCheck(ctx, nil, p), func() {}
	}
	return report.NewLimitCheck(ctx, rdb, p), func() { rdb.Close() }
}
