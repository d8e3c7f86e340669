package report

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/logx"
)

// Limits is the live state of the limits every worker shares, as `limits show --json`
// prints it.
type Limits struct {
	Business     string      `json:"business"`
	At           time.Time   `json:"at"`
	BusinessRate float64     `json:"business_rate"`
	BusinessUse  float64     `json:"business_use_per_second"`
	Senders      []SenderUse `json:"senders"`
	PairInterval string      `json:"pair_interval"`
	// PairSpacing is how far apart the worker books two messages to one person: the pair
	// interval plus its margin (absent when the pair limit is off).
	PairSpacing string       `json:"pair_spacing,omitempty"`
	Tier        Tier         `json:"daily_tier"`
	Caps        []Cap        `json:"frequency_caps"`
	Waiting     []WaitingRun `json:"runs_waiting,omitempty"`
}

// SenderUse is one sender's rate, use and adaptive controller.
type SenderUse struct {
	Sender string `json:"sender"`
	// Rate is the configured rate; Effective is the rate the adaptive controller allows now.
	Rate      float64 `json:"rate"`
	Effective float64 `json:"effective_rate"`
	Factor    float64 `json:"backoff_factor"`
	// ThrottledShare is the share of the sender's requests the provider throttled over the
	// controller's Window; Throttled and Requests are its counts.
	ThrottledShare float64 `json:"throttled_share"`
	Throttled      int64   `json:"throttled_in_window"`
	Requests       int64   `json:"requests_in_window"`
	Window         string  `json:"window"`
	// Decision is the controller's latest decision (decrease, increase, hold, or off) and
	// DecidedAt when it was made (absent if never).
	Decision  string     `json:"decision"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	// ThrottledAt is the last decrease and DecreaseShare the throttled share it answered;
	// FullRate is when the rate is back at its configured value unless it decreases again.
	// All three only while below the configured rate.
	ThrottledAt   *time.Time `json:"throttled_at,omitempty"`
	DecreaseShare float64    `json:"decrease_share,omitempty"`
	FullRate      *time.Time `json:"full_rate_at,omitempty"`
	Use           float64    `json:"use_per_second"`
}

// Tier is the daily messaging tier's use.
type Tier struct {
	// Limit is 0 when the tier is unlimited.
	Limit     int        `json:"limit"`
	Window    string     `json:"window"`
	Used      int        `json:"used"`
	Remaining *int       `json:"remaining,omitempty"`
	NextFree  *time.Time `json:"next_free,omitempty"`
}

// Cap is one category's frequency cap.
type Cap struct {
	Category string `json:"category"`
	Max      int    `json:"max"`
	Window   string `json:"window"`
}

// WaitingRun is a running run whose sends wait for a limit, and which.
type WaitingRun struct {
	Run    string `json:"run"`
	Reason string `json:"reason"`
}

// enforced is the part of config c's limits the reports show, as a worker holds sends to
// them: its defaults applied by limits.Config.WithDefaults, the one place they are set (a
// business_rate of 0 is the default limit, not none).
func enforced(c config.Config) limits.Config {
	return limits.Config{BusinessID: c.Connectly.BusinessID, BusinessRate: c.Connectly.BusinessRate,
		SenderRates: c.SenderRates(), PairInterval: c.Limits.PairInterval.D()}.WithDefaults()
}

// SenderControl is the adaptive controller of one sender under config c ("default" when
// campaigns name none).
func SenderControl(c config.Config, sender string) limits.Control {
	return limits.SenderControl(c.Connectly.BusinessID, sender, c.SenderRate(sender), c.Limits.Adaptive.Policy())
}

// ReadLimits reads the shared limits' state at now: the configured senders and every sender
// with limiter state in Redis, the business's use, the daily tier, the caps, and which of the
// 50 latest runs wait for a limit.
func ReadLimits(ctx context.Context, c config.Config, l *ledger.Ledger, rdb redis.UniversalClient, now time.Time) (Limits, error) {
	biz := c.Connectly.BusinessID
	lim := limits.New(rdb)
	lc := enforced(c)
	rep := Limits{Business: biz, At: now.UTC(), BusinessRate: lc.BusinessRate,
		PairInterval: c.Limits.PairInterval.String()}
	if d := lc.PairSpacing(); d > 0 {
		rep.PairSpacing = d.String()
	}
	var err error
	if rep.BusinessUse, err = lim.BusinessUse(ctx, biz, 5, now); err != nil {
		return rep, err
	}
	senders, err := knownSenders(ctx, c, lim)
	if err != nil {
		return rep, err
	}
	for _, s := range senders {
		ctl := SenderControl(c, s)
		u := SenderUse{Sender: s, Rate: ctl.Rate, Factor: 1, Decision: "off"}
		if u.Use, err = lim.SenderUse(ctx, biz, s, 5, now); err != nil {
			return rep, err
		}
		if !c.Limits.Adaptive.Off {
			b, err := lim.BackoffOf(ctx, ctl, now)
			if err != nil {
				return rep, err
			}
			u.applyBackoff(b, ctl.Policy.Period)
		}
		u.Effective = u.Rate * u.Factor
		rep.Senders = append(rep.Senders, u)
	}
	tier := int(c.Limits.MessagingTier)
	rep.Tier = Tier{Limit: tier, Window: tierPeriod(c).String()}
	tu, err := lim.DailyTier(ctx, biz, tier, tierPeriod(c), now)
	if err != nil {
		return rep, err
	}
	rep.Tier.Used = tu.Used
	if tier > 0 {
		left := tu.Remaining()
		rep.Tier.Remaining = &left
	}
	if !tu.NextFree.IsZero() {
		nf := tu.NextFree.UTC()
		rep.Tier.NextFree = &nf
	}
	for cat, fc := range c.Limits.FrequencyCaps {
		rep.Caps = append(rep.Caps, Cap{Category: cat, Max: fc.Max, Window: capPeriod(fc).String()})
	}
	sort.Slice(rep.Caps, func(i, j int) bool { return rep.Caps[i].Category < rep.Caps[j].Category })
	// The runs waiting for the tier are among those not yet ended, however many newer runs
	// have ended since (the 200 oldest of them, as the run gauges read).
	ids, _, err := l.ActiveRuns(ctx, 0, 200)
	if err != nil {
		return rep, err
	}
	for _, id := range ids {
		r, err := l.GetRun(ctx, id)
		if err != nil {
			return rep, err
		}
		if w := r.WaitingNow(now); w != "" && r.Status == ledger.RunRunning {
			rep.Waiting = append(rep.Waiting, WaitingRun{Run: id, Reason: w})
		}
	}
	return rep, nil
}

// applyBackoff fills u with the state of its sender's controller.
func (u *SenderUse) applyBackoff(b limits.Backoff, window time.Duration) {
	utc := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	u.Factor, u.ThrottledShare, u.Throttled, u.Requests = b.Factor, b.Share, b.Throttled, b.Reserved
	u.Window = cmp.Or(window, limits.DefaultPolicy().Period).String()
	u.Decision, u.DecidedAt = b.Decision, utc(b.DecidedAt)
	u.ThrottledAt, u.DecreaseShare, u.FullRate = utc(b.Since), b.DecreaseShare, utc(b.Full)
}

// Control describes a sender's controller in a few words, for the SENDER table.
func (u SenderUse) Control() string {
	switch {
	case u.Decision == "off":
		return "off"
	case u.Decision == limits.DecisionDecrease && u.ThrottledAt != nil:
		return fmt.Sprintf("x%.2f decrease at %s on %.1f%% throttled, holding; full rate at %s", u.Factor,
			u.ThrottledAt.Format(time.TimeOnly), 100*u.DecreaseShare, timeOnly(u.FullRate))
	case u.Decision == limits.DecisionIncrease && u.DecidedAt != nil:
		return fmt.Sprintf("x%.2f increase at %s after a decrease at %s; full rate at %s", u.Factor,
			u.DecidedAt.Format(time.TimeOnly), timeOnly(u.ThrottledAt), timeOnly(u.FullRate))
	case u.DecidedAt != nil:
		return "hold at full rate since " + u.DecidedAt.Format(time.TimeOnly)
	}
	return "hold at full rate"
}

func timeOnly(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.TimeOnly)
}

// knownSenders lists the configured senders and every sender with limiter state in Redis.
func knownSenders(ctx context.Context, c config.Config, lim *limits.Limiter) ([]string, error) {
	inRedis, err := lim.Senders(ctx, c.Connectly.BusinessID)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, s := range inRedis {
		seen[s] = true
	}
	for _, s := range c.Senders {
		seen[s.Number] = true
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out, nil
}

// Masked returns rep with its sender numbers masked to their last 4 digits
// (logx.MaskDigits), as `limits show` prints them unless --reveal. A sender that is not a
// number ("default", when campaigns name none) stays as it is.
func (rep Limits) Masked() Limits {
	rep.Senders = slices.Clone(rep.Senders)
	for i := range rep.Senders {
		rep.Senders[i].Sender = logx.MaskDigits(rep.Senders[i].Sender)
	}
	return rep
}

// PrintLimits renders the limits' state as `limits show` does.
func PrintLimits(w io.Writer, rep Limits) error {
	biz := rep.Business
	if biz == "" {
		biz = "(no business id)"
	}
	fmt.Fprintf(w, "business %s at %s\n", biz, rep.At.Format(time.RFC3339))
	if rep.BusinessRate > 0 {
		fmt.Fprintf(w, "  requests  %.1f/s of %g/s\n", rep.BusinessUse, rep.BusinessRate)
	} else {
		fmt.Fprintf(w, "  requests  %.1f/s (no business limit)\n", rep.BusinessUse)
	}
	switch {
	case rep.PairInterval == config.Off:
		fmt.Fprintln(w, "  pair      off (limits.pair_interval): no least time between two messages to one person")
	case rep.PairSpacing != "" && rep.PairSpacing != rep.PairInterval:
		fmt.Fprintf(w, "  pair      one message per %s to the same person, per sender (limits.pair_interval %s and a margin)\n",
			rep.PairSpacing, rep.PairInterval)
	default:
		fmt.Fprintf(w, "  pair      one message per %s to the same person, per sender\n", rep.PairInterval)
	}
	switch {
	case rep.Tier.Limit == 0:
		fmt.Fprintln(w, "  daily tier unlimited (limits.messaging_tier): recipients are not counted")
	default:
		fmt.Fprintf(w, "  daily tier %d of %d unique recipients used in the last %s, %d left", rep.Tier.Used, rep.Tier.Limit,
			rep.Tier.Window, *rep.Tier.Remaining)
		if rep.Tier.NextFree != nil && *rep.Tier.Remaining == 0 {
			fmt.Fprintf(w, "; room again at %s", rep.Tier.NextFree.Format(time.RFC3339))
		}
		fmt.Fprintln(w)
	}
	for _, c := range rep.Caps {
		fmt.Fprintf(w, "  cap       %s: at most %d per person per %s\n", c.Category, c.Max, c.Window)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SENDER\tRATE\tEFFECTIVE\tUSE (5s)\tTHROTTLED\tADAPTIVE")
	for _, s := range rep.Senders {
		thr := "-"
		if s.Window != "" {
			thr = fmt.Sprintf("%.1f%% of %d in %s", 100*s.ThrottledShare, s.Requests, s.Window)
		}
		fmt.Fprintf(tw, "%s\t%g/s\t%.1f/s\t%.1f/s\t%s\t%s\n", s.Sender, s.Rate, s.Effective, s.Use, thr, s.Control())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rep.Waiting {
		fmt.Fprintf(w, "\nrun %s waiting: %s", r.Run, r.Reason)
	}
	if len(rep.Waiting) > 0 {
		fmt.Fprintln(w)
	}
	return nil
}

// SenderBackoff describes a sender's adaptive rate at now while it is below the configured
// rate ("" at full rate, with the controller off, or when it cannot be read: it is a note,
// not worth failing a report for).
func SenderBackoff(ctx context.Context, rdb redis.UniversalClient, c config.Config, sender string, now time.Time) string {
	if c.Limits.Adaptive.Off {
		return ""
	}
	if sender == "" {
		sender = "default"
	}
	ctl := SenderControl(c, sender)
	b, err := limits.New(rdb).BackoffOf(ctx, ctl, now)
	if err != nil || b.Factor >= 1 || b.Since.IsZero() {
		return ""
	}
	return fmt.Sprintf("%s slowed to %.1f/s of %g/s: %.1f%% of its requests were throttled when its rate was lowered at %s "+
		"(%.1f%% in the last %s); full rate at %s", sender, ctl.Rate*b.Factor, ctl.Rate, 100*b.DecreaseShare,
		b.Since.UTC().Format(time.TimeOnly), 100*b.Share, cmp.Or(ctl.Policy.Period, limits.DefaultPolicy().Period), b.Full.UTC().Format(time.TimeOnly))
}
