package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldmsg/herald/internal/limits"
)

// LimitsSource says where the shared limits live, for the limits collector.
type LimitsSource struct {
	Limiter *limits.Limiter
	// Business is the Connectly business whose daily tier TierLimit and TierPeriod describe
	// (TierLimit 0: unlimited).
	Business   string
	TierLimit  int
	TierPeriod time.Duration
	// Senders are the adaptive controllers of the configured senders.
	Senders []limits.Control
}

type limitsCollector struct {
	src                        LimitsSource
	senders                    SenderLabels
	used, limit, factor, share *prometheus.Desc
}

// NewLimitsCollector reports, read from Redis at scrape time: herald_daily_tier_used (unique
// recipients in the rolling window; absent when the tier is unlimited, as nothing counts
// them then), herald_daily_tier_limit (0 when unlimited),
// herald_sender_rate_factor{sender} (1 at the configured rate, less while the provider
// throttles) and herald_sender_throttled_share{sender} (the share of the sender's requests
// throttled over the controller's window). The sender label is masked (SenderLabels).
func NewLimitsCollector(src LimitsSource) prometheus.Collector {
	numbers := make([]string, len(src.Senders))
	for i, s := range src.Senders {
		numbers[i] = s.Sender
	}
	return &limitsCollector{
		src:     src,
		senders: NewSenderLabels(numbers),
		used: prometheus.NewDesc("herald_daily_tier_used",
			"Unique recipients messaged in the daily messaging tier's rolling window (business-wide); absent when the tier is unlimited (herald_daily_tier_limit 0), as nothing counts them then.", nil, nil),
		limit: prometheus.NewDesc("herald_daily_tier_limit",
			"The daily messaging tier in unique recipients; 0 when unlimited.", nil, nil),
		factor: prometheus.NewDesc("herald_sender_rate_factor",
			"Share of the configured rate a sender runs at: below 1 while backing off after a throttle.", []string{"sender"}, nil),
		share: prometheus.NewDesc("herald_sender_throttled_share",
			"Share of a sender's requests the provider throttled over the adaptive controller's window.", []string{"sender"}, nil),
	}
}

func (c *limitsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.used
	ch <- c.limit
	ch <- c.factor
	ch <- c.share
}

func (c *limitsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	now := time.Now()
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(c.src.TierLimit))
	// With the tier off no send records its recipient: a count would read 0 however many
	// were messaged.
	if c.src.TierLimit > 0 {
		if u, err := c.src.Limiter.DailyTier(ctx, c.src.Business, c.src.TierLimit, c.src.TierPeriod, now); err == nil {
			ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(u.Used))
		}
	}
	for _, s := range c.src.Senders {
		if b, err := c.src.Limiter.BackoffOf(ctx, s, now); err == nil {
			label := c.senders.Of(s.Sender)
			ch <- prometheus.MustNewConstMetric(c.factor, prometheus.GaugeValue, b.Factor, label)
			ch <- prometheus.MustNewConstMetric(c.share, prometheus.GaugeValue, b.Share, label)
		}
	}
}
