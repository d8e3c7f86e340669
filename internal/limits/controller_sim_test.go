package limits

import (
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// The controller's key test: a simulated worker pool drives the real Redis scripts (the
// reservation and Throttled, on miniredis) on a simulated clock against a model of the
// provider, and the run's rates and throttled share are measured per second.

// provider is a model of Connectly's answers: throttled reports whether a send arriving at at
// is answered 429.
type provider interface {
	throttled(at time.Time) bool
}

// limitedProvider accepts at most rate sends in any one second (a sliding window) and
// throttles the rest, like a business whose real limit is below the sender's configured rate.
type limitedProvider struct {
	rate     int
	accepted []time.Time
}

func (p *limitedProvider) throttled(at time.Time) bool {
	from := at.Add(-time.Second)
	i := 0
	for i < len(p.accepted) && !p.accepted[i].After(from) {
		i++
	}
	p.accepted = p.accepted[i:]
	if len(p.accepted) >= p.rate {
		return true
	}
	p.accepted = append(p.accepted, at)
	return false
}

// randomProvider throttles a share of sends at random (seeded), whatever the rate.
type randomProvider struct {
	share float64
	rng   *rand.Rand
}

func (p *randomProvider) throttled(time.Time) bool { return p.rng.Float64() < p.share }

type simEvent struct {
	at   time.Time
	kind int // evSend or evAnswer
	thr  bool
}

const (
	evSend = iota
	evAnswer
)

type simQueue []simEvent

func (q simQueue) Len() int           { return len(q) }
func (q simQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q simQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)        { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type simSecond struct {
	requests, throttled int
	factor              float64
}

type simConfig struct {
	rate        float64       // the sender's configured rate
	concurrency int           // tasks in flight (reserved, waiting or sending)
	latency     time.Duration // from send to answer
	duration    time.Duration
	policy      Policy
}

// simulate runs a worker pool with an endless backlog against prov for cfg.duration and
// returns what each second saw. A task reserves (waiting at most 1 s for its permit, else it
// tries again when a slot is that close), sends at its permit's time, and on a 429 records
// the throttle (the worker's throttle branch) before taking the next task.
func simulate(t *testing.T, prov provider, cfg simConfig) []simSecond {
	t.Helper()
	b := setup(t)
	ctx := context.Background()
	ctl := SenderControl("biz", "+14155550100", cfg.rate, cfg.policy)
	lim := rkeys.SenderLimit(ctl.Business, ctl.Sender)
	secs := make([]simSecond, int(cfg.duration/time.Second))
	now := t0
	second := func(at time.Time) int { return int(at.Sub(t0) / time.Second) }
	q := &simQueue{}
	inflight := 0
	var retryAt time.Time // when a refused reservation would fit in the max wait
	for now.Before(t0.Add(cfg.duration)) {
		b.mr.SetTime(now)
		for inflight < cfg.concurrency && !now.Before(retryAt) {
			r, err := b.lim.ReserveRequest(ctx, &Request{Keys: []string{lim}, Limits: []Limit{PerSecond(cfg.rate)},
				MaxWait: time.Second, Usage: []int{0}, Now: now,
				Adaptive: &Adaptive{Key: ctl.Key(), Index: 0, Policy: cfg.policy}})
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK {
				retryAt = now.Add(r.Wait - time.Second + time.Millisecond)
				break
			}
			inflight++
			heap.Push(q, simEvent{at: now.Add(r.Wait), kind: evSend})
			if s := second(now); s < len(secs) {
				secs[s].factor = r.Factor
			}
		}
		if q.Len() == 0 {
			now = retryAt
			continue
		}
		e := heap.Pop(q).(simEvent)
		next := e.at
		if inflight < cfg.concurrency && retryAt.After(now) && retryAt.Before(next) {
			heap.Push(q, e)
			now = retryAt
			continue
		}
		now = next
		b.mr.SetTime(now)
		switch e.kind {
		case evSend:
			thr := prov.throttled(now)
			if s := second(now); s < len(secs) {
				secs[s].requests++
				if thr {
					secs[s].throttled++
				}
			}
			heap.Push(q, simEvent{at: now.Add(cfg.latency), kind: evAnswer, thr: thr})
		case evAnswer:
			inflight--
			if e.thr {
				if _, err := b.lim.Throttled(ctx, ctl, now); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return secs
}

// simStats sums seconds [from, to).
type simStats struct {
	requests, throttled, accepted float64 // per second
	share, factor, minFactor      float64
}

func statsOf(secs []simSecond, from, to int) simStats {
	var s simStats
	s.minFactor = 1
	var req, thr int
	for _, x := range secs[from:to] {
		req += x.requests
		thr += x.throttled
		s.factor += x.factor
		s.minFactor = min(s.minFactor, x.factor)
	}
	n := float64(to - from)
	s.requests, s.throttled = float64(req)/n, float64(thr)/n
	s.accepted = s.requests - s.throttled
	s.factor /= n
	if req > 0 {
		s.share = float64(thr) / float64(req)
	}
	return s
}

func logSeconds(t *testing.T, secs []simSecond) {
	t.Helper()
	for i := 0; i < len(secs); i += 5 {
		s := statsOf(secs, i, min(len(secs), i+5))
		t.Logf("s %3d-%3d: %6.1f req/s %6.1f accepted/s share %5.1f%% factor %.2f (min %.2f)", i, i+5, s.requests,
			s.accepted, 100*s.share, s.factor, s.minFactor)
	}
}

// TestControllerConverges: with the default policy, a business really limited to 100/s with
// the sender configured at 200/s settles near 100/s with under 10% of requests throttled; 3%
// of random 429s keep the sender above 80% of its configured rate (at 200/s and at 80/s,
// where a window holds fewer requests and the share is noisier).
func TestControllerConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	base := simConfig{concurrency: 50, latency: 60 * time.Millisecond, policy: Policy{}}

	t.Run("LimitedBelowTheSender", func(t *testing.T) {
		t.Parallel()
		cfg := base
		cfg.rate, cfg.duration = 200, 50*time.Second
		secs := simulate(t, &limitedProvider{rate: 100}, cfg)
		logSeconds(t, secs)
		all, steady := statsOf(secs, 0, len(secs)), statsOf(secs, 15, len(secs))
		if all.share >= 0.10 || steady.share >= 0.10 {
			t.Errorf("throttled share %.1f%% over the run, %.1f%% after 15 s: want under 10%%", 100*all.share, 100*steady.share)
		}
		if steady.accepted < 95 || steady.requests > 110 {
			t.Errorf("after 15 s: %.1f requests/s, %.1f accepted/s: want settled near the real limit of 100/s",
				steady.requests, steady.accepted)
		}
		if steady.factor < 0.48 || steady.factor > 0.58 {
			t.Errorf("mean factor after 15 s %.2f, want near 0.5", steady.factor)
		}
	})
	for _, sc := range []struct {
		rate float64
		d    time.Duration
	}{{200, 30 * time.Second}, {80, 40 * time.Second}} {
		t.Run(fmt.Sprintf("RandomThrottlesAt%g", sc.rate), func(t *testing.T) {
			t.Parallel()
			cfg := base
			cfg.rate, cfg.duration = sc.rate, sc.d
			rate := sc.rate
			secs := simulate(t, &randomProvider{share: 0.03, rng: rand.New(rand.NewPCG(15, uint64(rate)))}, cfg)
			logSeconds(t, secs)
			all := statsOf(secs, 0, len(secs))
			if all.requests < 0.8*rate || all.factor < 0.8 {
				t.Errorf("%.1f requests/s of %g/s (mean factor %.2f): want at least 80%% of the configured rate",
					all.requests, rate, all.factor)
			}
			if all.share < 0.02 || all.share > 0.04 {
				t.Errorf("throttled share %.1f%%: the model did not throttle 3%%", 100*all.share)
			}
		})
	}
}
