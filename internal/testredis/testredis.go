// Package testredis gives a package's integration tests a real Redis database of their own.
//
// HERALD_TEST_REDIS names one database (redis://127.0.0.1:6379/15 in CI). `go test ./...` runs
// packages at the same time, and a test that flushes its database would wipe another package's
// runs, so each package whose tests flush takes its own offset below that database (mod 16):
// cmd/herald 0, internal/ledger 1, worker 2. (Tests that write only keys under a
// prefix of their own, like internal/limits and internal/servicewindow, need no database of
// their own.) Tests of one package that
// share a database must not run in parallel with each other.
package testredis

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Env is the variable that selects the integration tier.
const Env = "HERALD_TEST_REDIS"

// Offsets of the packages whose integration tests flush their database.
const (
	OffsetCLI = iota
	OffsetLedger
	OffsetWorker
)

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
