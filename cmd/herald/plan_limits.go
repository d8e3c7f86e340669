package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// planLimits is what the shared limits would do to a campaign sent now (`campaign plan`).
type planLimits struct {
	// Capped counts recipients already at the frequency cap of the campaign's category.
	Capped int    `json:"capped"`
	Cap    string `json:"cap,omitempty"`
	// TierLimit is the daily tier (0 unlimited); TierNew counts recipients not messaged in
	// the tier's window, TierRemaining the room left, TierWaiting those that would wait.
	TierLimit     int `json:"tier_limit"`
	TierNew       int `json:"tier_new_recipients"`
	TierRemaining int `json:"tier_remaining"`
	TierWaiting   int `json:"tier_waiting"`
	// Note says why the limits were not (fully) checked.
	Note string `json:"note,omitempty"`
}

// limitCheck checks a plan's recipients against the frequency cap and the daily tier in
// batches, reading Redis without reserving anything.
type limitCheck struct {
	ctx    context.Context
	lim    *limits.Limiter
	rdb    redis.UniversalClient
	biz    string
	cat    string
	fc     config.FrequencyCap
	tier   int
	window time.Duration
	now    time.Time
	batch  []string
	out    planLimits
	err    error
}

// newLimitCheck returns nil when no cap applies and the tier is unlimited; otherwise a check
// on Redis, or one that only carries a note when Redis cannot be reached.
func (a *app) newLimitCheck(ctx context.Context, c config.Config, def *campaigns.Definition) (*limitCheck, func()) {
	fc, capped := c.Limits.FrequencyCaps[def.Template.Category]
	tier := int(c.Limits.MessagingTier)
	if !capped && tier == 0 {
		return nil, func() {}
	}
	lc := &limitCheck{ctx: ctx, biz: c.Connectly.BusinessID, cat: def.Template.Category, tier: tier,
		window: c.Limits.TierWindow.D(), now: time.Now(), out: planLimits{TierLimit: tier}}
	if capped {
		lc.fc = fc
		lc.out.Cap = fmt.Sprintf("%s: at most %d per person per %s", def.Template.Category, fc.Max, fc.Window.D())
	}
	rdb, err := a.redis(ctx, c)
	if err != nil {
		lc.out.Note = "frequency cap and daily tier not checked: " + err.Error()
		return lc, func() {}
	}
	lc.rdb, lc.lim = rdb, limits.New(rdb)
	if tier > 0 {
		u, err := lc.lim.TierOf(ctx, rkeys.Tier(lc.biz), tier, lc.window, lc.now)
		if err != nil {
			lc.err = err
		}
		lc.out.TierRemaining = u.Remaining()
	}
	return lc, func() { rdb.Close() }
}

func (lc *limitCheck) add(to string) {
	if lc == nil || lc.lim == nil || lc.err != nil {
		return
	}
	lc.batch = append(lc.batch, to)
	if len(lc.batch) == 1000 {
		lc.flush()
	}
}

func (lc *limitCheck) flush() {
	if lc == nil || lc.lim == nil || lc.err != nil || len(lc.batch) == 0 {
		return
	}
	defer func() { lc.batch = lc.batch[:0] }()
	sendable := lc.batch
	if lc.fc.Max > 0 {
		caps := make([]limits.Cap, len(lc.batch))
		for i, to := range lc.batch {
			caps[i] = limits.Cap{Key: rkeys.Cap(lc.biz, lc.cat, ledger.BucketOf(to, rkeys.CapBuckets)), Field: to,
				Max: lc.fc.Max, Window: lc.fc.Window.D()}
		}
		over, err := lc.lim.PeekCaps(lc.ctx, caps, lc.now)
		if err != nil {
			lc.err = err
			return
		}
		sendable = make([]string, 0, len(lc.batch))
		for i, to := range lc.batch {
			if over[i] {
				lc.out.Capped++
			} else {
				sendable = append(sendable, to)
			}
		}
	}
	if lc.tier > 0 {
		in, err := lc.lim.InTier(lc.ctx, rkeys.Tier(lc.biz), sendable, lc.window, lc.now)
		if err != nil {
			lc.err = err
			return
		}
		for _, ok := range in {
			if !ok {
				lc.out.TierNew++
			}
		}
	}
}

// result finishes the check and returns what it found.
func (lc *limitCheck) result() (*planLimits, error) {
	if lc == nil {
		return nil, nil
	}
	lc.flush()
	if lc.err != nil {
		return nil, lc.err
	}
	if lc.tier > 0 {
		lc.out.TierWaiting = max(0, lc.out.TierNew-lc.out.TierRemaining)
	}
	return &lc.out, nil
}

func printPlanLimits(w io.Writer, pl *planLimits, window time.Duration) {
	if pl == nil {
		return
	}
	if pl.Note != "" {
		fmt.Fprintf(w, "Limits         %s\n", pl.Note)
		return
	}
	if pl.Cap != "" {
		fmt.Fprintf(w, "Frequency cap  %s; %d recipients already at it would be skipped(capped)\n", pl.Cap, pl.Capped)
	}
	if pl.TierLimit > 0 {
		fmt.Fprintf(w, "Daily tier     %d new recipients, %d of %d room left in the %s window", pl.TierNew, pl.TierRemaining,
			pl.TierLimit, window)
		if pl.TierWaiting > 0 {
			days := (pl.TierWaiting + pl.TierLimit - 1) / pl.TierLimit
			fmt.Fprintf(w, ": %d would wait for the tier (about %d more window(s))", pl.TierWaiting, days)
		}
		fmt.Fprintln(w)
	}
}
