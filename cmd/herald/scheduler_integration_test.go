package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/scheduler"
	"github.com/heraldmsg/herald/serve"
	"github.com/heraldmsg/herald/worker"
)

// TestIntegrationThreeSchedulersOneRunPerTick runs three schedulers (each with its own Redis
// connections, asynq client and expansion server, as three `herald scheduler` processes would
// have) on one real Redis with a campaign on "* * * * *", on a clock sped up 60 times so three
// minutes of ticks take three seconds, and a worker sending to the fake Connectly. It requires
// exactly three runs, named after the three ticks, each sending every recipient exactly once.
func TestIntegrationThreeSchedulersOneRunPerTick(t *testing.T) {
	rdb, url := integrationRedis(t)
	ctx := context.Background()
	const n = 40
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("name,phone\n")
	for i := range n {
		fmt.Fprintf(&csv, "user%d,+5511%09d\n", i, 900000000+i)
	}
	if err := os.WriteFile(filepath.Join(dir, "audience.csv"), []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	yml := "id: every-minute\nsender: \"+14155550100\"\ntemplate: {name: tick_tpl, language: en, category: utility}\n" +
		"parameters:\n  body_1: \"{{ .name }}\"\naudience: {file: audience.csv}\nschedule: {cron: \"* * * * *\"}\n"
	path := filepath.Join(dir, "campaign.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	def, err := campaigns.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := defstore.New(rdb, nil).Submit(ctx, def.ID, def.Path, []byte(yml)); err != nil {
		t.Fatal(err)
	}

	const businessID, apiKey = "it-business", "it-key-0123456789"
	fake, base := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: businessID, APIKey: apiKey, RateLimit: -1})
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: base, BusinessID: businessID, APIKey: apiKey, MaxConns: 20})
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	w := worker.New(worker.Config{Concurrency: 20, Limits: limits.Config{BusinessID: businessID, BusinessRate: -1, DefaultSenderRate: 1e6,
		PairInterval: -1}, TaskCheckInterval: 50 * time.Millisecond}, worker.Deps{Redis: rdb, Sender: client, Logger: log})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { w.Stop(); w.Shutdown() }()

	realStart := time.Now().Truncate(time.Second).Add(2 * time.Second)
	parse := scheduler.CompressedParse(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), realStart, 60, 3*time.Minute)
	c := config.Default()
	for i := range 3 {
		own, err := redisx.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		s := scheduler.New(scheduler.Config{Parse: parse, Poll: 100 * time.Millisecond},
			scheduler.Deps{Redis: own, Logger: log.With().Int("replica", i).Logger()})
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		exp, err := serve.StartExpansion(c, own, log, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			s.Stop()
			exp.Stop()
			exp.Shutdown()
			own.Close()
		}()
	}

	var want []string
	for i := 1; i <= 3; i++ {
		want = append(want, scheduler.TickRunID(def.ID, realStart.Add(time.Duration(i)*time.Second)))
	}
	l := ledger.New(rdb, nil)
	completed := func() bool {
		ids, err := l.RecentRuns(ctx, def.ID, 10)
		if err != nil || len(ids) < 3 {
			return false
		}
		for _, id := range ids {
			r, err := l.GetRun(ctx, id)
			if err != nil || r.Status != ledger.RunCompleted {
				return false
			}
		}
		// Past the last tick, so a fourth run would have shown up by now.
		return time.Now().After(realStart.Add(3*time.Second + 500*time.Millisecond))
	}
	waitFor(t, 60*time.Second, "three completed runs", completed)

	ids, err := l.RecentRuns(ctx, def.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	if len(ids) != 3 || ids[0] != want[0] || ids[1] != want[1] || ids[2] != want[2] {
		t.Fatalf("runs %v, want exactly %v", ids, want)
	}
	perRun := map[string]map[string]int{}
	for _, rec := range fake.Received() {
		if !rec.Accepted() {
			continue
		}
		var cb ledger.Address
		if err := json.Unmarshal(rec.Message.CallbackData, &cb); err != nil {
			t.Fatal(err)
		}
		if perRun[cb.Run] == nil {
			perRun[cb.Run] = map[string]int{}
		}
		perRun[cb.Run][rec.Number]++
	}
	for _, id := range want {
		got := perRun[id]
		if len(got) != n {
			t.Errorf("run %s: %d recipients accepted, want %d", id, len(got), n)
		}
		for num, k := range got {
			if k != 1 {
				t.Errorf("run %s: %s accepted %d times", id, num, k)
			}
		}
		r, err := l.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := l.Counters(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Version != 1 || r.Total != n || cs.Sum() != n || cs.States[ledger.Accepted] != n {
			t.Errorf("run %s: version %d total %d, states %v", id, r.Version, r.Total, cs.States)
		}
	}
	if len(perRun) != 3 {
		t.Errorf("sends for %d runs, want 3", len(perRun))
	}
}
