// Package testredis gives a package's integration tests a real Redis database of their own,
// and its unit tests an embedded one (Mini), and the faults tests play on a connection: a
// reply lost after its command ran (ReplyDropper), a pipeline failed before it reached Redis
// (FailPipelineOnce); WaitUntil polls for a condition with a deadline. StartServer starts a
// redis-server process of a test's own (a master, a replica, a sentinel) on a port picked at
// random and checked to be its own, so runs of a test at once never share a server.
//
// HERALD_TEST_REDIS_CLUSTER (ClusterEnv) names a Redis Cluster for the cluster tier (cluster.go):
// Cluster opens it as Herald does and fails a test whose scripts put their KEYS in more than one
// slot (SlotCheck); ProxyClient plays tables written for a *redis.Client on it; tests name what
// they write with UniqueName and delete it (DeleteAtCleanup, DeleteRunsAtCleanup), never flush.
//
// HERALD_TEST_REDIS names one database (redis://127.0.0.1:6379/15 in CI). `go test ./...` runs
// packages at the same time, and a test that flushes its database would wipe another package's
// keys, so each package whose tests flush takes its own offset below that database (mod 16):
// cmd/herald 1, internal/ledger 2, worker 3, internal/webhooks 4 (its benchmarks). The database named itself (offset 0) is never
// flushed: it holds the tests that write only keys under a prefix of their own and delete them
// (internal/limits, internal/servicewindow, conversation, the script cases of
// internal/luacheck). Tests of one package that share a database must not run in parallel with
// each other; tests that run in parallel each lease a database of their own from a Pool
// (cmd/herald: its own offset and offsets 5 to 8, OffsetCLIParallel on).
package testredis

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Env is the variable that selects the integration tier.
const Env = "HERALD_TEST_REDIS"

// Offsets of the packages whose integration tests flush their database; OffsetShared is the
// database HERALD_TEST_REDIS names, which no test flushes.
const (
	OffsetShared = iota
	OffsetCLI
	OffsetLedger
	OffsetWorker
	OffsetWebhooks
	// OffsetCLIParallel is the first of CLIParallelDBs offsets that cmd/herald's integration
	// tests lease, with OffsetCLI, so that the ones waiting on a killed worker's leases run at
	// the same time (Pool).
	OffsetCLIParallel
)

// CLIParallelDBs is how many databases from OffsetCLIParallel on cmd/herald's tests lease.
const CLIParallelDBs = 4

// Options returns the options of the database offset below the one HERALD_TEST_REDIS names,
// or skips the test when the variable is unset.
func Options(t testing.TB, offset int) *redis.Options {
	t.Helper()
	url := os.Getenv(Env)
	if url == "" {
		t.Skipf("integration test: set %s=redis://127.0.0.1:6379/15 to run it against a real Redis", Env)
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("%s: %v", Env, err)
	}
	opts.DB = ((opts.DB-offset)%16 + 16) % 16
	return opts
}

// URL returns HERALD_TEST_REDIS with its database moved down by offset (see Options), for a
// test that hands the address to a child process, or skips the test when the variable is unset.
func URL(t testing.TB, offset int) string {
	t.Helper()
	opts := Options(t, offset)
	u, err := url.Parse(os.Getenv(Env))
	if err != nil {
		t.Fatalf("%s: %v", Env, err)
	}
	u.Path = "/" + strconv.Itoa(opts.DB)
	return u.String()
}

// Open returns a client on the package's database, flushed before and after the test, or
// skips the test when HERALD_TEST_REDIS is unset.
func Open(t testing.TB, offset int) *redis.Client {
	t.Helper()
	opts := Options(t, offset)
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("%s (database %d): %v", Env, opts.DB, err)
	}
	t.Cleanup(func() {
		rdb.FlushDB(context.Background())
		rdb.Close()
	})
	return rdb
}

// Mini starts an embedded Redis (miniredis) for the unit tier and returns it with a client on
// it; both are closed when the test ends.
func Mini(tb testing.TB) (*miniredis.Miniredis, *redis.Client) {
	tb.Helper()
	m := miniredis.RunT(tb)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	tb.Cleanup(func() { rdb.Close() })
	return m, rdb
}

// Pool leases databases to the integration tests of one package that run in parallel: a test
// takes one for its whole duration, flushed, and gives it back flushed when it ends; a test
// waits while every database of the pool is leased.
type Pool struct {
	free chan int
}

// NewPool returns a pool of the databases at offsets below the one HERALD_TEST_REDIS names.
func NewPool(offsets ...int) *Pool {
	p := &Pool{free: make(chan int, len(offsets))}
	for _, o := range offsets {
		p.free <- o
	}
	return p
}

// Lease returns the URL of a database of the pool, flushed before the test and again when it
// ends, or skips the test when HERALD_TEST_REDIS is unset. Cleanups the test registers after
// Lease run before the database is flushed and given back, so the processes a test starts stop
// before another test can have its database.
func (p *Pool) Lease(t testing.TB) string {
	t.Helper()
	Options(t, OffsetShared) // skips without HERALD_TEST_REDIS, before waiting for a database
	var offset int
	select {
	case offset = <-p.free:
	case <-time.After(10 * time.Minute):
		t.Fatal("no database of the pool came free within 10 minutes")
	}
	rdb := redis.NewClient(Options(t, offset))
	flush := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return rdb.FlushDB(ctx).Err()
	}
	t.Cleanup(func() {
		if err := flush(); err != nil {
			t.Errorf("%s: flush database %d at the end: %v", Env, rdb.Options().DB, err)
		}
		rdb.Close()
		p.free <- offset
	})
	if err := flush(); err != nil {
		t.Fatalf("%s (database %d): %v", Env, rdb.Options().DB, err)
	}
	return URL(t, offset)
}
