package luacheck

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/internal/testredis"
)

// Case is one direct case of a package's script. Play runs it on rdb and returns the error
// that says how the outcome differs from the wanted one (nil when it matches). Every key it
// writes must contain id (letters, digits and dashes: safe in a key, a hash tag and a KEYS
// pattern), by which its keys are deleted afterwards. A case that can play only on a single
// Redis (it needs a *redis.Client) returns an error wrapping ErrNeedsSingleNode when given
// another: on the Cluster it is skipped.
type Case struct {
	// Script is the redis.NewScript variable the case plays.
	Script string
	Name   string
	Play   func(ctx context.Context, rdb redis.UniversalClient, id string) error
}

// caseSeq makes the ids of one test binary distinct even within one clock tick.
var caseSeq atomic.Int64

// caseID returns a fresh id for a case: its names, then the clock and a sequence number.
func caseID(c Case) string {
	var b strings.Builder
	b.WriteString("luacase-")
	for _, r := range strings.ToLower(c.Script + "-" + c.Name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	fmt.Fprintf(&b, "-%d-%d", time.Now().UnixNano(), caseSeq.Add(1))
	return b.String()
}

// coverage returns what is wrong with the cases of the scripts: a script without a case, a
// case of no listed script.
func coverage(scripts []string, cases []Case) []string {
	var out []string
	covered := map[string]bool{}
	for _, c := range cases {
		if !slices.Contains(scripts, c.Script) {
			out = append(out, fmt.Sprintf("case %q plays %s, which is not one of the scripts %v", c.Name, c.Script, scripts))
		}
		covered[c.Script] = true
	}
	for _, s := range scripts {
		if !covered[s] {
			out = append(out, fmt.Sprintf("script %s has no case", s))
		}
	}
	return out
}

// RunCases plays every case on miniredis always; when HERALD_TEST_REDIS is set, on that real
// Redis too (whose Lua, not miniredis's, runs the scripts), in the database it names; and
// when HERALD_TEST_REDIS_CLUSTER is set, on that Redis Cluster (testredis.Cluster), where a
// script whose KEYS lie in more than one slot fails its case. Without a variable its run is
// skipped, saying how to run it. Each case gets a fresh id and, on miniredis, a fresh server,
// where a key it wrote without its id fails it; on real Redis and the Cluster its keys are
// deleted after it and nothing else is touched. scripts lists the package's scripts (as given
// to Files): each must have at least one case.
func RunCases(t *testing.T, scripts []string, cases []Case) {
	t.Helper()
	for _, p := range coverage(scripts, cases) {
		t.Error(p)
	}
	ctx := context.Background()
	t.Run("Miniredis", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.Script+"/"+c.Name, func(t *testing.T) {
				mr := miniredis.RunT(t)
				rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
				t.Cleanup(func() { rdb.Close() })
				id := caseID(c)
				if err := c.Play(ctx, rdb, id); err != nil {
					t.Fatal(err)
				}
				for _, k := range mr.Keys() {
					if !strings.Contains(k, id) {
						t.Errorf("the case wrote %s, a key without its id: on real Redis it would stay", k)
					}
				}
			})
		}
	})
	t.Run("RealRedis", func(t *testing.T) {
		url := os.Getenv(testredis.Env)
		if url == "" {
			t.Skipf("script cases on real Redis: set %s=redis://127.0.0.1:6379/15 to run them (each case's keys are deleted afterwards)", testredis.Env)
		}
		rdb, err := redisx.Open(url)
		if err != nil {
			t.Fatalf("%s: %v", testredis.Env, err)
		}
		t.Cleanup(func() { rdb.Close() })
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatalf("%s=%s: %v", testredis.Env, redisx.Redact(url), err)
		}
		playReal(t, rdb, cases)
	})
	// On a Cluster each case's keys must lie in one slot wherever a script takes several (the
	// Cluster refuses the script otherwise, and testredis.Cluster's check names its keys).
	t.Run("Cluster", func(t *testing.T) {
		playReal(t, testredis.Cluster(t), cases)
	})
}

// ErrNeedsSingleNode is wrapped by a case's error when it cannot play on a Cluster's client.
var ErrNeedsSingleNode = errors.New("the case needs a single-node client")

// playReal plays every case on a real Redis or Cluster, deleting each case's keys after it.
func playReal(t *testing.T, rdb redis.UniversalClient, cases []Case) {
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.Script+"/"+c.Name, func(t *testing.T) {
			id := caseID(c)
			t.Cleanup(func() {
				if _, err := testredis.DeleteMatching(ctx, rdb, "*"+id+"*"); err != nil {
					t.Errorf("delete the case's keys: %v", err)
				}
			})
			err := c.Play(ctx, rdb, id)
			if _, cluster := rdb.(*redis.ClusterClient); cluster && err != nil && errors.Is(err, ErrNeedsSingleNode) {
				t.Skipf("plays on a single Redis only: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// WantHash returns an error unless the hash at key holds exactly want, for a script case.
func WantHash(ctx context.Context, rdb redis.UniversalClient, key string, want map[string]string) error {
	got, err := rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return err
	}
	return SameHash(key, got, want)
}

// SameHash returns an error unless got, the hash read at key, holds exactly want.
func SameHash(key string, got, want map[string]string) error {
	if !maps.Equal(got, want) {
		return fmt.Errorf("%s = %v, want %v", key, got, want)
	}
	return nil
}

// WantTTL returns an error unless key expires within a few seconds below want, for a script
// case (real Redis's clock runs while the case plays).
func WantTTL(ctx context.Context, rdb redis.UniversalClient, key string, want time.Duration) error {
	d, err := rdb.PTTL(ctx, key).Result()
	if err != nil || d > want || d <= want-5*time.Second {
		return fmt.Errorf("%s expires in %v (%v), want %v", key, d, err, want)
	}
	return nil
}
