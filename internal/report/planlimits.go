package report

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/words"
)

// PlanLimits is what the shared limits would do to a campaign sent now (`campaign plan`).
type PlanLimits struct {
	// Capped counts recipients already at the frequency cap of the campaign's category.
	Capped int    `json:"capped"`
	Cap    string `json:"cap,omitempty"`
	// TierLimit is the daily tier (0 unlimited); TierNew counts recipients not messaged in
	// the tier's period and with no open customer service window, TierInWindow those left
	// out of it for an open window (the tier skips them), TierRemaining the room left,
	// TierWaiting those that would wait.
	TierLimit     int `json:"tier_limit"`
	TierNew       int `json:"tier_new_recipients"`
	TierInWindow  int `json:"tier_in_window"`
	TierRemaining int `json:"tier_remaining"`
	TierWaiting   int `json:"tier_waiting"`
	// Note says why the limits were not (fully) checked.
	Note string `json:"note,omitempty"`
	// CappedBy counts the capped recipients by the label each was added with (LimitCheck.Add):
	// the plan's template language, so its count of recipients per language leaves them out.
	CappedBy map[string]int `json:"-"`
}

// PlanLimitsParams is what a limits preview needs of the config and the campaign.
type PlanLimitsParams struct {
	Business string
	// Sender is the number the campaign sends from ("" when it names none); WindowPolicy and
	// WindowMargin are the worker's (servicewindow): which of a recipient's customer service
	// windows count for its send, and how long before its close one counts as closed.
	Sender       string
	WindowPolicy servicewindow.Policy
	WindowMargin time.Duration
	// Category is the campaign template's category (marketing when empty, as for a send);
	// CapMax and CapPeriod its frequency cap (CapMax 0: no cap applies).
	Category  string
	CapMax    int
	CapPeriod time.Duration
	// Tier is the daily tier (0: unlimited) and TierPeriod its rolling period.
	Tier       int
	TierPeriod time.Duration
	Now        time.Time
	// NotChecked, when set, says why Redis is not read: the check only carries this note.
	NotChecked string
}

// PlanLimitsFor is the limits preview of a campaign of category (its send category) sent
// from sender at now under config c: its category's frequency cap and the daily tier, which
// skips recipients in an open customer service window as the worker's reservation does.
func PlanLimitsFor(c config.Config, sender, category string, now time.Time) PlanLimitsParams {
	fc := c.Limits.FrequencyCaps[category]
	return PlanLimitsParams{Business: c.Connectly.BusinessID, Sender: sender, WindowPolicy: c.WindowPolicy(),
		WindowMargin: c.Worker.WindowMargin.D(), Category: category, CapMax: fc.Max, CapPeriod: capPeriod(fc),
		Tier: int(c.Limits.MessagingTier), TierPeriod: tierPeriod(c), Now: now}
}

// tierPeriod is the daily tier's rolling period in config c, and capPeriod a frequency cap's
// period: the one place this package names those config keys.
func tierPeriod(c config.Config) time.Duration       { return c.Limits.TierPeriod.D() }
func capPeriod(fc config.FrequencyCap) time.Duration { return fc.Period.D() }

// Applies reports whether any limit applies: a cap on the category, or a daily tier.
func (p PlanLimitsParams) Applies() bool { return p.CapMax > 0 || p.Tier > 0 }

// LimitCheck checks a plan's recipients against the frequency cap and the daily tier (and
// their customer service windows, which the tier skips) in batches of 1,000, reading Redis
// without reserving anything. Its methods do nothing on a
// nil LimitCheck, whose Result is nil.
type LimitCheck struct {
	ctx   context.Context
	lim   *limits.Limiter
	p     PlanLimitsParams
	batch []string
	// labels are the batch's recipients' labels (Add), in its order.
	labels []string
	out    PlanLimits
	err    error
}

// NewLimitCheck starts a preview of the limits p describes on rdb; it returns nil when none
// applies.
func NewLimitCheck(ctx context.Context, rdb redis.UniversalClient, p PlanLimitsParams) *LimitCheck {
	if !p.Applies() {
		return nil
	}
	lc := &LimitCheck{ctx: ctx, p: p, out: PlanLimits{TierLimit: p.Tier}}
	if p.CapMax > 0 {
		lc.out.Cap = fmt.Sprintf("%s: at most %d per person per %s", p.Category, p.CapMax, p.CapPeriod)
	}
	if p.NotChecked != "" || rdb == nil {
		lc.out.Note = p.NotChecked
		return lc
	}
	lc.lim = limits.New(rdb)
	if p.Tier > 0 {
		u, err := lc.lim.DailyTier(ctx, p.Business, p.Tier, p.TierPeriod, p.Now)
		if err != nil {
			lc.err = err
		}
		lc.out.TierRemaining = u.Remaining()
	}
	return lc
}

// Add counts one recipient of the plan, label being what PlanLimits.CappedBy counts it under
// when it is capped.
func (lc *LimitCheck) Add(to, label string) {
	if lc == nil || lc.lim == nil || lc.err != nil {
		return
	}
	lc.batch = append(lc.batch, to)
	lc.labels = append(lc.labels, label)
	if len(lc.batch) == 1000 {
		lc.flush()
	}
}

func (lc *LimitCheck) flush() {
	if lc == nil || lc.lim == nil || lc.err != nil || len(lc.batch) == 0 {
		return
	}
	defer func() { lc.batch, lc.labels = lc.batch[:0], lc.labels[:0] }()
	p := lc.p
	sendable := lc.batch
	if p.CapMax > 0 {
		over, err := lc.lim.Capped(lc.ctx, limits.CapCheck{Business: p.Business, Category: p.Category,
			Cap: limits.FrequencyCap{Max: p.CapMax, Period: p.CapPeriod}, Recipients: lc.batch, Now: p.Now})
		if err != nil {
			lc.err = err
			return
		}
		sendable = make([]string, 0, len(lc.batch))
		for i, to := range lc.batch {
			if over[i] {
				lc.out.Capped++
				if lc.out.CappedBy == nil {
					lc.out.CappedBy = map[string]int{}
				}
				lc.out.CappedBy[lc.labels[i]]++
			} else {
				sendable = append(sendable, to)
			}
		}
	}
	if p.Tier > 0 {
		seen, err := lc.lim.PeekTier(lc.ctx, limits.TierCheck{Business: p.Business, Sender: p.Sender, Recipients: sendable,
			Period: p.TierPeriod, WindowPolicy: p.WindowPolicy, WindowMargin: p.WindowMargin, Now: p.Now})
		if err != nil {
			lc.err = err
			return
		}
		for _, s := range seen {
			switch {
			case s.InWindow:
				lc.out.TierInWindow++
			case !s.InTier:
				lc.out.TierNew++
			}
		}
	}
}

// Result finishes the check and returns what it found.
func (lc *LimitCheck) Result() (*PlanLimits, error) {
	if lc == nil {
		return nil, nil
	}
	lc.flush()
	if lc.err != nil {
		return nil, lc.err
	}
	if lc.p.Tier > 0 {
		lc.out.TierWaiting = max(0, lc.out.TierNew-lc.out.TierRemaining)
	}
	return &lc.out, nil
}

// PrintPlanLimits renders a limits preview for `campaign plan`; window is the daily tier's.
func PrintPlanLimits(w io.Writer, pl *PlanLimits, window time.Duration) {
	if pl == nil {
		return
	}
	if pl.Note != "" {
		fmt.Fprintf(w, "Limits         %s\n", pl.Note)
		return
	}
	if pl.Cap != "" {
		fmt.Fprintf(w, "Frequency cap  %s; %s already at it would be skipped(capped)\n", pl.Cap, words.Count(pl.Capped, "recipient", "recipients"))
	}
	if pl.TierLimit > 0 {
		fmt.Fprintf(w, "Daily tier     %s", words.Count(pl.TierNew, "new recipient", "new recipients"))
		if pl.TierInWindow > 0 {
			fmt.Fprintf(w, " (%d in an open customer service window, not counted)", pl.TierInWindow)
		}
		fmt.Fprintf(w, ", %d of %d room left in the %s window", pl.TierRemaining, pl.TierLimit, window)
		if pl.TierWaiting > 0 {
			days := (pl.TierWaiting + pl.TierLimit - 1) / pl.TierLimit
			fmt.Fprintf(w, ": %d would wait for the tier (about %s)", pl.TierWaiting, words.Count(days, "more window", "more windows"))
		}
		fmt.Fprintln(w)
	}
}
