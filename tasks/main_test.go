package tasks_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/ledger"
)

// TestMain fails the package's tests when any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testNow is the ledger's clock in tests.
var testNow = time.Date(2026, 3, 20, 9, 30, 0, 0, time.UTC)

// bundle is a fresh miniredis with a ledger and an asynq inspector on it.
type bundle struct {
	mr        *miniredis.Miniredis
	rdb       *redis.Client
	ledger    *ledger.Ledger
	inspector *asynq.Inspector
}

func setup(tb testing.TB) *bundle {
	tb.Helper()
	mr := miniredis.RunT(tb)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	in := asynq.NewInspectorFromRedisClient(rdb)
	tb.Cleanup(func() {
		in.Close()
		rdb.Close()
	})
	return &bundle{mr: mr, rdb: rdb, inspector: in, ledger: ledger.New(rdb, func() time.Time { return testNow })}
}

// start starts a run to n distinct recipients, each queued in the ledger with a pending send
// task, and returns it; extra is added to its campaign file.
func (b *bundle) start(tb testing.TB, n int, extra ...string) expand.Started {
	tb.Helper()
	return b.startWith(tb, n, expand.Config{Task: campaigns.TaskOptions{MaxRetry: 10}}, false, extra...)
}

// startPending is start, and the run's n send tasks, checked pending on its queue.
func (b *bundle) startPending(tb testing.TB, n int, extra ...string) (expand.Started, []*asynq.TaskInfo) {
	tb.Helper()
	st := b.start(tb, n, extra...)
	pending, err := b.inspector.ListPendingTasks(st.Run.Queue)
	if err != nil || len(pending) != n {
		tb.Fatalf("%d pending tasks, %v; want %d", len(pending), err, n)
	}
	return st, pending
}

// startWith is start with expansion config cfg, bounded as campaign send is (the run's backlog
// in the call, its next expansion step enqueued for the rest) when bounded.
func (b *bundle) startWith(tb testing.TB, n int, cfg expand.Config, bounded bool, extra ...string) expand.Started {
	tb.Helper()
	dir := tb.TempDir()
	var csv strings.Builder
	csv.WriteString("phone,name\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&csv, "+1201555%04d,name %d\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "audience.csv"), []byte(csv.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	yaml := "id: spring-sale\ntemplate: {name: spring_sale, language: en}\n" +
		"parameters:\n  body_1: \"{{.name}}\"\naudience: {file: audience.csv}\n" + strings.Join(extra, "")
	path := filepath.Join(dir, "campaign.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		tb.Fatal(err)
	}
	def, err := campaigns.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	runs := expand.NewRuns(cfg, expand.Deps{Redis: b.rdb, Logger: zerolog.Nop(),
		Now: func() time.Time { return testNow }, Sender: func(*campaigns.Definition) (string, error) { return "+14151111234", nil }})
	st, err := runs.StartRun(context.Background(), expand.StartParams{Def: def, Bounded: bounded})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func (b *bundle) counters(tb testing.TB, id string) ledger.Counters {
	tb.Helper()
	c, err := b.ledger.Counters(context.Background(), id)
	if err != nil {
		tb.Fatalf("Counters: %v", err)
	}
	return c
}
