package worker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// largestAccepted returns the largest whole-second duration d, up to limit, for which the
// config yamlOf(d) loads.
func largestAccepted(t *testing.T, yamlOf func(time.Duration) string, limit time.Duration) config.Config {
	t.Helper()
	dir := t.TempDir()
	load := func(d time.Duration) (config.Config, error) {
		path := filepath.Join(dir, "herald.yaml")
		if err := os.WriteFile(path, []byte(yamlOf(d)), 0o600); err != nil {
			t.Fatal(err)
		}
		return config.Load(path, func(string) string { return "" })
	}
	if c, err := load(limit); err == nil {
		return c
	}
	lo, hi := time.Duration(1), limit/time.Second // lo accepted, hi refused, in seconds
	if _, err := load(time.Second); err != nil {
		t.Fatalf("the config with 1s: %v", err)
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if _, err := load(mid * time.Second); err == nil {
			lo = mid
		} else {
			hi = mid
		}
	}
	c, err := load(lo * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLongestSessionFollowupAtTheLargestMargin: an on_reply session follow-up delayed
// campaigns.MaxSessionReplyDelay after the reply that opened the customer's window goes as
// the session message at the worker's gate, with the largest worker.window_margin and the
// longest wait after the gate (retry.keep_place_for at its cap, retry.max_pace_wait) the
// config accepts, when it is checked when due and when checked up to
// servicewindow.FollowupLate later. Before, a margin of 1h was accepted, and such a follow-up
// found its window closing every time.
func TestLongestSessionFollowupAtTheLargestMargin(t *testing.T) {
	cases := []struct {
		name   string
		yamlOf func(time.Duration) string
	}{
		{"largest margin", func(d time.Duration) string {
			return "retry:\n  keep_place_for: 5m\n  max_pace_wait: 1s\nworker:\n  window_margin: " + d.String() + "\n"
		}},
		{"largest pace wait", func(d time.Duration) string {
			return "retry:\n  keep_place_for: 5m\n  max_pace_wait: " + d.String() + "\nworker:\n  window_margin: 0s\n"
		}},
	}
	// The reply, within a second, as a webhook gives it; its window is recorded to the second.
	reply := time.Date(2026, 3, 1, 12, 0, 0, 500_000_000, time.UTC)
	due := reply.Add(campaigns.MaxSessionReplyDelay)
	for _, tc := range cases {
		c := largestAccepted(t, tc.yamlOf, 2*time.Hour)
		// The worker's config from the herald config, as serve builds it.
		cfg := testConfig()
		cfg.Limits.BusinessID = "biz-followup"
		cfg.KeepPlaceFor = c.Retry.KeepPlaceFor.D()
		cfg.Limits.MaxWait = c.Retry.MaxPaceWait.D()
		for _, at := range []time.Time{due, due.Add(servicewindow.FollowupLate - time.Second)} {
			t.Run(tc.name+" "+at.Sub(due).String()+" late", func(t *testing.T) {
				clock := func() time.Time { return at }
				mr := miniredis.RunT(t)
				mr.SetTime(at)
				rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
				t.Cleanup(func() { rdb.Close() })
				sender := &fakeSender{}
				w := New(cfg, Deps{Redis: rdb, Sender: sender, Logger: zerolog.Nop(), Now: clock})
				w.SetWindowMargin(c.Worker.WindowMargin.D())
				if got, want := c.Worker.WindowMargin.D()+w.gateAhead(), servicewindow.MaxAhead; got > want {
					t.Fatalf("margin %v + gate-ahead %v = %v, past servicewindow.MaxAhead %v", c.Worker.WindowMargin.D(), w.gateAhead(), got, want)
				}
				sc := &sessionClient{fakeSender: sender}
				w.client = sc
				b := &testBundle{mr: mr, rdb: rdb, ledger: ledger.New(rdb, nil), sender: sender, worker: w}
				p := sessionPayload(t, seedRun(t, b, "run-followup", ledger.AtMostOnce, 1)[0], false)
				if _, err := servicewindow.New(rdb, clock).Touch(context.Background(), cfg.Limits.BusinessID, []string{p.To}, reply); err != nil {
					t.Fatal(err)
				}
				if err := handle(t, b, p); err != nil {
					t.Fatal(err)
				}
				if e := entryOf(t, b, p); e.State != ledger.Accepted || e.Code != ledger.SentSession || sc.Sessions() != 1 {
					t.Fatalf("margin %v, keep_place_for %v, max_pace_wait %v: entry %+v after %d session requests, want accepted(%s)",
						c.Worker.WindowMargin.D(), c.Retry.KeepPlaceFor.D(), c.Retry.MaxPaceWait.D(), e, sc.Sessions(), ledger.SentSession)
				}
			})
		}
	}
}
