package ledger

import (
	"context"
	_ "embed"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

//go:embed lua/delivery.lua
var deliveryLua string

// deliveryCmd applies one delivery webhook event to a recipient's entry and the run's delivery
// statistics. Its KEYS, ARGV and reply are documented at the top of lua/delivery.lua.
var deliveryCmd = redis.NewScript(luaLib + deliveryLua)

// DeliveryVerdict is what ApplyDelivery did with an event.
type DeliveryVerdict string

const (
	// DeliveryApplied: the entry moved forward in the order accepted < sent < failed <
	// delivered < read (a delivered or read replaces a delivery failure; lua/delivery.lua).
	DeliveryApplied DeliveryVerdict = "applied"
	// DeliveryStale: a duplicate, or an event a later one overtook (a sent after delivered, a
	// failure after delivered or read); nothing changed.
	DeliveryStale DeliveryVerdict = "stale"
	// DeliveryEarly: the entry is not yet recorded as sent (planned, queued or being sent);
	// nothing changed and the event should be tried again later. A Strict event gets it only
	// from an entry being sent: its message id is checked once the send records one.
	DeliveryEarly DeliveryVerdict = "early"
	// DeliveryOtherMessage: the entry records another message id; nothing changed.
	DeliveryOtherMessage DeliveryVerdict = "other"
	// DeliveryNoEntry: the run has no such recipient (or no such run).
	DeliveryNoEntry DeliveryVerdict = "noentry"
)

// DeliveryEvent is one delivery_status webhook event, resolved to its ledger entry.
type DeliveryEvent struct {
	// Address is the entry the event is about.
	Address
	// State is Sent, Delivered, Read or Failed.
	State State
	// Code and Class describe a failure (Class is the classification table's name for Code).
	Code  string
	Class string
	// MessageID is statusUpdate.id; "" matches any recorded id.
	MessageID string
	// TimeToDeliver is the time from the send being accepted to this event; 0 when unknown.
	// It is only used when the event takes the entry to delivered or read.
	TimeToDeliver time.Duration
	// Strict requires the entry to record exactly MessageID: set it when the entry was found
	// from the campaign name and the customer's number rather than from callbackData. An
	// entry still being sent records no id yet and answers DeliveryEarly; an unknown entry
	// records none (its send's answer was lost), so a Strict event never settles it.
	Strict bool
}

// ApplyDelivery applies a delivery event to its entry and the run's delivery statistics in
// one round trip. It returns the verdict and the entry's state before the event. The events of
// one message give the same entry and statistics in any order of arrival: a delivered or read
// that comes after a delivery failure replaces it and takes back its counts by code and class.
func (l *Ledger) ApplyDelivery(ctx context.Context, ev DeliveryEvent) (DeliveryVerdict, State, error) {
	switch ev.State {
	case Sent, Delivered, Read, Failed:
	default:
		return "", "", fmt.Errorf("ledger: delivery event to %s: only sent, delivered, read or failed", ev.State)
	}
	if strings.Contains(ev.Code, "|") || strings.Contains(ev.MessageID, "|") {
		return "", "", fmt.Errorf("ledger: delivery event: '|' in code or message id")
	}
	ttd := ""
	if ev.TimeToDeliver > 0 {
		ttd = "ttd:" + strconv.Itoa(LatencyBucket(ev.TimeToDeliver))
	}
	keys := []string{rkeys.Counts(ev.Run), rkeys.Codes(ev.Run), rkeys.LedgerBucket(ev.Run, ev.Bucket), rkeys.Delivery(ev.Run),
		rkeys.Run(ev.Run), rkeys.Unknown(ev.Run), rkeys.UnknownPayloads(ev.Run), rkeys.History(ev.Run, ev.Bucket)}
	strict := "0"
	if ev.Strict {
		strict = "1"
	}
	f, err := l.formatOf(ctx, ev.Run)
	if err != nil {
		return "", "", err
	}
	field := f.field(ev.Recipient)
	res, err := scriptReply(deliveryCmd.Run(ctx, l.rdb, keys, field, ev.State.Letter(), ev.Code, f.messageID(ev.MessageID), ttd,
		ev.Class, strict, resendMember(ev.Bucket, field), l.nowMS()), 2, "delivery event in run "+ev.Run)
	if err != nil {
		return "", "", err
	}
	verdict, prior := DeliveryVerdict(replyString(res[0])), fromLetter[replyString(res[1])]
	if verdict == DeliveryApplied && prior == Unknown {
		// The event settled an unknown recipient, which may have been the last thing the run
		// waited for (its resend): the run may have completed.
		l.unlistEnded(ctx, ev.Run)
	}
	return verdict, prior, nil
}

// Time-to-deliver histogram: bucket i holds samples up to latencyBase·√2^i; the last bucket
// holds everything longer. 48 buckets reach from 100 ms to about 19 days, so a run keeps at
// most 48 small fields whatever its size, and a percentile read from it is within a factor
// √2 of the true value.
const (
	latencyBase    = 100 * time.Millisecond
	latencyBuckets = 48
)

// LatencyBucket returns the time-to-deliver histogram bucket of d.
func LatencyBucket(d time.Duration) int {
	if d <= latencyBase {
		return 0
	}
	i := int(math.Ceil(2 * math.Log2(float64(d)/float64(latencyBase))))
	// Guard the float rounding at bucket edges.
	for i > 0 && d <= latencyUpper(i-1) {
		i--
	}
	return min(i, latencyBuckets-1)
}

// latencyUpper is the upper bound of histogram bucket i.
func latencyUpper(i int) time.Duration {
	return time.Duration(float64(latencyBase) * math.Pow(math.Sqrt2, float64(i)))
}

// Latency summarises a run's time-to-deliver samples.
type Latency struct {
	// Samples is the number of messages with a measured time to deliver.
	Samples int64 `json:"samples"`
	// P50, P90 and P99 are estimated from the histogram (linear within a bucket).
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
}

// DeliveryStats are a run's delivery outcomes, from its counters and webhook statistics.
type DeliveryStats struct {
	// Accepted counts messages Connectly took: accepted, sent, delivered, read, plus those whose
	// delivery then failed.
	Accepted int64 `json:"accepted"`
	// Sent, Delivered and Read count recipients that reached at least that state.
	Sent      int64 `json:"sent"`
	Delivered int64 `json:"delivered"`
	Read      int64 `json:"read"`
	// Awaiting counts accepted messages with no delivery event yet.
	Awaiting int64 `json:"awaiting"`
	// DeliveryFailed counts delivery_failed events applied, by code and by class, less those a
	// later delivered or read replaced (the message arrived after all).
	DeliveryFailed  int64            `json:"delivery_failed"`
	FailedByCode    map[string]int64 `json:"delivery_failed_by_code,omitempty"`
	FailedByClass   map[string]int64 `json:"delivery_failed_by_class,omitempty"`
	SendFailed      int64            `json:"send_failed"`
	Settled         int64            `json:"settled_unknown"`
	DeliveryRate    float64          `json:"delivery_rate"`
	ReadRate        float64          `json:"read_rate"`
	TimeToDeliver   Latency          `json:"time_to_deliver"`
	Replies         int64            `json:"replies"`
	ButtonReplies   map[string]int64 `json:"button_replies,omitempty"`
	OptOutsReceived int64            `json:"opt_outs"`
}

// Empty reports whether no delivery event or reply was ever recorded for the run.
func (d DeliveryStats) Empty() bool {
	return d.Sent == 0 && d.Delivered == 0 && d.DeliveryFailed == 0 && d.Replies == 0 && d.Settled == 0
}

// DeliveryStats reads a run's delivery outcomes. The delivery rate is delivered ÷ accepted,
// the read rate read ÷ delivered.
func (l *Ledger) DeliveryStats(ctx context.Context, runID string) (DeliveryStats, error) {
	c, err := l.Counters(ctx, runID)
	if err != nil {
		return DeliveryStats{}, err
	}
	m, err := l.rdb.HGetAll(ctx, rkeys.Delivery(runID)).Result()
	if err != nil {
		return DeliveryStats{}, fmt.Errorf("ledger: read delivery statistics of run %s: %w", runID, err)
	}
	return deliveryStats(c, m), nil
}

func deliveryStats(c Counters, m map[string]string) DeliveryStats {
	d := DeliveryStats{
		FailedByCode: map[string]int64{}, FailedByClass: map[string]int64{}, ButtonReplies: map[string]int64{},
	}
	hist := make([]int64, latencyBuckets)
	for k, v := range m {
		n, _ := strconv.ParseInt(v, 10, 64)
		switch {
		case strings.HasPrefix(k, "ttd:"):
			if i, err := strconv.Atoi(k[4:]); err == nil && i >= 0 && i < latencyBuckets {
				hist[i] += n
			}
		case strings.HasPrefix(k, "dfc:"):
			d.FailedByClass[k[4:]] += n
		case strings.HasPrefix(k, "df:"):
			d.FailedByCode[k[3:]] += n
			d.DeliveryFailed += n
		case strings.HasPrefix(k, "button:"):
			d.ButtonReplies[k[7:]] += n
		case k == "replies":
			d.Replies = n
		case k == "optouts":
			d.OptOutsReceived = n
		}
	}
	d.Read = c.States[Read]
	d.Delivered = c.States[Delivered] + d.Read
	d.Sent = c.States[Sent] + d.Delivered
	d.Awaiting = c.States[Accepted]
	d.Accepted = d.Awaiting + d.Sent + d.DeliveryFailed
	d.SendFailed = c.States[Failed] - d.DeliveryFailed
	for k, n := range c.Codes {
		if strings.HasPrefix(k, "settled:") {
			d.Settled += n
		}
	}
	if d.Accepted > 0 {
		d.DeliveryRate = float64(d.Delivered) / float64(d.Accepted)
	}
	if d.Delivered > 0 {
		d.ReadRate = float64(d.Read) / float64(d.Delivered)
	}
	d.TimeToDeliver = latencySummary(hist)
	for _, mm := range []map[string]int64{d.FailedByCode, d.FailedByClass, d.ButtonReplies} {
		for k, n := range mm {
			if n == 0 {
				delete(mm, k)
			}
		}
	}
	return d
}

// latencySummary estimates percentiles from histogram counts.
func latencySummary(hist []int64) Latency {
	var total int64
	for _, n := range hist {
		total += n
	}
	s := Latency{Samples: total}
	if total == 0 {
		return s
	}
	q := func(p float64) time.Duration {
		rank := p * float64(total)
		var seen int64
		for i, n := range hist {
			if n == 0 {
				continue
			}
			if float64(seen+n) >= rank {
				lo := time.Duration(0)
				if i > 0 {
					lo = latencyUpper(i - 1)
				}
				hi := latencyUpper(i)
				frac := (rank - float64(seen)) / float64(n)
				return lo + time.Duration(frac*float64(hi-lo))
			}
			seen += n
		}
		return latencyUpper(len(hist) - 1)
	}
	s.P50, s.P90, s.P99 = q(0.5), q(0.9), q(0.99)
	return s
}

// SortedKeys returns m's keys ordered by count, largest first, then by name.
func SortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
